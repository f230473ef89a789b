"""Pilot flows over the real Workbench (temp SQLite) and the fake live streams."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, TextArea

from cosmos_tui.domain import HostState, HostStatus, LogBatch, Run, RunState
from cosmos_tui.ui.screens.confirm import ConfirmScreen
from cosmos_tui.ui.screens.detail import RunDetailScreen
from cosmos_tui.ui.screens.help import HelpScreen
from cosmos_tui.ui.screens.prompt_form import PromptForm
from cosmos_tui.ui.screens.run_form import RunForm
from tests.conftest import write_video
from tests.ui.conftest import Harness, plain, populated, ready, settle
from tests.ui.fakes import FAIL_LINES, LOG_LINES, sample

pytestmark = pytest.mark.timeout(60)


def app_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("app")
    return dict(marker.kwargs) if marker else {}


@pytest.fixture
def h(harness: Callable[..., Harness], request: pytest.FixtureRequest) -> Harness:
    """The app over test services, its config set by ``@pytest.mark.app(**ui)``."""
    options = app_options(request)
    options.pop("notifications", None)
    return harness(**options)


@pytest.fixture
async def pilot(h: Harness, request: pytest.FixtureRequest) -> AsyncIterator[Pilot]:
    """The app running at 120x40 with its services open and its panes loaded."""
    notifications = app_options(request).get("notifications", False)
    async with h.app.run_test(size=(120, 40), notifications=notifications) as pilot:
        await ready(h, pilot)
        yield pilot


@pytest.fixture
async def runs(h: Harness, pilot: Pilot, tmp_path: Path) -> dict[str, Run]:
    """The scenario's runs (completed, failed, running, queued), shown in the panes."""
    return await populated(h, pilot, tmp_path)


def focus_row(table: DataTable, key: str) -> DataTable:
    """Focus ``table`` with its cursor on the row ``key``."""
    table.focus()
    table.move_cursor(row=table.get_row_index(key))
    return table


async def saved_run(h: Harness, pilot: Pilot[None]) -> Run:
    """Save the open run form; return the run it started (the form closed)."""
    await pilot.press("ctrl+s")
    await settle(pilot)
    assert not isinstance(h.app.screen, RunForm)
    started = [args for name, args in h.services.calls if name == "start_run"]
    return await h.services.bench.get_run(started[-1][0])


async def open_run_form(h, pilot, prompt_id: str, profile: str) -> RunForm:
    """Open the run form on a prompt (Enter in Prompts) and pick the model."""
    from textual.widgets import Select

    focus_row(h.app.main_screen.prompts.table, prompt_id)
    await pilot.press("enter")
    await settle(pilot)
    form = h.app.screen
    assert isinstance(form, RunForm)
    form.query_one("#profile", Select).value = profile
    await settle(pilot)
    return form


async def test_first_frame_before_services_answer(h):
    import asyncio
    from contextlib import asynccontextmanager

    gate = asyncio.Event()
    real_factory = h.app.services_factory

    @asynccontextmanager
    async def slow_factory():
        await gate.wait()
        async with real_factory() as services:
            yield services

    h.app.services_factory = slow_factory
    async with h.app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        main = h.app.main_screen
        assert main.prompts.border_subtitle == "connecting..."
        assert main.runs.border_subtitle == "connecting..."
        assert "connecting" in str(main.gpus.query_one("#gpu-placeholder").render())
        gate.set()
        await ready(h, pilot)
        assert main.prompts.border_subtitle.startswith("0/0")
        assert main.gpus.card("gpu-a") is not None


async def test_create_prompt_through_the_form(h, pilot, tmp_path):
    folder = tmp_path / "clip"
    write_video(folder / "color.mp4")
    write_video(folder / "depth.mp4")
    h.app.main_screen.prompts.table.focus()
    await pilot.press("n")
    await settle(pilot)
    form = h.app.screen
    assert isinstance(form, PromptForm)
    await pilot.press("ctrl+s")
    await settle(pilot)
    assert "color.mp4" in plain(form.query_one("#form-error"))
    form.query_one("#text", TextArea).text = "A crane lifts a container at dusk"
    form.query_one("#video_dir", Input).value = str(folder)
    await settle(pilot)
    found = plain(form.query_one("#videos"))
    assert "[x] color.mp4" in found and "[x] depth" in found and "[ ] segmentation" in found
    await pilot.press("ctrl+s")
    await settle(pilot)
    assert not isinstance(h.app.screen, PromptForm)
    page = await h.services.bench.list_prompts()
    assert page.total == 1
    assert page.items[0].text == "A crane lifts a container at dusk"
    assert {i.role for i in page.items[0].inputs} == {"color", "depth"}
    assert page.items[0].id in h.app.main_screen.prompts.prompts


