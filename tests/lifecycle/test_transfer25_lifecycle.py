"""Transfer2.5 runs through the one launch path on the real sshd + dockerd.

The image is busybox with transfer25_standin.sh (the double of upstream's
examples/inference.py) installed as ``python`` and ``torchrun``. What the profile seam
adds to the lifecycle is checked here: the sample and argv, the host's env table, the
run's own variables (the distilled checkpoint), the download of ``<run id>.mp4`` and the
diagnosis of a gated download.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cosmos_tui.config import Config, ProfileConfig
from cosmos_tui.domain import FailureKind, RunState
from cosmos_tui.engine import launch
from cosmos_tui.engine.logs import read_log_lines
from cosmos_tui.errors import ValidationError
from cosmos_tui.sandbox.standin import transfer25_standin_path
from tests.lifecycle.conftest import user_hf_cache

TAG = "cosmos-test/transfer25-lifecycle:latest"


@pytest.fixture(scope="session")
def t25_image(build_image: Callable[..., str]) -> str:
    script = transfer25_standin_path().read_text()
    return build_image(TAG, {"/bin/python": script, "/bin/torchrun": script}, cmd=["python"])


@pytest.fixture
def t25_config(
    make_config: Callable[..., Config], t25_image: str, monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., Config]]:  # fmt: skip
    """Return ``make(scenario, **profile_fields)``: a config with a transfer2_5 table."""
    monkeypatch.setenv("TEST_T25_TOKEN", "hf_t25_test_token_value")
    with user_hf_cache("hf-cache-t25") as cache:

        def _make(scenario: str = "ok", **fields: Any) -> Config:
            config = make_config(scenario)
            settings = ProfileConfig(
                image=t25_image, extra_args=[], hf_cache_dir=cache, token_env="TEST_T25_TOKEN",
                **fields,
            )  # fmt: skip
            # the TOML table name: [profiles.transfer2_5]
            return dataclasses.replace(
                config, profiles={**config.profiles, "transfer2_5": settings}
            )

        yield _make


async def test_an_edge_transfer_runs_end_to_end(t25_config, bench_for, video_dir) -> None:
    bench = await bench_for(t25_config())
    prompt = await bench.create_prompt("a wet street at night, photoreal", video_dir)
    options = {"hints": [{"hint": "edge", "weight": 0.7}], "resolution": "480"}
    run = await bench.create_run(
        prompt.id, {"profile": "transfer2.5", "num_steps": 5, "options": options}
    )
    assert run.profile == "transfer2.5"
    final = await bench.runs.drive(run.id)
    assert final.state == RunState.COMPLETED, final.failure_message
    out = bench.output_dir(run.id)
    assert f"{run.id}.mp4" in {Path(name).name for name in final.outputs}
    assert final.spec["name"] == run.id
    assert final.spec["edge"]["control_weight"] == 0.7
    assert final.progress is not None and final.progress.percent == 100.0
    log = read_log_lines(out / "run.log")
    assert not any("hf_t25_test_token_value" in line for line in log)


async def test_shared_weights_become_the_controls(t25_config, bench_for, video_dir) -> None:
    bench = await bench_for(t25_config())
    prompt = await bench.create_prompt("a street", video_dir)
    run = await bench.create_run(
        prompt.id, {"profile": "transfer2.5", "num_steps": 3, "depth_weight": 0.4,
                    "edge_weight": 0.0, "vis_weight": 0.0, "seg_weight": 0.0},
    )  # fmt: skip
    final = await bench.runs.drive(run.id)
    assert final.state == RunState.COMPLETED, final.failure_message
    assert final.spec["depth"]["control_weight"] == 0.4
    assert "edge" not in final.spec and "vis" not in final.spec


async def test_the_distilled_checkpoint_gets_its_variable(t25_config, bench_for, video_dir) -> None:
    bench = await bench_for(t25_config())
    prompt = await bench.create_prompt("a street", video_dir)
    options = {"hints": [{"hint": "edge", "weight": 1.0}], "distilled": True}
    with pytest.raises(ValidationError, match="set num_steps to 4"):
        await bench.create_run(prompt.id, {"profile": "transfer2.5", "options": options})
    run = await bench.create_run(
        prompt.id, {"profile": "transfer2.5", "num_steps": 4, "options": options}
    )
    final = await bench.runs.drive(run.id)
    # upstream registers edge/distilled only with COSMOS_EXPERIMENTAL_CHECKPOINTS=1
    assert final.state == RunState.COMPLETED, final.failure_message


async def test_a_gated_download_is_diagnosed(t25_config, bench_for, video_dir) -> None:
    # the scenario reaches the stand-in through the host's [hosts.env] table
    bench = await bench_for(t25_config("gated"))
    prompt = await bench.create_prompt("a street", video_dir)
    run = await bench.create_run(prompt.id, {"profile": "transfer2.5", "num_steps": 3})
    final = await bench.runs.drive(run.id)
    assert final.state == RunState.FAILED
    assert final.failure_kind == FailureKind.DOWNLOAD, final.failure_message


async def test_a_text_only_prompt_is_refused_with_what_to_do(t25_config, bench_for) -> None:
    bench = await bench_for(t25_config())
    prompt = await bench.create_prompt("a cat surfing", None)
    with pytest.raises(ValidationError, match=r"input video.*use cosmos3"):
        await bench.create_run(prompt.id, {"profile": "transfer2.5"})


def test_the_profile_token_is_masked_in_logs(t25_config) -> None:
    config = t25_config()
    host = config.hosts[0]
    environ = {"TEST_T25_TOKEN": "hf_t25_secret_abcdef", "HF_TOKEN": ""}
    assert "hf_t25_secret_abcdef" in launch.log_secrets(host, environ, "transfer2.5", config)
    assert "hf_t25_secret_abcdef" not in launch.log_secrets(host, environ, "transfer1", config)


async def test_no_token_on_an_empty_cache_is_refused_before_upload(
    t25_config, bench_for, video_dir, monkeypatch: pytest.MonkeyPatch, docker_daemon
) -> None:
    monkeypatch.delenv("TEST_T25_TOKEN")
    bench = await bench_for(t25_config())
    prompt = await bench.create_prompt("a street", video_dir)
    run = await bench.create_run(prompt.id, {"profile": "transfer2.5", "num_steps": 3})
    final = await bench.runs.drive(run.id)
    assert final.state == RunState.FAILED
    message = final.failure_message or ""
    assert "no Hugging Face token" in message and "$TEST_T25_TOKEN" in message
    assert "[profiles.transfer2_5]" in message and "Cosmos-Transfer2.5-2B" in message
    assert final.container_id is None and final.spec is None  # nothing uploaded or started
    listed = docker_daemon.cli("ps", "-aq", "--filter", f"label=cosmos.run_id={run.id}")
    assert listed.stdout.decode().strip() == ""


async def test_a_warm_cache_serves_a_tokenless_run(
    t25_config, bench_for, video_dir, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = await bench_for(t25_config())
    prompt = await bench.create_prompt("a street", video_dir)
    quick = {"profile": "transfer2.5", "num_steps": 3}
    first = await bench.runs.drive((await bench.create_run(prompt.id, quick)).id)
    assert first.state == RunState.COMPLETED, first.failure_message
    monkeypatch.delenv("TEST_T25_TOKEN")
    again = await bench.runs.drive((await bench.create_run(prompt.id, quick)).id)
    assert again.state == RunState.COMPLETED, again.failure_message


async def test_a_cache_filled_without_guardrails_needs_a_token_for_a_guarded_run(
    t25_config, bench_for, video_dir, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --disable-guardrails skips the gated nvidia/Cosmos-Guardrail1 download
    # (docs/setup.md:112-115): the cache then has the model alone, and a tokenless run with
    # the guardrails on would fail in its container. It is refused before the upload.
    bench = await bench_for(t25_config())
    prompt = await bench.create_prompt("a street", video_dir)
    bare = {"profile": "transfer2.5", "num_steps": 3, "options": {"disable_guardrails": True}}
    first = await bench.runs.drive((await bench.create_run(prompt.id, bare)).id)
    assert first.state == RunState.COMPLETED, first.failure_message
    monkeypatch.delenv("TEST_T25_TOKEN")
    guarded = {"profile": "transfer2.5", "num_steps": 3}
    refused = await bench.runs.drive((await bench.create_run(prompt.id, guarded)).id)
    message = refused.failure_message or ""
    assert refused.state == RunState.FAILED and refused.container_id is None
    assert "Cosmos-Guardrail1" in message and "Cosmos-Transfer2.5-2B" not in message, message
    again = await bench.runs.drive((await bench.create_run(prompt.id, bare)).id)
    assert again.state == RunState.COMPLETED, again.failure_message


async def test_a_missing_token_file_is_refused(t25_config, bench_for, video_dir) -> None:
    bench = await bench_for(t25_config(token_file="no-such-token"))
    prompt = await bench.create_prompt("a street", video_dir)
    run = await bench.create_run(prompt.id, {"profile": "transfer2.5", "num_steps": 3})
    final = await bench.runs.drive(run.id)
    assert final.state == RunState.FAILED
    assert "no-such-token ([profiles.transfer2_5] token_file) is missing" in (
        final.failure_message or ""
    )


async def test_a_token_in_the_hosts_env_table_is_enough(
    t25_config, bench_for, video_dir, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_T25_TOKEN")
    monkeypatch.setenv("TEAM_HF", "hf_from_the_host_table")
    config = t25_config()
    host = dataclasses.replace(config.hosts[0], env={**config.hosts[0].env, "HF_TOKEN": "$TEAM_HF"})
    bench = await bench_for(dataclasses.replace(config, hosts=[host]))
    prompt = await bench.create_prompt("a street", video_dir)
    run = await bench.create_run(prompt.id, {"profile": "transfer2.5", "num_steps": 3})
    final = await bench.runs.drive(run.id)
    assert final.state == RunState.COMPLETED, final.failure_message


async def test_a_controls_own_videos_on_this_machine_go_up_with_the_run(
    t25_config, bench_for, video_dir, tmp_path
) -> None:
    """A control video and a mask given by local path are uploaded and named in the sample.

    The double refuses a ``control_path`` or ``mask_path`` that is not a file in the
    container (config.py:431, :435), so the run completing shows they arrived.
    """
    import hashlib

    from tests.conftest import write_video

    control = write_video(tmp_path / "elsewhere" / "my depth.mp4", b"my own depth pass ")
    mask = write_video(tmp_path / "elsewhere" / "car_mask.mp4", b"white where the car is ")
    bench = await bench_for(t25_config())
    prompt = await bench.create_prompt("a car on a coast road", video_dir)
    hints = [
        {"hint": "depth", "weight": 0.5, "control_path": str(control), "mask_path": str(mask)},
        {"hint": "edge", "weight": 0.3, "mask_prompt": "the car"},
    ]
    run = await bench.create_run(
        prompt.id, {"profile": "transfer2.5", "num_steps": 3, "options": {"hints": hints}}
    )
    final = await bench.runs.drive(run.id)
    assert final.state == RunState.COMPLETED, final.failure_message
    for key, path in (("control_path", control), ("mask_path", mask)):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert final.spec["depth"][key] == f"{launch.CONTAINER_INPUTS}/{digest}.mp4"
    assert final.spec["edge"]["mask_prompt"] == "the car"
    assert "control_path" not in final.spec["edge"]  # computed by the model
    # the prompt's own depth.mp4 is not what this run sent
    own = hashlib.sha256((video_dir / "depth.mp4").read_bytes()).hexdigest()
    assert own not in final.spec["depth"]["control_path"]


async def test_a_control_video_that_is_not_on_this_machine_is_refused(
    t25_config, bench_for, video_dir, tmp_path
) -> None:
    bench = await bench_for(t25_config())
    prompt = await bench.create_prompt("a street", video_dir)
    missing = tmp_path / "nowhere" / "depth.mp4"
    for key, field in (("control_path", "depth_control"), ("mask_path", "depth_mask")):
        hints = [{"hint": "depth", "weight": 0.5, key: str(missing)}]
        with pytest.raises(ValidationError) as caught:
            await bench.create_run(
                prompt.id, {"profile": "transfer2.5", "options": {"hints": hints}}
            )
        assert str(missing) in caught.value.message
        assert "on this machine" in caught.value.message
        assert caught.value.field == field
    folder = tmp_path / "a folder.mp4"
    folder.mkdir()
    hints = [{"hint": "depth", "weight": 0.5, "control_path": str(folder)}]
    with pytest.raises(ValidationError, match="not a file"):
        await bench.create_run(prompt.id, {"profile": "transfer2.5", "options": {"hints": hints}})
    assert not (await bench.list_runs()).items


async def test_a_control_video_edited_after_the_run_was_made_fails_the_run(
    t25_config, bench_for, video_dir, tmp_path
) -> None:
    from tests.conftest import write_video

    control = write_video(tmp_path / "mine" / "depth.mp4", b"first depth pass ")
    bench = await bench_for(t25_config())
    prompt = await bench.create_prompt("a street", video_dir)
    hints = [{"hint": "depth", "weight": 0.5, "control_path": str(control)}]
    run = await bench.create_run(prompt.id, {"profile": "transfer2.5", "options": {"hints": hints}})
    write_video(control, b"other depth pass ")  # same size, other content
    final = await bench.runs.drive(run.id)
    assert final.state == RunState.FAILED
    assert str(control) in (final.failure_message or "")


async def test_recorded_files_are_made_by_the_tool_never_taken_from_the_caller(
    t25_config, bench_for, video_dir, tmp_path
) -> None:
    bench = await bench_for(t25_config())
    prompt = await bench.create_prompt("a street", video_dir)
    planted = {"path": "/etc/passwd", "sha256": "0" * 64, "size": 1}
    options = {"hints": [{"hint": "edge", "weight": 0.5}], "files": [planted]}
    run = await bench.create_run(prompt.id, {"profile": "transfer2.5", "options": options})
    assert run.params.run_files() == () and "files" not in run.params.options


async def test_a_style_image_on_this_machine_goes_up_with_the_run(
    t25_config, bench_for, video_dir, tmp_path
) -> None:
    """``image_context_path`` (config.py:489): a reference image that sets the style.

    It is a file of this machine, uploaded content-addressed with its extension (upstream
    reads the kind from it, utils.py:335-337), and the double logs the path it read.
    """
    import hashlib

    style = tmp_path / "refs" / "Sunset.JPG"
    style.parent.mkdir()
    style.write_bytes(b"\xff\xd8\xff\xe0 a sunset over the sea")
    bench = await bench_for(t25_config())
    prompt = await bench.create_prompt("a coast road at dusk", video_dir)
    options = {"hints": [{"hint": "edge", "weight": 0.6}], "image_context_path": str(style)}
    run = await bench.create_run(
        prompt.id, {"profile": "transfer2.5", "num_steps": 3, "options": options}
    )
    final = await bench.runs.drive(run.id)
    assert final.state == RunState.COMPLETED, final.failure_message
    digest = hashlib.sha256(style.read_bytes()).hexdigest()
    uploaded = f"{launch.CONTAINER_INPUTS}/{digest}.jpg"
    assert final.spec["image_context_path"] == uploaded
    lines = read_log_lines(bench.runs.log_path(run.id))
    assert any(f"Processing image context from: {uploaded}" in line for line in lines)


async def test_a_cluster_stages_the_style_image_with_a_lower_case_extension(
    t25_config, bench_for, video_dir, tmp_path
) -> None:
    """Upstream's image branch tests ``endswith(".png")`` as given (utils.py:211)."""
    from cosmos_tui.config import ClusterConfig
    from cosmos_tui.engine.ray_stage import SharedStage

    style = tmp_path / "Sunset.PNG"
    style.write_bytes(b"\x89PNG\r\n\x1a\n a sunset")
    bench = await bench_for(t25_config())
    prompt = await bench.create_prompt("a coast road at dusk", video_dir)
    options = {"hints": [{"hint": "edge", "weight": 0.6}], "image_context_path": str(style)}
    run = await bench.create_run(prompt.id, {"profile": "transfer2.5", "options": options})
    stage = SharedStage(ClusterConfig(name="c", shared_dir=str(tmp_path / "shared")))
    layout = await stage.layout(run.id, 1)
    spec = await stage.put(run, await bench.get_prompt(prompt.id), layout)
    staged = [p.name for p in Path(layout.inputs_dir).iterdir() if p.name.endswith("png")]
    assert staged and all(name.endswith(".png") for name in staged)
    assert spec["image_context_path"].endswith(".png")


