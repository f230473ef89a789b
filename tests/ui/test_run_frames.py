"""A run's output in pictures: first, middle and last frame, and output beside its input."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import Static

from cosmos_tui.ui.screens.detail import RunDetailScreen
from cosmos_tui.ui.screens.run_frames import RunFramesScreen
from cosmos_tui.ui.widgets.frames import FrameStrip
from tests.conftest import encode_video
from tests.ui.conftest import Harness, plain, populated, settle

pytestmark = pytest.mark.timeout(60)


def captions(strip: FrameStrip) -> list[str]:
    return [plain(label).strip() for label in strip.query(".frame-label").results(Static)]


def images(strip: FrameStrip) -> list[Any]:
    return [widget.image for widget in strip.query(".frame-image")]


async def open_frames(h: Harness, pilot: Any, run_id: str) -> RunFramesScreen:
    table = h.app.main_screen.runs.table
    table.focus()
    table.move_cursor(row=table.get_row_index(run_id))
    await pilot.press("enter")
    await settle(pilot)
    assert isinstance(h.app.screen, RunDetailScreen)
    await pilot.press("f")
    await settle(pilot)
    screen = h.app.screen
    assert isinstance(screen, RunFramesScreen)
    return screen


async def test_output_first_middle_last_and_beside_its_input(tmp_path) -> None:
    h = Harness(tmp_path, image_protocol="halfcell")
    async with h.app.run_test(size=(120, 40)) as pilot:
        runs = await populated(h, pilot, tmp_path)
        done = runs["completed"]
        encode_video(h.config.outputs_dir / done.id / "output.mp4", frames=9, size=(32, 18))
        screen = await open_frames(h, pilot, done.id)
        info = plain(screen.query_one("#frames-info"))
        assert "output.mp4: 9 frames" in info and "color.mp4: 3 frames" in info
        span = screen.query_one("#frames-span", FrameStrip)
        assert captions(span) == ["first  1/9", "middle  5/9", "last  9/9"]
        assert all(image is not None for image in images(span))
        assert images(span)[0].size == (32, 18)  # never enlarged past the video
        compare = screen.query_one("#frames-compare", FrameStrip)
        assert captions(compare) == ["input  1/3", "output  1/9"]
        await pilot.press("right_square_bracket", "right_square_bracket")
        await settle(pilot)
        assert captions(compare) == ["input  3/3", "output  3/9"]
        await pilot.press("right_curly_bracket")  # +10 stops at the last frame
        await settle(pilot)
        assert captions(compare) == ["input  3/3", "output  9/9"]  # the input ends earlier
        assert all(image is not None for image in images(compare))
        await pilot.press("left_square_bracket")
        await settle(pilot)
        assert captions(compare)[1] == "output  8/9"
        decoded = screen.cache.decoded
        await pilot.press("right_square_bracket", "left_square_bracket")
        await settle(pilot)
        assert screen.cache.decoded == decoded  # frames 9 and 8 again came from the cache
        await pilot.press("o")
        await settle(pilot)
        assert h.app.opened[-1].endswith("output.mp4")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(h.app.screen, RunDetailScreen)


async def test_a_run_without_an_output_video_says_so(tmp_path) -> None:
    h = Harness(tmp_path, image_protocol="halfcell")
    async with h.app.run_test(size=(100, 30)) as pilot:
        runs = await populated(h, pilot, tmp_path)
        screen = await open_frames(h, pilot, runs["queued"].id)
        assert "has no output video yet (queued)" in plain(screen.query_one("#frames-info"))
        await pilot.press("right_square_bracket")  # nothing to step through: no error
        await settle(pilot)
        assert captions(screen.query_one("#frames-span", FrameStrip)) == []


async def test_an_output_that_is_not_a_video_is_named_not_drawn(tmp_path) -> None:
    h = Harness(tmp_path, image_protocol="halfcell")
    async with h.app.run_test(size=(100, 30)) as pilot:
        runs = await populated(h, pilot, tmp_path)
        done = runs["completed"]
        bad = h.config.outputs_dir / done.id / "output.mp4"
        bad.parent.mkdir(parents=True, exist_ok=True)
        bad.write_bytes(b"not a video at all")
        await open_frames(h, pilot, done.id)
        notes = [n.message for n in h.app._notifications]
        assert any("output.mp4" in n and "not a video" in n for n in notes), notes


async def test_the_run_detail_itself_shows_first_middle_and_last(tmp_path) -> None:
    h = Harness(tmp_path, image_protocol="halfcell")
    async with h.app.run_test(size=(120, 40)) as pilot:
        runs = await populated(h, pilot, tmp_path)
        done = runs["completed"]
        encode_video(h.config.outputs_dir / done.id / "output.mp4", frames=7, size=(32, 18))
        table = h.app.main_screen.runs.table
        table.focus()
        table.move_cursor(row=table.get_row_index(done.id))
        await pilot.press("enter")
        await settle(pilot)
        detail = h.app.screen
        assert isinstance(detail, RunDetailScreen)
        for worker in list(h.app.workers):
            if worker.group == "detail-frames":
                await worker.wait()
        await settle(pilot)
        strip = detail.query_one("#detail-frames", FrameStrip)
        assert captions(strip) == ["first  1/7", "middle  4/7", "last  7/7"]
        assert all(image is not None for image in images(strip)) and strip.display
        title = plain(detail.query_one("#detail-frames-title"))
        assert "first, middle, last of 7" in title
        running = runs["running"]
        await pilot.press("escape")
        await settle(pilot)
        table.move_cursor(row=table.get_row_index(running.id))
        await pilot.press("enter")
        await settle(pilot)
        for worker in list(h.app.workers):
            if worker.group == "detail-frames":
                await worker.wait()
        await settle(pilot)
        assert "no output video yet" in plain(h.app.screen.query_one("#detail-frames-title"))
        assert not h.app.screen.query_one("#detail-frames", FrameStrip).display