@pytest.mark.app(notifications=True)
async def test_a_control_video_that_does_not_decode_is_said_in_the_form(h, pilot, tmp_path):
    # the error names the file (its field is the path): shown on the error line, and no
    # "Bug" notification from marking a field
    folder = tmp_path / "clip"
    write_video(folder / "color.mp4")
    # an MP4 header, then nothing FFmpeg can read
    mp4_header = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    (folder / "depth.mp4").write_bytes(mp4_header + b"not a video at all" * 100)
    h.app.main_screen.prompts.table.focus()
    await pilot.press("n")
    await settle(pilot)
    form = h.app.screen
    form.query_one("#text", TextArea).text = "A crane lifts a container at dusk"
    form.query_one("#video_dir", Input).value = str(folder)
    await settle(pilot)
    await pilot.press("ctrl+s")
    await settle(pilot)
    assert isinstance(h.app.screen, PromptForm)
    assert "depth.mp4" in plain(form.query_one("#form-error"))
    titles = [n.title for n in h.app._notifications]
    assert not any(t.startswith("Bug") for t in titles), titles
    assert (await h.services.bench.list_prompts()).total == 0


async def test_create_and_start_run_with_inline_validation(h, pilot, runs):
    prompts = h.app.main_screen.prompts
    prompt_id = runs["queued"].prompt_id
    focus_row(prompts.table, prompt_id)
    await pilot.press("enter")
    await settle(pilot)
    form = h.app.screen
    assert isinstance(form, RunForm)
    form.query_one("#vis_weight", Input).value = "1.5"
    await pilot.pause()
    assert "between 0 and 1" in plain(form.query_one("#form-error"))
    assert form.query_one("#vis_weight", Input).has_class("-invalid")
    await pilot.press("ctrl+s")
    await settle(pilot)
    assert isinstance(h.app.screen, RunForm)
    form.query_one("#vis_weight", Input).value = "0.5"
    form.query_one("#num_steps", Input).value = "20"
    form.query_one("#num_gpus", Input).value = "2"
    await pilot.pause()
    assert plain(form.query_one("#form-error")).strip() == ""
    await pilot.press("ctrl+s")
    await settle(pilot)
    assert not isinstance(h.app.screen, RunForm)
    started = [args for name, args in h.services.calls if name == "start_run"]
    assert len(started) == 1
    run = await h.services.bench.get_run(started[0][0])
    assert run.prompt_id == prompt_id
    assert (run.params.vis_weight, run.params.num_steps, run.params.num_gpus) == (0.5, 20, 2)
    assert run.id in h.app.main_screen.runs.runs


@pytest.mark.app(clusters=("lab",))
async def test_the_run_form_sends_a_run_to_a_host_or_a_cluster(h, pilot, runs):
    from textual.widgets import Select

    form = await open_run_form(h, pilot, runs["queued"].prompt_id, "transfer1")
    choice = form.query_one("#host", Select)
    labels = [str(label) for label, _ in choice._options]
    assert labels == ["(any host)", "gpu-a", "lab (Ray cluster)"]
    choice.value = "lab"
    await pilot.pause()
    await pilot.press("ctrl+s")
    await settle(pilot)
    assert not isinstance(h.app.screen, RunForm)
    started = [args for name, args in h.services.calls if name == "start_run"]
    assert len(started) == 1 and started[0][1] == "lab"


