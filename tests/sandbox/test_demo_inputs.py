"""The Inputs view of `cosmos demo` itself: the sample inputs are listed, the sample
sequence (rendered by the demo) is prepared with a progress bar, and frames are shown."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, ProgressBar
from textual_image.widget import HalfcellImage

from cosmos_tui.cli.demo import build_demo_app, prepare_workspace
from cosmos_tui.sandbox import SandboxOptions
from cosmos_tui.sandbox.thread import SandboxThread
from cosmos_tui.sandbox.workspace import DemoWorkspace
from cosmos_tui.ui.screens.inputs import InputsScreen, PrepareProgress
from cosmos_tui.ui.widgets.frames import FrameStrip

pytestmark = pytest.mark.timeout(120)
SEQUENCE = "rolling-ball"


async def wait_until(pilot: Any, check: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


def names(screen: InputsScreen) -> list[str]:
    return [folder.name for folder in screen.shown]


def row_of(screen: InputsScreen, name: str) -> list[str]:
    table = screen.query_one("#inputs-table", DataTable)
    return [str(cell) for cell in table.get_row_at(names(screen).index(name))]


async def test_the_demo_prepares_its_sample_sequence_in_the_inputs_view(tmp_path: Path):
    space = DemoWorkspace(tmp_path / "ws")
    progress: list[tuple[int, int]] = []
    busy: list[bool] = []
    with SandboxThread(SandboxOptions(gpus=1, time_scale=0.2), space.ssh_dir) as sandbox:
        config = prepare_workspace(space, sandbox)
        ui = dataclasses.replace(config.ui, image_protocol="halfcell")
        app = build_demo_app(dataclasses.replace(config, ui=ui), space, sandbox)

        def hook(message: Any) -> None:
            if isinstance(message, PrepareProgress):
                progress.append((message.done, message.total))
                bar = app.screen.query_one("#inputs-progress", ProgressBar)
                busy.append(bar.has_class("-busy"))

        async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
            sequence = space.inputs_dir / SEQUENCE
            await wait_until(pilot, lambda: any(sequence.glob("color.*.png")))
            await wait_until(pilot, lambda: app.main_screen.prompts.table.row_count == 3)
            await pilot.press("i")
            await pilot.pause(0.2)
            screen = app.screen
            assert isinstance(screen, InputsScreen)
            await wait_until(pilot, lambda: SEQUENCE in names(screen))
            assert {"forest-road", "rainy-street", "warehouse-robot"} <= set(names(screen))
            assert row_of(screen, SEQUENCE)[1] == "sequence"
            table = screen.query_one("#inputs-table", DataTable)
            table.focus()
            table.move_cursor(row=names(screen).index(SEQUENCE))
            await pilot.pause(0.2)
            strip = screen.query_one(FrameStrip)
            await wait_until(pilot, lambda: len(strip.roles) == 5)
            assert isinstance(strip.query_one("#image-depth"), HalfcellImage)
            await pilot.press("p")
            await wait_until(pilot, lambda: (sequence / "vis.mp4").is_file(), 60)
            await wait_until(pilot, lambda: row_of(screen, SEQUENCE)[1] == "both")
    assert busy and busy[0]  # the bar showed while encoding
    assert progress and progress[-1][0] == progress[-1][1] > 0
    assert (sequence / "metadata.json").is_file()
