"""`cosmos prepare`: rendered image sequences in, checked control videos out."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import OpenEXR
import pytest
from PIL import Image

from cosmos_tui.engine.prepare import PrepareOptions, prepare_sequence
from cosmos_tui.engine.video_stream import probe_stream
from tests.cli.sequences import write_frame, write_sequence
from tests.cli.test_records import failed, ok

ROLES = {
    "color": "color.mp4",
    "depth": "depth.mp4",
    "seg": "segmentation.mp4",
    "edge": "edge.mp4",
    "vis": "vis.mp4",
}


def videos_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix in {".mp4", ".part"})


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".mp4" in p.name or ".part" in p.name)


def assert_ffprobe_agrees(path: Path, frames: int, fps: str, size: tuple[int, int]) -> None:
    """FFmpeg's own tools must read what PyAV read: a system ffprobe where there is one,
    else the ffmpeg binary of imageio-ffmpeg (a dev dependency), decoding every frame."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is not None:
        shown = json.loads(
            subprocess.run(
                [ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0",
                 "-show_entries", "stream=nb_read_frames,r_frame_rate,width,height,pix_fmt",
                 "-of", "json", str(path)],
                check=True, capture_output=True, text=True,
            ).stdout
        )["streams"][0]  # fmt: skip
        assert int(shown["nb_read_frames"]) == frames
        assert (shown["width"], shown["height"]) == size and shown["pix_fmt"] == "yuv420p"
        assert shown["r_frame_rate"] == fps
        return
    import imageio_ffmpeg

    decoded = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path),
         "-map", "0:v:0", "-f", "null", "-"],
        check=True, capture_output=True, text=True,
    ).stderr  # fmt: skip
    stream = re.search(
        r"Stream #0:0.*?: Video: h264 .*?, (yuv420p)\(?.*?, (\d+)x(\d+).*?, ([\d.]+) fps", decoded
    )
    assert stream, decoded
    assert (int(stream.group(2)), int(stream.group(3))) == size
    numerator, _, denominator = fps.partition("/")
    assert float(stream.group(4)) == pytest.approx(int(numerator) / int(denominator or 1))
    counted = re.findall(r"frame=\s*(\d+)", decoded)
    assert counted and int(counted[-1]) == frames, decoded


def test_prepare_encodes_every_pass_and_writes_metadata(cosmos, tmp_path) -> None:
    seq = write_sequence(tmp_path / "shot", frames=range(1001, 1011))
    result = cosmos("prepare", str(seq), "--json")
    report = json.loads(ok(result))
    assert report["frames"] == 10 and report["fps"] == 24.0
    assert (report["width"], report["height"]) == (32, 18)
    assert sorted(report["encoded"]) == sorted(ROLES)
    assert videos_in(seq) == sorted(ROLES.values())
    for role, name in ROLES.items():
        info = probe_stream(seq / name)
        assert (info.frames, info.fps, info.resolution) == (10, 24.0, "32x18"), role
        assert (info.codec, info.pix_fmt) == ("h264", "yuv420p")
        assert_ffprobe_agrees(seq / name, 10, "24/1", (32, 18))
    meta = json.loads((seq / "metadata.json").read_text())
    assert meta["frames"] == 10 and meta["first_frame"] == 1001 and meta["last_frame"] == 1010
    assert meta["fps"] == 24.0 and meta["width"] == 32 and meta["height"] == 18
    assert meta["source"] == str(seq.resolve()) and meta["tool"] == "cosmos-tui"
    assert meta["tool_version"]
    assert set(meta["passes"]) == set(ROLES)
    assert meta["passes"]["depth"]["source"] == "depth.####.png"
    # 16-bit PNG depth in millimetres: near and far are in the pass's own units
    assert meta["passes"]["depth"]["depth"]["near"] == pytest.approx(2000, abs=1)
    assert meta["passes"]["depth"]["depth"]["far"] == pytest.approx(50000, abs=1)
    assert ok(cosmos("inspect", str(seq))).count("10 frames") == 5


