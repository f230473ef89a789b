"""The help screen: every binding, grouped by where it applies, as currently mapped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from cosmos_tui.ui.format import LOOK_CLASSES, Looks, plain
from cosmos_tui.ui.screens.confirm import ConfirmScreen
from cosmos_tui.ui.screens.detail import RunDetailScreen
from cosmos_tui.ui.screens.inputs import InputsScreen
from cosmos_tui.ui.screens.main import MainScreen
from cosmos_tui.ui.screens.run_frames import RunFramesScreen
from cosmos_tui.ui.screens.stats import StatsScreen
from cosmos_tui.ui.widgets.gpus import GpusPane
from cosmos_tui.ui.widgets.logs import LogsPane
from cosmos_tui.ui.widgets.prompts import PromptsPane
from cosmos_tui.ui.widgets.runs import RunsPane


def binding_rows(
    bindings: Sequence[BindingType], keymap: Mapping[str, str]
) -> list[tuple[str, str, str]]:
    """Return (keys, description, id) for each binding, with keymap overrides applied."""
    rows = []
    for item in bindings:
        if not isinstance(item, Binding):
            continue
        keys = keymap.get(item.id or "", item.key_display or item.key) if item.id else item.key
        description = item.description or item.action
        rows.append((keys.replace("slash", "/"), description, item.id or ""))
    return rows


def help_groups() -> list[tuple[str, Sequence[BindingType]]]:
    """Return the binding groups shown on the help screen, in reading order."""
    # cycle: ui.app imports this module (HelpScreen) at its top
    from cosmos_tui.ui.app import CosmosApp

    # lazy: the forms and Textual's TextArea (~20 ms) stay out of start-up (ui.app imports this)
    from cosmos_tui.ui.screens.prompt_form import PromptForm

    return [
        ("Everywhere", [*CosmosApp.BINDINGS, *MainScreen.BINDINGS]),
        ("Prompts pane", PromptsPane.BINDINGS),
        ("Runs pane", RunsPane.BINDINGS),
        ("Logs pane", LogsPane.BINDINGS),
        ("Run detail (enter)", RunDetailScreen.BINDINGS),
        ("Run frames (f in the detail)", RunFramesScreen.BINDINGS),
        ("GPUs pane", GpusPane.BINDINGS),
        ("Forms", PromptForm.BINDINGS),
        ("Inputs screen (i)", InputsScreen.BINDINGS),
        ("Stats screen (t)", StatsScreen.BINDINGS),
        ("Dialogs", ConfirmScreen.BINDINGS),
    ]


class HelpScreen(ModalScreen[None]):
    """Lists every binding by pane; escape, q or ? closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close", id="help.close")]

    COMPONENT_CLASSES = set(LOOK_CLASSES)

    def __init__(self, keymap: Mapping[str, str]) -> None:
        super().__init__()
        self.keymap = keymap
        self.look = Looks(self)

    def compose(self) -> ComposeResult:
        """One table per group (filled once mounted, in the theme's looks)."""
        with VerticalScroll(id="help", classes="dialog"):
            for title, _bindings in help_groups():
                yield Static(Text(title, style="bold underline"), classes="help-title")
                yield Static("", classes="help-table")
            yield Static(
                "Remap any key in the config's [keymap] table by its id, e.g. "
                "'runs.cancel = \"x\"'. q quits; runs keep going on their hosts.",
                classes="hint",
                markup=False,
            )

    def on_mount(self) -> None:
        """Title the dialog; each group's keys, what they do and their ids."""
        self.query_one("#help").border_title = "Keys"
        keys_style = self.look("key")
        tables = self.query(".help-table").results(Static)
        for (_title, bindings), shown in zip(help_groups(), tables, strict=True):
            table = Table.grid(padding=(0, 2))
            table.add_column(style=keys_style, min_width=12)
            table.add_column()
            table.add_column(style=self.look("faint"))
            for keys, description, binding_id in binding_rows(bindings, self.keymap):
                table.add_row(plain(keys), plain(description), plain(binding_id))
            shown.update(table)

    def action_close(self) -> None:
        """Close help."""
        self.dismiss(None)