async def test_the_run_form_picks_a_model_shows_its_fields_and_remembers_it(h, pilot, runs):
    from textual.widgets import Select

    prompt_id = runs["queued"].prompt_id
    focus_row(h.app.main_screen.prompts.table, prompt_id)
    await pilot.press("enter")
    await settle(pilot)
    form = h.app.screen
    assert isinstance(form, RunForm)

    def shown() -> set[str]:
        return {w.id.removeprefix("param-") for w in form.query(".param, #param-negative_prompt")
                if w.id and w.display}  # fmt: skip

    assert form.profile == "transfer1"
    assert {"vis_weight", "sigma_max", "fps", "blur_strength", "guidance"} <= shown()
    form.query_one("#vis_weight", Input).focus()
    form.query_one("#profile", Select).value = "cosmos3"
    await settle(pilot)
    assert form.focused is form.query_one("#profile", Select)  # not the hidden weight
    c3_hints = {"c3_hint_edge", "c3_hint_blur", "c3_hint_depth", "c3_hint_seg", "c3_hint_wsm",
                "c3_edge_preset", "c3_blur_preset"}  # fmt: skip
    # The prompt has a video: the mode is video2video, whose transfer hints are shown.
    assert shown() == {
        "seed", "num_gpus", "priority", "negative_prompt", "c3_mode", "c3_size",
        "c3_resolution", "c3_aspect", "c3_frames", "c3_parallelism", "c3_guardrails",
        "c3_steps", "c3_guidance", "c3_fps", "c3_pixels", "c3_checkpoint", *c3_hints,
    }  # fmt: skip
    form.query_one("#c3_mode", Select).value = "image2video"
    await settle(pilot)
    assert not c3_hints & shown()  # no hints outside video2video
    form.query_one("#c3_mode", Select).value = "video2video"
    await settle(pilot)
    assert c3_hints <= shown()
    form.query_one("#c3_blur_preset", Select).value = "high"  # a preset of an unused hint
    await pilot.pause()
    assert "blur strength applies to the blur hint" in plain(form.query_one("#form-error"))
    assert form.query_one("#c3_blur_preset", Select).has_class("-invalid")
    form.query_one("#c3_blur_preset", Select).value = "(model's default)"
    form.query_one("#c3_hint_edge", Input).value = "0.6"
    form.query_one("#c3_edge_preset", Select).value = "very_high"
    form.query_one("#c3_hint_depth", Input).value = "-1"
    await pilot.pause()
    assert "weight" in plain(form.query_one("#form-error"))
    assert form.query_one("#c3_hint_depth", Input).has_class("-invalid")
    form.query_one("#c3_hint_depth", Input).value = "x"
    await pilot.pause()
    assert "depth weight must be a number, not 'x'" in plain(form.query_one("#form-error"))
    form.query_one("#c3_hint_depth", Input).value = "0.4"
    form.query_one("#c3_guardrails", Select).value = "offload"
    form.query_one("#c3_parallelism", Select).value = "throughput"
    form.query_one("#vis_weight", Input).value = "7"  # hidden: neither checked nor sent
    form.query_one("#seed", Input).value = "42"
    form.query_one("#c3_size", Select).value = "Cosmos3-Edge"
    form.query_one("#c3_resolution", Select).value = "256"
    form.query_one("#c3_frames", Input).value = "900"  # past the tier's limit
    await pilot.pause()
    error = plain(form.query_one("#form-error"))
    assert "frames at the 256 tier must be a whole number from 24 to 400, not 900" in error
    assert form.query_one("#c3_frames", Input).has_class("-invalid")
    form.query_one("#c3_frames", Input).value = "48"
    await pilot.pause()
    assert plain(form.query_one("#form-error")).strip() == ""
    run = await saved_run(h, pilot)
    assert run.profile == "cosmos3" and run.params.seed == 42
    assert run.params.vis_weight != 7
    options = run.params.options
    assert (options["checkpoint"], options["resolution"], options["num_frames"]) == (
        "Cosmos3-Edge", "256", 48,
    )  # fmt: skip
    assert options["aspect_ratio"] is None  # left to the model (its default is per mode)
    assert options["hints"] == {"edge": {"weight": 0.6, "preset": "very_high"},
                                "depth": {"weight": 0.4}}  # fmt: skip
    assert (options["guardrails"], options["parallelism"]) == ("offload", "throughput")
    # the prompt's next run starts on the model of its newest run
    focus_row(h.app.main_screen.prompts.table, prompt_id)
    await pilot.press("enter")
    await settle(pilot)
    form = h.app.screen
    assert isinstance(form, RunForm) and form.profile == "cosmos3"
    form.query_one("#profile", Select).value = "transfer2.5"
    await settle(pilot)
    own = {f"{h}_{k}" for h in ("edge", "vis", "depth", "seg")
           for k in ("control", "mask", "mask_prompt")} | {"seg_control_prompt"}  # fmt: skip
    assert shown() == {
        "vis_weight", "edge_weight", "depth_weight", "seg_weight", "num_steps", "seed",
        "num_gpus", "priority", "negative_prompt", "t25_resolution", "t25_guidance", *own,
        "t25_edge_preset", "t25_blur_preset", "t25_sigma_max", "t25_chunk", "t25_distilled",
        "t25_guardrails", "t25_style_image", "t25_style_frame",
    }  # fmt: skip
    form.query_one("#t25_guidance", Input).value = "3.5"
    await pilot.pause()
    assert "guidance must be a whole number, not '3.5'" in plain(form.query_one("#form-error"))
    assert form.query_one("#t25_guidance", Input).has_class("-invalid")
    form.query_one("#t25_guidance", Input).value = "9"
    await pilot.pause()
    assert "guidance" in plain(form.query_one("#form-error"))
    assert form.query_one("#t25_guidance", Input).has_class("-invalid")
    form.query_one("#t25_guidance", Input).value = "5"
    await pilot.pause()
    assert plain(form.query_one("#form-error")).strip() == ""
    assert form.params is not None and form.params.options["guidance"] == 5
    await pilot.press("escape")


async def test_cancel_asks_first(h, pilot, runs):
    focus_row(h.app.main_screen.runs.table, runs["running"].id)
    await pilot.press("c")
    await settle(pilot)
    assert isinstance(h.app.screen, ConfirmScreen)
    await pilot.press("n")
    await settle(pilot)
    assert not [c for c in h.services.calls if c[0] == "cancel_run"]
    await pilot.press("c")
    await settle(pilot)
    await pilot.press("y")
    await settle(pilot)
    assert ("cancel_run", runs["running"].id) in h.services.calls
    assert h.app.main_screen.runs.runs[runs["running"].id].state == RunState.CANCELLED


