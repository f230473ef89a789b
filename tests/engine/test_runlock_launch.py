from __future__ import annotations

from pathlib import Path

import pytest

from cosmos_tui.config import Config, HostConfig, ProfileConfig
from cosmos_tui.domain import GenerationParams, Prompt, Run, RunState, RunType
from cosmos_tui.engine import launch
from cosmos_tui.engine.runlock import RunLock
from cosmos_tui.errors import ValidationError


def test_lock_is_exclusive_even_within_one_process(tmp_path: Path) -> None:
    first, second = RunLock(tmp_path / "rs_1"), RunLock(tmp_path / "rs_1")
    assert first.try_acquire() and first.held
    assert not second.try_acquire()
    assert not second.is_free()
    assert second.holder_pid() is not None
    first.release()
    assert second.is_free() and second.try_acquire()
    second.release()
    assert RunLock(tmp_path / "rs_2").try_acquire()


def layout() -> launch.RemoteLayout:
    return launch.RemoteLayout(home="/home/u", tool_dir="/home/u/.cosmos-tui", run_id="rs_1")


def test_layout_keeps_each_run_in_its_own_folder() -> None:
    paths = layout()
    assert paths.run_dir == "/home/u/.cosmos-tui/runs/rs_1"
    assert paths.output_dir == "/home/u/.cosmos-tui/runs/rs_1/output"
    assert paths.spec_path == "/home/u/.cosmos-tui/runs/rs_1/spec.json"
    assert paths.inputs_dir == "/home/u/.cosmos-tui/inputs"
    assert paths.resolve("repo") == "/home/u/repo" and paths.resolve("/abs") == "/abs"


def test_mounts_follow_cosmos_md_and_isolate_runs() -> None:
    host = HostConfig(name="h", hostname="x", checkpoints_dir="/data/ckpt")
    mounts = {m.target: m for m in launch.mounts_for(host, layout())}
    assert mounts["/workspace"].source == "/home/u/cosmos-transfer1"
    assert mounts["/workspace/checkpoints"].source == "/data/ckpt"
    assert mounts["/root/.cache/huggingface"].source == "/home/u/.cache/huggingface"
    assert mounts["/cosmos-tui/inputs"].read_only
    assert mounts["/cosmos-tui/run"].source == "/home/u/.cosmos-tui/runs/rs_1"
    assert not mounts["/cosmos-tui/run"].read_only
    inside = HostConfig(name="h", hostname="x", hf_cache_dir=None)
    targets = [m.target for m in launch.mounts_for(inside, layout())]
    assert "/workspace/checkpoints" not in targets  # inside the repo mount already
    assert "/root/.cache/huggingface" not in targets


def test_env_expands_local_variables_and_passes_hf_token() -> None:
    host = HostConfig(name="h", hostname="x", env={"A": "1", "B": "$SECRET", "C": "$MISSING"})
    env = launch.container_env(host, {"SECRET": "s3", "HF_TOKEN": "hf"})
    assert env == {"A": "1", "B": "s3", "HF_TOKEN": "hf", "PYTHONPATH": "/workspace"}


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        (None, "/workspace"),
        ("/opt/extra", "/workspace:/opt/extra"),
        ("/workspace:/opt/extra", "/workspace:/opt/extra"),
        ("/opt/a::/workspace", "/workspace:/opt/a"),
    ],
)
def test_pythonpath_always_names_the_repo_mount_first(configured, expected) -> None:
    env = {"PYTHONPATH": configured} if configured is not None else {}
    host = HostConfig(name="h", hostname="x", env=env)
    assert launch.container_env(host, {})["PYTHONPATH"] == expected


def test_one_builder_makes_every_container() -> None:
    host = HostConfig(name="h", hostname="x", shm_size="16g", env={"HF_TOKEN": "$T"})
    spec = launch.container_spec("rs_1", ["torchrun", "x.py"], "img:1", host, layout(),
                                 gpus=(1, 2), labels={"k": "v"}, environ={"T": "tok"})  # fmt: skip
    assert spec.workdir == "/workspace" == launch.CONTAINER_REPO
    assert spec.env == {"HF_TOKEN": "tok", "PYTHONPATH": "/workspace"}
    assert spec.command == ("torchrun", "x.py") and spec.gpus == (1, 2)
    assert spec.shm_size_bytes == 16 * 1024**3 and spec.labels == {"k": "v"}
    assert {m.target for m in spec.mounts} >= {"/workspace", "/cosmos-tui/run"}


def make_run(run_type: RunType = RunType.TRANSFER, **params: object) -> Run:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return Run(
        id="rs_1", prompt_id="ps_1", type=run_type, profile="transfer1",
        state=RunState.UPLOADING, params=GenerationParams(**params), created_at=now,
        updated_at=now,
    )  # fmt: skip


def test_spec_paths_point_inside_the_container() -> None:
    from datetime import UTC, datetime

    prompt = Prompt(id="ps_1", text="a cat", name=None, negative_prompt=None,
                    created_at=datetime.now(UTC))  # fmt: skip
    inputs = {"color": "/t/inputs/aa.mp4", "depth": "/t/inputs/bb.mp4"}
    spec = launch.build_run_spec(make_run(), prompt, inputs)
    assert spec["input_video_path"] == "/cosmos-tui/inputs/aa.mp4"
    assert spec["depth"]["input_control"] == "/cosmos-tui/inputs/bb.mp4"
    assert "input_control" not in spec["vis"]
    upscale = launch.build_run_spec(make_run(RunType.UPSCALE), None, {"color": "/t/inputs/aa.mp4"})
    assert upscale["upscale"]["control_weight"] == 0.5
    with pytest.raises(ValidationError):
        launch.build_run_spec(make_run(RunType.UPSCALE), None, {})


def test_command_is_the_profiles_torchrun_argv() -> None:
    config = Config(profiles={"transfer1": ProfileConfig(extra_args=["--x"])})
    argv = launch.build_command(make_run(num_gpus=2), config)
    assert argv[:2] == ["torchrun", "--nproc_per_node=2"]
    assert argv[argv.index("--controlnet_specs") + 1] == "/cosmos-tui/run/spec.json"
    assert argv[argv.index("--video_save_folder") + 1] == "/cosmos-tui/run/output"
    assert argv[-1] == "--x"
    image = launch.image_for(make_run(), HostConfig(name="h", hostname="x", docker_image="i:1"),
                             config)  # fmt: skip
    assert image == "i:1"
