"""Closing the services ends even when one step never does, saying which and why.

Quitting the TUI closes the services; a step that waits for good (seen twice in full
suites: a teardown that never ended) would freeze the quit. Each step is bounded, the
steps after it still run (the hosts' connections close, the database closes), and the
warning lists what was still running, to find the cause.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from cosmos_tui.config import Config, PathsConfig
from cosmos_tui.engine.runner import RunEngine
from cosmos_tui.remote.pool import HostPool
from cosmos_tui.services import closing
from cosmos_tui.services.workbench import Workbench


async def test_a_close_step_that_never_ends_is_cut_and_the_rest_still_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def stuck(self: RunEngine) -> None:
        await asyncio.Event().wait()  # a close that waits for something that never comes

    closed: list[str] = []
    original = HostPool.aclose

    async def hosts_closed(self: HostPool) -> None:
        closed.append("hosts")
        await original(self)

    monkeypatch.setattr(RunEngine, "close", stuck)
    monkeypatch.setattr(HostPool, "aclose", hosts_closed)
    monkeypatch.setattr(closing, "CLOSE_STEP_S", 0.5)
    config = Config(paths=PathsConfig(data_dir=str(tmp_path)))
    caplog.set_level(logging.WARNING, logger="cosmos_tui.services.closing")
    loop = asyncio.get_running_loop()
    async with Workbench.open(config) as bench:
        assert bench.runs.engine is not None  # made on first use, as driving a run does
        started = loop.time()
    assert loop.time() - started < 5
    assert closed == ["hosts"]  # the next step ran
    (warning,) = [r for r in caplog.records if "closing" in r.getMessage()]
    text = warning.getMessage()
    assert "the runs driven here" in text
    assert "<locals>.stuck at " in text and "asyncio/locks.py" in text  # down its awaits


async def test_a_cancelled_close_cancels_its_step() -> None:
    """Ctrl+C during a close stops the step too, instead of leaving it running."""
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def step() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    closing_task = asyncio.create_task(closing.bounded_close(step(), "a step"))
    await asyncio.wait_for(started.wait(), 5)
    closing_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing_task
    await asyncio.wait_for(cancelled.wait(), 5)


async def test_what_a_close_step_raises_is_raised() -> None:
    async def step() -> None:
        raise OSError("the socket file is gone")

    with pytest.raises(OSError, match="socket file"):
        await closing.bounded_close(step(), "a step")
