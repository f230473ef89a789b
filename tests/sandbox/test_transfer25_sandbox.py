"""Transfer2.5 on the simulated host: its container command runs the Transfer2.5 double.

The command is what cosmos_tui/engine/profiles/transfer25.py builds; the sample file is
written with container paths, which the sandbox translates through the run's mounts.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiodocker
import pytest

from cosmos_tui.engine.profiles.transfer25 import (
    BatchItem,
    LaunchPaths,
    build_argv,
    build_batch,
    collect_outputs,
)
from cosmos_tui.engine.profiles.transfer25_args import HintOptions, Transfer25Options
from cosmos_tui.sandbox import Sandbox
from cosmos_tui.sandbox.options import SANDBOX_IMAGE

ASSETS = Path(__file__).resolve().parents[2] / "cosmos_tui" / "sandbox" / "assets"


@pytest.fixture
async def docker(sandbox: Sandbox) -> AsyncIterator[aiodocker.Docker]:
    client = aiodocker.Docker(url=f"unix://{sandbox.docker_socket}")
    try:
        yield client
    finally:
        await client.close()


def run_folder(sandbox: Sandbox, gpus: int) -> tuple[Path, list[str]]:
    run = sandbox.home / ".cosmos-tui" / "runs" / "r_t25"
    run.mkdir(parents=True)
    video = next(ASSETS.glob("*.mp4"))
    (run / "in.mp4").write_bytes(video.read_bytes())
    options = Transfer25Options(hints=(HintOptions("edge", 0.5),), num_gpus=gpus)
    batch = build_batch([
        BatchItem("first", "a street at dusk", "/cosmos/run/in.mp4", options),
        BatchItem("second", "blocked [standin:guardrail]", "/cosmos/run/in.mp4", options),
    ])  # fmt: skip
    (run / "batch.jsonl").write_text(batch)
    argv = build_argv(options, LaunchPaths(("/cosmos/run/batch.jsonl",), "/cosmos/run/output"))
    return run, argv


@pytest.mark.parametrize("gpus", [1, 2])
async def test_transfer25_batch_runs_on_the_simulated_host(
    sandbox: Sandbox, docker: aiodocker.Docker, gpus: int
) -> None:
    run, argv = run_folder(sandbox, gpus)
    container = await docker.containers.create({
        "Image": SANDBOX_IMAGE, "Cmd": argv, "Env": ["HF_TOKEN=hf_test"],
        "Labels": {"cosmos.run_id": "r_t25"},
        "HostConfig": {"Binds": [f"{run}:/cosmos/run"]},
    })  # fmt: skip
    await container.start()
    assert (await container.wait())["StatusCode"] == 0
    logs = "".join(await container.log(stdout=True, stderr=True))
    assert "Downloading checkpoint" in logs and "Generated video saved to" in logs
    files = [p.name for p in (run / "output").iterdir()]
    outcomes = collect_outputs(["first", "second"], files, logs.splitlines(), exit_code=0)
    assert [o.state for o in outcomes] == ["done", "blocked"]
    assert (run / "output" / "first.mp4").read_bytes() == (run / "in.mp4").read_bytes()
    # the client's batch file keeps its container paths
    assert json.loads((run / "batch.jsonl").read_text().splitlines()[0])["video_path"].startswith(
        "/cosmos/"
    )
