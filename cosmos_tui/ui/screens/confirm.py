"""A yes/no dialog; "no" is the default so a stray Enter never deletes anything."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from cosmos_tui.safe_text import one_line, printable


class ConfirmScreen(ModalScreen[bool]):
    """Ask a question; dismiss with True (y) or False (n, escape)."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str, title: str = "Confirm") -> None:
        super().__init__()
        self.question = question
        self.title_text = title

    def compose(self) -> ComposeResult:
        """The question and two buttons."""
        with Vertical(id="dialog", classes="dialog"):
            yield Static(Text(printable(self.question)), id="question", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("No", id="no", variant="primary", compact=True)
                yield Button(
                    f"Yes, {self.title_text.lower()}", id="yes", variant="error", compact=True
                )

    def on_mount(self) -> None:
        """Title the dialog and focus "No"."""
        self.query_one("#dialog").border_title = Text(one_line(self.title_text))
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        """Answer by key."""
        self.dismiss(yes)
