"""Snapshots of the Inputs screen (frames drawn as half blocks, as in any terminal)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import Harness, settle
from tests.ui.test_inputs_screen import REPO_INPUTS, make_inputs, open_inputs, select


@pytest.mark.timeout(60)
@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("folder", ["forest-road", "rolling-ball"])
def test_inputs_snapshot(snap_compare: Any, tmp_path: Path, folder: str, size) -> None:
    h = Harness(tmp_path, image_protocol="halfcell")
    make_inputs(h)
    shutil.copytree(REPO_INPUTS / "rolling-ball", h.config.inputs_dir / "rolling-ball")

    async def run_before(pilot: Any) -> None:
        screen = await open_inputs(h, pilot)
        select(screen, folder)
        await settle(pilot)
        await pilot.press("right_square_bracket")
        await settle(pilot)
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()

    assert snap_compare(h.app, terminal_size=size, run_before=run_before)
