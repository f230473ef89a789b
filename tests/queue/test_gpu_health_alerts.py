"""GPU health in the metrics tracker: MIG [N/A] is never idle, faults fail runs once."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cosmos_tui.config import AlertsConfig
from cosmos_tui.domain import AlertKind, GpuHealth, GpuSample
from cosmos_tui.engine.metrics import MetricsTracker
from cosmos_tui.remote.smi import header_fields, parse_row

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nvidia_smi"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LIMITS = AlertsConfig(temperature_c=85.0, memory_headroom_mib=1024.0, idle_minutes=2.0)


def capture_row(name: str) -> GpuSample:
    header, row = (FIXTURES / name).read_text().splitlines()[:2]
    sample = parse_row(row, header_fields(header), "h", T0)
    assert sample is not None
    return sample


def test_h100_mig_capture_under_load_raises_no_idle_alert() -> None:
    loaded = capture_row("linux-x86_64__nvidia-h100-mig__590.48.01__load.csv")
    assert loaded.utilization is None and loaded.power_draw_w and loaded.power_draw_w > 400
    tracker = MetricsTracker(LIMITS, clock=lambda: T0)
    tracker.track("rs_mig", ["rs_mig"], "h", [0], running=True)
    changes = []
    for minute in range(0, 45):
        at = T0 + timedelta(minutes=minute)
        changes += tracker.observe([dataclasses.replace(loaded, at=at)])
    assert [c for c in changes if c.kind is AlertKind.GPU_IDLE] == []
    assert changes == []  # MIG is a health of its own, not a problem of a run
    metrics = tracker.metrics("rs_mig")
    assert metrics is not None and metrics.energy_wh > 300  # 433 W for 44 min was counted


def test_an_idle_gpu_with_a_reported_utilisation_still_alerts() -> None:
    idle = capture_row("linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01__idle.csv")
    tracker = MetricsTracker(LIMITS, clock=lambda: T0)
    tracker.track("rs_a", ["rs_a"], "h", [0], running=True)
    changes = []
    for minute in range(0, 4):
        changes += tracker.observe([dataclasses.replace(idle, at=T0 + timedelta(minutes=minute))])
    assert [c.kind for c in changes] == [AlertKind.GPU_IDLE]


def test_a_fault_raises_a_health_alert_and_is_handed_out_once_per_container() -> None:
    ok = capture_row("linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01__load.csv")
    broken = dataclasses.replace(
        ok,
        at=T0 + timedelta(seconds=1),
        utilization=None,
        health=GpuHealth.REQUIRES_RESET,
        health_reason="nvidia-smi reports [GPU requires reset] for temperature.gpu",
    )
    tracker = MetricsTracker(LIMITS, clock=lambda: T0)
    tracker.track("b_1", ["rs_a", "rs_b"], "h", [0], running=True)
    assert tracker.observe([ok]) == []
    changes = tracker.observe([broken, dataclasses.replace(broken, at=T0 + timedelta(seconds=2))])
    assert {(c.run_id, c.kind, c.raised) for c in changes} == {
        ("rs_a", AlertKind.GPU_HEALTH, True),
        ("rs_b", AlertKind.GPU_HEALTH, True),
    }
    assert "requires reset" in changes[0].message and "[GPU requires reset]" in changes[0].message
    faults = tracker.take_faults()
    assert len(faults) == 1 and faults[0].run_ids == ("rs_a", "rs_b")
    assert faults[0].gpu_index == 0 and "requires reset" in faults[0].detail
    assert tracker.take_faults() == []
    metrics = tracker.metrics("rs_a")
    assert metrics is not None and metrics.samples == 1  # the fault samples were not folded


def test_stale_and_throttled_alert_and_clear_without_failing_runs() -> None:
    ok = capture_row("linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01__load.csv")
    tracker = MetricsTracker(LIMITS, clock=lambda: T0)
    tracker.track("rs_a", ["rs_a"], "h", [0], running=True)
    stale = dataclasses.replace(ok, health=GpuHealth.STALE, health_reason="no sample for 4 s")
    raised = tracker.observe([stale])
    assert [(c.kind, c.raised) for c in raised] == [(AlertKind.GPU_HEALTH, True)]
    assert tracker.take_faults() == []
    cleared = tracker.observe([dataclasses.replace(ok, at=T0 + timedelta(seconds=5))])
    assert [(c.kind, c.raised) for c in cleared] == [(AlertKind.GPU_HEALTH, False)]
