"""The host form of the Hosts screen: a new host, or the settings of one to edit.

The fields are those ``cosmos host add`` asks for; what the form leaves empty is found
on the host (Docker socket and access, checkout, checkpoints) or left at its default.
Bad values are shown in the form, which stays open.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Label

from cosmos_tui.config import HostConfig
from cosmos_tui.config_hosts import NAME_PATTERN
from cosmos_tui.errors import ValidationError
from cosmos_tui.safe_text import printable
from cosmos_tui.services.hosts import form_values
from cosmos_tui.ui.screens.form import FormScreen

# (field, label, placeholder): the form's inputs, in order.
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("name", "Name", "what the CLI and UI call it, e.g. gpu1"),
    ("hostname", "Hostname", "host name, address or ~/.ssh/config alias (empty: the name)"),
    ("port", "Port", "empty: ~/.ssh/config or 22"),
    ("user", "User", "empty: ~/.ssh/config or your local user"),
    ("identity_file", "Key file", "empty: ssh-agent and ~/.ssh/config"),
    ("docker_image", "Docker image", "empty: the default Cosmos-Transfer1 image"),
    ("remote_repo_dir", "Model checkout", "empty: found on the host"),
    ("checkpoints_dir", "Checkpoints", "empty: found on the host"),
)
FIELD_NAMES = tuple(name for name, _label, _hint in FIELDS)


def field_text(host: HostConfig, field: str) -> str:
    """A host's value of ``field`` as the form shows it (empty for None)."""
    value = getattr(host, field)
    return "" if value is None else str(value)


class HostForm(FormScreen[dict[str, Any]]):
    """Ask for a host's settings; dismiss with the values (None when cancelled).

    Args:
        taken: Names already configured (a new host may not reuse one).
        host: The host to edit (its name cannot change), or None for a new one.

    """

    ERROR_ID = "host-error"
    FIELD_PREFIX = "host-"
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="hostform.save"),
        Binding("escape", "cancel", "Cancel", id="hostform.cancel"),
    ]

    def __init__(self, taken: Collection[str], host: HostConfig | None = None) -> None:
        super().__init__()
        self.taken = frozenset(taken)
        self.host = host

    def compose(self) -> ComposeResult:
        """One labelled input per field, an error line, the buttons."""
        with Vertical(id="host-form", classes="dialog form"):
            for field, label, hint in FIELDS:
                yield Label(label)
                value = field_text(self.host, field) if self.host else ""
                yield Input(value, id=f"host-{field}", placeholder=hint,
                            disabled=bool(self.host) and field == "name")  # fmt: skip
            yield from self.form_footer()

    def on_mount(self) -> None:
        """Title the form and focus its first editable field."""
        title = f"Edit host {self.host.name}" if self.host else "Add a GPU host"
        self.query_one("#host-form").border_title = Text(printable(title))
        first = "#host-hostname" if self.host else "#host-name"
        self.query_one(first, Input).focus()

    def values(self) -> dict[str, Any]:
        """The fields as config values (empty: not set).

        Raises:
            ValidationError: A value that cannot be a host's (name, port).
        """
        raw = {field: self.query_one(f"#host-{field}", Input).value for field in FIELD_NAMES}
        values = form_values(raw)
        if self.host is None:
            name = values.get("name") or ""
            if not NAME_PATTERN.match(name):
                raise ValidationError(
                    f"'{name}' cannot be a host name: use letters, digits, '.', '_' or '-' "
                    "(at most 63, starting with a letter or digit)",
                    "name",
                )
            if name in self.taken:
                raise ValidationError(
                    f"a host named '{name}' exists already: edit it instead", "name"
                )
        return values

    def action_save(self) -> None:
        """Check the values; close with them, or say what to change."""
        self.clear_errors()
        try:
            values = self.values()
        except ValidationError as exc:
            self.show_error(exc)
            if exc.field:
                self.query_one(f"#host-{exc.field}", Input).focus()
            return
        self.dismiss(values)
