"""Snapshot of the Stats screen's charts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cosmos_tui.domain import RunState
from tests.ui.conftest import Harness, ready, settle
from tests.ui.fakes import make_run, populate

pytestmark = pytest.mark.timeout(60)


def test_stats_snapshot(snap_compare: Any, tmp_path: Path) -> None:
    h = Harness(tmp_path)

    async def run_before(pilot: Any) -> None:
        await ready(h, pilot)
        prompt_id = (await populate(h.services, tmp_path / "videos", prompts=1))[0]
        for day in range(6):  # only finished runs: nothing changes while the shot is taken
            h.clock.advance(86400)
            for _ in range(day % 3):
                await make_run(h.services, h.clock, prompt_id, RunState.COMPLETED)
        await pilot.press("t")
        await settle(pilot)
        await pilot.pause()

    assert snap_compare(h.app, terminal_size=(100, 30), run_before=run_before)
