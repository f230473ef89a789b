"""Cosmos 3 runs end to end on the real sshd + dockerd, with its stand-in as the model.

The image is busybox with cosmos3_standin.sh installed as ``python`` and ``torchrun``; the
test user's home holds a cosmos-framework checkout (its pyproject.toml is what the
image's install step needs) and a Hugging Face cache mounted into the container.
"""

from __future__ import annotations

import hashlib
import pwd
from pathlib import Path

import pytest

from cosmos_tui.domain import RunState
from cosmos_tui.engine.logs import read_log_lines
from tests.fixtures.hosts import TEST_USER


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_video2video_transfer_run_end_to_end(cosmos3_config, bench_for, video_dir) -> None:
    bench = await bench_for(cosmos3_config())
    prompt = await bench.create_prompt("a wet street at night, photoreal", video_dir)
    options = {"mode": "video2video", "hints": {"edge": {"weight": 0.6, "preset": "high"},
               "depth": 0.4}, "num_steps": 5, "resolution": "480"}  # fmt: skip
    run = await bench.create_run(prompt.id, {"profile": "cosmos3", "options": options})
    assert run.profile == "cosmos3"
    final = await bench.runs.drive(run.id)
    assert final.state == RunState.COMPLETED, final.failure_message
    out = bench.output_dir(run.id)
    assert sha(out / run.id / "vision.mp4") == sha(video_dir / "color.mp4")
    assert set(final.outputs) >= {f"{run.id}/vision.mp4", f"{run.id}/control_edge.mp4",
                                  f"{run.id}/control_depth.mp4", f"{run.id}/sample_args.json",
                                  f"{run.id}/sample_outputs.json", "run.log"}  # fmt: skip
    assert final.spec["depth"]["control_path"].startswith("/cosmos-tui/inputs/")
    assert final.progress is not None and final.progress.percent == 100.0
    log = read_log_lines(out / "run.log")
    assert any("hf download --format=json nvidia/Cosmos3-Nano" in line for line in log)
    assert any("Saved transfer outputs to '/cosmos-tui/run/output/" in line for line in log)


