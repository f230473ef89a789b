"""The command palette provider: prompts, runs, hosts and actions in one search."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.command import DiscoveryHit, Hit, Hits, Provider

from cosmos_tui.errors import CosmosError
from cosmos_tui.ui.format import clip, plain

if TYPE_CHECKING:
    from cosmos_tui.ui.app import CosmosApp
    from cosmos_tui.ui.screens.main import MainScreen

ACTIONS: tuple[tuple[str, str, str], ...] = (
    ("New prompt", "open_prompt_form", "Create a prompt from text and a video folder"),
    ("New run of the selected prompt", "new_run_selected", "Open the run form"),
    ("Filter runs", "open_run_filter", "Show runs by state, type, prompt, rating"),
    ("Show all runs", "clear_run_filter", "Clear the Runs pane filter"),
    ("Hosts", "action_hosts", "List, add, edit and remove hosts; run the doctor (H)"),
    ("Help: keys", "help", "Every binding by pane"),
    ("Zoom the focused pane", "zoom", "Toggle full screen"),
    ("Quit", "quit", "Leave; runs keep going on their hosts"),
)


class CosmosCommands(Provider):
    """Searches prompts and runs in the database, configured hosts and UI actions."""

    @property
    def cosmos(self) -> CosmosApp:
        """The application, typed."""
        from cosmos_tui.ui.app import CosmosApp

        return cast(CosmosApp, self.app)

    @property
    def main(self) -> MainScreen:
        """The main screen."""
        return self.cosmos.main_screen

    def _run_action(self, action: str) -> None:
        main = self.main
        if action == "help":
            self.cosmos.action_help()
        elif action == "quit":
            self.cosmos.call_later(self.cosmos.action_quit)
        elif action == "zoom":
            main.action_zoom()
        elif action == "new_run_selected":
            main.new_run_from(main.runs.selected)
        elif action == "clear_run_filter":
            main.runs.action_clear_filter()
        else:
            getattr(main, action)()

    async def discover(self) -> Hits:
        """Offer the actions before anything is typed."""
        for title, action, help_text in ACTIONS:
            yield DiscoveryHit(title, partial(self._run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        """Match actions and hosts locally, prompts and runs in the database."""
        matcher = self.matcher(query)
        for title, action, help_text in ACTIONS:
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(title),
                    partial(self._run_action, action),
                    help=help_text,
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
            yield Hit(0.6, label, partial(self._show_prompt, prompt.id), help="Show its runs")
        for run in result.runs.items:
            label = Text(f"run {run.id}  {run.state.value}  ") + clip(run.prompt_text, 40)
            yield Hit(
                0.5, label, partial(self.main.open_detail, run.id), help="Open the run detail"
            )

    def _focus_host(self, name: str) -> None:
        gpus = self.main.gpus
        gpus.focus()
        card = gpus.card(name)
        if card is not None:
            card.scroll_visible()

    def _show_prompt(self, prompt_id: str) -> None:
        from cosmos_tui.store.repositories import RunFilter

        main = self.main
        main.runs.set_filter(RunFilter(prompt_id=prompt_id))
        main.runs.table.focus()
