r"""The app's start-up state, in one object the app and the main screen share.

The first frame does not wait for the services (docs/architecture.md, "Decisions"), so a
launch goes through steps that the app and the main screen each see part of::

    glance (sqlite3 rows drawn) -> opening -> ready -> first pages shown -> live
                                        \-> failed                \-> closing (quit)

:class:`StartUp` holds every piece of that state (which step, the services, the panes
whose first page is awaited, the task that holds the services open, the event that
closes them), so no flag of it lives in a widget and each step happens once.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable

from cosmos_tui.ui.protocol import UIServices


class Step(enum.Enum):
    """Where a launch is."""

    DRAWING = "drawing"  # the first frame, maybe the glance's rows; no services yet
    OPENING = "opening"  # the services are being opened (imports, database)
    READY = "ready"  # the main screen has the services; first pages loading
    FAILED = "failed"  # the services could not open (shown on the banner)


class StartUp:
    """The start-up state of one app.

    Args:
        launch_panes: The panes whose first page comes before the live streams start.

    """

    def __init__(self, launch_panes: Iterable[str]) -> None:
        self.step = Step.DRAWING
        self.services: UIServices | None = None
        self.error: BaseException | None = None
        self.awaited_panes: set[str] = set(launch_panes)
        self.streams_started = False
        self.task: asyncio.Task[None] | None = None
        self.close_requested = asyncio.Event()
        # set once the workers that use the services have ended: the services close then
        self.released = asyncio.Event()

    @property
    def closing(self) -> bool:
        """Whether quitting has begun: nothing opens any more."""
        return self.close_requested.is_set()

    @property
    def ready(self) -> bool:
        """Whether the main screen has the services."""
        return self.step == Step.READY and self.services is not None

    def begin_opening(self) -> bool:
        """Mark the services as opening; False when they already are, or quitting began."""
        if self.step != Step.DRAWING or self.closing:
            return False
        self.step = Step.OPENING
        return True

    def opened(self, services: UIServices) -> None:
        """The services are open (the main screen takes them with :meth:`attached`)."""
        self.services = services

    def attached(self) -> None:
        """The main screen handed the services to its panes."""
        self.step = Step.READY

    def failed(self, error: BaseException) -> None:
        """The services could not open."""
        self.step, self.error = Step.FAILED, error

    def closed(self) -> None:
        """The services were left (quit, or a failure while open)."""
        self.services = None

    def first_page_shown(self, pane: str) -> bool:
        """Note a pane's first page; True once every launch pane has shown its own."""
        self.awaited_panes.discard(pane)
        return not self.awaited_panes

    def start_streams(self) -> bool:
        """True the one time the live streams should start (the services are ready)."""
        if self.streams_started or not self.ready:
            return False
        self.streams_started = True
        return True
