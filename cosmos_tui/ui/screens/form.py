"""The base of the UI's forms: fields, an error line, Cancel and Save.

The prompt, run and host forms share it: the error line under the fields, the two buttons
(escape and ctrl+s are the subclasses' bindings, their ids part of the user's keymap), and
how a :class:`~cosmos_tui.errors.ValidationError` is shown (its message on the error line,
the fields it names marked ``-invalid``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Select, Static, TextArea

from cosmos_tui.errors import ValidationError
from cosmos_tui.ui.format import plain

T = TypeVar("T")


class FormScreen(ModalScreen[T | None]):
    """A modal form that dismisses with its result, or None when cancelled."""

    SAVE_LABEL = "Save"
    # the error line's id, the prefix of the field ids a ValidationError names, and the
    # names whose field has another id
    ERROR_ID = "form-error"
    FIELD_PREFIX = ""
    FIELD_IDS: dict[str, str] = {}

    def form_footer(self) -> ComposeResult:
        """The error line and the Cancel and Save buttons, after the fields."""
        yield Static("", id=self.ERROR_ID, classes="error", markup=False)
        with Horizontal(classes="buttons"):
            yield Button("Cancel", id="cancel", compact=True)
            yield Button(f"{self.SAVE_LABEL}  ctrl+s", id="save", variant="primary", compact=True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Close without saving."""
        self.dismiss(None)

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        """Check the fields and save (each form's own)."""
        raise NotImplementedError

    def clear_errors(self) -> None:
        """Empty the error line and unmark every field."""
        self.query_one(f"#{self.ERROR_ID}", Static).update("")
        for field in self.query(Input).results():
            field.remove_class("-invalid")
        for select in self.query(Select).results():
            select.remove_class("-invalid")
        for area in self.query(TextArea).results():
            area.remove_class("-invalid")

    def show_error(self, error: ValidationError, fields: Iterable[str] | None = None) -> None:
        """Say what to change and mark the fields concerned (``error.field`` by default)."""
        self.query_one(f"#{self.ERROR_ID}", Static).update(plain(error.message))
        names = list(fields) if fields is not None else [error.field] if error.field else []
        # a name may be anything (a video's path): compared with ids, never made a selector
        wanted = {self.FIELD_IDS.get(n, f"{self.FIELD_PREFIX}{n}") for n in names}
        for widget in self.query("Input, Select, TextArea").results():
            if widget.id in wanted:
                widget.add_class("-invalid")
