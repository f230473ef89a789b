from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cosmos_tui.config import AlertsConfig
from cosmos_tui.domain import AlertKind, FailureKind, GpuSample, HostState, RunMetrics, RunState
from cosmos_tui.engine.metrics import MetricsTracker
from cosmos_tui.store.metrics_store import MetricsStore
from cosmos_tui.store.repositories import Store

from .conftest import MakeRun, StepClock

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LIMITS = AlertsConfig(temperature_c=85.0, memory_headroom_mib=1024.0, idle_minutes=2.0)


def reading(index: int, second: float, host: str = "h", **values: float) -> GpuSample:
    base = {
        "utilization": 90.0,
        "memory_used_mib": 30_000.0,
        "memory_total_mib": 81_559.0,
        "temperature_c": 60.0,
        "power_draw_w": 300.0,
    }
    base.update(values)
    return GpuSample(host=host, index=index, uuid=f"GPU-{index}", name="H100",
                     at=T0 + timedelta(seconds=second), **base)  # fmt: skip


def tracker() -> MetricsTracker:
    return MetricsTracker(LIMITS, clock=lambda: T0)


def test_samples_fold_into_peaks_means_energy_and_gpu_time() -> None:
    metrics = tracker()
    metrics.track("rs_a", ["rs_a"], "h", [0, 1], running=True)
    samples = []
    for second in range(0, 11):
        samples.append(reading(0, second, utilization=50.0 + second, power_draw_w=360.0))
        samples.append(reading(1, second, utilization=10.0, memory_used_mib=40_000.0,
                               temperature_c=70.0 + second, power_draw_w=360.0))  # fmt: skip
    # Samples of another GPU and another host are not this run's.
    samples += [reading(2, 5, utilization=100.0), reading(0, 5, host="other", temperature_c=99.0)]
    assert metrics.observe(samples) == []
    result = metrics.metrics("rs_a")
    assert result is not None
    assert result.samples == 22
    assert result.util_peak == 60.0
    assert result.util_mean == pytest.approx((sum(50.0 + s for s in range(11)) + 110.0) / 22)
    assert result.memory_peak_mib == 40_000.0
    assert result.temperature_peak_c == 80.0
    assert result.seconds == 10.0
    assert result.gpu_seconds == pytest.approx(20.0)
    # Two GPUs at 360 W for 10 s: 7200 J = 2 Wh.
    assert result.energy_wh == pytest.approx(2.0)
    assert metrics.metrics("rs_unknown") is None


def test_a_batch_shares_energy_and_gpu_time_but_not_peaks() -> None:
    metrics = tracker()
    metrics.track("bs_1", ["rs_a", "rs_b"], "h", [0])
    metrics.observe([reading(0, 0, power_draw_w=200.0), reading(0, 36, power_draw_w=200.0)])
    for run_id in ("rs_a", "rs_b"):
        result = metrics.metrics(run_id)
        assert result.energy_wh == pytest.approx(1.0)
        assert result.gpu_seconds == pytest.approx(18.0)
        assert result.util_peak == 90.0


def test_a_gap_in_telemetry_is_not_counted_as_hours_of_energy() -> None:
    metrics = tracker()
    metrics.track("rs_a", ["rs_a"], "h", [0])
    metrics.observe([reading(0, 0, power_draw_w=3600.0), reading(0, 3600, power_draw_w=3600.0)])
    assert metrics.metrics("rs_a").gpu_seconds == 60.0
    assert metrics.metrics("rs_a").energy_wh == pytest.approx(60.0)


