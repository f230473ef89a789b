"""The run filter dialog: state, type, prompt and minimum rating."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, SelectionList

from cosmos_tui.domain import RunState, RunType
from cosmos_tui.store.repositories import RunFilter  # imported when the dialog opens


class RunFilterScreen(ModalScreen[RunFilter | None]):
    """Choose which runs the Runs pane shows."""

    BINDINGS = [
        Binding("ctrl+s", "apply", "Apply", id="filter.apply"),
        Binding("escape", "cancel", "Cancel", id="filter.cancel"),
    ]

    def __init__(self, current: RunFilter) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        """States as a selection list, then type, rating and prompt id."""
        with Vertical(id="run-filter", classes="dialog form"):
            yield Label("States (space toggles)")
            yield SelectionList[str](
                *((s.value, s.value, s in self.current.states) for s in RunState), id="states"
            )
            with Horizontal(classes="row"):
                with Vertical(classes="param"):
                    yield Label("Type")
                    yield Select(
                        [(t.value, t.value) for t in RunType],
                        value=self.current.type.value if self.current.type else Select.NULL,
                        id="type",
                    )
                with Vertical(classes="param"):
                    yield Label("Rating at least")
                    yield Select(
                        [(str(n), n) for n in range(1, 6)],
                        value=self.current.min_rating or Select.NULL,
                        id="rating",
                    )
            yield Label("Prompt id")
            yield Input(self.current.prompt_id or "", id="prompt_id", placeholder="ps_...")
            with Horizontal(classes="buttons"):
                yield Button("Clear", id="clear", compact=True)
                yield Button("Apply  ctrl+s", id="apply", variant="primary", compact=True)

    def on_mount(self) -> None:
        """Title and focus."""
        self.query_one("#run-filter").border_title = "Filter runs"
        self.query_one("#states").focus()

    @on(Button.Pressed, "#apply")
    def action_apply(self) -> None:
        """Apply the chosen filter."""
        states = frozenset(RunState(v) for v in self.query_one("#states", SelectionList).selected)
        type_value = self.query_one("#type", Select).value
        rating = self.query_one("#rating", Select).value
        prompt_id = self.query_one("#prompt_id", Input).value.strip() or None
        self.dismiss(
            RunFilter(
                states=states,
                type=RunType(type_value) if isinstance(type_value, str) else None,
                min_rating=rating if isinstance(rating, int) else None,
                prompt_id=prompt_id,
            )
        )

    @on(Button.Pressed, "#clear")
    def _clear(self) -> None:
        self.dismiss(RunFilter())

    def action_cancel(self) -> None:
        """Keep the current filter."""
        self.dismiss(None)
