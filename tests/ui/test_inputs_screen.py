"""The Inputs screen: folders with checks, prepare with progress, prompts, frame previews."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input, ProgressBar, TextArea
from textual_image import renderable
from textual_image.widget import HalfcellImage, SixelImage, TGPImage

from cosmos_tui.ui.screens.inputs import InputsScreen, PrepareProgress
from cosmos_tui.ui.screens.prompt_from_folder import PromptFromFolder
from cosmos_tui.ui.widgets.frames import (
    FrameStrip,
    TerminalGraphics,
    choose_protocol,
    detect_graphics,
)
from tests.cli.sequences import write_sequence
from tests.conftest import encode_video
from tests.ui.conftest import Harness, plain, ready, settle

pytestmark = pytest.mark.timeout(60)
REPO_INPUTS = Path(__file__).parents[2] / "inputs"


def make_inputs(h: Harness) -> Path:
    """forest-road (videos), rolling (a 4-frame sequence), short (a mismatched depth)."""
    root = h.config.inputs_dir
    shutil.copytree(REPO_INPUTS / "forest-road", root / "forest-road")
    write_sequence(root / "rolling", frames=range(1, 5), size=(48, 27))
    encode_video(root / "short" / "color.mp4", frames=6)
    encode_video(root / "short" / "depth.mp4", frames=4)
    return root


def rows(screen: InputsScreen) -> list[list[str]]:
    table = screen.query_one("#inputs-table", DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def open_inputs(h: Harness, pilot: Any) -> InputsScreen:
    await ready(h, pilot)
    await pilot.press("i")
    await settle(pilot)
    screen = h.app.screen
    assert isinstance(screen, InputsScreen)
    return screen


def select(screen: InputsScreen, name: str) -> None:
    table = screen.query_one("#inputs-table", DataTable)
    table.focus()
    table.move_cursor(row=[f.name for f in screen.shown].index(name))


async def test_folders_are_listed_with_passes_frames_and_problems(tmp_path) -> None:
    h = Harness(tmp_path, image_protocol="halfcell")
    make_inputs(h)
    async with h.app.run_test(size=(120, 40)) as pilot:
        screen = await open_inputs(h, pilot)
        assert rows(screen) == [
            ["forest-road", "videos", "color depth", "16", "128x72", "8", "-", "ok"],
            ["rolling", "sequence", "color depth seg edge vis", "4", "48x27", "-", "-", "ok"],
            ["short", "videos", "color depth", "6", "16x16", "8", "-", "1"],
        ]
        select(screen, "short")
        await settle(pilot)
        detail = plain(screen.query_one("#inputs-detail"))
        assert "depth.mp4 has 4 frames but color.mp4 has 6" in detail
        await pilot.press("s", "s")  # name -> frames -> problems
        await settle(pilot)
        assert screen.sort_key == "problems" and rows(screen)[0][0] == "short"
        await pilot.press("slash")
        await pilot.press(*"seq")
        await settle(pilot)
        assert [r[0] for r in rows(screen)] == ["rolling"]
        await pilot.press("escape", "escape")
        await settle(pilot)
        assert not isinstance(h.app.screen, InputsScreen)


async def test_prepare_shows_progress_and_lists_the_videos(tmp_path) -> None:
    h = Harness(tmp_path, image_protocol="halfcell")
    root = make_inputs(h)
    progress: list[tuple[int, int]] = []
    shown: list[bool] = []

    def hook(message: Any) -> None:
        if isinstance(message, PrepareProgress):
            progress.append((message.done, message.total))
            bar = h.app.screen.query_one("#inputs-progress", ProgressBar)
            shown.append(bar.has_class("-busy"))

    async with h.app.run_test(size=(120, 40), message_hook=hook) as pilot:
        screen = await open_inputs(h, pilot)
        select(screen, "forest-road")
        await pilot.press("p")  # not a sequence: says so, does nothing
        select(screen, "rolling")
        await pilot.press("p")
        for worker in list(h.app.workers):
            if worker.group == "inputs-prepare":
                await worker.wait()
        await settle(pilot)
        assert progress[-1] == (20, 20) and shown[0]  # the bar shows while encoding
        bar = screen.query_one("#inputs-progress", ProgressBar)
        assert bar.progress == 20 and not bar.has_class("-busy")
        assert (root / "rolling" / "depth.mp4").is_file()
        rolling = next(r for r in rows(screen) if r[0] == "rolling")
        assert rolling[1:6] == ["both", "color depth seg edge vis", "4", "48x28", "24"]


async def test_enter_creates_a_prompt_from_the_folder(tmp_path) -> None:
    h = Harness(tmp_path, image_protocol="halfcell")
    root = make_inputs(h)
    async with h.app.run_test(size=(120, 40)) as pilot:
        screen = await open_inputs(h, pilot)
        select(screen, "forest-road")
        await pilot.press("enter")
        await settle(pilot)
        form = h.app.screen
        assert isinstance(form, PromptFromFolder)
        assert form.query_one("#video_dir", Input).value == str(root / "forest-road")
        form.query_one("#text", TextArea).text = "A foggy forest road"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert h.app.screen is screen
        page = await h.services.bench.list_prompts()
        assert page.total == 1 and page.items[0].text == "A foggy forest road"
        forest = next(r for r in rows(screen) if r[0] == "forest-road")
        assert forest[6] == page.items[0].id


async def test_frames_step_and_come_from_the_cache(tmp_path) -> None:
    h = Harness(tmp_path, image_protocol="halfcell")
    make_inputs(h)
    async with h.app.run_test(size=(120, 40)) as pilot:
        screen = await open_inputs(h, pilot)
        strip = screen.query_one(FrameStrip)
        assert strip.roles == ("color", "depth")  # forest-road first
        assert plain(strip.query_one("#label-color")).strip() == "color  1/16"
        assert isinstance(strip.query_one("#image-depth"), HalfcellImage)
        decoded = screen.cache.decoded
        await pilot.press("right_square_bracket", "right_curly_bracket")
        await settle(pilot)
        assert screen.frame_index == 11
        assert plain(strip.query_one("#label-depth")).strip() == "depth  12/16"
        assert screen.cache.decoded > decoded
        await pilot.press("right_curly_bracket")  # past the end: the last frame
        await settle(pilot)
        assert screen.frame_index == 15
        before = screen.cache.decoded
        await pilot.press("left_curly_bracket", "right_curly_bracket")
        await settle(pilot)
        assert screen.cache.decoded == before + 2  # frame 6 is new; frame 16 was cached
        select(screen, "rolling")  # a sequence: frames straight from the PNGs
        await settle(pilot)
        assert strip.roles == ("color", "depth", "seg", "edge", "vis")
        assert plain(strip.query_one("#label-vis")).strip() == "vis  1/4"


async def test_o_plays_the_color_video(tmp_path) -> None:
    h = Harness(tmp_path, image_protocol="halfcell")
    root = make_inputs(h)
    async with h.app.run_test(size=(120, 40)) as pilot:
        screen = await open_inputs(h, pilot)
        select(screen, "rolling")
        await pilot.press("o")  # a sequence has no color.mp4 yet
        select(screen, "forest-road")
        await pilot.press("o")
        await settle(pilot)
        assert h.app.opened == [str(root / "forest-road" / "color.mp4")]


def test_protocol_choice_follows_the_terminal() -> None:
    nothing, both = TerminalGraphics(), TerminalGraphics(sixel=True, kitty=True)
    assert choose_protocol("auto", nothing) == "halfcell"
    assert choose_protocol("auto", TerminalGraphics(kitty=True)) == "kitty"
    assert choose_protocol("auto", TerminalGraphics(sixel=True)) == "sixel"
    assert choose_protocol("auto", both) == "sixel"
    assert choose_protocol("halfcell", both) == "halfcell"
    assert choose_protocol("kitty", nothing) == "kitty"


@pytest.mark.parametrize(
    ("found", "expected"),
    [("TGPImage", TGPImage), ("SixelImage", SixelImage), ("HalfcellImage", HalfcellImage)],
)
async def test_the_screen_draws_with_what_the_terminal_reported(
    tmp_path, monkeypatch, found, expected
) -> None:
    monkeypatch.setattr(renderable, "Image", getattr(renderable, found))
    assert detect_graphics() == TerminalGraphics(
        sixel=found == "SixelImage", kitty=found == "TGPImage"
    )
    h = Harness(tmp_path)  # image_protocol = auto
    make_inputs(h)
    async with h.app.run_test(size=(120, 40)) as pilot:
        screen = await open_inputs(h, pilot)
        assert type(screen.query_one("#image-color")) is expected


async def test_a_prepare_that_fails_names_the_frames_and_leaves_nothing(tmp_path) -> None:
    h = Harness(tmp_path, image_protocol="halfcell")
    root = make_inputs(h)
    write_sequence(root / "gappy", passes=("color", "depth"), frames=range(1, 6), size=(32, 18))
    (root / "gappy" / "depth.0003.png").unlink()
    async with h.app.run_test(size=(120, 40)) as pilot:
        screen = await open_inputs(h, pilot)
        select(screen, "gappy")
        await pilot.press("p")
        for worker in list(h.app.workers):
            if worker.group == "inputs-prepare":
                await worker.wait()
        await settle(pilot)
        messages = " | ".join(n.message for n in h.app._notifications)
        assert "depth is missing frame 3" in messages, messages
        assert not screen.query_one("#inputs-progress", ProgressBar).has_class("-busy")
        assert screen.preparing is None
        assert not [p.name for p in (root / "gappy").iterdir() if p.suffix in {".mp4", ".part"}]
        assert isinstance(h.app.screen, InputsScreen)  # the UI goes on