@pytest.mark.parametrize(
    ("name", "extra", "words"),
    [
        ("gone.png", {}, "not on this machine"),
        ("style.gif", {}, ".png, .jpg, .jpeg"),
        ("style.png", {"vis": 0.5}, "vis control"),
        ("style.png", {"context_frame_index": 4}, "frame of the input video"),
    ],
)
async def test_a_style_image_upstream_would_refuse_is_refused_when_the_run_is_made(
    t25_config, bench_for, video_dir, tmp_path, name, extra, words
) -> None:
    bench = await bench_for(t25_config())
    prompt = await bench.create_prompt("a coast road", video_dir)
    if name != "gone.png":
        (tmp_path / name).write_bytes(b"an image")
    hints = [{"hint": "edge", "weight": 0.6}]
    if "vis" in extra:
        hints.append({"hint": "vis", "weight": extra.pop("vis")})
    options = {"hints": hints, "image_context_path": str(tmp_path / name), **extra}
    with pytest.raises(ValidationError) as caught:
        await bench.create_run(prompt.id, {"profile": "transfer2.5", "options": options})
    assert words in caught.value.message
    assert caught.value.field == "image_context_path"
    assert not (await bench.list_runs()).items


async def test_a_style_frame_past_the_input_videos_end_is_refused(
    t25_config, bench_for, video_dir
) -> None:
    """Upstream takes ``frames[index]`` of the whole video, counted from 0 (utils.py:339-347)."""
    from cosmos_tui.engine.video_probe import probe_video

    frames = probe_video(video_dir / "color.mp4").frames
    bench = await bench_for(t25_config())
    prompt = await bench.create_prompt("a coast road", video_dir)
    hints = [{"hint": "edge", "weight": 0.6}]
    with pytest.raises(ValidationError) as caught:
        await bench.create_run(
            prompt.id,
            {"profile": "transfer2.5",
             "options": {"hints": hints, "context_frame_index": frames}},
        )  # fmt: skip
    assert caught.value.field == "context_frame_index"
    assert f"has {frames} frames" in caught.value.message
    assert f"give 1 to {frames - 1}" in caught.value.message
    run = await bench.create_run(
        prompt.id,
        {"profile": "transfer2.5",
         "options": {"hints": hints, "context_frame_index": frames - 1}},
    )  # fmt: skip
    assert run.params.options["context_frame_index"] == frames - 1
