"""Untrusted text in the TUI: shown as typed, never parsed as markup, controls escaped."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable

from cosmos_tui.domain import LogBatch, RunState
from cosmos_tui.ui.screens.detail import RunDetailScreen
from tests.conftest import write_video
from tests.ui.conftest import Harness, plain, ready, settle
from tests.ui.fakes import make_run

pytestmark = pytest.mark.timeout(60)

TITLE_SEQUENCE = "\x1b]0;pwned\x07"
RTL = "\u202e"
HOSTILE_TEXT = f"[/]{TITLE_SEQUENCE}{RTL}[bold]loud [link=http://x] gpj.exe"
SHOWN_TEXT = "[/]\\e]0;pwned\\x07\\u202e[bold]loud"
HOSTILE_NAME = "[bold"


def cell_text(table: DataTable, row_key: str) -> str:
    return " ".join(str(cell) for cell in table.get_row(row_key))


def visible(text: str) -> bool:
    """Whether ``text`` holds no raw control or direction-override character."""
    return "\x1b" not in text and "\x07" not in text and RTL not in text


async def test_hostile_text_shows_escaped_in_tables_detail_and_notifications(
    harness, tmp_path: Path
) -> None:
    h: Harness = harness()
    async with h.app.run_test(size=(140, 40), notifications=True) as pilot:
        await ready(h, pilot)
        folder = tmp_path / "videos" / "x"
        write_video(folder / "color.mp4")
        prompt = await h.services.bench.create_prompt(HOSTILE_TEXT, folder, name=HOSTILE_NAME)
        run = await make_run(
            h.services, h.clock, prompt.id, RunState.FAILED, gpus=(0,),
            failure_kind="gpu_oom", failure_message=f"[/] boom {TITLE_SEQUENCE}", exit_code=1,
        )  # fmt: skip
        main = h.app.main_screen
        main.prompts.reload()
        main.runs.reload()
        await settle(pilot)
        shown = cell_text(main.prompts.table, prompt.id)
        assert SHOWN_TEXT in shown and " [bold " in shown and visible(shown)
        assert "[/]\\e]0;" in cell_text(main.runs.table, run.id)
        # Rendering the whole screen (every cell, title and subtitle) must not fail.
        await pilot.pause()
        h.app.notify(f"error: {HOSTILE_TEXT}", title="[b")
        await pilot.pause()
        note = list(h.app._notifications)[-1]
        assert note.message.startswith(f"error: {SHOWN_TEXT}") and visible(note.message)
        main.runs.table.focus()
        main.runs.table.move_cursor(row=main.runs.table.get_row_index(run.id))
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(h.app.screen, RunDetailScreen)
        body = plain(h.app.screen.query_one("#detail-body"))
        assert SHOWN_TEXT in body and "[/] boom \\e]0;pwned" in body and visible(body)
        await pilot.press("escape")
        await settle(pilot)
        assert h.app.is_running and h.app.return_code is None


@pytest.mark.parametrize("search", ["[/]", "[bold", "[link=x]", "[/x]", "[on red]x[/on red]"])
async def test_log_search_with_markup_and_no_match_keeps_the_app(harness, tmp_path, search):
    h: Harness = harness()
    async with h.app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(h, pilot)
        folder = tmp_path / "videos" / "y"
        write_video(folder / "color.mp4")
        prompt = await h.services.bench.create_prompt("a scene", folder)
        run = await make_run(h.services, h.clock, prompt.id, RunState.RUNNING, gpus=(0,))
        main = h.app.main_screen
        main.runs.reload()
        await settle(pilot)
        main.runs.table.focus()
        main.runs.table.move_cursor(row=main.runs.table.get_row_index(run.id))
        await settle(pilot)
        logs = main.logs
        h.services.log_stream(run.id).put(
            LogBatch(run.id, ("plain line", f"host says {TITLE_SEQUENCE}{RTL}"), 0)
        )
        await settle(pilot)
        logs.flush()
        await pilot.pause()
        assert all(visible(line) for line in logs.view.lines)
        assert "host says \\e]0;pwned\\x07\\u202e" in logs.view.lines
        logs.view.focus()
        await pilot.press("slash")
        await pilot.press(*search)
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("n")
        await settle(pilot)
        messages = [n.message for n in h.app._notifications]
        assert any(m == f"no match for '{search}'" for m in messages), messages
        assert h.app.is_running and h.app.return_code is None
        status = plain(logs.query_one("#log-status"))
        assert f"/{search}" in status


async def test_run_form_names_the_priority_range_and_records_nothing(harness, tmp_path):
    from textual.widgets import Input

    from cosmos_tui.ui.screens.run_form import RunForm

    h: Harness = harness()
    async with h.app.run_test(size=(120, 40)) as pilot:
        await ready(h, pilot)
        folder = tmp_path / "videos" / "z"
        write_video(folder / "color.mp4")
        prompt = await h.services.bench.create_prompt("[/] a scene", folder)
        main = h.app.main_screen
        main.prompts.reload()
        await settle(pilot)
        main.prompts.table.focus()
        main.prompts.table.move_cursor(row=main.prompts.table.get_row_index(prompt.id))
        await pilot.press("enter")
        await settle(pilot)
        form = h.app.screen
        assert isinstance(form, RunForm)
        for value in ("9223372036854775808", "-1000001"):
            form.query_one("#priority", Input).value = value
            await pilot.pause()
            assert "between -1000000 and 1000000" in plain(form.query_one("#form-error"))
            await pilot.press("ctrl+s")
            await settle(pilot)
            assert isinstance(h.app.screen, RunForm)
        page = await h.services.bench.list_runs(None, 0, 10)
        assert page.total == 0