@pytest.mark.parametrize("style", ["underscore", "folder"])
def test_other_layouts_odd_sizes_exr_depth_and_fps(cosmos, tmp_path, style) -> None:
    seq = write_sequence(
        tmp_path / style, frames=range(0, 5), size=(33, 19), style=style, depth_format="exr"
    )
    out = tmp_path / "out"
    report = json.loads(ok(cosmos("prepare", str(seq), "--out", str(out), "--fps", "12",
                                  "--json")))  # fmt: skip
    assert (report["width"], report["height"]) == (34, 20)
    assert videos_in(out) == sorted(ROLES.values())
    for name in ROLES.values():
        info = probe_stream(out / name)
        assert (info.frames, info.fps, info.resolution) == (5, 12.0, "34x20")
        assert_ffprobe_agrees(out / name, 5, "12/1", (34, 20))
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["passes"]["depth"]["depth"]["near"] == pytest.approx(2.0, abs=0.01)
    assert any("padded" in note for note in report["notes"])


def test_depth_is_normalised_near_bright_far_dark(cosmos, tmp_path) -> None:
    seq = write_sequence(tmp_path / "d", passes=("color", "depth"), frames=[1], size=(64, 32))
    ok(cosmos("prepare", str(seq)))
    with av.open(str(seq / "depth.mp4")) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="gray")
    # depth_values: distance grows left to right, top to bottom, rolled right by one column
    assert frame[0, 1:9].mean() > 225  # nearest: 2 m
    # mapped linearly in 1/distance, like Depth Anything's inverse depth: about 3.6 m (row 1)
    # is (1/3.6 - 1/50) / (1/2 - 1/50) * 255 = 137 before H.264's losses (linear in
    # distance it would be 247)
    assert 115 < frame[1, 1:9].mean() < 160
    assert frame[-4:, -12:-4].mean() < 30  # farthest: about 50 m
    assert np.all(np.diff(frame[16, 4:60].astype(int)) >= -3)  # never brighter further right
    custom = tmp_path / "custom"
    report = json.loads(ok(cosmos("prepare", str(seq), "--out", str(custom), "--depth-near",
                                  "10", "--depth-far", "20", "--json")))  # fmt: skip
    assert report["depth"] == {"near": 10.0, "far": 20.0, "convention": "distance"}


def test_rerun_on_an_unchanged_sequence_does_nothing(cosmos, tmp_path) -> None:
    seq = write_sequence(tmp_path / "again", frames=range(1, 5))
    ok(cosmos("prepare", str(seq)))
    stamps = {name: (seq / name).stat().st_mtime_ns for name in ROLES.values()}
    second = json.loads(ok(cosmos("prepare", str(seq), "--json")))
    assert second["encoded"] == [] and second["changed"] is False
    assert {name: (seq / name).stat().st_mtime_ns for name in ROLES.values()} == stamps
    plain = cosmos("prepare", str(seq))
    assert "unchanged" in ok(plain)
    write_frame(seq / "seg.0002.png", "segX", 2, (32, 18))  # other content
    third = json.loads(ok(cosmos("prepare", str(seq), "--json")))
    assert third["encoded"] == ["seg"] and third["changed"] is True
    assert (seq / "color.mp4").stat().st_mtime_ns == stamps["color.mp4"]
    assert (seq / "segmentation.mp4").stat().st_mtime_ns != stamps["segmentation.mp4"]
    fourth = json.loads(ok(cosmos("prepare", str(seq), "--fps", "30", "--json")))
    assert sorted(fourth["encoded"]) == sorted(ROLES)  # other settings: every pass again


def test_rerun_leaves_the_metadata_as_it_was(cosmos, tmp_path) -> None:
    seq = write_sequence(tmp_path / "meta", passes=("color", "depth"), frames=range(1, 4))
    ok(cosmos("prepare", str(seq)))
    meta = seq / "metadata.json"
    text, stamp = meta.read_text(), meta.stat().st_mtime_ns
    ok(cosmos("prepare", str(seq)))
    assert meta.read_text() == text and meta.stat().st_mtime_ns == stamp
    ok(cosmos("prepare", str(seq), "--fps", "12"))  # a change is recorded
    assert json.loads(meta.read_text())["fps"] == 12.0


