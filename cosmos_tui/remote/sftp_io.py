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


async def stat_or_none(sftp: asyncssh.SFTPClient, path: str) -> asyncssh.SFTPAttrs | None:
    """Return the attributes of a remote path, None when it does not exist."""
    try:
        return await sftp.stat(path)
    except asyncssh.SFTPNoSuchFile:
        return None


SegmentCallback = Callable[[int, int, str], None]


def _read_chunk(source: BinaryIO) -> tuple[bytes, str]:
    chunk = source.read(CHUNK_BYTES)
    return chunk, hashlib.sha256(chunk).hexdigest()


async def send_file(
    sftp: asyncssh.SFTPClient,
    local_path: Path,
    part: str,
    offset: int,
    size: int,
    progress: ProgressCallback | None,
    on_written: SegmentCallback | None = None,
) -> None:
    """Write the file from ``offset`` with WRITES_IN_FLIGHT chunks outstanding.

    ``on_written(offset, length, sha256)`` is called for each chunk once the host has
    acknowledged all of it, in file order.
    """
    mode = "r+b" if offset else "wb"
    async with sftp.open(part, mode) as remote:
        if offset:
            await remote.truncate(offset)
        with local_path.open("rb") as source:
            source.seek(offset)
            done = offset
            if progress:
                progress(done, size)
            in_flight: deque[tuple[asyncio.Future[int], int, int, str]] = deque()
            position = offset
            try:
                while True:
                    chunk, digest = await asyncio.to_thread(_read_chunk, source)
                    if chunk:
                        write = asyncio.ensure_future(remote.write(chunk, position))
                        in_flight.append((write, position, len(chunk), digest))
                        position += len(chunk)
                    if in_flight and (len(in_flight) >= WRITES_IN_FLIGHT or not chunk):
                        write, start, length, chunk_digest = in_flight.popleft()
                        await write
                        done = start + length
                        if progress:
                            progress(done, size)
                        if on_written:
                            on_written(start, length, chunk_digest)
                    if not chunk and not in_flight:
                        break
            finally:
                for write, *_ in in_flight:
                    write.cancel()


async def receive_file(
    sftp: asyncssh.SFTPClient,
    remote_path: str,
    part: Path,
    offset: int,
    size: int,
    progress: ProgressCallback | None,
) -> None:
    """Read the remote file from ``offset`` into ``part`` (appending), reporting progress."""
    async with sftp.open(remote_path, "rb") as remote:
        with part.open("ab" if offset else "wb") as target:
            done = offset
            if progress:
                progress(done, size)
            while done < size:
                chunk = await remote.read(min(CHUNK_BYTES, size - done), done)
                if not chunk:
                    break
                await asyncio.to_thread(target.write, chunk)
                done += len(chunk)
                if progress:
                    progress(done, size)
