"""A newcomer's first minutes: focus where the first key works, empty panes that say what to
press, and counts that follow runs live."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cosmos_tui.domain import RunState
from cosmos_tui.ui.screens.prompt_form import PromptForm
from cosmos_tui.ui.screens.run_form import RunForm
from tests.ui.conftest import Harness, plain, ready, settle
from tests.ui.fakes import make_many, make_run, populate
from tests.ui.test_launch import until

pytestmark = pytest.mark.timeout(60)


def runs_cell(h: Harness, prompt_id: str) -> str:
    table = h.app.main_screen.prompts.table
    return str(table.get_cell(prompt_id, "runs")).strip()


def last_cell(h: Harness, prompt_id: str) -> str:
    table = h.app.main_screen.prompts.table
    return str(table.get_cell(prompt_id, "last")).strip()


async def test_with_no_runs_the_prompts_pane_has_focus_and_enter_opens_the_run_form(
    harness: Callable[..., Harness], tmp_path: Path
):
    h = harness()
    async with h.app.run_test(size=(120, 40)) as pilot:
        await ready(h, pilot)
        main = h.app.main_screen
        assert main.focused is main.prompts.table
        prompt_ids = await populate(h.services, tmp_path / "videos", prompts=2)
        main.prompts.reload()
        await settle(pilot)
        assert main.focused is main.prompts.table
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(h.app.screen, RunForm)
        assert h.app.screen.prompt.id in prompt_ids


async def test_with_runs_the_runs_pane_keeps_the_focus(
    harness: Callable[..., Harness], tmp_path: Path
):
    h = harness()
    await make_many(h.config.db_path, prompts=3, runs=4, first_id=1000)
    async with h.app.run_test(size=(120, 40)) as pilot:
        await ready(h, pilot)
        main = h.app.main_screen
        assert len(main.runs.runs) == 4
        assert main.focused is main.runs.table


async def test_empty_panes_say_which_key_fills_them(
    harness: Callable[..., Harness], tmp_path: Path
):
    h = harness()
    async with h.app.run_test(size=(120, 40)) as pilot:
        await ready(h, pilot)
        main = h.app.main_screen
        prompts_hint = main.prompts.query_one(".empty-hint")
        runs_hint = main.runs.query_one(".empty-hint")
        assert prompts_hint.display and runs_hint.display
        assert "press n" in plain(prompts_hint)
        assert "Enter on a prompt" in plain(runs_hint)
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(h.app.screen, PromptForm)
        await pilot.press("escape")
        await settle(pilot)
        prompt_ids = await populate(h.services, tmp_path / "videos", prompts=1)
        main.prompts.reload()
        await settle(pilot)
        assert not prompts_hint.display
        assert runs_hint.display
        await make_run(h.services, h.clock, prompt_ids[0], RunState.QUEUED, announce=True)
        await pilot.pause(0.3)  # a run new to the table reloads it after 0.2 s
        await settle(pilot)
        assert len(main.runs.runs) == 1
        assert not runs_hint.display


async def test_a_filter_that_matches_nothing_says_how_to_clear_it(
    harness: Callable[..., Harness], tmp_path: Path
):
    h = harness()
    async with h.app.run_test(size=(120, 40)) as pilot:
        await ready(h, pilot)
        await populate(h.services, tmp_path / "videos", prompts=2)
        main = h.app.main_screen
        main.prompts.reload()
        await settle(pilot)
        main.prompts.filter_text = "no such prompt anywhere"
        main.prompts.reload()
        await settle(pilot)
        hint = main.prompts.query_one(".empty-hint")
        assert hint.display
        assert "Escape" in plain(hint)


async def test_no_hosts_says_how_to_add_one(harness: Callable[..., Harness]):
    h = harness(hosts=())
    async with h.app.run_test(size=(120, 40)) as pilot:
        await ready(h, pilot)
        placeholder = h.app.main_screen.gpus.query_one("#gpu-placeholder")
        assert "cosmos host add" in plain(placeholder)
        assert "press H to add one" in plain(placeholder)
        await pilot.press("H")  # and H does
        await settle(pilot)
        assert type(h.app.screen).__name__ == "HostsScreen"


async def test_the_runs_count_of_a_prompt_follows_new_runs_live(
    harness: Callable[..., Harness], tmp_path: Path
):
    h = harness()
    async with h.app.run_test(size=(120, 40)) as pilot:
        await ready(h, pilot)
        (prompt_id,) = await populate(h.services, tmp_path / "videos", prompts=1)
        main = h.app.main_screen
        main.prompts.reload()
        await settle(pilot)
        assert runs_cell(h, prompt_id) == "0"
        # (each change reaches the app through its event worker: under load, later than
        # a settle, so each is awaited with a deadline)
        run = await make_run(h.services, h.clock, prompt_id, RunState.QUEUED, announce=True)
        await until(pilot, lambda: runs_cell(h, prompt_id) == "1")
        await make_run(h.services, h.clock, prompt_id, RunState.QUEUED, announce=True)
        await until(pilot, lambda: runs_cell(h, prompt_id) == "2")
        await h.services.push_run(run.id, RunState.UPLOADING, host="gpu-a", gpus=(0,))
        await settle(pilot)
        assert runs_cell(h, prompt_id) == "2"
        # the last run's state follows it live too, not only once it ends
        last = await make_run(h.services, h.clock, prompt_id, RunState.QUEUED, announce=True)
        await until(pilot, lambda: runs_cell(h, prompt_id) == "3")
        assert "queued" in last_cell(h, prompt_id)
        await h.services.push_run(last.id, RunState.UPLOADING, host="gpu-a", gpus=(1,))
        await until(pilot, lambda: "uploading" in last_cell(h, prompt_id))
