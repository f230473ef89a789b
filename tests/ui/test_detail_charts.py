"""The run detail draws GPU utilisation and memory over the run's lifetime."""

from __future__ import annotations

import pytest

from cosmos_tui.domain import RunMetrics
from cosmos_tui.store.metrics_store import MetricsStore
from cosmos_tui.ui.format import SPARK_CHARS
from cosmos_tui.ui.screens.detail import CHART_WIDTH, RunDetailScreen, _columns
from tests.ui.conftest import Harness, plain, populated, settle

pytestmark = pytest.mark.timeout(60)


def test_columns_keep_the_mean_of_utilisation_and_the_peak_of_memory() -> None:
    values = [0.0, 100.0] * 60 + [None] * 2
    assert _columns(values, 61, peak=False)[:60] == [50.0] * 60
    assert _columns([1.0, 9.0, 2.0, 3.0], 2, peak=True) == [9.0, 3.0]
    assert _columns([1.0, None], 5, peak=True) == [1.0, None]  # fewer than columns: as is


async def test_detail_charts_a_recorded_timeline(tmp_path) -> None:
    h = Harness(tmp_path)
    async with h.app.run_test(size=(140, 60)) as pilot:
        runs = await populated(h, pilot, tmp_path)
        done = runs["completed"]
        ramp = tuple((float(s * 10), float(s), 1024.0 * s) for s in range(101))  # 0..100 %
        metrics = RunMetrics(samples=101, seconds=1000.0, util_peak=100.0, timeline=ramp)
        await MetricsStore(h.services.bench.store).save_metrics(done.id, metrics)
        h.app.main_screen.actions.open_detail(done.id)
        await settle(pilot)
        assert isinstance(h.app.screen, RunDetailScreen)
        body = plain(h.app.screen.query_one("#detail-body"))
        util_line = next(line for line in body.splitlines() if "util %" in line)
        chart = util_line.split("util %")[1].split()[0]
        assert len(chart) == CHART_WIDTH and chart[0] == SPARK_CHARS[0]
        assert chart[-1] == SPARK_CHARS[-1] and list(chart) == sorted(chart)  # a rising ramp
        assert "0 .. 16m40s" in util_line
        memory_line = next(line for line in body.splitlines() if "memory " in line)
        assert "peak 100.0G" in memory_line