async def test_rate_with_digit_keys_and_clear(h, pilot, runs):
    focus_row(h.app.main_screen.runs.table, runs["failed"].id)
    await pilot.press("5")
    await settle(pilot)
    assert (await h.services.bench.get_run(runs["failed"].id)).rating == 5
    assert h.app.main_screen.runs.runs[runs["failed"].id].rating == 5
    await pilot.press("0")
    await settle(pilot)
    assert (await h.services.bench.get_run(runs["failed"].id)).rating is None


@pytest.mark.usefixtures("runs")
async def test_filter_prompts_as_you_type_and_sort(h, pilot):
    prompts = h.app.main_screen.prompts
    prompts.table.focus()
    await pilot.press("slash")
    await pilot.press(*"forest")
    await settle(pilot)
    assert [p.text for p in prompts.prompts.values()] == [
        "Snowy forest road seen from a car dashboard at dawn"
    ]
    assert prompts.border_subtitle.startswith("/forest")
    await pilot.press("escape")
    await settle(pilot)
    assert len(prompts.prompts) == 6
    await pilot.press("s")
    await settle(pilot)
    assert prompts.sort == "name"
    named = [p.name for p in prompts.prompts.values() if p.name]
    assert named == sorted(named, reverse=True) or named == sorted(named)


async def test_filter_runs_by_state_and_prompt(h, pilot, runs):
    main = h.app.main_screen
    main.runs.table.focus()
    await pilot.press("f")
    await settle(pilot)
    dialog = h.app.screen
    from textual.widgets import SelectionList

    dialog.query_one("#states", SelectionList).select("failed")
    await pilot.press("ctrl+s")
    await settle(pilot)
    assert list(main.runs.runs) == [runs["failed"].id]
    assert "state=failed" in main.runs.border_subtitle
    await pilot.press("escape")
    await settle(pilot)
    assert len(main.runs.runs) == 4
    focus_row(main.prompts.table, runs["completed"].prompt_id)
    await pilot.press("o")
    await settle(pilot)
    assert list(main.runs.runs) == [runs["completed"].id]


@pytest.mark.app(notifications=True)
async def test_live_run_updates_and_notifications(h, pilot, runs):
    running = runs["running"].id
    await h.services.advance_run(running, "vae decode", 91.0, 20.0)
    await settle(pilot)
    row = h.app.main_screen.runs.runs[running]
    assert row.progress is not None and row.progress.percent == 91.0
    await h.services.push_run(running, RunState.DOWNLOADING)
    await h.services.push_run(running, RunState.COMPLETED, outputs=("output.mp4",))
    await settle(pilot)
    assert h.app.main_screen.runs.runs[running].state == RunState.COMPLETED
    titles = [n.title for n in h.app._notifications]
    assert "Run completed" in titles


@pytest.mark.app(hosts=("gpu-a", "gpu-b"), notifications=True)
async def test_host_down_changes_only_its_card(h, pilot):
    gpus = h.app.main_screen.gpus
    h.services.host_stream.put(HostStatus("gpu-a", HostState.CONNECTED, latency_ms=9))
    h.services.host_stream.put(HostStatus("gpu-b", HostState.CONNECTED, latency_ms=9))
    await settle(pilot)
    h.services.host_stream.put(HostStatus("gpu-b", HostState.DOWN, reason="no route to host"))
    await settle(pilot)
    assert gpus.card("gpu-a").status.state == HostState.CONNECTED
    assert gpus.card("gpu-b").status.state == HostState.DOWN
    assert "no route to host" in plain(gpus.card("gpu-b"))
    later = h.clock.now.replace(second=30)
    h.services.host_stream.put(
        HostStatus("gpu-b", HostState.RECONNECTING, reason="retrying", next_attempt_at=later)
    )
    await settle(pilot)
    assert "reconnecting in" in plain(gpus.card("gpu-b"))
    h.services.host_stream.put(HostStatus("gpu-b", HostState.CONNECTED, latency_ms=9))
    await settle(pilot)
    titles = [n.title for n in h.app._notifications]
    assert "Host down" in titles and "Host up" in titles


async def test_logs_follow_pause_resume_and_search(h, pilot, runs):
    running = runs["running"].id
    main = h.app.main_screen
    logs = main.logs
    assert logs.run is not None and logs.run.id == running
    stream = h.services.log_stream(running)
    lines = [f"{LOG_LINES[i % len(LOG_LINES)]} #{i}" for i in range(200)]
    stream.put(LogBatch(running, tuple(lines), 0))
    await settle(pilot)
    logs.flush()
    await pilot.pause()
    view = logs.view
    assert len(view.lines) == 200 and view.follow
    assert view.scroll_y == view.max_scroll_y
    view.focus()
    await pilot.press("pageup")
    await pilot.pause()
    assert not view.follow
    stream.put(LogBatch(running, ("more 1", "more 2", "more 3"), 200))
    await settle(pilot)
    logs.flush()
    await pilot.pause()
    status = plain(logs.query_one("#log-status"))
    assert "paused, 3 new lines" in status
    await pilot.press("f")
    await pilot.pause()
    assert view.follow and view.scroll_y == view.max_scroll_y
    await pilot.press("slash")
    await pilot.press(*"seed")
    await pilot.press("enter")
    await pilot.pause()
    assert len(view.matches) == len([line for line in lines if "seed" in line])
    first = view.current_match
    await pilot.press("n")
    assert view.current_match == first + 1
    assert not view.follow
    await pilot.press("N")
    assert view.current_match == first
    await pilot.press("l", "l", "l")
    await pilot.pause()
    assert view.min_rank == 3 and all(view.ranks[i] == 3 for i in view._visible)
    await pilot.press("l")
    await pilot.press("w")
    await pilot.pause()
    assert view.wrap


