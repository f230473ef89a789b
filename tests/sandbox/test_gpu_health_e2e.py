"""GPU health end to end: replayed real nvidia-smi output through status, queue and runs."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cosmos_tui.cli import cli
from cosmos_tui.cli.demo import build_demo_app, prepare_workspace
from cosmos_tui.domain import FailureKind, GpuHealth, RunState
from cosmos_tui.sandbox import Sandbox, SandboxOptions
from cosmos_tui.sandbox.thread import SandboxThread
from cosmos_tui.sandbox.workspace import DemoWorkspace
from cosmos_tui.services import Workbench
from cosmos_tui.services.queue import QueueService
from tests.queue.test_queue_real import completed, drive, queue_runs
from tests.ui.conftest import plain

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nvidia_smi"
HOST = "simulated-gpu-host"
NO_CARD = type("NoCard", (), {"gpus": {}})()


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


@pytest.mark.parametrize(
    ("replay_name", "good_ticks", "health", "cell"),
    [
        ("replay__2gpu__gpu0_unknown_error.csv", 1, GpuHealth.ERROR, "[Unknown Error]"),
        ("replay__2gpu__gpu0_reset_midrun.csv", 3, GpuHealth.REQUIRES_RESET, "requires reset]"),
    ],
)
@pytest.mark.parametrize("driver", ["queue", "own"])
async def test_a_gpu_breaking_mid_run_fails_the_run_with_that_cause(
    tmp_path: Path, replay_name: str, good_ticks: int, health: GpuHealth, cell: str, driver: str
):
    # "own": the run's own driver claimed it (a detached worker, the TUI's run form)
    space = DemoWorkspace(tmp_path / "ws")
    with SandboxThread(SandboxOptions(gpus=2, time_scale=2.0), space.ssh_dir) as sandbox:
        config = prepare_workspace(space, sandbox)
        async with Workbench.open(config) as bench:
            (run,) = await queue_runs(bench, tmp_path, "scene {}", range(1))
            stop = asyncio.Event()
            if driver == "queue":
                driving = asyncio.create_task(QueueService.of(bench).drive(stop=stop))
            else:
                driving = asyncio.create_task(bench.runs.drive(run.id))
            try:
                deadline = time.monotonic() + 60
                while (current := await bench.get_run(run.id)).state != RunState.RUNNING:
                    assert time.monotonic() < deadline, current.state
                    await asyncio.sleep(0.1)
                assert current.gpus == (0,)
                tick_s = 1.0
                replay = FIXTURES / replay_name
                await sandbox.acall(lambda s: _replay(s, replay, tick_s))
                broken_at = time.monotonic() + good_ticks * tick_s  # then the broken block
                telemetry = bench.hosts.get(HOST).gpu
                while (current := await bench.get_run(run.id)).state == RunState.RUNNING:
                    assert time.monotonic() < broken_at + 5, telemetry.latest()
                    await asyncio.sleep(0.05)
                failed_after = time.monotonic() - broken_at
                gpu0 = telemetry.latest()[0]
                assert gpu0.health in (health, GpuHealth.STALE)
            finally:
                stop.set()
                await asyncio.wait_for(driving, 30)
        assert failed_after < 5
        assert current.state == RunState.FAILED
        assert current.failure_kind == FailureKind.GPU_FAULT
        assert "GPU 0" in (current.failure_message or "")
        assert cell in (current.failure_message or "")
        assert health.value in (current.failure_message or "")
        assert "container" not in (current.failure_message or "").split(";")[0]


async def wait_until(pilot: Any, check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


def squash(text: str) -> str:
    return " ".join(text.split())


async def test_the_demo_tui_shows_gpu_1_needing_a_reset(tmp_path: Path):
    space = DemoWorkspace(tmp_path / "ws")
    replay = FIXTURES / "replay__2gpu__gpu1_requires_reset.csv"
    options = SandboxOptions(gpus=2, time_scale=0.2, smi_replay=str(replay))
    with SandboxThread(options, space.ssh_dir) as sandbox:
        config = prepare_workspace(space, sandbox)
        app = build_demo_app(config, space, sandbox)
        async with app.run_test(size=(120, 40)) as pilot:
            gpus = app.main_screen.gpus
            await wait_until(pilot, lambda: len((gpus.card(HOST) or NO_CARD).gpus) == 2)
            card = gpus.card(HOST)
            assert card is not None
            gpus.redraw_dirty()
            await pilot.pause()
            text = plain(card)
            assert "\u2716 requires reset" in text and "\u25cf ok" in text
            await pilot.press("q")


TRANSCRIPTS = tomllib.loads((FIXTURES / "transcripts.toml").read_text())["message"]
HOST_STATES = {
    "version mismatch": "driver/library version mismatch",
    "no devices": "no devices",
    "no driver": "no NVIDIA driver",
}


@pytest.mark.parametrize(
    "message",
    [next(m for m in TRANSCRIPTS if m["state"] == state) for state in HOST_STATES],
    ids=list(HOST_STATES),
)
async def test_cosmos_status_and_the_tui_give_the_same_reason(tmp_path: Path, message: dict):
    space = DemoWorkspace(tmp_path / "ws")
    # The exit status where the transcript shows it; nvidia-smi's "other error" otherwise.
    output = (message["text"] + "\n", message.get("exit_status", 255))

    async def break_driver(sandbox: Sandbox) -> None:
        sandbox.faults.smi_output = output

    with SandboxThread(SandboxOptions(gpus=2, time_scale=0.2), space.ssh_dir) as sandbox:
        await sandbox.acall(break_driver)
        config = prepare_workspace(space, sandbox)
        host = await asyncio.to_thread(status_json, space)
        assert host["gpu_state"] == HOST_STATES[message["state"]] and host["gpus"] == []
        reason = host["gpu_reason"]
        assert reason and reason in host["problems"]
        app = build_demo_app(config, space, sandbox)
        async with app.run_test(size=(120, 40)) as pilot:
            gpus = app.main_screen.gpus

            def told() -> bool:
                card = gpus.card(HOST)
                return (
                    card is not None
                    and card.gpu_host is not None
                    and (card.gpu_host.reason == reason)
                )

            await wait_until(pilot, told)
            await pilot.pause()
            text = squash(plain(gpus.card(HOST)))
            assert squash(reason)[:60] in text and "waiting for nvidia-smi" not in text
            await pilot.press("q")
