"""The Stats screen (t): runs per day and mean duration per profile as charts."""

from __future__ import annotations

import pytest
from textual.widgets import Sparkline

from cosmos_tui.domain import RunState
from cosmos_tui.ui.screens.stats import StatsScreen, day_series
from tests.ui.conftest import Harness, plain, populated, settle
from tests.ui.fakes import make_run

pytestmark = pytest.mark.timeout(60)
DAY = 86400


def test_day_series_fills_days_without_runs_and_crosses_months() -> None:
    series = day_series({"2026-11-30": 3, "2026-12-02": 1, "2026-11-01": 9}, "2026-12-02", 4)
    assert series == [
        ("2026-11-29", 0), ("2026-11-30", 3), ("2026-12-01", 0), ("2026-12-02", 1)
    ]  # fmt: skip


async def test_runs_per_day_and_durations_per_profile(tmp_path) -> None:
    h = Harness(tmp_path)
    async with h.app.run_test(size=(120, 40)) as pilot:
        runs = await populated(h, pilot, tmp_path)  # four runs on 2026-11-21
        h.clock.advance(2 * DAY)
        prompt_id = runs["completed"].prompt_id
        for _ in range(2):
            await make_run(h.services, h.clock, prompt_id, RunState.QUEUED)  # 2026-11-23
        h.clock.advance(DAY)  # today: 2026-11-24, no runs
        await pilot.press("t")
        await settle(pilot)
        screen = h.app.screen
        assert isinstance(screen, StatsScreen)
        assert screen.query_one("#stats-per-day", Sparkline).data == [0] * 10 + [4, 0, 2, 0]
        days = plain(screen.query_one("#stats-days"))
        assert "2026-11-11 .. 2026-11-24: 6 runs" in days
        assert "busiest 2026-11-21 (4); today 0" in days
        totals = plain(screen.query_one("#stats-totals"))
        assert totals.startswith("6 runs") and "completed 1" in totals and "queued 3" in totals
        bars = plain(screen.query_one("#stats-durations"))
        assert "transfer/transfer1" in bars and "\u2588" * 40 in bars  # the longest: full width

        h.clock.advance(20 * DAY)  # every run is now older than the window
        await pilot.press("r")
        await settle(pilot)
        assert screen.query_one("#stats-per-day", Sparkline).data == [0] * 14
        assert ": 0 runs" in plain(screen.query_one("#stats-days"))
        assert "no completed runs" in plain(screen.query_one("#stats-durations"))
        await pilot.press("escape")
        await settle(pilot)
        assert h.app.screen is h.app.main_screen


def test_duration_bars_scale_to_the_longest_profile() -> None:
    from rich.console import Console
    from rich.style import Style

    from cosmos_tui.store.metrics_store import RunStats
    from cosmos_tui.ui.screens.stats import duration_bars

    stats = RunStats(None, 3, {}, {"transfer/a": 600.0, "upscale/b": 150.0}, 0.0, 0.0, {}, 0)
    console = Console(width=120, record=True, file=__import__("io").StringIO())
    console.print(duration_bars(stats, lambda _name: Style()))
    first, second = console.export_text().splitlines()
    assert first.startswith("transfer/a") and first.count("\u2588") == 40
    assert second.startswith("upscale/b") and second.count("\u2588") == 10  # a quarter