async def test_first_error_and_duplicate_batches(h, pilot, runs):
    running = runs["running"].id
    logs = h.app.main_screen.logs
    stream = h.services.log_stream(running)
    body = tuple(f"line {i}" for i in range(100)) + FAIL_LINES
    stream.put(LogBatch(running, body, 0))
    stream.put(LogBatch(running, body[50:], 50))
    await settle(pilot)
    logs.flush()
    assert len(logs.view.lines) == len(body)
    logs.view.focus()
    await pilot.press("e")
    await pilot.pause()
    assert not logs.view.follow
    assert logs.view.lines[logs.view._rows[int(logs.view.scroll_y)][0]].startswith("line")


@pytest.mark.app(log_buffer_lines=1000)
async def test_log_memory_is_bounded_and_switching_runs_is_instant(h, pilot, runs):
    running = runs["running"].id
    logs = h.app.main_screen.logs
    stream = h.services.log_stream(running)
    for start in range(0, 10_000, 200):
        stream.put(LogBatch(running, tuple(f"l{start + i}" for i in range(200)), start))
    await settle(pilot)
    logs.flush()
    assert len(logs.view.lines) <= 1250
    assert logs.view.lines[-1] == "l9999"
    assert "10000 lines" in str(logs.border_subtitle)
    focus_row(h.app.main_screen.runs.table, runs["failed"].id)
    await pilot.press("down", "up")
    await pilot.pause()
    assert logs.run.id in (runs["failed"].id, runs["completed"].id, runs["running"].id)
    assert logs.view.lines == [] or logs.run.id == running


@pytest.mark.app(keymap={"runs.cancel": "x"})
async def test_help_lists_bindings_by_pane_and_keymap_remaps(h, pilot, runs):
    await pilot.press("question_mark")
    await settle(pilot)
    assert isinstance(h.app.screen, HelpScreen)
    text = " ".join(str(s.render()) for s in h.app.screen.query(".help-title"))
    assert "Prompts pane" in text and "Runs pane" in text and "Logs pane" in text
    await pilot.press("escape")
    await settle(pilot)
    focus_row(h.app.main_screen.runs.table, runs["running"].id)
    await pilot.press("x")
    await settle(pilot)
    assert isinstance(h.app.screen, ConfirmScreen)


@pytest.mark.usefixtures("runs")
async def test_palette_finds_actions_and_prompts(h, pilot):
    await pilot.press("ctrl+p")
    await settle(pilot)
    await pilot.press(*"New prompt")
    await settle(pilot)
    await pilot.pause(0.3)
    await pilot.press("enter")
    await settle(pilot)
    assert isinstance(h.app.screen, PromptForm)
    await pilot.press("escape")
    await settle(pilot)
    await pilot.press("ctrl+p")
    await pilot.press(*"harbour")
    await pilot.pause(0.5)
    await settle(pilot)
    await pilot.press("enter")
    await settle(pilot)
    main = h.app.main_screen
    assert main.runs.where.prompt_id is not None


@pytest.mark.app(keymap={"runs.cancel": "x"})
async def test_palette_offers_every_binding_with_its_key_and_runs_it_on_its_pane(h, pilot, runs):
    from cosmos_tui.ui.commands import palette_commands

    main = h.app.main_screen
    commands = palette_commands(h.app, main, h.app.config.keymap)
    titles = {c.title: c for c in commands}
    # every pane's and the screen's bindings, named by their pane, keys as remapped
    assert titles["Runs: Cancel"].help == "key x"
    assert titles["Prompts: Enhance (Cosmos 3)"].help == "key E"
    assert titles["Logs: First error"].node is main.logs
    assert "Hosts" in titles and "Quit" in titles and "New prompt" in titles
    assert not any(t.startswith("Next pane") for t in titles)
    assert "Runs: Rate 1" in titles and "Runs: Rate" not in titles
    assert titles["Runs: Filter"].help == "key f" and titles["Prompts: Filter"].help == "key /"
    assert "Cancel stalled" not in titles  # disabled now: nothing is stalled
    # another screen in front: only the app's own commands
    await pilot.press("question_mark")
    await settle(pilot)
    in_front = {c.title for c in palette_commands(h.app, main, h.app.config.keymap)}
    assert "Quit" in in_front and not any(":" in t for t in in_front), in_front
    await pilot.press("escape")
    await settle(pilot)
    # a pane's command acts on that pane's selected row, wherever the focus is
    focus_row(main.runs.table, runs["running"].id)
    main.prompts.table.focus()
    await palette_choose(pilot, "Runs: Cancel")
    assert isinstance(h.app.screen, ConfirmScreen)
    assert runs["running"].id in h.app.screen.question


