"""Inputs -> prompts -> runs and back: one key each way, the cursor on the thing meant."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cosmos_tui.domain import RunState
from cosmos_tui.ui.screens.inputs import InputsScreen
from tests.ui.conftest import Harness, populated, settle
from tests.ui.fakes import make_run

pytestmark = pytest.mark.timeout(60)
REPO_INPUTS = Path(__file__).parents[2] / "inputs"


def highlighted(screen: InputsScreen) -> str | None:
    folder = screen.selected
    return folder.name if folder is not None else None


async def test_inputs_prompts_runs_and_back(tmp_path) -> None:
    h = Harness(tmp_path, image_protocol="halfcell")
    async with h.app.run_test(size=(120, 40)) as pilot:
        await populated(h, pilot, tmp_path)  # six other prompts, newer ones listed first
        root = h.config.inputs_dir
        shutil.copytree(REPO_INPUTS / "forest-road", root / "forest-road")
        shutil.copytree(REPO_INPUTS / "forest-road", root / "unused")
        prompt = await h.services.bench.create_prompt("a road", root / "forest-road")
        await h.services.bench.create_prompt("older", tmp_path / "videos" / "set0")
        run = await make_run(h.services, h.clock, prompt.id, RunState.COMPLETED)
        main = h.app.main_screen
        main.prompts.reload()
        main.runs.reload()
        await settle(pilot)

        await pilot.press("i")
        await settle(pilot)
        inputs = h.app.screen
        assert isinstance(inputs, InputsScreen)
        assert highlighted(inputs) == "forest-road"
        await pilot.press("down")  # unused: no prompt made from it
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        assert h.app.screen is inputs
        assert any("no prompt uses this folder" in n.message for n in h.app._notifications)
        await pilot.press("up", "u")  # forest-road -> its prompt
        await settle(pilot)
        assert h.app.screen is main
        assert main.prompts.table.has_focus and main.prompts.selected.id == prompt.id

        await pilot.press("o")  # prompt -> its runs (the filtered Runs pane)
        await settle(pilot)
        assert main.runs.table.has_focus and list(main.runs.runs) == [run.id]
        main.prompts.table.move_cursor(row=0)  # elsewhere, then back from the run
        await pilot.press("p")
        await settle(pilot)
        assert main.prompts.table.has_focus and main.prompts.selected.id == prompt.id

        await pilot.press("v")  # prompt -> its input folder
        await settle(pilot)
        assert h.app.screen is inputs and highlighted(inputs) == "forest-road"


async def test_a_prompt_from_a_folder_elsewhere_opens_that_folder(tmp_path) -> None:
    h = Harness(tmp_path, image_protocol="halfcell")
    async with h.app.run_test(size=(120, 40)) as pilot:
        await populated(h, pilot, tmp_path)
        main = h.app.main_screen
        set3 = next(p for p in main.prompts.prompts.values() if p.video_dir.name == "set3")
        main.prompts.show_prompt(set3.id)
        await pilot.press("v")
        await settle(pilot)
        inputs = h.app.screen
        assert isinstance(inputs, InputsScreen)
        assert highlighted(inputs) == "set3"
        assert inputs.selected.used_by == (set3.id,)
