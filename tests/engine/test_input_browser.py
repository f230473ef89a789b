"""The input browser's services: folders described, frames decoded off the caller's thread."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np

from cosmos_tui.services.inputs import (
    FrameCache,
    inspect_folder,
    list_input_folders,
    prepare_folder,
    sequence_frame,
)
from tests.cli.sequences import write_sequence
from tests.conftest import encode_video


def test_folders_are_described_with_their_problems(tmp_path: Path) -> None:
    root = tmp_path / "inputs"
    encode_video(root / "good" / "color.mp4", frames=6, size=(32, 18), fps=12)
    encode_video(root / "good" / "depth.mp4", frames=6, size=(32, 18), fps=12)
    encode_video(root / "short" / "color.mp4", frames=6)
    encode_video(root / "short" / "depth.mp4", frames=4)
    write_sequence(root / "seq", passes=("color", "depth"), frames=range(1, 4))
    broken = write_sequence(root / "gap", passes=("color", "seg"), frames=range(1, 4))
    (broken / "seg.0002.png").unlink()
    (root / "empty").mkdir()
    (root / ".hidden").mkdir()
    used = {(root / "good").resolve(): ("ps_1",)}
    folders = {f.name: f for f in asyncio.run(list_input_folders([root], used))}
    assert sorted(folders) == ["empty", "gap", "good", "seq", "short"]
    good = folders["good"]
    assert (good.kind, good.passes, good.frames, good.width, good.fps) == (
        "videos",
        ("color", "depth"),
        6,
        32,
        12.0,
    )
    assert good.problems == () and good.used_by == ("ps_1",)
    assert folders["short"].problems == ("depth.mp4 has 4 frames but color.mp4 has 6",)
    seq = folders["seq"]
    assert (seq.kind, seq.passes, seq.frames, seq.width, seq.fps) == (
        "sequence",
        ("color", "depth"),
        3,
        32,
        None,
    )
    assert any("seg is missing frame 2" in p for p in folders["gap"].problems)
    assert folders["empty"].kind == "empty" and folders["empty"].passes == ()


def test_a_file_that_is_not_a_video_is_a_problem_not_a_guess(tmp_path: Path) -> None:
    (tmp_path / "color.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 40)
    folder = inspect_folder(tmp_path)
    assert folder.frames is None and folder.fps is None
    assert "not a video" in folder.problems[0]


def test_prepare_folder_reports_progress_and_then_lists_videos(tmp_path: Path) -> None:
    seq = write_sequence(tmp_path / "shot", passes=("color", "depth"), frames=range(1, 5))
    seen: list[tuple[int, int]] = []
    result = asyncio.run(prepare_folder(seq, lambda d, t: seen.append((d, t))))
    assert result.encoded == ("color", "depth") and seen[-1] == (8, 8)
    assert inspect_folder(seq).kind == "both"


def test_frames_are_decoded_in_a_thread_cached_and_exact(tmp_path: Path) -> None:
    video = encode_video(tmp_path / "color.mp4", frames=30, size=(64, 36), fps=10)
    cache = FrameCache(capacity=4)
    callers: list[str] = []
    original = FrameCache._decode

    def spy(*args):
        callers.append(threading.current_thread().name)
        return original(*args)

    cache._decode = spy  # type: ignore[method-assign]

    async def frames():
        first = await cache.frame(video, 0, (32, 18))
        again = await cache.frame(video, 0, (32, 18))
        late = await cache.frame(video, 25, (64, 36))
        return first, again, late

    first, again, late = asyncio.run(frames())
    assert first is again and cache.decoded == 2
    assert first.size == (32, 18)
    assert threading.main_thread().name not in callers
    # encode_video's red channel moves by 16 per frame: frame 25 is not frame 0
    red = np.asarray(late)[..., 0].astype(int)
    expected = (np.arange(64) * 7 + 25 * 16) % 256
    assert np.abs(red[18, 8:56] - expected[8:56]).mean() < 12


def test_sequence_frames_are_found_by_position(tmp_path: Path) -> None:
    seq = write_sequence(tmp_path / "s", passes=("color",), frames=range(1001, 1004))
    assert sequence_frame(seq, "color", 0).name == "color.1001.png"
    assert sequence_frame(seq, "color", 2).name == "color.1003.png"
    assert sequence_frame(seq, "color", 3) is None
