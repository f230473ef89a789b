"""Each failure kind, classified from a real container on the real test host."""

from __future__ import annotations

import dataclasses

import pytest

from cosmos_tui.domain import FailureKind, RunState


@pytest.mark.parametrize(
    ("scenario", "state", "kind"),
    [
        ("oom", RunState.FAILED, FailureKind.GPU_OOM),
        ("host_oom", RunState.FAILED, FailureKind.HOST_OOM),
        ("missing_ckpt", RunState.FAILED, FailureKind.MISSING_CHECKPOINT),
        ("guardrail", RunState.BLOCKED, FailureKind.GUARDRAIL),
        ("spec_error", RunState.FAILED, FailureKind.SPEC_ERROR),
        ("crash", RunState.FAILED, FailureKind.UNKNOWN),
    ],
)
async def test_model_failures_are_classified_and_not_retried(
    make_config, bench_for, video_dir, scenario, state, kind
) -> None:
    bench = await bench_for(make_config(scenario))
    prompt = await bench.create_prompt("a prompt", video_dir)
    final = await bench.runs.drive((await bench.create_run(prompt.id)).id)
    assert final.state == state
    assert final.failure_kind == kind
    assert final.attempt == 1
    assert final.failure_message and final.events[-1].reason == final.failure_message
    failure = await bench.runs.failure(final.id)
    assert failure is not None and failure.context


async def test_missing_image_fails_fast_without_retry(make_config, bench_for, video_dir) -> None:
    config = make_config()
    host = dataclasses.replace(config.hosts[0], docker_image="cosmos-test/nothing:here")
    bench = await bench_for(dataclasses.replace(config, hosts=[host]))
    prompt = await bench.create_prompt("a prompt", video_dir)
    final = await bench.runs.drive((await bench.create_run(prompt.id)).id)
    assert final.state == RunState.FAILED
    assert final.failure_kind == FailureKind.IMAGE_MISSING
    assert "docker pull" in final.failure_message and final.attempt == 1


async def test_gpu_request_without_toolkit_is_explained(make_config, bench_for, video_dir) -> None:
    config = make_config()
    host = dataclasses.replace(config.hosts[0], gpu_request=True)
    bench = await bench_for(dataclasses.replace(config, hosts=[host]))
    prompt = await bench.create_prompt("a prompt", video_dir)
    final = await bench.runs.drive((await bench.create_run(prompt.id)).id)
    assert final.state == RunState.FAILED
    assert final.failure_kind == FailureKind.GPU_UNAVAILABLE
    assert "gpu_request = false" in final.failure_message


async def test_docker_daemon_down_is_retried_then_reported(
    make_config, bench_for, video_dir
) -> None:
    config = make_config()
    host = dataclasses.replace(config.hosts[0], docker_socket="/nonexistent/docker.sock")
    bench = await bench_for(dataclasses.replace(config, hosts=[host]))
    prompt = await bench.create_prompt("a prompt", video_dir)
    final = await bench.runs.drive((await bench.create_run(prompt.id)).id)
    assert final.state == RunState.FAILED
    assert final.failure_kind == FailureKind.DOCKER_DOWN
    assert final.attempt == config.retry.max_attempts
    retries = [e for e in final.events if e.to_state == RunState.QUEUED and e.from_state]
    assert len(retries) == config.retry.max_attempts - 1
    assert "gave up after 3 attempts" in final.failure_message


async def test_unreachable_host_is_retried_then_reported(make_config, bench_for, video_dir) -> None:
    config = make_config()
    down = dataclasses.replace(config.hosts[0], port=1)  # nothing listens there
    bench = await bench_for(dataclasses.replace(config, hosts=[down]))
    prompt = await bench.create_prompt("a prompt", video_dir)
    final = await bench.runs.drive((await bench.create_run(prompt.id)).id)
    assert final.state == RunState.FAILED
    assert final.failure_kind == FailureKind.SSH_LOST
    assert "gave up after 3 attempts" in final.failure_message