async def palette_choose(pilot: Pilot, text: str) -> None:
    """Open the palette, type ``text`` and choose the first hit."""
    await pilot.press("ctrl+p")
    await settle(pilot)
    await pilot.press(*text)
    await pilot.pause(0.3)
    await settle(pilot)
    await pilot.press("enter")
    await settle(pilot)


async def test_palette_opens_the_hosts_screen(h, pilot):
    await palette_choose(pilot, "Hosts")
    assert type(h.app.screen).__name__ == "HostsScreen"


async def test_zoom_and_cycle_panes(h, pilot):
    main = h.app.main_screen
    assert main.prompts.table.has_focus  # no runs yet: the focus starts on Prompts
    await pilot.press("z")
    assert main.maximized is main.prompts
    await pilot.press("z")
    assert main.maximized is None
    await pilot.press("tab")
    assert main.runs.table.has_focus
    await pilot.press("tab")
    assert main.gpus.query_one("#gpu-cards").has_focus
    await pilot.press("tab")
    assert main.logs.view.has_focus
    await pilot.press("tab")
    assert main.prompts.table.has_focus


async def test_detail_shows_failure_cause_with_log_lines(h, pilot, runs):
    failed = runs["failed"].id
    log = h.config.outputs_dir / failed / "run.log"
    log.parent.mkdir(parents=True)
    log.write_text("\n".join(("start", *LOG_LINES, *FAIL_LINES, "end")) + "\n")
    focus_row(h.app.main_screen.runs.table, failed)
    await pilot.press("enter")
    await settle(pilot)
    screen = h.app.screen
    assert isinstance(screen, RunDetailScreen)
    body = plain(screen.query_one("#detail-body"))
    assert "gpu_oom" in body and "CUDA out of memory" in body
    assert "Traceback" in body and "Timeline" in body and "Spec sent" in body
    assert "run.log" in body
    await pilot.press("escape")
    await settle(pilot)
    assert h.app.screen is h.app.main_screen


async def test_delete_run_after_preview(h, pilot, runs):
    focus_row(h.app.main_screen.runs.table, runs["failed"].id)
    await pilot.press("d")
    await settle(pilot)
    assert isinstance(h.app.screen, ConfirmScreen)
    assert f"This deletes run {runs['failed'].id}" in h.app.screen.question
    await pilot.press("y")
    await settle(pilot)
    assert runs["failed"].id not in h.app.main_screen.runs.runs
    page = await h.services.bench.list_runs()
    assert runs["failed"].id not in [r.id for r in page.items]


async def test_retry_upscale_open_and_copy(h, pilot, runs):
    main = h.app.main_screen
    table = focus_row(main.runs.table, runs["failed"].id)
    await pilot.press("R")
    await settle(pilot)
    assert ("retry_run", runs["failed"].id) in h.services.calls
    assert main.runs.runs[runs["failed"].id].state == RunState.QUEUED
    focus_row(table, runs["completed"].id)
    await pilot.press("u")
    await settle(pilot)
    assert ("upscale_run", runs["completed"].id) in h.services.calls
    await pilot.press("o")
    await settle(pilot)
    expected = str(h.config.outputs_dir / runs["completed"].id / "output.mp4")
    assert h.app.opened == [expected]
    await pilot.press("y")
    await pilot.pause()
    assert h.app.clipboard == expected


async def test_quit_leaves_runs_alone_and_closes_services(h, tmp_path):
    async with h.app.run_test(size=(120, 40)) as pilot:
        runs = await populated(h, pilot, tmp_path)
        await pilot.press("q")
        await pilot.pause()
    assert h.app.return_code == 0
    assert not [c for c in h.services.calls if c[0] == "cancel_run"]
    from cosmos_tui.services import Workbench

    async with Workbench.open(h.config) as bench:
        assert (await bench.get_run(runs["running"].id)).state == RunState.RUNNING


async def test_enhance_from_the_prompts_pane(h, pilot, runs):
    focus_row(h.app.main_screen.prompts.table, runs["failed"].prompt_id)
    await pilot.press("e")
    await settle(pilot)
    await pilot.pause()
    await settle(pilot)
    assert ("enhance_prompt", runs["failed"].prompt_id) in h.services.calls
    kinds = {r.type.value for r in h.app.main_screen.runs.runs.values()}
    assert "enhance" in kinds


async def test_enhance_with_cosmos3s_reasoner_from_the_prompts_pane(h, pilot, runs):
    focus_row(h.app.main_screen.prompts.table, runs["failed"].prompt_id)
    await pilot.press("E")
    await settle(pilot)
    await pilot.pause()
    await settle(pilot)
    assert ("enhance_prompt", runs["failed"].prompt_id, "cosmos3") in h.services.calls
    enhanced = [r for r in h.app.main_screen.runs.runs.values() if r.type.value == "enhance"]
    assert [r.profile for r in enhanced] == ["cosmos3"]


