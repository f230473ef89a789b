"""Low-level SFTP reads and writes with several requests in flight.

Callers in :mod:`cosmos_tui.remote.sftp` wrap these in their exception translator.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import asyncssh

ProgressCallback = Callable[[int, int], None]
"""Called with (bytes done, bytes in total) as a transfer moves."""

CHUNK_BYTES = 8 * 1024 * 1024
WRITES_IN_FLIGHT = 2
READS_IN_FLIGHT = 2
SEGMENT_BYTES = 32 * 1024 * 1024


async def stat_or_none(sftp: asyncssh.SFTPClient, path: str) -> asyncssh.SFTPAttrs | None:
    """Return the attributes of a remote path, None when it does not exist."""
    try:
        return await sftp.stat(path)
    except asyncssh.SFTPNoSuchFile:
        return None


SegmentCallback = Callable[[int, int, str], None]


class _Segments:
    """Hashes the chunks read into segments of about ``segment_bytes``.

    Reading runs ahead of the acknowledged writes, so each finished segment waits in
    ``ready`` (start, length, sha256) until the writes reach its end.
    """

    def __init__(self, start: int, segment_bytes: int, whole: bool) -> None:
        self._segment_bytes = segment_bytes
        self._start = start
        self._length = 0
        self._hasher = hashlib.sha256()
        self.whole = hashlib.sha256() if whole else None
        self.ready: deque[tuple[int, int, str]] = deque()

    def add(self, chunk: bytes, end_of_file: bool) -> None:
        """Account for one chunk read (runs in the reading thread)."""
        self._hasher.update(chunk)
        if self.whole is not None:
            self.whole.update(chunk)
        self._length += len(chunk)
        if self._length and (self._length >= self._segment_bytes or end_of_file):
            self.ready.append((self._start, self._length, self._hasher.hexdigest()))
            self._start += self._length
            self._length = 0
            self._hasher = hashlib.sha256()


def _read_chunk(source: BinaryIO, segments: _Segments | None, size: int) -> bytes:
    chunk = source.read(CHUNK_BYTES)
    if segments is not None:
        segments.add(chunk, source.tell() >= size)
    return chunk


async def send_file(
    sftp: asyncssh.SFTPClient,
    local_path: Path,
    part: str,
    offset: int,
    size: int,
    progress: ProgressCallback | None,
    on_written: SegmentCallback | None = None,
    segment_bytes: int = SEGMENT_BYTES,
    whole_hash: bool = True,
) -> str | None:
    """Write the file from ``offset`` with WRITES_IN_FLIGHT chunks outstanding.

    ``on_written(offset, length, sha256)`` is called for each segment of about
    ``segment_bytes`` once the host has acknowledged all of it, in file order.

    Returns:
        With ``on_written`` and ``whole_hash``, the sha256 of all bytes sent (the file's,
        from offset 0); otherwise None.

    """
    mode = "r+b" if offset else "wb"
    segments = _Segments(offset, segment_bytes, whole_hash) if on_written else None
    async with sftp.open(part, mode) as remote:
        if offset:
            await remote.truncate(offset)
        with local_path.open("rb") as source:
            source.seek(offset)
            done = offset
            if progress:
                progress(done, size)
            in_flight: deque[tuple[asyncio.Future[int], int]] = deque()
            position = offset
            try:
                while True:
                    chunk = await asyncio.to_thread(_read_chunk, source, segments, size)
                    if chunk:
                        write = asyncio.ensure_future(remote.write(chunk, position))
                        position += len(chunk)
                        in_flight.append((write, position))
                    if in_flight and (len(in_flight) >= WRITES_IN_FLIGHT or not chunk):
                        write, done = in_flight.popleft()
                        await write
                        if progress:
                            progress(done, size)
                        while on_written and segments and segments.ready:
                            start, length, digest = segments.ready[0]
                            if start + length > done:
                                break
                            segments.ready.popleft()
                            on_written(start, length, digest)
                    if not chunk and not in_flight:
                        break
            finally:
                for write, _ in in_flight:
                    write.cancel()
    return segments.whole.hexdigest() if segments and segments.whole else None


def _write_chunk(target: BinaryIO, chunk: bytes, hasher: hashlib._Hash | None) -> None:
    target.write(chunk)
    if hasher is not None:
        hasher.update(chunk)


async def receive_file(
    sftp: asyncssh.SFTPClient,
    remote_path: str,
    part: Path,
    offset: int,
    size: int,
    progress: ProgressCallback | None,
    hasher: hashlib._Hash | None = None,
) -> None:
    """Read the remote file from ``offset`` into ``part`` (appending), reporting progress.

    ``hasher`` (if given) is fed every byte written, in order.
    """
    async with sftp.open(remote_path, "rb") as remote:
        with part.open("ab" if offset else "wb") as target:
            done = offset
            if progress:
                progress(done, size)
            # Chunks are requested READS_IN_FLIGHT ahead and written strictly in order.
            reads: deque[tuple[asyncio.Future[bytes], int]] = deque()
            position = offset
            try:
                while done < size:
                    while position < size and len(reads) < READS_IN_FLIGHT:
                        length = min(CHUNK_BYTES, size - position)
                        reads.append((asyncio.ensure_future(remote.read(length, position)), length))
                        position += length
                    read, wanted = reads.popleft()
                    chunk = await read
                    await asyncio.to_thread(_write_chunk, target, chunk, hasher)
                    done += len(chunk)
                    if progress:
                        progress(done, size)
                    if len(chunk) != wanted:
                        break  # the remote file shrank: the caller's size check reports it
            finally:
                for read, _ in reads:
                    read.cancel()
