"""A run's GPU utilisation and memory over its lifetime, kept bounded in its metrics."""

from __future__ import annotations

import json

import pytest

from cosmos_tui.domain import RunMetrics
from cosmos_tui.engine.metrics import TIMELINE_POINTS

from .test_metrics import reading, tracker


def test_each_reading_time_is_one_point_with_the_highest_gpu() -> None:
    metrics = tracker()
    metrics.track("rs_a", ["rs_a"], "h", [0, 1], running=True)
    samples = []
    for second in range(0, 11):
        samples.append(reading(0, second, utilization=50.0 + second, memory_used_mib=1000.0))
        samples.append(reading(1, second, utilization=10.0, memory_used_mib=2000.0 + second))
    metrics.observe(samples)
    timeline = metrics.metrics("rs_a").timeline
    assert timeline == tuple(
        (float(second), 50.0 + second, 2000.0 + second) for second in range(11)
    )


def test_a_long_run_stays_bounded_and_spans_its_whole_lifetime() -> None:
    metrics = tracker()
    metrics.track("rs_a", ["rs_a"], "h", [0], running=True)
    spike = 777
    metrics.observe(
        reading(0, second, utilization=float(second % 2) * 100.0,
                memory_used_mib=70_000.0 if second == spike else 30_000.0)
        for second in range(5000)
    )  # fmt: skip
    timeline = metrics.metrics("rs_a").timeline
    assert TIMELINE_POINTS // 2 <= len(timeline) <= TIMELINE_POINTS
    assert timeline[0][0] == 0.0 and timeline[-1][0] >= 5000 - 5000 / len(timeline) * 2
    assert [p[0] for p in timeline] == sorted(p[0] for p in timeline)
    assert max(p[2] for p in timeline) == 70_000.0  # a memory peak is never averaged away
    assert sum(p[1] for p in timeline) / len(timeline) == pytest.approx(50.0, abs=2.0)


def test_the_timeline_survives_json_and_older_records_have_none() -> None:
    metrics = tracker()
    metrics.track("rs_a", ["rs_a"], "h", [0])
    metrics.observe([reading(0, 0), reading(0, 5, utilization=None)])
    result = metrics.metrics("rs_a")
    assert result.timeline == ((0.0, 90.0, 30_000.0), (5.0, None, 30_000.0))
    assert RunMetrics.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    assert RunMetrics.from_dict({"samples": 3, "seconds": 2.0}).timeline == ()
