"""The Logs pane: the live log of one run, batched, bounded and searchable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Static

from cosmos_tui.domain import Run
from cosmos_tui.engine.logtext import LEVELS, level_rank
from cosmos_tui.safe_text import one_line
from cosmos_tui.ui.format import plain, progress_text, state_text
from cosmos_tui.ui.messages import LogLinesReceived
from cosmos_tui.ui.report import reported
from cosmos_tui.ui.widgets.logview import LogView
from cosmos_tui.ui.widgets.pane import Pane

FLUSH_SECONDS = 0.05
LEVEL_CHOICES: tuple[str, ...] = ("ALL", *LEVELS[1:])


class LogsPane(Pane):
    """Follows one run's log: lines are buffered and written every ~50 ms."""

    TITLE = "Logs"
    BINDINGS = [
        Binding("f,end", "follow", "Follow", id="logs.follow"),
        Binding("slash", "search", "Search", id="logs.search"),
        Binding("n", "next_match", "Next", id="logs.next"),
        Binding("N", "previous_match", "Prev", show=False, id="logs.previous"),
        Binding("l", "level", "Level", id="logs.level"),
        Binding("e", "first_error", "First error", id="logs.error"),
        Binding("w", "wrap", "Wrap", id="logs.wrap"),
        Binding("escape", "close_search", "Close search", show=False, id="logs.close"),
    ]
    OFFLINE_ACTIONS = frozenset(b.action for b in BINDINGS if isinstance(b, Binding))  # all local

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run: Run | None = None
        self.pending: list[str] = []
        self.skipped = 0
        self.next_line = 0
        self.level_index = 0
        self._generation = 0
        self._flush_scheduled = False
        self.log_file: Path | None = None

    def compose(self) -> ComposeResult:
        """Status line, the view, and a hidden search input."""
        yield Static("no run selected", id="log-status", markup=False)
        yield LogView(max_lines=self.cosmos.config.ui.log_buffer_lines, id="log-view")
        yield Input(placeholder="search the log", id="log-search")

    def on_mount(self) -> None:
        """Say that the services are not there yet."""
        self.border_subtitle = "connecting..."

    @property
    def view(self) -> LogView:
        """The log view."""
        return self.query_one("#log-view", LogView)

    def show_run(self, run: Run) -> None:
        """Follow ``run``'s log from now on (instantly forgets the previous run's)."""
        if self.run is not None and self.run.id == run.id:
            self.update_run(run)
            return
        self.run = run
        self._generation += 1
        self.pending.clear()
        self.skipped = 0
        self.next_line = 0
        self.view.clear()
        self.log_file = run.log_path
        self._update_status()
        if self.services is not None:
            self._follow(run.id, self._generation)

    def update_run(self, run: Run) -> None:
        """Refresh the status line for a change of the followed run."""
        if self.run is not None and self.run.id == run.id:
            self.run = run
            self.log_file = run.log_path or self.log_file
            self._update_status()

    def attach(self, services: object) -> None:
        """Start following the run chosen before the services were ready."""
        super().attach(services)  # type: ignore[arg-type]
        self.border_subtitle = ""
        if self.run is not None:
            self._follow(self.run.id, self._generation)

    @work(exclusive=True, group="log-follow", exit_on_error=False)
    @reported
    async def _follow(self, run_id: str, generation: int) -> None:
        if self.services is None:
            return
        tail = self.cosmos.config.ui.log_buffer_lines
        async for batch in self.services.follow_log(run_id, tail):
            self.post_message(LogLinesReceived(batch, generation))

    @on(LogLinesReceived)
    def _received(self, message: LogLinesReceived) -> None:
        message.stop()
        batch = message.batch
        if message.generation != self._generation:
            return
        lines = batch.lines
        if batch.first_line < self.next_line:
            lines = lines[self.next_line - batch.first_line :]
        if not lines:
            return
        self.next_line = max(self.next_line, batch.first_line) + len(lines)
        self.pending.extend(lines)
        # A burst keeps only what the view can hold: memory and the next flush's work
        # stay bounded however fast lines come (the rest is in the run's log file).
        excess = len(self.pending) - self.view.max_lines
        if excess > 0:
            del self.pending[:excess]
            self.skipped += excess
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.set_timer(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Write the buffered lines to the view in one go."""
        self._flush_scheduled = False
        if self.pending or self.skipped:
            lines, self.pending = self.pending, []
            skipped, self.skipped = self.skipped, 0
            self.view.append(lines, skipped)
            self._update_status()

    @on(LogView.FollowChanged)
    def _follow_changed(self, event: LogView.FollowChanged) -> None:
        event.stop()
        self._update_status()

    def restyle(self) -> None:
        """Draw the status line and the lines again (the theme changed)."""
        self._update_status()
        self.view.refresh()

    def _update_status(self) -> None:
        status = self.query_one("#log-status", Static)
        run = self.run
        if run is None:
            status.update(Text("no run selected", style=self.look("faint")))
            return
        view = self.view
        text = Text(run.id + " ", style=self.look("name"))
        text.append_text(state_text(run.state, self.look))
        if run.progress is not None and run.state.is_active:
            text.append("  ")
            text.append_text(progress_text(run.progress, run.state, self.look, width=8))
        text.append("   ")
        if view.follow:
            text.append("\u25bc follow", style=self.look("ok"))
        else:
            text.append(
                f"\u23f8 paused, {view.new_while_paused} new lines (f)",
                style=self.look("alert"),
            )
        level = LEVEL_CHOICES[self.level_index]
        if level != "ALL":
            text.append(f"  level>={level}", style=self.look("accent"))
        if view.wrap:
            text.append("  wrap", style=self.look("accent"))
        if view.search:
            position = view.current_match + 1 if view.current_match >= 0 else 0
            text.append(
                f"  /{one_line(view.search)} {position}/{len(view.matches)}",
                style=self.look("accent"),
            )
        status.update(text)
        total = view.dropped + len(view.lines)
        subtitle = f"{total} lines"
        if view.dropped:
            subtitle += f", first {view.dropped} in {self.log_file or 'the log file'}"
        self.border_subtitle = plain(subtitle)

    def action_follow(self) -> None:
        """Resume following the end of the log."""
        self.view.set_follow(True)
        self._update_status()

    def action_search(self) -> None:
        """Open the search input."""
        field = self.query_one("#log-search", Input)
        field.add_class("-open")
        field.focus()

    @on(Input.Changed, "#log-search")
    def _search_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.view.set_search(event.value)
        self._update_status()

    @on(Input.Submitted, "#log-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.view.jump_match(1)
        self.view.focus()
        self._update_status()

    def action_close_search(self) -> None:
        """Hide the search input (the highlight stays until the search is emptied)."""
        field = self.query_one("#log-search", Input)
        field.remove_class("-open")
        self.view.focus()

    def action_next_match(self) -> None:
        """Go to the next match."""
        if not self.view.jump_match(1) and self.view.search:
            self.notify(f"no match for '{self.view.search}'", severity="warning", timeout=3)
        self._update_status()

    def action_previous_match(self) -> None:
        """Go to the previous match."""
        self.view.jump_match(-1)
        self._update_status()

    def action_level(self) -> None:
        """Show only lines at or above the next level (all, info, warning, error)."""
        self.level_index = (self.level_index + 1) % len(LEVEL_CHOICES)
        level = LEVEL_CHOICES[self.level_index]
        self.view.set_min_rank(0 if level == "ALL" else level_rank(level))
        self._update_status()

    def action_first_error(self) -> None:
        """Jump to the first error line still in memory."""
        for index, rank in enumerate(self.view.ranks):
            if rank >= level_rank("ERROR"):
                self.view.show_line(index)
                self._update_status()
                return
        where = f"; older lines are in {self.log_file}" if self.view.dropped else ""
        self.notify(f"no error in the shown log{where}", timeout=4)

    def action_wrap(self) -> None:
        """Toggle wrapping of long lines."""
        self.view.set_wrap(not self.view.wrap)
        self._update_status()
