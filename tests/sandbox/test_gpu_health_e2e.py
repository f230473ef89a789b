"""GPU health end to end: replayed real nvidia-smi output through status, queue and runs."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path

from click.testing import CliRunner

from cosmos_tui.cli import cli
from cosmos_tui.cli.demo import prepare_workspace
from cosmos_tui.domain import FailureKind, GpuHealth, RunState
from cosmos_tui.sandbox import Sandbox, SandboxOptions
from cosmos_tui.sandbox.thread import SandboxThread
from cosmos_tui.sandbox.workspace import DemoWorkspace
from cosmos_tui.services import Workbench
from cosmos_tui.services.queue import QueueService
from tests.queue.test_queue_real import completed, drive, queue_runs

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nvidia_smi"
HOST = "simulated-gpu-host"


def status_json(space: DemoWorkspace) -> dict:
    result = CliRunner().invoke(cli, ["--config", str(space.config_path), "status", "--json"])
    assert result.exit_code == 0, result.output
    (host,) = json.loads(result.output)
    return host


async def test_gpu_1_needing_a_reset_is_reported_and_never_given_a_run(tmp_path: Path):
    space = DemoWorkspace(tmp_path / "ws")
    replay = FIXTURES / "replay__2gpu__gpu1_requires_reset.csv"
    options = SandboxOptions(gpus=2, time_scale=0.02, smi_replay=str(replay))
    with SandboxThread(options, space.ssh_dir) as sandbox:
        config = prepare_workspace(space, sandbox)
        host = await asyncio.to_thread(status_json, space)
        gpus = {gpu["index"]: gpu for gpu in host["gpus"]}
        assert gpus[0]["health"] == "ok" and gpus[0]["name"] == "NVIDIA H100 80GB HBM3"
        assert gpus[1]["health"] == "requires reset"
        assert "[GPU requires reset]" in gpus[1]["health_reason"]
        assert gpus[1]["pcie_gen"] == 5 and gpus[1]["bus_id"] == "00000000:00:0A.0"
        assert any(p.startswith("GPU 1 requires reset") for p in host["problems"])
        alone = dataclasses.replace(config.batching, enabled=False)  # two containers
        async with Workbench.open(dataclasses.replace(config, batching=alone)) as bench:
            runs = await queue_runs(bench, tmp_path, "scene {}", range(2))
            launched = []
            await drive(bench, launched)
            assert [claim.gpus for claim in launched] == [(0,), (0,)]
            await completed(bench, runs)


async def _replay(sandbox: Sandbox, path: Path, tick_s: float) -> None:
    sandbox.replay_smi(path, tick_s)


async def test_rows_turning_into_unknown_error_fail_the_run_on_that_gpu(tmp_path: Path):
    space = DemoWorkspace(tmp_path / "ws")
    with SandboxThread(SandboxOptions(gpus=2, time_scale=2.0), space.ssh_dir) as sandbox:
        config = prepare_workspace(space, sandbox)
        async with Workbench.open(config) as bench:
            (run,) = await queue_runs(bench, tmp_path, "scene {}", range(1))
            stop = asyncio.Event()
            driving = asyncio.create_task(QueueService.of(bench).drive(stop=stop))
            try:
                deadline = time.monotonic() + 60
                while (current := await bench.get_run(run.id)).state != RunState.RUNNING:
                    assert time.monotonic() < deadline, current.state
                    await asyncio.sleep(0.1)
                assert current.gpus == (0,)
                tick_s = 1.0
                replay = FIXTURES / "replay__2gpu__gpu0_unknown_error.csv"
                await sandbox.acall(lambda s: _replay(s, replay, tick_s))
                broken_at = time.monotonic() + tick_s  # the second block is the broken one
                telemetry = bench.hosts.get(HOST).gpu
                while (current := await bench.get_run(run.id)).state == RunState.RUNNING:
                    assert time.monotonic() < broken_at + 5, telemetry.latest()
                    await asyncio.sleep(0.05)
                failed_after = time.monotonic() - broken_at
                gpu0 = telemetry.latest()[0]
                assert gpu0.health in (GpuHealth.ERROR, GpuHealth.STALE)
            finally:
                stop.set()
                await asyncio.wait_for(driving, 30)
        assert failed_after < 5
        assert current.state == RunState.FAILED
        assert current.failure_kind == FailureKind.GPU_FAULT
        assert "GPU 0" in (current.failure_message or "")
        assert "[Unknown Error]" in (current.failure_message or "")
        assert "container" not in (current.failure_message or "").split(";")[0]
