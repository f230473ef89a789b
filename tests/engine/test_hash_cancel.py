"""A cancelled hash stops its thread within a chunk, not at the end of the file."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import pytest

from cosmos_tui.engine.inputs import HashCancelled, in_thread, sha256_of


async def test_cancelling_the_task_stops_the_hashing_thread(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as handle:
        handle.truncate(8 * 1024**3)  # sparse 8 GB
    task = asyncio.create_task(in_thread(lambda cancelled: sha256_of(big, cancelled)))
    await asyncio.sleep(0.3)
    assert not task.done()
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # asyncio.run waits for this before it returns: it must not wait for the whole file.
    await asyncio.get_running_loop().shutdown_default_executor()
    assert time.monotonic() - started < 1.0


def test_sha256_of_matches_hashlib_and_stops_when_told(tmp_path: Path) -> None:
    import threading

    data = bytes(range(256)) * 20_000
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert sha256_of(path) == (hashlib.sha256(data).hexdigest(), len(data))
    assert sha256_of(path, head=data[:12]) == (hashlib.sha256(data).hexdigest(), len(data))
    stop = threading.Event()
    stop.set()
    with pytest.raises(HashCancelled):
        sha256_of(path, stop)
