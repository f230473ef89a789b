"""Seeds that fit every clip, and the frame rate of an input, read before anything is sent.

Upstream seeds clip ``i`` with ``seed + i`` (world_generation_pipeline.py:623) through
``np.random.RandomState`` (misc.py:181), which refuses seeds past 2**32 - 1; the number
of clips is ``ceil((frames - 1) / 120)`` (world_generation_pipeline.py:533-553).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cosmos_tui.domain import GenerationParams
from cosmos_tui.engine.profiles.transfer1 import LaunchPaths, build_argv
from cosmos_tui.engine.video_probe import VideoInfo, probe_video
from cosmos_tui.errors import ValidationError
from cosmos_tui.params import clip_count, validate_seed_for_clips
from tests.conftest import encode_video
from tests.fixtures.mp4 import mp4_bytes, write_mp4

LIMIT = 2**32 - 1


@pytest.mark.parametrize(
    ("frames", "clips"),
    [(1, 1), (16, 1), (120, 1), (121, 1), (122, 2), (241, 2), (242, 3), (1201, 10)],
)
def test_clip_count_follows_the_padding_rule(frames: int, clips: int) -> None:
    assert clip_count(frames) == clips


@pytest.mark.parametrize("clips", [1, 2, 10])
def test_seed_bound_is_exact(clips: int) -> None:
    validate_seed_for_clips(LIMIT - clips + 1, clips)  # the last clip gets exactly LIMIT
    with pytest.raises(ValidationError, match=f"at most {LIMIT - clips + 1}") as info:
        validate_seed_for_clips(LIMIT - clips + 2, clips)
    assert info.value.field == "seed"


@pytest.mark.parametrize("moov_first", [False, True])
@pytest.mark.parametrize("version", [0, 1])
def test_probe_reads_frames_and_fps_of_the_video_track(
    tmp_path: Path, moov_first: bool, version: int
) -> None:
    path = write_mp4(tmp_path / "v.mp4", frames=241, fps=30, moov_first=moov_first,
                     mdhd_version=version)  # fmt: skip
    assert probe_video(path) == VideoInfo(frames=241, fps=30)


def test_probe_of_real_encoded_videos() -> None:
    assets = Path(__file__).parents[2] / "cosmos_tui" / "sandbox" / "assets"
    assert probe_video(assets / "robot.mp4") == VideoInfo(frames=16, fps=8)


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00\x00\x00\x18ftypmp42", b"\x00\x00\x00\x08moov", b"\xff" * 64,
     mp4_bytes(10, 24)[:-20]],
)  # fmt: skip
def test_probe_of_unreadable_files_is_none(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "v.mp4"
    path.write_bytes(content)
    assert probe_video(path) is None
    assert probe_video(tmp_path / "missing.mp4") is None


def test_upscale_argv_carries_the_fps() -> None:
    argv = build_argv(GenerationParams(fps=30), LaunchPaths("s.json", "out"), upscale=True)
    assert argv[argv.index("--fps") + 1] == "30"
    assert argv[argv.index("--num_steps") + 1] == "10"
    assert "--seed" not in argv


async def test_create_run_refuses_a_seed_past_the_last_clip(tmp_path: Path) -> None:
    from cosmos_tui.config import Config, PathsConfig
    from cosmos_tui.services import Workbench

    folder = tmp_path / "videos"
    encode_video(folder / "color.mp4", frames=241)  # 2 clips; a prompt's inputs are decoded
    config = Config(paths=PathsConfig(data_dir=str(tmp_path / "data")))
    async with Workbench.open(config) as bench:
        prompt = await bench.create_prompt("a dam at night", folder)
        run = await bench.create_run(prompt.id, {"seed": LIMIT - 1})
        assert run.params.seed == LIMIT - 1
        with pytest.raises(ValidationError, match="2 clips") as info:
            await bench.create_run(prompt.id, {"seed": LIMIT})
        assert "at most 4294967294" in info.value.message
        assert len((await bench.list_runs()).items) == 1


async def test_upscale_of_a_file_plays_at_the_files_frame_rate(tmp_path: Path) -> None:
    from cosmos_tui.config import Config, PathsConfig
    from cosmos_tui.services import Workbench

    config = Config(paths=PathsConfig(data_dir=str(tmp_path / "data")))
    async with Workbench.open(config) as bench:
        fast = await bench.extras.create_upscale(str(write_mp4(tmp_path / "a.mp4", 90, fps=60)))
        assert fast.params.fps == 60
        unknown = tmp_path / "b.mp4"
        unknown.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"x" * 100)  # no moov: default
        assert (await bench.extras.create_upscale(str(unknown))).params.fps == 24


def test_a_recorded_run_with_an_overflowing_seed_fails_before_launch(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from cosmos_tui.domain import InputFile, Prompt, Run, RunState, RunType
    from cosmos_tui.engine import launch

    video = write_mp4(tmp_path / "color.mp4", frames=361)  # 3 clips
    now = datetime.now(UTC)
    item = InputFile(role="color", path=video, sha256="ab" * 32, size=video.stat().st_size)
    prompt = Prompt(id="ps_1", text="a cat", name=None, negative_prompt=None, created_at=now,
                    inputs=(item,))  # fmt: skip

    def run(seed: int) -> Run:
        return Run(id="rs_1", prompt_id="ps_1", type=RunType.TRANSFER, profile="transfer1",
                   state=RunState.UPLOADING, params=GenerationParams(seed=seed),
                   created_at=now, updated_at=now)  # fmt: skip

    remote = {"color": "/t/inputs/ab.mp4"}
    assert launch.build_run_spec(run(LIMIT - 2), prompt, remote)["seed"] == LIMIT - 2
    with pytest.raises(ValidationError, match="3 clips"):
        launch.build_run_spec(run(LIMIT - 1), prompt, remote)
