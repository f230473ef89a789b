"""The Runs pane: runs with state, progress, host, duration and rating, updated live."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable

from cosmos_tui.domain import Run, RunState

if TYPE_CHECKING:
    from cosmos_tui.store.repositories import RunFilter
from cosmos_tui.ui.format import (
    Look,
    clip,
    duration,
    plain,
    progress_text,
    rating_text,
    state_text,
)
from cosmos_tui.ui.messages import (
    CancelRequested,
    DeleteRequested,
    DetailRequested,
    OutputOpenRequested,
    OutputPathCopyRequested,
    PromptShowRequested,
    RateRequested,
    RetryRequested,
    RunFilterRequested,
    RunFormRequested,
    RunHighlighted,
    RunsLoaded,
    UpscaleRequested,
)
from cosmos_tui.ui.report import reported
from cosmos_tui.ui.widgets.pane import RecordPane

COLUMNS = (
    ("state", "State", 12), ("progress", "Progress", 32), ("time", "Time", 6),
    ("rating", "Rating", 6), ("prompt", "Prompt", 28), ("host", "Host:GPUs", 10),
    ("id", "ID", 15),
)  # fmt: skip


def host_cell(run: Run, look: Look) -> Text:
    """Return ``host:0,1`` or a dash."""
    if not run.host:
        return Text("-", style=look("empty"))
    gpus = ",".join(str(g) for g in run.gpus)
    return plain(f"{run.host}:{gpus}" if gpus else run.host)


def describe_filter(where: RunFilter | None) -> str:
    """Return a short description of the active run filters, or an empty string."""
    if where is None:
        return ""
    parts = []
    if where.states:
        parts.append("state=" + ",".join(sorted(s.value for s in where.states)))
    if where.type:
        parts.append(f"type={where.type.value}")
    if where.prompt_id:
        parts.append(f"prompt={where.prompt_id}")
    if where.min_rating:
        parts.append(f"rating>={where.min_rating}")
    return " ".join(parts)


class RunsPane(RecordPane[Run]):
    """Runs, newest first, with live state and progress."""

    TITLE = "Runs"
    TABLE_ID = "runs-table"
    COLUMNS = COLUMNS
    EMPTY_HINT = "No runs yet: Enter on a prompt (Prompts pane) starts one."
    OFFLINE_ACTIONS = frozenset({"filter", "clear_filter"})
    BINDINGS = [
        Binding("n", "new_run", "New", id="runs.new"),
        Binding("enter", "detail", "Detail", id="runs.detail"),
        Binding("c", "cancel", "Cancel", id="runs.cancel"),
        Binding("R", "retry", "Retry", id="runs.retry"),
        Binding("u", "upscale", "Upscale", id="runs.upscale"),
        Binding("1", "rate(1)", "Rate", key_display="1-5", id="runs.rate1"),
        *(
            Binding(str(n), f"rate({n})", f"Rate {n}", show=False, id=f"runs.rate{n}")
            for n in range(2, 6)
        ),
        Binding("0", "rate(0)", "Clear rating", show=False, id="runs.unrate"),
        Binding("d", "delete", "Delete", show=False, id="runs.delete"),
        Binding("o", "open_output", "Play", id="runs.open"),
        Binding("p", "open_prompt", "Its prompt", show=False, id="runs.prompt"),
        Binding("y", "copy_path", "Copy path", show=False, id="runs.copy"),
        Binding("f", "filter", "Filter", id="runs.filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="runs.clear"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runs = self.records
        self._where: RunFilter | None = None
        self._reload_pending = False
        self._user_input = False

    def compose(self) -> ComposeResult:
        """The table (empty, with "connecting..." below, until rows come)."""
        yield from self.compose_table()

    def on_mount(self) -> None:
        """Start the one-second tick of running durations (the columns: RecordPane)."""
        self.set_interval(1.0, self._tick, name="runs-tick")

    @property
    def where(self) -> RunFilter:
        """The filter of the shown runs (store types load with the first query)."""
        if self._where is None:
            # lazy: store.repositories imports SQLAlchemy (~0.3 s), kept out of the TUI's start-up
            from cosmos_tui.store.repositories import RunFilter

            self._where = RunFilter()
        return self._where

    def set_filter(self, where: RunFilter) -> None:
        """Show only runs that match ``where``."""
        self._where = where
        self.reload()

    def reload(self) -> None:
        """Load the first page again (see PagedPane.reload); a pending reload is done."""
        self._reload_pending = False
        super().reload()

    @work(exclusive=True, group="runs-load", exit_on_error=False)
    @reported
    async def _load(self, offset: int, append: bool, generation: int, limit: int) -> None:
        if self.services is None:
            return
        page = await self.services.list_runs(self.where, offset, limit, "created", True)
        self.post_message(RunsLoaded(page, append, generation))

    @on(RunsLoaded)
    def _show_page(self, message: RunsLoaded) -> None:
        message.stop()
        self.show_page(message.page, message.append, message.generation)

    def _before_rows(self) -> None:
        if self.screen.focused is None:
            self.table.focus()

    def _highlight(self, record: Run) -> None:
        self.post_message(RunHighlighted(record, by_user=False))

    def _cells(self, run: Run, now: datetime) -> tuple[object, ...]:
        seconds = run.duration_seconds
        if run.state.is_active and run.started_at is not None:
            seconds = (now - run.started_at).total_seconds()
        return (
            state_text(run.state, self.look),
            progress_text(run.progress, run.state, self.look),
            Text(duration(seconds), justify="right"),
            rating_text(run.rating, self.look),
            clip(run.prompt_text, 28),
            host_cell(run, self.look),
            Text(run.id, style=self.look("faint")),
        )

    def apply_run(self, run: Run) -> None:
        """Show a changed run: redraw its row, or reload when it is new to the table."""
        if run.id not in self.runs:
            if not self._reload_pending:
                self._reload_pending = True
                self.set_timer(0.2, self.reload)
            return
        old = self.runs[run.id]
        if run.prompt_text is None and old.prompt_text is not None:
            run = dataclasses.replace(run, prompt_text=old.prompt_text)
        self.redraw(run)

    def remove_runs(self, run_ids: tuple[str, ...]) -> None:
        """Drop deleted runs from the table."""
        for run_id in run_ids:
            if run_id in self.runs:
                del self.runs[run_id]
                self.table.remove_row(run_id)
                self.total = max(0, self.total - 1)
        self._update_subtitle()

    def _tick(self) -> None:
        now = self.now()
        for run in self.runs.values():
            if run.state.is_active and run.started_at is not None:
                seconds = (now - run.started_at).total_seconds()
                self.table.update_cell(run.id, "time", Text(duration(seconds), justify="right"))

    @property
    def filtered(self) -> bool:
        """Whether a filter (state, type, prompt, rating) hides runs."""
        return bool(describe_filter(self._where))

    def _update_subtitle(self) -> None:
        self.update_empty_hint()
        described = describe_filter(self._where)
        counts = f"{len(self.runs)}/{self.total}"
        self.border_subtitle = plain(f"{described}  {counts}" if described else counts)

    @on(DataTable.RowHighlighted, "#runs-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        run = self.runs.get(str(event.row_key.value))
        if run is not None:
            self.post_message(RunHighlighted(run, by_user=self._user_input))
        self._user_input = False
        self.load_more_near(event.cursor_row)

    @on(DataTable.RowSelected, "#runs-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_detail()

    def on_key(self) -> None:
        """Remember that the next cursor move comes from the user."""
        self._user_input = True

    def on_click(self) -> None:
        """Remember that the next cursor move comes from the user."""
        self._user_input = True

    def action_new_run(self) -> None:
        """Open the new-run form for the selected run's prompt (or the selected prompt)."""
        self.post_message(RunFormRequested(run=self.selected))

    def action_detail(self) -> None:
        """Open the selected run's detail screen."""
        if self.selected is not None:
            self.post_message(DetailRequested(self.selected.id))

    def action_cancel(self) -> None:
        """Cancel the selected run after confirmation."""
        run = self.selected
        if run is not None:
            self.post_message(CancelRequested(run))

    def action_retry(self) -> None:
        """Queue the selected run again."""
        if self.selected is not None:
            self.post_message(RetryRequested(self.selected.id))

    def action_upscale(self) -> None:
        """Queue a 4K upscale of the selected run."""
        if self.selected is not None:
            self.post_message(UpscaleRequested(self.selected.id))

    def action_rate(self, rating: int) -> None:
        """Rate the selected run 1-5, or clear its rating with 0."""
        if self.selected is not None:
            self.post_message(RateRequested(self.selected.id, rating or None))

    def action_delete(self) -> None:
        """Delete the selected run after a preview and confirmation."""
        if self.selected is not None:
            self.post_message(DeleteRequested(self.selected.id))

    def action_open_output(self) -> None:
        """Open the selected run's output in the system's video player."""
        if self.selected is not None:
            self.post_message(OutputOpenRequested(self.selected))

    def action_open_prompt(self) -> None:
        """Put the Prompts pane's cursor on the selected run's prompt."""
        run = self.selected
        if run is not None and run.prompt_id is not None:
            self.post_message(PromptShowRequested(run.prompt_id))

    def action_copy_path(self) -> None:
        """Copy the selected run's output path to the clipboard."""
        if self.selected is not None:
            self.post_message(OutputPathCopyRequested(self.selected))

    def action_filter(self) -> None:
        """Open the run filter dialog."""
        self.post_message(RunFilterRequested())

    def action_clear_filter(self) -> None:
        """Show every run again."""
        # lazy: store.repositories imports SQLAlchemy (~0.3 s), kept out of the TUI's start-up
        from cosmos_tui.store.repositories import RunFilter

        if self._where is not None and self._where != RunFilter():
            self.set_filter(RunFilter())

    def active_runs(self) -> list[Run]:
        """Runs in the table that may hold remote resources."""
        return [r for r in self.runs.values() if r.state.is_active or r.state == RunState.QUEUED]