def test_a_pass_that_went_away_takes_its_old_video_with_it(cosmos, tmp_path) -> None:
    seq = write_sequence(tmp_path / "gone", passes=("color", "depth", "seg"), frames=range(1, 6))
    ok(cosmos("prepare", str(seq)))
    assert "segmentation.mp4" in videos_in(seq)
    for frame in seq.glob("seg.*.png"):
        frame.unlink()
    for number in range(1, 4):  # color and depth are re-rendered shorter
        for name in ("color", "depth"):
            write_frame(seq / f"{name}.{number:04d}.png", name + "b", number, (32, 18))
    for number in (4, 5):
        for name in ("color", "depth"):
            (seq / f"{name}.{number:04d}.png").unlink()
    report = json.loads(ok(cosmos("prepare", str(seq), "--json")))
    assert videos_in(seq) == ["color.mp4", "depth.mp4"]
    assert any("removed segmentation.mp4" in note for note in report["notes"])
    assert "seg" not in json.loads((seq / "metadata.json").read_text())["passes"]
    ok(cosmos("create", "prompt", "after the re-render", str(seq)))  # checks pass


def test_a_foreign_video_of_a_missing_pass_is_refused_not_removed(cosmos, tmp_path) -> None:
    seq = write_sequence(tmp_path / "shot", passes=("color",), frames=range(1, 4))
    out = tmp_path / "out"
    out.mkdir()
    (out / "depth.mp4").write_bytes(b"someone else's video")
    failed(cosmos("prepare", str(seq), "--out", str(out)), "depth.mp4 is not from this")
    assert sorted(p.name for p in out.iterdir()) == ["depth.mp4"]
    assert (out / "depth.mp4").read_bytes() == b"someone else's video"


def test_prepare_says_how_a_sequence_longer_than_one_clip_runs(cosmos, tmp_path) -> None:
    seq = write_sequence(tmp_path / "long", passes=("color",), frames=range(1, 131), size=(16, 8))
    report = json.loads(ok(cosmos("prepare", str(seq), "--json")))
    assert any("130 frames, more than the 121" in note for note in report["notes"]), report
    short = write_sequence(
        tmp_path / "short", passes=("color",), frames=range(1, 122), size=(16, 8)
    )
    assert not any(
        "121" in n for n in json.loads(ok(cosmos("prepare", str(short), "--json")))["notes"]
    )


def test_create_prompt_in_the_same_step(cosmos, tmp_path) -> None:
    seq = write_sequence(tmp_path / "robot", passes=("color", "depth", "seg"), frames=[1, 2])
    report = json.loads(ok(cosmos("prepare", str(seq), "--create-prompt", "A robot",
                                  "--name", "robot-1", "--json")))  # fmt: skip
    shown = json.loads(ok(cosmos("show", report["prompt_id"], "--json")))
    assert shown["name"] == "robot-1" and shown["text"] == "A robot"
    assert [i["role"] for i in shown["inputs"]] == ["color", "depth", "seg"]


def test_unknown_passes_are_named_and_ignored(cosmos, tmp_path) -> None:
    seq = write_sequence(tmp_path / "n", passes=("color", "normals"), frames=[1, 2])
    report = json.loads(ok(cosmos("prepare", str(seq), "--json")))
    assert report["encoded"] == ["color"]
    assert any("normals" in note and "ignored" in note for note in report["notes"])


def bad(cosmos, seq: Path, *fragments: str) -> None:
    result = cosmos("prepare", str(seq))
    failed(result, fragments[0])
    for fragment in fragments[1:]:
        assert fragment in result.stderr, result.stderr
    assert leftovers(seq) == []
    assert not (seq / "metadata.json").exists()


def test_a_missing_depth_frame_is_named(cosmos, tmp_path) -> None:
    seq = write_sequence(tmp_path / "gap")
    (seq / "depth.0005.png").unlink()
    bad(cosmos, seq, "depth is missing frame 5")


