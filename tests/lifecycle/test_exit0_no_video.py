"""A model that exits 0 without writing a video: the log's warnings say why."""

from __future__ import annotations

import dataclasses

import pytest

from cosmos_tui.domain import FailureKind, RunState

SCRIPTS = {
    "oldgpu": (
        "#!/bin/sh\n"
        "echo '/usr/local/lib/python3.10/dist-packages/torch/cuda/__init__.py:215: UserWarning:'\n"
        "echo '    Found GPU0 Tesla K80 which is of cuda capability 3.7.'\n"
        "echo '    PyTorch no longer supports this GPU because it is too old.'\n"
        "exit 0\n"
    ),
    "blocked": (
        "#!/bin/sh\n"
        "echo '[12-01 10:00:00|INFO|pipeline.py:728:generate] Running guardrail checks on all "
        "prompts'\n"
        "echo '[12-01 10:00:01|CRITICAL|presets.py:55:run] GUARDRAIL BLOCKED: Blocklist: "
        "flagged word'\n"
        "echo '[12-01 10:00:01|CRITICAL|pipeline.py:738:generate] All prompts failed safety "
        "checks'\n"
        "exit 0\n"
    ),
}


@pytest.mark.parametrize(
    ("script", "state", "kind"),
    [
        ("oldgpu", RunState.FAILED, FailureKind.UNSUPPORTED_GPU),
        ("blocked", RunState.BLOCKED, FailureKind.GUARDRAIL),
    ],
)
async def test_exit_0_without_video_is_explained(
    make_config, bench_for, video_dir, build_image, script, state, kind
) -> None:
    image = build_image(f"cosmos-test/exit0-{script}:latest", {"/bin/torchrun": SCRIPTS[script]},
                        cmd=["torchrun"])  # fmt: skip
    config = make_config()
    host = dataclasses.replace(config.hosts[0], docker_image=image)
    bench = await bench_for(dataclasses.replace(config, hosts=[host]))
    prompt = await bench.create_prompt("a prompt", video_dir)
    final = await bench.drive_run((await bench.create_run(prompt.id)).id)
    assert final.state == state
    assert final.failure_kind == kind
    assert final.exit_code == 0