@pytest.mark.app(notifications=True)
async def test_gpu_alert_shows_on_the_card_and_as_a_notification(h, pilot):
    h.services.host_stream.put(HostStatus("gpu-a", HostState.CONNECTED, latency_ms=9))
    h.services.gpu_stream.put(sample("gpu-a", 0, h.clock.now, 97.0, 70000, temp=91.0))
    await settle(pilot)
    gpus = h.app.main_screen.gpus
    gpus.redraw_dirty()
    await pilot.pause()
    assert "GPU 0 at 91C" in plain(gpus.card("gpu-a"))
    assert "GPU alert" in [n.title for n in h.app._notifications]


async def test_the_run_form_takes_each_transfer25_controls_own_video_and_mask(
    h, pilot, runs, tmp_path
):
    """Each weighted control of Transfer2.5 gets its video, mask and mask prompt fields."""
    import hashlib

    form = await open_run_form(h, pilot, runs["queued"].prompt_id, "transfer2.5")

    def shown() -> set[str]:
        return {w.id.removeprefix("param-") for w in form.query(".param")
                if w.id and w.display}  # fmt: skip

    per_hint = {f"{h}_{k}" for h in ("edge", "vis", "depth", "seg")
                for k in ("control", "mask", "mask_prompt")} | {"seg_control_prompt"}  # fmt: skip
    assert per_hint <= shown()  # every control weighs 0.25 by default
    for hint in ("vis", "edge", "seg"):
        form.query_one(f"#{hint}_weight", Input).value = "0"
    form.query_one("#depth_weight", Input).value = "0.5"
    await settle(pilot)
    assert shown() & per_hint == {"depth_control", "depth_mask", "depth_mask_prompt"}
    # an empty control video says what is used instead
    files = {i.role: i.path.name for i in form.prompt.inputs}
    assert files.get("seg") == "segmentation.mp4"  # the file's own name
    for hint in ("edge", "vis", "depth", "seg"):
        wanted = f"the prompt's {files[hint]}" if hint in files else "computed by the model"
        assert form.query_one(f"#{hint}_control", Input).placeholder == wanted
    control = write_video(tmp_path / "passes" / "depth.mp4", b"my depth pass ")
    form.query_one("#depth_control", Input).value = str(control)
    form.query_one("#depth_mask", Input).value = str(tmp_path / "passes" / "gone.mp4")
    await pilot.pause()
    error = plain(form.query_one("#form-error"))
    assert "gone.mp4 is not on this machine" in error
    assert form.query_one("#depth_mask", Input).has_class("-invalid")
    form.query_one("#depth_mask", Input).value = str(control)
    form.query_one("#depth_mask_prompt", Input).value = "the car"
    await pilot.pause()
    assert "both a mask video and a mask prompt" in plain(form.query_one("#form-error"))
    assert form.query_one("#depth_mask", Input).has_class("-invalid")
    form.query_one("#depth_mask", Input).value = ""
    await pilot.pause()
    assert plain(form.query_one("#form-error")).strip() == ""
    run = await saved_run(h, pilot)
    assert run.profile == "transfer2.5"
    assert run.params.options["hints"] == [
        {"hint": "depth", "weight": 0.5, "control_path": str(control), "mask_prompt": "the car"}
    ]
    digest = hashlib.sha256(control.read_bytes()).hexdigest()
    [recorded] = run.params.run_files()
    assert (recorded.path, recorded.sha256) == (control, digest)


