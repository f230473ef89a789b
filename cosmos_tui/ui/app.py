"""The Textual application: opens the services in a worker and shows the main screen."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import Worker, WorkerCancelled, WorkerFailed

from cosmos_tui.config import Config
from cosmos_tui.safe_text import one_line, printable
from cosmos_tui.ui.commands import CosmosCommands
from cosmos_tui.ui.messages import GlanceLoaded, ServicesFailed, ServicesReady
from cosmos_tui.ui.protocol import ServicesFactory, UIServices
from cosmos_tui.ui.report import reported
from cosmos_tui.ui.screens.actions import default_opener
from cosmos_tui.ui.screens.help import HelpScreen
from cosmos_tui.ui.screens.main import LAUNCH_PANES, MainScreen
from cosmos_tui.ui.startup import StartUp
from cosmos_tui.ui.widgets.pane import first_page_rows

logger = logging.getLogger(__name__)


def utc_now() -> datetime:
    """Return the current time in UTC (the default clock)."""
    return datetime.now(UTC)


CLOSE_TIMEOUT_SECONDS = 5.0
# The services open once the rows read at launch are drawn, or after this at the latest.
GLANCE_FALLBACK_SECONDS = 1.0
# How long quitting waits for the cancelled workers to end before the services close.
WORKERS_CLOSE_SECONDS = 2.0


class CosmosApp(App[None]):
    """cosmos-tui: prompts, runs, GPUs and logs in one keyboard-driven screen.

    Args:
        services_factory: Called once; returns an async context manager that yields the
            services (the app enters it in a worker and leaves it on quit).
        config: The validated configuration (keymap, UI settings, alert limits).
        clock: The current time (injectable for deterministic snapshots).
        opener: Returns the argv that opens a file in the system's player.

    """

    CSS_PATH = "app.tcss"
    TITLE = "cosmos"
    COMMANDS = App.COMMANDS | {CosmosCommands}
    BINDINGS = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "help", "Help", key_display="?", id="app.help"),
        Binding("ctrl+p", "command_palette", "Palette", show=False, id="app.palette"),
    ]

    def __init__(
        self,
        services_factory: ServicesFactory,
        config: Config,
        clock: Callable[[], datetime] = utc_now,
        opener: Callable[[str], list[str]] = default_opener,
    ) -> None:
        super().__init__()
        self.services_factory = services_factory
        self.config = config
        self.clock = clock
        self.opener = opener
        self.opened: list[str] = []
        self.startup = StartUp(LAUNCH_PANES)
        self._theme_problem: str | None = None
        if config.ui.theme in self.available_themes:
            self.theme = config.ui.theme
        else:  # shown once the screen is up; the default theme meanwhile
            known = ", ".join(sorted(self.available_themes))
            self._theme_problem = (
                f"ui.theme {config.ui.theme!r} is not a theme; using {self.theme} (themes: {known})"
            )
        if config.keymap:
            self.set_keymap(dict(config.keymap))

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Show a notification; its text is shown as plain text, never parsed as markup.

        Every notification of the app (and of its screens and widgets, which call this)
        may quote untrusted text: a search such as ``[/]``, an error naming a path, a
        host's answer. So markup is always off and control characters are escaped.
        """
        super().notify(
            printable(message),
            title=one_line(title),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    def get_default_screen(self) -> Screen[None]:
        """The main screen, drawn before any service answers."""
        return MainScreen()

    @property
    def main_screen(self) -> MainScreen:
        """The main screen (the bottom of the stack)."""
        screen = self.screen_stack[0]
        assert isinstance(screen, MainScreen)
        return screen

    def on_mount(self) -> None:
        """Once the first frame is on screen: a glance at the database, then the services."""
        if self._theme_problem:
            self.notify(self._theme_problem, severity="warning", timeout=15)
        self.call_after_refresh(self._glance)

    @property
    def closing(self) -> bool:
        """Whether quitting has begun (q, a signal, the app's end): nothing opens any more."""
        return self.startup.closing

    @property
    def services(self) -> UIServices | None:
        """The open services (None before they open, after they close, or on failure)."""
        return self.startup.services

    @work(group="glance", exit_on_error=False)
    @reported
    async def _glance(self) -> None:
        """Show the newest prompts and runs read with sqlite3 alone, then open the services.

        The services (SQLAlchemy, the engine) take a few hundred milliseconds to import; the
        panes are full meanwhile. Without a glance (no database yet, a migration pending,
        a lock, a bug) the services open at once and the panes wait for them. A quit
        during the glance (it cancels this worker) opens nothing.
        """
        pages = None
        try:
            # lazy: store.glance (sqlite3, json: ~9 ms) loads after the first frame is drawn
            from cosmos_tui.store.glance import newest_pages

            rows = first_page_rows(self.config.ui.page_size, self.size.height)
            pages = await asyncio.to_thread(newest_pages, self.config.db_path, rows, rows)
        finally:
            if pages is None:
                self.open_services()
            elif not self.closing:  # the main screen opens them once the rows are drawn
                self.main_screen.post_message(GlanceLoaded(*pages))
                self.set_timer(GLANCE_FALLBACK_SECONDS, self.open_services)

    def open_services(self) -> None:
        """Open the services in the background (once, and never once quitting has begun)."""
        if self.startup.begin_opening():
            self._open_services()

    @work(group="services", exit_on_error=False)
    async def _open_services(self) -> None:
        """Open the services in a task of their own.

        Closing them is then never cut short by the cancellation of workers at shutdown.
        """
        if self.closing:
            return
        self.startup.task = asyncio.create_task(self._hold_services())
        await asyncio.shield(self.startup.task)

    async def _hold_services(self) -> None:
        """Enter the factory, hand the services to the screen, leave it when told."""
        if self.closing:
            return
        try:
            async with self.services_factory() as services:
                self.startup.opened(services)
                self.main_screen.post_message(ServicesReady(services))
                await self.startup.released.wait()
        except Exception as exc:  # shown on the screen; the app stays usable
            logger.error("cannot open the services", exc_info=exc)
            self.startup.failed(exc)
            self.main_screen.post_message(ServicesFailed(exc))
        finally:
            self.startup.closed()

    async def action_quit(self) -> None:
        """Close the services and exit; runs keep going on their hosts."""
        await self.close_services()
        self.exit()

    async def close_services(self) -> None:
        """Stop the streams, then leave the services factory (idempotent).

        The cancelled workers get a moment to leave their database sessions first: a
        query cut off while the engine is being disposed can leave a connection whose
        rollback never finishes.
        """
        self.startup.close_requested.set()
        cancelled = [w for w in self.workers if w.group != "services" and not w.is_finished]
        for worker in cancelled:
            worker.cancel()
        if cancelled:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*(_ended(w) for w in cancelled)), WORKERS_CLOSE_SECONDS
                )
        self.startup.released.set()
        task = self.startup.task
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), CLOSE_TIMEOUT_SECONDS)
            except TimeoutError:
                logger.warning("the services did not close within %s s", CLOSE_TIMEOUT_SECONDS)

    async def on_unmount(self) -> None:
        """Close the services however the app ends."""
        await self.close_services()

    def action_help(self) -> None:
        """Show every binding by pane."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self._keymap_now()))

    def _keymap_now(self) -> dict[str, str]:
        return dict(self.config.keymap)


async def _ended(worker: Worker[Any]) -> None:
    """Wait until a cancelled worker has ended (however it ends)."""
    with contextlib.suppress(WorkerCancelled, WorkerFailed):
        await worker.wait()
