"""`cosmos create prompt` checks every control video against color.mp4."""

from __future__ import annotations

import json

from cosmos_tui.engine.input_checks import check_videos, clip_note
from cosmos_tui.engine.inputs import find_videos
from cosmos_tui.engine.video_stream import probe_stream
from tests.cli.test_records import count, failed, ok
from tests.conftest import encode_video, write_video


def test_probe_reads_frames_fps_resolution_and_codec(tmp_path) -> None:
    info = probe_stream(encode_video(tmp_path / "a.mp4", frames=7, size=(32, 18), fps=12))
    assert (info.frames, info.fps, info.width, info.height) == (7, 12.0, 32, 18)
    assert info.codec == "h264" and info.pix_fmt == "yuv420p"
    assert info.resolution == "32x18" and info.fps_text == "12"
    other = probe_stream(encode_video(tmp_path / "b.mp4", frames=2, codec="mpeg4", fps=24))
    assert (other.frames, other.codec, other.fps) == (2, "mpeg4", 24.0)


def test_a_real_video_with_extra_boxes_still_probes(tmp_path) -> None:
    info = probe_stream(write_video(tmp_path / "c.mp4", b"payload"))
    assert info.frames == 3 and info.resolution == "16x16"


def test_depth_with_fewer_frames_is_rejected_naming_both_counts(cosmos, tmp_path) -> None:
    folder = tmp_path / "short"
    encode_video(folder / "color.mp4", frames=9)
    encode_video(folder / "depth.mp4", frames=7)
    failed(
        cosmos("create", "prompt", "x", str(folder)),
        "depth.mp4 has 7 frames but color.mp4 has 9",
    )
    assert count(cosmos, "prompts") == 0


def test_resolution_mismatch_is_rejected_naming_both_sizes(cosmos, tmp_path) -> None:
    folder = tmp_path / "size"
    encode_video(folder / "color.mp4", size=(32, 18))
    encode_video(folder / "segmentation.mp4", size=(16, 16))
    failed(
        cosmos("create", "prompt", "x", str(folder)),
        "segmentation.mp4 is 16x16 but color.mp4 is 32x18",
    )
    assert count(cosmos, "prompts") == 0


def test_allow_mismatch_records_the_prompt_and_says_what_differs(cosmos, tmp_path) -> None:
    folder = tmp_path / "resample"
    encode_video(folder / "color.mp4", frames=9)
    encode_video(folder / "edge.mp4", frames=5, fps=12)
    result = cosmos("create", "prompt", "x", str(folder), "--allow-mismatch")
    prompt_id = ok(result)
    assert prompt_id.startswith("ps_")
    assert "edge.mp4 has 5 frames but color.mp4 has 9" in result.stderr
    assert "edge.mp4 plays at 12 fps but color.mp4 at 8 fps" in result.stderr
    assert count(cosmos, "prompts") == 1


def test_a_file_with_an_mp4_header_but_no_video_is_an_error(cosmos, tmp_path) -> None:
    folder = tmp_path / "junk"
    encode_video(folder / "color.mp4")
    (folder / "depth.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" * 9)
    failed(cosmos("create", "prompt", "x", str(folder)), "depth.mp4 is not a video")
    assert count(cosmos, "prompts") == 0


def test_frames_beyond_one_clip_are_mentioned(cosmos, tmp_path) -> None:
    folder = tmp_path / "long"
    encode_video(folder / "color.mp4", frames=130, size=(16, 16))
    encode_video(folder / "depth.mp4", frames=130, size=(16, 16))
    result = cosmos("create", "prompt", "x", str(folder))
    ok(result)
    assert "130 frames, more than the 121 frames" in result.stderr
    assert "2 chained 121-frame clips" in result.stderr


def test_clip_note_counts_chained_clips() -> None:
    assert clip_note(121) is None and clip_note(5) is None
    assert "2 chained" in clip_note(241) and "repeats" not in clip_note(241)
    assert "3 chained" in clip_note(300) and "61 repeats" in clip_note(300)


def test_check_videos_reports_every_control(tmp_path) -> None:
    encode_video(tmp_path / "color.mp4", frames=4)
    encode_video(tmp_path / "depth.mp4", frames=4)
    encode_video(tmp_path / "vis.mp4", frames=4, size=(32, 32))
    report = check_videos(find_videos(tmp_path))
    assert list(report.videos) == ["color", "depth", "vis"]
    assert report.mismatches == ("vis.mp4 is 32x32 but color.mp4 is 16x16",)


def test_inspect_json_lists_each_video(cosmos, tmp_path) -> None:
    folder = tmp_path / "ok"
    encode_video(folder / "color.mp4", frames=4, size=(32, 18), fps=24)
    encode_video(folder / "depth.mp4", frames=4, size=(32, 18), fps=24)
    shown = json.loads(ok(cosmos("inspect", str(folder), "--json")))
    assert shown["mismatches"] == [] and shown["notes"] == []
    assert shown["videos"]["depth"] == {
        "path": str((folder / "depth.mp4").resolve()),
        "frames": 4,
        "fps": 24.0,
        "width": 32,
        "height": 18,
        "codec": "h264",
        "pix_fmt": "yuv420p",
    }
