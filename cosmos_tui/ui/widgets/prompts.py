"""The Prompts pane: a paged, filterable, sortable table of prompts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Input

from cosmos_tui.domain import Prompt
from cosmos_tui.ui.format import Look, age, clip, plain, state_text
from cosmos_tui.ui.messages import (
    DeleteRequested,
    EnhanceRequested,
    InputsOfPromptRequested,
    NewPromptRequested,
    PromptHighlighted,
    PromptsLoaded,
    RunFormRequested,
    RunsOfPromptRequested,
)
from cosmos_tui.ui.report import reported
from cosmos_tui.ui.widgets.pane import RecordPane

SORTS: tuple[str, ...] = ("created", "name", "text")
INPUT_LETTERS = (("color", "C"), ("depth", "D"), ("seg", "S"), ("edge", "E"), ("vis", "V"))
COLUMNS = (
    ("text", "Text", 34), ("inputs", "Inputs", 6), ("runs", "Runs", 4),
    ("last", "Last run", 12), ("name", "Name", 14), ("created", "Created", 10), ("id", "ID", 15),
)  # fmt: skip


def inputs_cell(prompt: Prompt, look: Look) -> Text:
    """Return one letter per input video present (C D S E V), dots for absent ones."""
    roles = {item.role for item in prompt.inputs}
    text = Text()
    for role, letter in INPUT_LETTERS:
        present = role in roles
        text.append(letter if present else "\u00b7", style=look("ok" if present else "empty"))
    return text


class PromptsPane(RecordPane[Prompt]):
    """Prompts, newest first, paged from SQL as the cursor nears the end."""

    TITLE = "Prompts"
    TABLE_ID = "prompts-table"
    COLUMNS = COLUMNS
    EMPTY_HINT = "No prompts yet: press n to write one (text plus a folder of input videos)."
    OFFLINE_ACTIONS = frozenset({"filter", "sort", "reverse", "clear_filter"})
    BINDINGS = [
        Binding("n", "new_prompt", "New", id="prompts.new"),
        Binding("enter", "run_prompt", "Run", id="prompts.run"),
        Binding("e", "enhance", "Enhance", id="prompts.enhance"),
        Binding("E", "enhance_reasoner", "Enhance (Cosmos 3)", show=False, id="prompts.reasoner"),
        Binding("d", "delete", "Delete", id="prompts.delete"),
        Binding("o", "open_runs", "Its runs", id="prompts.runs"),
        Binding("v", "open_inputs", "Its inputs", show=False, id="prompts.inputs"),
        Binding("slash", "filter", "Filter", id="prompts.filter"),
        Binding("s", "sort", "Sort", id="prompts.sort"),
        Binding("S", "reverse", "Reverse", show=False, id="prompts.reverse"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="prompts.clear"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prompts = self.records
        self.filter_text = ""
        self.sort = "created"
        self.descending = True

    def compose(self) -> ComposeResult:
        """A hidden filter input over the table."""
        yield Input(placeholder="filter prompts by text or name", id="prompt-filter")
        yield from self.compose_table()

    @work(exclusive=True, group="prompts-load", exit_on_error=False)
    @reported
    async def _load(self, offset: int, append: bool, generation: int, limit: int) -> None:
        # lazy: store.repositories imports SQLAlchemy (~0.3 s), kept out of the TUI's start-up
        from cosmos_tui.store.repositories import PromptFilter

        if self.services is None:
            return
        page = await self.services.list_prompts(
            PromptFilter(text=self.filter_text or None),
            offset,
            limit,
            self.sort,
            self.descending,
        )
        self.post_message(PromptsLoaded(page, append, generation))

    @on(PromptsLoaded)
    def _show_page(self, message: PromptsLoaded) -> None:
        message.stop()
        self.show_page(message.page, message.append, message.generation)

    def _highlight(self, record: Prompt) -> None:
        self.post_message(PromptHighlighted(record))

    def _cells(self, prompt: Prompt, now: datetime) -> tuple[object, ...]:
        return (
            clip(prompt.text, 34),
            inputs_cell(prompt, self.look),
            Text(str(prompt.run_count), justify="right"),
            state_text(prompt.latest_state, self.look),
            clip(prompt.name, 14) or Text("-", style=self.look("empty")),
            age(prompt.created_at, now),
            Text(prompt.id, style=self.look("faint")),
        )

    def update_prompt(self, prompt: Prompt) -> None:
        """Redraw one prompt's row, or reload if it is new."""
        if prompt.id not in self.prompts:
            self.reload()
            return
        self.redraw(prompt)

    @property
    def filtered(self) -> bool:
        """Whether the filter input hides prompts."""
        return bool(self.filter_text)

    def _update_subtitle(self) -> None:
        self.update_empty_hint()
        arrow = "\u2193" if self.descending else "\u2191"
        parts = [f"{len(self.prompts)}/{self.total}", f"sort {self.sort}{arrow}"]
        if self.filter_text:
            parts.insert(0, f"/{self.filter_text}")
        self.border_subtitle = plain("  ".join(parts))

    @on(DataTable.RowHighlighted, "#prompts-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        prompt = self.prompts.get(str(event.row_key.value))
        if prompt is not None:
            self.post_message(PromptHighlighted(prompt))
        self.load_more_near(event.cursor_row)

    @on(DataTable.RowSelected, "#prompts-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_run_prompt()

    @on(DataTable.HeaderSelected, "#prompts-table")
    def _header(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        key = str(event.column_key.value)
        if key in SORTS:
            self.descending = not self.descending if key == self.sort else key == "created"
            self.sort = key
            self.reload()

    @on(Input.Changed, "#prompt-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.filter_text = event.value.strip()
        self.reload()

    @on(Input.Submitted, "#prompt-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        event.stop()
        self.table.focus()

    def action_filter(self) -> None:
        """Show the filter input and focus it."""
        field = self.query_one("#prompt-filter", Input)
        field.add_class("-open")
        field.focus()

    def action_clear_filter(self) -> None:
        """Clear and hide the filter."""
        field = self.query_one("#prompt-filter", Input)
        if field.value:
            field.value = ""
        field.remove_class("-open")
        self.table.focus()

    def action_sort(self) -> None:
        """Sort by the next column (created, name, text)."""
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.descending = self.sort == "created"
        self.reload()

    def action_reverse(self) -> None:
        """Reverse the sort order."""
        self.descending = not self.descending
        self.reload()

    def action_new_prompt(self) -> None:
        """Open the new-prompt form."""
        self.post_message(NewPromptRequested())

    def action_run_prompt(self) -> None:
        """Open the new-run form for the selected prompt."""
        if self.selected is not None:
            self.post_message(RunFormRequested(prompt=self.selected))

    def action_enhance(self) -> None:
        """Queue a prompt enhancement of the selected prompt (Transfer1's upsampler)."""
        if self.selected is not None:
            self.post_message(EnhanceRequested(self.selected, "transfer1"))

    def action_enhance_reasoner(self) -> None:
        """Queue a prompt enhancement of the selected prompt by Cosmos 3's reasoner."""
        if self.selected is not None:
            self.post_message(EnhanceRequested(self.selected, "cosmos3"))

    def action_delete(self) -> None:
        """Delete the selected prompt after a preview and confirmation."""
        if self.selected is not None:
            self.post_message(DeleteRequested(self.selected.id))

    def action_open_runs(self) -> None:
        """Show only the selected prompt's runs in the Runs pane."""
        if self.selected is not None:
            self.post_message(RunsOfPromptRequested(self.selected))

    def action_open_inputs(self) -> None:
        """Show the selected prompt's input folder in the Inputs screen."""
        if self.selected is not None:
            self.post_message(InputsOfPromptRequested(self.selected))

    def show_prompt(self, prompt_id: str) -> bool:
        """Put the cursor on ``prompt_id`` and focus the table; False when it is not loaded."""
        if prompt_id not in self.prompts:
            return False
        self.table.focus()
        self.table.move_cursor(row=self.table.get_row_index(prompt_id))
        return True
