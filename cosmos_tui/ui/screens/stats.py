"""The Stats screen (``t``): what ``cosmos stats`` reports, with charts.

Runs per day over the last two weeks as a Textual ``Sparkline`` (with the day count
printed under it), and the mean duration of completed runs per profile as Rich bars
scaled to the longest. Days are UTC days, as the database stores them.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, cast

from rich.bar import Bar
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Sparkline, Static

from cosmos_tui.ui.format import LOOK_CLASSES, Look, Looks, duration, plain
from cosmos_tui.ui.report import reported

if TYPE_CHECKING:
    from cosmos_tui.store.metrics_store import RunStats
    from cosmos_tui.ui.app import CosmosApp

DAYS = 14
BAR_WIDTH = 40


def day_series(per_day: dict[str, int], last_day: str, days: int = DAYS) -> list[tuple[str, int]]:
    """``days`` consecutive UTC days ending on ``last_day`` with their run counts (0 if none)."""
    end = date.fromisoformat(last_day)
    series = [(end - timedelta(days=back)).isoformat() for back in range(days - 1, -1, -1)]
    return [(day, per_day.get(day, 0)) for day in series]


def duration_bars(stats: RunStats, look: Look) -> Table | Text:
    """Mean duration per ``type/profile`` as bars scaled to the longest."""
    means = stats.mean_duration_by_profile
    if not means:
        return Text("no completed runs in this window", style=look("faint"))
    longest = max(means.values()) or 1.0
    table = Table.grid(padding=(0, 2))
    for name, seconds in sorted(means.items(), key=lambda item: -item[1]):
        bar = Bar(longest, 0, seconds, width=BAR_WIDTH, color=look("active").color or "default")
        table.add_row(plain(name), bar, duration(seconds))
    return table


def totals(stats: RunStats) -> Text:
    """One line of counts, GPU-hours and energy."""
    states = "  ".join(f"{state} {count}" for state, count in sorted(stats.by_state.items()))
    return Text(
        f"{stats.total} runs  ({states or 'none'})   {stats.gpu_hours:.2f} GPU-hours   "
        f"{stats.energy_wh:.0f} Wh   {stats.open_alerts} open alerts"
    )


class StatsScreen(Screen[None]):
    """Runs per day and duration per profile, over the last two weeks."""

    COMPONENT_CLASSES = set(LOOK_CLASSES)

    BINDINGS = [
        Binding("escape,q,t", "close", "Back", id="stats.close"),
        Binding("r", "reload", "Reload", id="stats.reload"),
    ]
    DEFAULT_CSS = """
    #stats { padding: 0 1; }
    .stats-title { text-style: bold underline; margin-top: 1; }
    #stats-per-day { height: 4; width: 100%; }
    """

    def compose(self) -> ComposeResult:
        """Totals, the per-day chart and the per-profile bars."""
        with VerticalScroll(id="stats"):
            yield Static("loading...", id="stats-totals")
            yield Static(f"Runs per day, last {DAYS} days (UTC)", classes="stats-title")
            yield Sparkline([], id="stats-per-day")
            yield Static("", id="stats-days", markup=False)
            yield Static("Mean duration of completed runs per profile", classes="stats-title")
            yield Static("", id="stats-durations")
        yield Footer()

    def __init__(self) -> None:
        super().__init__()
        self.look = Looks(self)

    def on_mount(self) -> None:
        """Load the figures in a worker."""
        self.title = "Stats"
        self.action_reload()

    def action_reload(self) -> None:
        """Read the figures again."""
        self._load()

    @work(exclusive=True, group="stats-load", exit_on_error=False)
    @reported
    async def _load(self) -> None:
        app = cast("CosmosApp", self.app)
        services = app.services
        if services is None:
            self.query_one("#stats-totals", Static).update("still connecting to the database")
            return
        today = app.clock().date()
        since = app.clock().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
            days=DAYS - 1
        )
        stats = await services.stats(since)
        series = day_series(await services.runs_per_day(since), today.isoformat())
        self.query_one("#stats-totals", Static).update(totals(stats))
        self.query_one("#stats-per-day", Sparkline).data = [count for _, count in series]
        busiest = max(series, key=lambda item: item[1])
        self.query_one("#stats-days", Static).update(
            f"{series[0][0]} .. {series[-1][0]}: {sum(c for _, c in series)} runs, "
            f"busiest {busiest[0]} ({busiest[1]}); today {series[-1][1]}"
        )
        self.query_one("#stats-durations", Static).update(duration_bars(stats, self.look))

    def action_close(self) -> None:
        """Back to the main screen."""
        self.app.pop_screen()
