"""A model that exits 0 without writing a video: the log's warnings say why."""

from __future__ import annotations

import dataclasses

import pytest

from cosmos_tui.domain import FailureKind, RunState
from cosmos_tui.engine.launch import CONTAINER_RUN

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
    final = await bench.runs.drive((await bench.create_run(prompt.id)).id)
    assert final.state == state
    assert final.failure_kind == kind
    assert final.exit_code == 0
    from cosmos_tui.cli.render import run_detail

    failure = await bench.runs.failure(final.id)
    assert failure is not None and failure.detail
    shown = run_detail(final, failure)
    assert f"cause    {failure.detail}" in shown


# The marker lives in the run's own folder, which outlives its containers.
MARKER = f"{CONTAINER_RUN}/.download-tried"
FLAKY_DOWNLOAD = (
    "#!/bin/sh\n"
    f'if [ -e {MARKER} ]; then exec /bin/standin "$@"; fi\n'
    f"touch {MARKER}\n"
    "echo 'Downloading nvidia/Cosmos-Guardrail1...'\n"
    "echo \"requests.exceptions.ConnectionError: ('Connection aborted.', "
    "ConnectionResetError(104, 'Connection reset by peer'))\"\n"
    "exit 1\n"
)


def flaky_download_config(make_config, build_image):
    """A config whose image fails its first run with a download cut by the network."""
    from cosmos_tui.sandbox.standin import standin_script_path

    files = {"/bin/torchrun": FLAKY_DOWNLOAD, "/bin/standin": standin_script_path().read_text()}
    image = build_image("cosmos-test/flaky-download:latest", files, cmd=["torchrun"])
    config = make_config()
    host = dataclasses.replace(config.hosts[0], docker_image=image)
    return dataclasses.replace(config, hosts=[host])


async def test_a_download_cut_by_the_network_is_retried_in_a_fresh_container(
    make_config, bench_for, video_dir, build_image
) -> None:
    bench = await bench_for(flaky_download_config(make_config, build_image))
    prompt = await bench.create_prompt("a prompt", video_dir)
    final = await bench.runs.drive((await bench.create_run(prompt.id)).id)
    assert final.state == RunState.COMPLETED
    assert final.attempt == 2
    assert any("retry 2" in e.reason and "worth retrying" in e.reason for e in final.events)