async def test_text2video_run_then_the_cache_serves_a_tokenless_run(
    cosmos3_config, bench_for, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = await bench_for(cosmos3_config())
    prompt = await bench.create_prompt("a cat surfing a wave", None)
    quick = {"profile": "cosmos3", "options": {"num_steps": 3, "guardrails": "off"}}
    run = await bench.create_run(prompt.id, quick)
    final = await bench.runs.drive(run.id)
    assert final.state == RunState.COMPLETED, final.failure_message
    assert final.spec["model_mode"] == "text2video" and "vision_path" not in final.spec
    assert (bench.output_dir(run.id) / run.id / "vision.mp4").read_bytes()[4:8] == b"ftyp"
    monkeypatch.delenv("TEST_COSMOS3_TOKEN")
    again = await bench.runs.drive((await bench.create_run(prompt.id, quick)).id)
    assert again.state == RunState.COMPLETED, again.failure_message
    log = read_log_lines(bench.output_dir(again.id) / "run.log")
    assert not any("hf download" in line for line in log)  # weights came from the cache


async def test_missing_token_with_an_empty_cache_is_refused_before_upload(
    cosmos3_config, bench_for, video_dir, monkeypatch: pytest.MonkeyPatch, docker_daemon
) -> None:
    monkeypatch.delenv("TEST_COSMOS3_TOKEN")
    bench = await bench_for(cosmos3_config())
    prompt = await bench.create_prompt("a street", video_dir)
    edge = {"profile": "cosmos3", "options": {"checkpoint": "Cosmos3-Edge"}}
    run = await bench.create_run(prompt.id, edge)
    final = await bench.runs.drive(run.id)
    assert final.state == RunState.FAILED
    assert "no Hugging Face token" in (final.failure_message or "")
    assert "Cosmos3-Edge" in (final.failure_message or "")
    assert final.container_id is None and final.spec is None  # nothing uploaded or started
    listed = docker_daemon.cli("ps", "-aq", "--filter", f"label=cosmos.run_id={run.id}")
    assert listed.stdout.decode().strip() == ""


async def test_gated_download_is_diagnosed(cosmos3_config, bench_for) -> None:
    bench = await bench_for(cosmos3_config("gated"))
    prompt = await bench.create_prompt("a cat", None)
    run = await bench.create_run(
        prompt.id, {"profile": "cosmos3", "num_gpus": 1,
                    "options": {"mode": "text2image", "checkpoint": "Cosmos3-Edge"}},
    )  # fmt: skip
    final = await bench.runs.drive(run.id)
    assert final.state == RunState.FAILED
    assert final.failure_kind is not None and final.failure_kind.value == "download"
    assert "huggingface.co/nvidia/Cosmos3-Edge" in (final.failure_message or "")


SUPER = {"profile": "cosmos3", "num_gpus": 4,
         "options": {"mode": "text2video", "checkpoint": "Cosmos3-Super", "num_steps": 3,
                     "guardrails": "off"}}  # fmt: skip


async def test_super_on_gpus_under_80_gb_is_refused_before_upload(
    cosmos3_config, bench_for, fake_gpu, docker_daemon
) -> None:
    # Super is 32B and "does not fit on a single 80 GB H100" (infer.md:77, 122-137): four
    # 48 GB cards are not its four 80 GB ones
    fake_gpu.set_variant("l40s4")
    bench = await bench_for(cosmos3_config())
    prompt = await bench.create_prompt("a cat surfing a wave", None)
    run = await bench.create_run(prompt.id, SUPER)
    final = await bench.runs.drive(run.id)
    assert final.state == RunState.FAILED
    message = final.failure_message or ""
    assert message.startswith("refused before anything was started: Cosmos3-Super")
    assert "80 GB" in message and "log lines" not in message
    assert "GPU 0 (NVIDIA L40S) has 48 GB" in message and "--size nano" in message
    assert final.container_id is None and final.spec is None  # nothing uploaded or started
    listed = docker_daemon.cli("ps", "-aq", "--filter", f"label=cosmos.run_id={run.id}")
    assert listed.stdout.decode().strip() == ""


async def test_super_on_four_80_gb_gpus_runs(cosmos3_config, bench_for, fake_gpu) -> None:
    fake_gpu.set_variant("8gpu")
    bench = await bench_for(cosmos3_config())
    prompt = await bench.create_prompt("a cat surfing a wave", None)
    run = await bench.create_run(prompt.id, SUPER)
    final = await bench.runs.drive(run.id)
    assert final.state == RunState.COMPLETED, final.failure_message
    assert len(final.gpus) == 4


async def test_a_local_checkpoint_folder_on_the_host_is_mounted_for_the_run(
    cosmos3_config, bench_for, tmp_path
) -> None:
    # --checkpoint-path takes a registered name or an existing folder (common.py:657-683):
    # the host's folder is mounted read-only at its own path, so the double finds it
    import pwd
    import uuid

    from tests.fixtures.hosts import TEST_USER

    home = Path(pwd.getpwnam(TEST_USER).pw_dir)
    folder = home / f"ckpt-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    try:
        bench = await bench_for(cosmos3_config())
        prompt = await bench.create_prompt("a cat surfing a wave", None)
        options = {"num_steps": 3, "guardrails": "off", "checkpoint": str(folder)}
        run = await bench.create_run(prompt.id, {"profile": "cosmos3", "options": options})
        final = await bench.runs.drive(run.id)
        assert final.state == RunState.COMPLETED, final.failure_message
        log = read_log_lines(bench.output_dir(run.id) / "run.log")
        assert not any("hf download" in line and "Cosmos3" in line for line in log)
        gone = home / "ckpt-missing"
        options = {**options, "checkpoint": str(gone)}
        again = await bench.create_run(prompt.id, {"profile": "cosmos3", "options": options})
        failed = await bench.runs.drive(again.id)
        assert failed.state == RunState.FAILED and failed.container_id is None
        assert f"checkpoint {gone} does not exist" in (failed.failure_message or "")
    finally:
        folder.rmdir()


async def test_a_run_whose_gpu_kernels_failed_completes_with_a_warning(
    cosmos3_config, bench_for
) -> None:
    # cosmos-framework#42: Cosmos3-Nano on an ARM64 GB300 exits 0 with a grey image and
    # gibberish text after "Failed to initialize the CUTLASS kernel. Last CUDA error is:
    # no error": the outputs are there, and they are not to be trusted.
    quick = {"profile": "cosmos3", "options": {"num_steps": 3, "guardrails": "off"}}
    bench = await bench_for(cosmos3_config("cutlass"))
    prompt = await bench.create_prompt("a cat surfing a wave", None)
    final = await bench.runs.drive((await bench.create_run(prompt.id, quick)).id)
    assert final.state == RunState.COMPLETED, final.failure_message
    said = final.events[-1].reason
    assert said.startswith("3 output file(s) downloaded and verified; but the log warned")
    assert "Failed to initialize the CUTLASS kernel" in said and "may be invalid" in said
    clean = await bench_for(cosmos3_config())
    prompt = await clean.create_prompt("a cat surfing a wave", None)
    final = await clean.runs.drive((await clean.create_run(prompt.id, quick)).id)
    assert final.state == RunState.COMPLETED and "warned" not in final.events[-1].reason


async def test_a_cache_without_the_guardrail_or_with_a_cut_download_needs_a_token(
    cosmos3_config, bench_for, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run with guardrails off fills the cache with the model alone: a tokenless run with
    # them on would download the gated nvidia/Cosmos-Guardrail1 in its container and fail
    # there. A download cut mid-file leaves a blob named *.incomplete (huggingface_hub):
    # the model is not there yet either. Both are refused before anything is uploaded.
    config = cosmos3_config()
    bench = await bench_for(config)
    prompt = await bench.create_prompt("a cat surfing a wave", None)
    quick = {"profile": "cosmos3", "options": {"num_steps": 3, "guardrails": "off"}}
    first = await bench.runs.drive((await bench.create_run(prompt.id, quick)).id)
    assert first.state == RunState.COMPLETED, first.failure_message
    monkeypatch.delenv("TEST_COSMOS3_TOKEN")
    guarded = {"profile": "cosmos3", "options": {"num_steps": 3}}
    refused = await bench.runs.drive((await bench.create_run(prompt.id, guarded)).id)
    assert refused.state == RunState.FAILED
    message = refused.failure_message or ""
    assert "no Hugging Face token" in message and "Cosmos-Guardrail1" in message, message
    assert "Cosmos3-Nano" not in message  # that one is there
    assert refused.container_id is None and refused.spec is None
    home = Path(pwd.getpwnam(TEST_USER).pw_dir)
    model = home / config.profiles["cosmos3"].hf_cache_dir / "hub" / "models--nvidia--Cosmos3-Nano"
    (model / "blobs").mkdir(exist_ok=True)
    (model / "blobs" / "0a1b2c.incomplete").write_bytes(b"half a shard")
    cut = await bench.runs.drive((await bench.create_run(prompt.id, quick)).id)
    assert cut.state == RunState.FAILED and cut.container_id is None
    message = cut.failure_message or ""
    assert "Cosmos3-Nano" in message and "interrupted" in message, message
    # the token is back: the run goes (the download resumes in the container)
    monkeypatch.setenv("TEST_COSMOS3_TOKEN", "hf_test_token")
    done = await bench.runs.drive((await bench.create_run(prompt.id, guarded)).id)
    assert done.state == RunState.COMPLETED, done.failure_message