def test_temperature_and_memory_alerts_are_raised_once_and_cleared() -> None:
    metrics = tracker()
    metrics.track("rs_a", ["rs_a"], "h", [0])
    hot = metrics.observe([reading(0, 0, temperature_c=90.0, memory_used_mib=81_000.0)])
    assert sorted((c.kind, c.raised) for c in hot) == [
        (AlertKind.MEMORY_HEADROOM, True),
        (AlertKind.TEMPERATURE, True),
    ]
    temperature = next(c for c in hot if c.kind == AlertKind.TEMPERATURE)
    assert (
        temperature.value == 90.0 and temperature.threshold == 85.0 and temperature.gpu_index == 0
    )
    assert "90 C" in temperature.message
    assert metrics.observe([reading(0, 1, temperature_c=95.0, memory_used_mib=81_000.0)]) == []
    cooled = metrics.observe([reading(0, 2)])
    assert sorted((c.kind, c.raised) for c in cooled) == [
        (AlertKind.MEMORY_HEADROOM, False),
        (AlertKind.TEMPERATURE, False),
    ]


def test_an_idle_gpu_alerts_only_while_its_run_claims_to_run() -> None:
    metrics = tracker()
    metrics.track("rs_a", ["rs_a"], "h", [0], running=False)
    assert metrics.observe([reading(0, s, utilization=0.0) for s in range(0, 400, 60)]) == []
    metrics.set_running("rs_a", True)
    changes = metrics.observe([reading(0, 400 + s, utilization=0.0) for s in range(0, 200, 30)])
    idle = [c for c in changes if c.kind == AlertKind.GPU_IDLE]
    assert len(idle) == 1 and idle[0].raised and idle[0].value >= 2.0
    assert "idle" in idle[0].message
    busy = metrics.observe([reading(0, 700, utilization=80.0)])
    assert [(c.kind, c.raised) for c in busy] == [(AlertKind.GPU_IDLE, False)]


def test_host_down_alerts_every_run_on_it_and_clears_when_it_returns() -> None:
    metrics = tracker()
    metrics.track("bs_1", ["rs_a", "rs_b"], "h", [0])
    metrics.track("rs_c", ["rs_c"], "elsewhere", [0])
    down = metrics.host_state("h", HostState.DOWN)
    assert sorted(c.run_id for c in down) == ["rs_a", "rs_b"]
    assert all(c.kind == AlertKind.HOST_DOWN and c.raised for c in down)
    assert metrics.host_state("h", HostState.RECONNECTING) == []
    back = metrics.host_state("h", HostState.CONNECTED)
    assert sorted((c.run_id, c.raised) for c in back) == [("rs_a", False), ("rs_b", False)]
    metrics.host_state("h", HostState.DOWN)
    cleared = metrics.untrack("bs_1")
    assert sorted(c.run_id for c in cleared) == ["rs_a", "rs_b"]
    assert metrics.tracked_keys() == ["rs_c"]


async def test_metrics_and_alerts_are_kept_with_the_run(store: Store, make_run: MakeRun) -> None:
    run = await make_run()
    stored = MetricsStore(store)
    metrics = tracker()
    metrics.track(run.id, [run.id], "h", [0])
    changes = metrics.observe([reading(0, 0, temperature_c=91.0), reading(0, 10)])
    changes += metrics.host_state("h", HostState.DOWN)
    await stored.apply(changes)
    await stored.save_metrics(run.id, metrics.metrics(run.id))
    fresh = await store.get_run(run.id)
    assert fresh.metrics == metrics.metrics(run.id)
    assert fresh.metrics.temperature_peak_c == 91.0
    alerts = await stored.alerts(run.id)
    assert sorted(a.kind for a in alerts) == [AlertKind.HOST_DOWN, AlertKind.TEMPERATURE]
    temperature = next(a for a in alerts if a.kind == AlertKind.TEMPERATURE)
    assert temperature.cleared_at is not None and temperature.value == 91.0
    assert [a.kind for a in await stored.alerts(open_only=True)] == [AlertKind.HOST_DOWN]
    # The host came back: the last open alert clears.
    await stored.apply(metrics.host_state("h", HostState.CONNECTED))
    assert await stored.alerts(open_only=True) == []


