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

from cosmos_tui.private_files import open_private

ProgressCallback = Callable[[int, int], None]
"""Called with (bytes done, bytes in total) as a transfer moves."""

CHUNK_BYTES = 8 * 1024 * 1024
WRITES_IN_FLIGHT = 2
READS_IN_FLIGHT = 2


async def stat_or_none(sftp: asyncssh.SFTPClient, path: str) -> asyncssh.SFTPAttrs | None:
    """Return the attributes of a remote path, None when it does not exist."""
    try:
        return await sftp.stat(path)
    except asyncssh.SFTPNoSuchFile:
        return None


def _read_chunk(source: BinaryIO, hasher: hashlib._Hash | None) -> bytes:
    chunk = source.read(CHUNK_BYTES)
    if hasher is not None:
        hasher.update(chunk)
    return chunk


async def send_file(
    sftp: asyncssh.SFTPClient,
    local_path: Path,
    part: str,
    offset: int,
    size: int,
    progress: ProgressCallback | None,
    hasher: hashlib._Hash | None = None,
    on_written: Callable[[int], None] | None = None,
) -> None:
    """Write the file from ``offset`` into ``part`` with WRITES_IN_FLIGHT chunks outstanding.

    ``hasher`` (if given) is fed every byte read, in order, in the reading thread: one
    read of the file both sends and hashes it. ``on_written(done)`` is told each time the
    host has acknowledged every byte before ``done``.
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
            in_flight: deque[tuple[asyncio.Future[int], int]] = deque()
            position = offset
            try:
                while True:
                    chunk = await asyncio.to_thread(_read_chunk, source, hasher)
                    if chunk:
                        write = asyncio.ensure_future(remote.write(chunk, position))
                        position += len(chunk)
                        in_flight.append((write, position))
                    if in_flight and (len(in_flight) >= WRITES_IN_FLIGHT or not chunk):
                        write, done = in_flight.popleft()
                        await write
                        if progress:
                            progress(done, size)
                        if on_written:
                            on_written(done)
                    if not chunk and not in_flight:
                        break
            finally:
                for write, _ in in_flight:
                    write.cancel()


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
        with open_private(part, "ab" if offset else "wb") as target:
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
