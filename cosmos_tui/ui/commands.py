"""The command palette provider: prompts, runs, hosts and every key binding in one search."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual.actions import parse as parse_action
from textual.app import App
from textual.binding import Binding
from textual.command import CommandPalette, DiscoveryHit, Hit, Hits, Provider
from textual.message import Message
from textual.widget import Widget

from cosmos_tui.errors import CosmosError
from cosmos_tui.ui.format import clip, plain
from cosmos_tui.ui.messages import DetailRequested, RunsOfPromptRequested

if TYPE_CHECKING:
    from cosmos_tui.ui.app import CosmosApp
    from cosmos_tui.ui.screens.main import MainScreen

# Bindings that make no sense as a command: moving the focus, the palette itself, closing
# a search box (the palette has the focus while it is open).
NOT_COMMANDS = frozenset({"main.next", "main.prev", "app.palette", "logs.close"})
# A binding whose footer text does not say what it does on its own.
TITLES = {"runs.rate1": "Rate 1"}


@dataclass(frozen=True)
class PaletteCommand:
    """A key binding offered as a command: its pane, its description and its key."""

    title: str
    help: str
    node: App[Any] | Widget
    action: str


def palette_commands(
    app: App[Any], main: MainScreen, keymap: Mapping[str, str]
) -> list[PaletteCommand]:
    """Return the bindings that apply now as commands (app, main screen, its panes).

    The palette is built from the bindings themselves (their ids, descriptions and keys as
    remapped by the config's [keymap]), so a new binding is a new command with nothing to
    re-list; a pane's command acts on that pane's selected row. A binding its owner
    disables now (``check_action``: before the services open, nothing stalled) is left
    out, and so are the main screen's while another screen is in front.
    """
    owners: list[tuple[App[Any] | Widget, str]] = [(app, "")]
    behind = [screen for screen in app.screen_stack if not isinstance(screen, CommandPalette)]
    if behind and behind[-1] is main:
        owners.append((main, ""))
        for pane in (main.prompts, main.runs, main.gpus, main.logs):
            owners.append((pane, f"{pane.TITLE}: "))
    commands = []
    for node, prefix in owners:
        for binding in type(node).BINDINGS:
            if not isinstance(binding, Binding) or binding.id is None:
                continue
            if binding.id in NOT_COMMANDS or not binding.description:
                continue
            _, name, params = parse_action(binding.action)
            if not node.check_action(name, params):
                continue
            remapped = keymap.get(binding.id)
            shown = replace(binding, key=remapped, key_display=None) if remapped else binding
            title = TITLES.get(binding.id, binding.description)
            commands.append(
                PaletteCommand(
                    f"{prefix}{title}", f"key {app.get_key_display(shown)}", node, binding.action
                )
            )
    return commands


class CosmosCommands(Provider):
    """Searches prompts and runs in the database, configured hosts and every key binding."""

    @property
    def cosmos(self) -> CosmosApp:
        """The application, typed."""
        return cast("CosmosApp", self.app)

    @property
    def main(self) -> MainScreen:
        """The main screen."""
        return self.cosmos.main_screen

    def _commands(self) -> list[PaletteCommand]:
        return palette_commands(self.cosmos, self.main, self.cosmos.config.keymap)

    async def discover(self) -> Hits:
        """Offer the commands before anything is typed."""
        for command in self._commands():
            yield DiscoveryHit(
                command.title, partial(command.node.run_action, command.action), help=command.help
            )

    async def search(self, query: str) -> Hits:
        """Match actions and hosts locally, prompts and runs in the database."""
        matcher = self.matcher(query)
        for command in self._commands():
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(command.title),
                    partial(command.node.run_action, command.action),
                    help=command.help,
                )
        for name in self.cosmos.services.host_names() if self.cosmos.services else ():
            score = matcher.match(f"host {name}")
            if score > 0:
                # A host name is the user's text: shown plain, never parsed as markup.
                yield Hit(
                    score,
                    plain(f"host {name}"),
                    partial(self._focus_host, name),
                    help="Show in the GPUs pane",
                )
        services = self.cosmos.services
        if services is None or len(query.strip()) < 2:
            return
        try:
            result = await services.search(query.strip(), 8)
        except CosmosError:
            return
        for prompt in result.prompts.items:
            label = Text(f"prompt {prompt.id}  ") + clip(prompt.name or prompt.text, 50)
            show_runs = partial(self._post, RunsOfPromptRequested(prompt))
            yield Hit(0.6, label, show_runs, help="Show its runs")
        for run in result.runs.items:
            label = Text(f"run {run.id}  {run.state.value}  ") + clip(run.prompt_text, 40)
            yield Hit(
                0.5, label, partial(self._post, DetailRequested(run.id)), help="Open the run detail"
            )

    def _post(self, message: Message) -> None:
        self.main.post_message(message)

    def _focus_host(self, name: str) -> None:
        gpus = self.main.gpus
        gpus.focus()
        card = gpus.card(name)
        if card is not None:
            card.scroll_visible()