def test_a_seg_two_frames_short_is_named(cosmos, tmp_path) -> None:
    seq = write_sequence(tmp_path / "short", passes=("color", "depth", "edge", "vis"))
    write_sequence(seq, passes=("seg",), frames=range(1, 7))
    bad(cosmos, seq, "seg is missing frames 7-8", "seg has 6 frames but color has 8")


def test_mixed_resolutions_are_named(cosmos, tmp_path) -> None:
    seq = write_sequence(tmp_path / "mixed")
    write_frame(seq / "edge.0003.png", "edge", 3, (16, 16))
    bad(cosmos, seq, "edge.0003.png is 16x16", "32x18")


def test_an_unreadable_png_is_named(cosmos, tmp_path) -> None:
    seq = write_sequence(tmp_path / "broken")
    (seq / "vis.0004.png").write_bytes(b"not a png at all")
    bad(cosmos, seq, "vis.0004.png")


def test_a_truncated_png_is_named_and_nothing_is_left(cosmos, tmp_path) -> None:
    seq = write_sequence(tmp_path / "cut", size=(64, 64))
    data = (seq / "color.0006.png").read_bytes()
    (seq / "color.0006.png").write_bytes(data[: len(data) // 2])
    bad(cosmos, seq, "color.0006.png")


def test_duplicate_frames_are_named(cosmos, tmp_path) -> None:
    seq = write_sequence(tmp_path / "dup", passes=("color",), frames=[1, 2, 3])
    write_frame(seq / "color_0002.png", "color", 2, (32, 18))
    bad(cosmos, seq, "color has frame 2 twice", "color.0002.png", "color_0002.png")


def test_an_empty_folder_and_a_missing_one(cosmos, tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    bad(cosmos, empty, "no image sequences")
    failed(cosmos("prepare", str(tmp_path / "nowhere")), "does not exist")


def test_a_folder_without_color_is_named(cosmos, tmp_path) -> None:
    seq = write_sequence(tmp_path / "nocolor", passes=("depth", "seg"))
    bad(cosmos, seq, "no color pass", "depth, seg")


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` read-only: a read-only tmpfs over it as root (root ignores modes)."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield
        folder.chmod(0o755)
        return
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                   check=True)  # fmt: skip
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_read_only_output_folder(cosmos, tmp_path) -> None:
    seq = write_sequence(tmp_path / "ro", passes=("color", "depth"), frames=[1, 2])
    out = tmp_path / "locked"
    out.mkdir()
    with read_only(out):
        result = cosmos("prepare", str(seq), "--out", str(out))
        failed(result, f"cannot write to {out}")
        assert list(out.iterdir()) == []
    assert leftovers(seq) == []
    nested = out / "deeper"
    with read_only(out):
        failed(cosmos("prepare", str(seq), "--out", str(nested)), f"cannot write to {nested}")


def test_progress_reaches_every_frame_of_every_pass(tmp_path) -> None:
    seq = write_sequence(tmp_path / "p", frames=range(1, 7))
    seen: list[tuple[int, int]] = []
    result = prepare_sequence(
        seq, seq, PrepareOptions(), on_progress=lambda d, t: seen.append((d, t))
    )
    assert result.frames == 6 and sorted(result.encoded) == sorted(ROLES)
    assert seen[-1] == (30, 30)
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(seen))


def test_a_jpeg_sequence_is_prepared(cosmos, tmp_path) -> None:
    from PIL import Image

    seq = tmp_path / "jpeg"
    seq.mkdir()
    for number in range(1, 6):
        for name in ("color", "edge"):
            shade = (number * 40) % 256
            Image.new("RGB", (40, 24), (shade, 255 - shade, 90)).save(
                seq / f"{name}.{number:04d}.jpg", quality=90
            )
    report = json.loads(ok(cosmos("prepare", str(seq), "--json")))
    assert sorted(report["encoded"]) == ["color", "edge"] and report["frames"] == 5
    for name in ("color.mp4", "edge.mp4"):
        info = probe_stream(seq / name)
        assert (info.frames, info.resolution) == (5, "40x24")
        assert_ffprobe_agrees(seq / name, 5, "24/1", (40, 24))


def test_a_pattern_of_ones_own_names_the_passes_and_frames(cosmos, tmp_path) -> None:
    seq = tmp_path / "own"
    seq.mkdir()
    for number in range(7, 11):
        for name in ("color", "depth"):
            write_frame(seq / f"shot42-{name}-f{number:03d}.png", name, number, (32, 18))
    pattern = r"shot42-(?P<pass>[a-z]+)-f(?P<frame>\d+)\.png"
    nothing = cosmos("prepare", str(seq))  # the default patterns find no pass here
    assert nothing.exit_code == 1 and "color" in nothing.stderr
    report = json.loads(ok(cosmos("prepare", str(seq), "--pattern", pattern, "--json")))
    assert sorted(report["encoded"]) == ["color", "depth"] and report["frames"] == 4
    meta = json.loads((seq / "metadata.json").read_text())
    assert (meta["first_frame"], meta["last_frame"]) == (7, 10)
    assert probe_stream(seq / "depth.mp4").frames == 4
    bad = cosmos("prepare", str(seq), "--pattern", "(")
    assert bad.exit_code == 2 and "is not a regular expression" in bad.output
    partial = cosmos("prepare", str(seq), "--pattern", r"x(?P<frame>\d+)")
    assert partial.exit_code == 2 and "needs (?P<pass>...) and (?P<frame>...)" in partial.output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--fps", "0"), "--fps must be between 0 and 1000, not 0.0"),
        (("--fps", "5000"), "--fps must be between 0 and 1000"),
        (("--depth-near", "5", "--depth-far", "5"), "depth near and far are both 5.0"),
        (("--depth-near", "10", "--depth-far", "2"), "must be distances with 0 < near < far"),
        (("--depth-near", "-1", "--depth-far", "2"), "--depth-convention disparity"),
    ],
)
def test_bad_prepare_settings_are_refused_naming_them(cosmos, tmp_path, args, fragment) -> None:
    seq = write_sequence(tmp_path / "s", passes=("color", "depth"), frames=range(1, 3))
    failed(cosmos("prepare", str(seq), *args), fragment)
    assert videos_in(seq) == []


def test_a_flat_or_empty_depth_pass_is_refused(cosmos, tmp_path) -> None:
    flat = write_sequence(tmp_path / "flat", passes=("color",), frames=range(1, 3))
    for number in (1, 2):
        Image.fromarray(np.full((18, 32), 4000, dtype=np.uint16)).save(
            flat / f"depth.{number:04d}.png"
        )
    failed(cosmos("prepare", str(flat)), "the depth pass is flat")
    assert videos_in(flat) == []
    empty = write_sequence(tmp_path / "nan", passes=("color",), frames=range(1, 3))
    for number in (1, 2):
        header = {"type": OpenEXR.scanlineimage, "compression": OpenEXR.ZIP_COMPRESSION}
        values = np.full((18, 32), np.inf, dtype=np.float32)
        OpenEXR.File(header, {"Z": values}).write(str(empty / f"depth.{number:04d}.exr"))
    failed(cosmos("prepare", str(empty)), "the depth pass holds no finite values")
    assert videos_in(empty) == []


def test_disparity_depth_is_near_where_larger(cosmos, tmp_path) -> None:
    seq = write_sequence(tmp_path / "disp", passes=("color", "depth"), frames=[1], size=(64, 32))
    report = json.loads(
        ok(cosmos("prepare", str(seq), "--depth-convention", "disparity", "--json"))
    )
    depth = report["depth"]
    assert depth["convention"] == "disparity" and depth["near"] > depth["far"]
    with av.open(str(seq / "depth.mp4")) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="gray")
    # the same pass as distance: now the far (larger) values are the bright ones
    assert frame[-4:, -12:-4].mean() > 225 and frame[0, 1:9].mean() < 30
