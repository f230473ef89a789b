"""The stall watchdog on the real test host: a run that stops printing while its GPU idles."""

from __future__ import annotations

import asyncio
import dataclasses

from cosmos_tui.domain import AlertKind, FailureKind, RunState
from cosmos_tui.store.metrics_store import MetricsStore


def stall_config(make_config, action: str):
    config = make_config("hang", run_timeout=60.0)
    timeouts = dataclasses.replace(config.timeouts, stall=1.0, stall_action=action)
    return dataclasses.replace(config, timeouts=timeouts)


async def test_a_silent_run_on_idle_gpus_is_marked_stalled_and_left_running(
    make_config, bench_for, video_dir
) -> None:
    bench = await bench_for(stall_config(make_config, "alert"))
    prompt = await bench.create_prompt("a prompt", video_dir)
    run = await bench.create_run(prompt.id)
    driving = asyncio.create_task(bench.runs.drive(run.id))
    metrics = MetricsStore(bench.store)
    alerts = []
    for _ in range(200):
        alerts = [a for a in await metrics.alerts(run.id) if a.kind == AlertKind.STALLED]
        if alerts:
            break
        await asyncio.sleep(0.1)
    assert alerts, "no stalled alert"
    assert "NCCL" in alerts[0].message and f"cosmos cancel {run.id}" in alerts[0].message
    await asyncio.sleep(1.5)  # the progress writer picks the mark up within a second
    current = await bench.store.get_run(run.id)
    assert current.state == RunState.RUNNING  # the policy is "alert": nothing is stopped
    assert current.progress is not None and current.progress.phase.startswith("stalled")
    await bench.runs.cancel(run.id)
    final = await asyncio.wait_for(driving, 30)
    assert final.state == RunState.CANCELLED


async def test_stall_action_cancel_stops_the_run_as_stalled(
    make_config, bench_for, video_dir
) -> None:
    bench = await bench_for(stall_config(make_config, "cancel"))
    prompt = await bench.create_prompt("a prompt", video_dir)
    run = await bench.create_run(prompt.id)
    final = await asyncio.wait_for(bench.runs.drive(run.id), 40)
    assert final.state == RunState.FAILED
    assert final.failure_kind == FailureKind.STALLED
    assert final.failure_message and "NCCL" in final.failure_message


def test_only_idle_readings_of_the_runs_own_gpus_count() -> None:
    from datetime import UTC, datetime

    from cosmos_tui.domain import GpuSample
    from cosmos_tui.engine.stall import gpus_idle

    def sample(index: int, util: float | None) -> GpuSample:
        return GpuSample("h", index, f"GPU-{index}", "H100", datetime.now(UTC), util)

    assert gpus_idle([sample(0, 0.0), sample(1, 3.0), sample(2, 97.0)], (0, 1))
    assert not gpus_idle([sample(0, 0.0), sample(1, 40.0)], (0, 1))
    assert not gpus_idle([sample(0, None)], (0,))  # unknown never marks a run stalled
    assert not gpus_idle([], (0,))