async def test_the_cosmos3_form_takes_steps_guidance_fps_and_shows_the_pixel_size(h, pilot, runs):
    from textual.widgets import Select

    from cosmos_tui.engine.profiles.cosmos3_rules import PIXEL_SIZES

    form = await open_run_form(h, pilot, runs["queued"].prompt_id, "cosmos3")
    pixels = form.query_one("#c3_pixels")
    assert form.query_one("#param-c3_pixels").display and plain(pixels).strip() == "{} x {}".format(
        *PIXEL_SIZES["480"]["16,9"]
    )
    form.query_one("#c3_resolution", Select).value = "720"
    form.query_one("#c3_aspect", Select).value = "9,16"
    await pilot.pause()
    assert plain(pixels).strip() == "{} x {}".format(*PIXEL_SIZES["720"]["9,16"])
    for field in ("c3_steps", "c3_guidance", "c3_fps"):
        assert form.query_one(f"#{field}", Input).display
    form.query_one("#c3_guidance", Input).value = "9"
    await pilot.pause()
    assert "guidance must be from 0 to 7" in plain(form.query_one("#form-error"))
    assert form.query_one("#c3_guidance", Input).has_class("-invalid")
    form.query_one("#c3_guidance", Input).value = "4.5"  # a number, not only whole ones
    form.query_one("#c3_steps", Input).value = "2.5"
    await pilot.pause()
    assert "steps must be a whole number, not '2.5'" in plain(form.query_one("#form-error"))
    assert form.query_one("#c3_steps", Input).has_class("-invalid")
    form.query_one("#c3_steps", Input).value = "20"
    form.query_one("#c3_fps", Input).value = "16"
    form.query_one("#c3_checkpoint", Input).value = "my-finetune"  # a folder on the host
    await pilot.pause()
    assert "absolute path to a checkpoint folder" in plain(form.query_one("#form-error"))
    assert form.query_one("#c3_checkpoint", Input).has_class("-invalid")
    form.query_one("#c3_checkpoint", Input).value = "/data/my-finetune"
    await pilot.pause()
    assert plain(form.query_one("#form-error")).strip() == ""
    run = await saved_run(h, pilot)
    options = run.params.options
    assert (options["num_steps"], options["guidance"], options["fps"]) == (20, 4.5, 16)
    assert options["checkpoint"] == "/data/my-finetune"  # instead of the size
    # other models show no pixel size
    focus_row(h.app.main_screen.prompts.table, runs["queued"].prompt_id)
    await pilot.press("enter")
    await settle(pilot)
    form = h.app.screen
    form.query_one("#profile", Select).value = "transfer1"
    await settle(pilot)
    assert not form.query_one("#param-c3_pixels").display
    await pilot.press("escape")


async def test_the_transfer25_form_takes_presets_sigma_chunking_distilled_and_guardrails(
    h, pilot, runs
):
    from textual.widgets import Select

    form = await open_run_form(h, pilot, runs["queued"].prompt_id, "transfer2.5")
    for field in ("t25_edge_preset", "t25_blur_preset", "t25_sigma_max", "t25_chunk",
                  "t25_distilled", "t25_guardrails"):  # fmt: skip
        assert form.query_one(f"#param-{field}").display, field
    assert not form.query_one("#param-canny_threshold").display  # Transfer1's, not these
    form.query_one("#t25_edge_preset", Select).value = "very_high"
    form.query_one("#t25_blur_preset", Select).value = "low"
    form.query_one("#t25_sigma_max", Input).value = "x"
    await pilot.pause()
    assert "sigma_max must be a number, not 'x'" in plain(form.query_one("#form-error"))
    form.query_one("#t25_sigma_max", Input).value = "90"
    form.query_one("#t25_chunk", Input).value = "61"
    form.query_one("#t25_guardrails", Select).value = "off"
    form.query_one("#t25_distilled", Select).value = "yes"
    await pilot.pause()
    assert "distilled Transfer2.5 model exists only for the edge control" in plain(
        form.query_one("#form-error")
    )
    assert form.query_one("#t25_distilled", Select).has_class("-invalid")
    form.query_one("#t25_distilled", Select).value = "no"
    await pilot.pause()
    assert plain(form.query_one("#form-error")).strip() == ""
    run = await saved_run(h, pilot)
    options = run.params.options
    assert (options["preset_edge_threshold"], options["preset_blur_strength"]) == (
        "very_high", "low",
    )  # fmt: skip
    assert (options["sigma_max"], options["num_video_frames_per_chunk"]) == (90.0, 61)
    assert options["disable_guardrails"] is True and options["distilled"] is False


async def test_the_transfer25_form_takes_a_style_image_or_a_style_frame(h, pilot, runs, tmp_path):
    """Upstream's image_context_path and context_frame_index (config.py:487-491)."""
    import hashlib

    form = await open_run_form(h, pilot, runs["queued"].prompt_id, "transfer2.5")
    for field in ("t25_style_image", "t25_style_frame"):
        assert form.query_one(f"#param-{field}").display, field
    assert "png, jpg" in form.query_one("#t25_style_image", Input).placeholder
    for hint in ("vis", "seg", "depth"):  # vis and a style image both set the style
        form.query_one(f"#{hint}_weight", Input).value = "0"
    gif = tmp_path / "style.gif"
    gif.write_bytes(b"GIF89a")
    form.query_one("#t25_style_image", Input).value = str(gif)
    await pilot.pause()
    assert ".png, .jpg, .jpeg" in plain(form.query_one("#form-error"))
    assert form.query_one("#t25_style_image", Input).has_class("-invalid")
    style = tmp_path / "style.jpg"
    style.write_bytes(b"\xff\xd8\xff a sunset")
    form.query_one("#t25_style_image", Input).value = str(style)
    form.query_one("#t25_style_frame", Input).value = "5"
    await pilot.pause()
    assert "frame of the input video" in plain(form.query_one("#form-error"))
    form.query_one("#t25_style_frame", Input).value = ""
    await pilot.pause()
    assert plain(form.query_one("#form-error")).strip() == ""
    run = await saved_run(h, pilot)
    assert run.params.options["image_context_path"] == str(style)
    [recorded] = run.params.run_files()
    assert recorded.sha256 == hashlib.sha256(style.read_bytes()).hexdigest()
