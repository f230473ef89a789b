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
from cosmos_tui.remote.pool import HostPool
from cosmos_tui.services import workbench
from cosmos_tui.services.runs import RunService
from cosmos_tui.services.workbench import Workbench


async def test_a_close_step_that_never_ends_is_cut_and_the_rest_still_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def stuck(self: RunService, hand_over: bool = False) -> None:
        await asyncio.Event().wait()  # a close that waits for something that never comes

    closed: list[str] = []
    original = HostPool.aclose

    async def hosts_closed(self: HostPool) -> None:
        closed.append("hosts")
        await original(self)

    monkeypatch.setattr(RunService, "close", stuck)
    monkeypatch.setattr(HostPool, "aclose", hosts_closed)
    monkeypatch.setattr(workbench, "CLOSE_STEP_S", 0.5)
    config = Config(paths=PathsConfig(data_dir=str(tmp_path)))
    caplog.set_level(logging.WARNING, logger="cosmos_tui.services.workbench")
    loop = asyncio.get_running_loop()
    async with Workbench.open(config):
        started = loop.time()
    assert loop.time() - started < 5
    assert closed == ["hosts"]  # the next step ran
    (warning,) = [r for r in caplog.records if "closing" in r.getMessage()]
    assert "the runs" in warning.getMessage() and "stuck" in warning.getMessage()