async def test_stats_count_states_durations_gpu_hours_and_failures(
    store: Store, make_run: MakeRun, clock: StepClock
) -> None:
    stored = MetricsStore(store)
    done = await make_run(num_gpus=2)
    measured = await make_run()
    failed = await make_run()
    blocked = await make_run()
    await make_run()
    for run in (done, measured, failed, blocked):
        await store.transition(run.id, RunState.UPLOADING, "go")
        await store.transition(run.id, RunState.STARTING, "go")
        await store.transition(run.id, RunState.RUNNING, "go")
    clock.advance(3600)
    for run in (done, measured):
        await store.transition(run.id, RunState.DOWNLOADING, "done")
        await store.transition(run.id, RunState.COMPLETED, "done")
    await store.transition(failed.id, RunState.FAILED, "oom", failure_kind=FailureKind.GPU_OOM)
    await store.transition(blocked.id, RunState.BLOCKED, "g", failure_kind=FailureKind.GUARDRAIL)
    await stored.save_metrics(measured.id, RunMetrics(gpu_seconds=1800.0, energy_wh=150.0))
    stats = await stored.stats()
    assert stats.total == 5
    assert stats.by_state == {"completed": 2, "failed": 1, "blocked": 1, "queued": 1}
    mean = stats.mean_duration_by_profile["transfer/transfer1"]
    assert 3600 < mean < 3700
    # done: ~1 h x 2 GPUs; measured: 0.5 h; failed and blocked: ~1 h x 1 GPU each.
    assert stats.gpu_hours == pytest.approx(2 + 0.5 + 1 + 1, abs=0.1)
    assert stats.energy_wh == 150.0
    assert stats.failures_by_kind == {"gpu_oom": 1, "guardrail": 1}
    later = await stored.stats(since=clock.now)
    assert later.total == 0 and later.gpu_hours == 0.0


async def test_two_processes_recording_one_run_raise_each_alert_once(
    tmp_path, store: Store, make_run: MakeRun
) -> None:
    run = await make_run()
    # Two queue drivers (the TUI and a CLI) see the same telemetry and decide alike.
    changes = []
    for _ in range(2):
        metrics = tracker()
        metrics.track(run.id, [run.id], "h", [0, 1])
        changes.append(metrics.observe([reading(0, 0, temperature_c=91.0),
                                        reading(1, 0, temperature_c=92.0)]))  # fmt: skip
    await MetricsStore(store).apply(changes[0])
    async with Store.open(tmp_path / "q.db") as other:
        await MetricsStore(other).apply(changes[1])
    alerts = await MetricsStore(store).alerts(run.id, open_only=True)
    assert sorted((a.kind, a.gpu_index) for a in alerts) == [
        (AlertKind.TEMPERATURE, 0),
        (AlertKind.TEMPERATURE, 1),
    ]


async def test_overlapping_refreshes_save_a_finished_runs_metrics_once(
    store: Store, make_run: MakeRun
) -> None:
    import asyncio

    from cosmos_tui.engine.batching import plan_groups
    from cosmos_tui.engine.metrics_recorder import MetricsRecorder
    from cosmos_tui.engine.queue import Placement
    from cosmos_tui.store.queue_store import QueueStore

    run = await make_run()
    queue = QueueStore(store)
    claim = await queue.claim(Placement(plan_groups(await queue.queued())[0], "h", (0,)), "s")
    assert claim is not None
    await queue.start(run.id, "s")
    # The recorder's own loop and drive()'s last refresh both run when a run ends.
    recorder = MetricsRecorder(queue, MetricsStore(store), tracker(), hosts=None, host_names=[])
    await recorder.refresh()
    changes = recorder.tracker.observe([reading(0, 0, temperature_c=91.0), reading(0, 10)])
    await MetricsStore(store).apply(changes)
    await store.transition(run.id, RunState.FAILED, "ended")
    await asyncio.gather(recorder.refresh(), recorder.refresh(), recorder.flush())
    saved = (await store.get_run(run.id)).metrics
    assert saved is not None and saved.samples == 2 and saved.temperature_peak_c == 91.0
    assert [a.cleared_at is not None for a in await MetricsStore(store).alerts(run.id)] == [True]
