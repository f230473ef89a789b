"""Running the TUI in a terminal that may go away: SIGHUP and SIGTERM end it in bounded time.

Shared by ``cosmos tui`` and ``cosmos demo``. A signal quits the app the normal way (its
quit action closes the services; runs keep going on their hosts, nothing is cancelled).
SIGHUP means the terminal is gone (a killed tmux pane, a dropped ssh session): Textual's
output thread dies on the first write to a hung-up terminal and its later writes then
block for good, so the standard streams are pointed at /dev/null before quitting. A
watchdog ends the process if the orderly way out takes longer than its bound.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Awaitable
from typing import Any, Protocol

from cosmos_tui.cli.context import fail

# The services get 5 s to close (CosmosApp); the rest is for Textual and the caller.
SHUTDOWN_GRACE_SECONDS = 8.0
TERMINATION_SIGNALS = (signal.SIGHUP, signal.SIGTERM)


class QuittableApp(Protocol):
    """What run_tui needs of a Textual app (Textual itself stays inside cosmos_tui.ui)."""

    return_code: int | None

    def run(self, *, auto_pilot: Any = None) -> Any:
        """Run the app until it exits."""

    def action_quit(self) -> Awaitable[None]:
        """Quit the app the normal way."""


def exit_on_termination() -> None:
    """Until the TUI runs, let SIGHUP or SIGTERM raise SystemExit (``finally`` blocks run)."""

    def handler(signum: int, _frame: object) -> None:
        sys.exit(128 + signum)

    for signum in TERMINATION_SIGNALS:
        signal.signal(signum, handler)


def run_tui(
    app: QuittableApp, *, auto_pilot: Any = None, grace: float = SHUTDOWN_GRACE_SECONDS
) -> None:
    """Run ``app`` in this terminal until it quits, or until SIGHUP or SIGTERM.

    After a signal the process ends within ``grace`` seconds of it, by the normal way
    out when that finishes in time, with status 128 + the signal's number.

    Args:
        app: The Textual app; its ``action_quit`` is what a signal calls.
        auto_pilot: Passed to ``App.run`` (bench/first-frame timing).
        grace: The most seconds from the first signal to the end of the process.

    Raises:
        SystemExit: 128 + the signal's number after a signal; 1 (with an ``error:``
            line) when the app ended with an error.
    """
    received: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        if signum == signal.SIGHUP:
            _detach_from_terminal()
        if received:  # already on the way out, under the watchdog
            return
        received.append(signum)
        watchdog = threading.Timer(grace, os._exit, (128 + signum,))
        watchdog.daemon = True
        watchdog.start()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # the app is not running (yet, or any more)
            sys.exit(128 + signum)
        loop.call_soon_threadsafe(lambda: loop.create_task(app.action_quit()))

    for signum in TERMINATION_SIGNALS:
        signal.signal(signum, handler)
    app.run(auto_pilot=auto_pilot)
    if received:
        sys.exit(128 + received[0])
    if app.return_code:
        fail("the terminal UI ended with an error")


def _detach_from_terminal() -> None:
    """Point stdin, stdout and stderr at /dev/null: nobody reads the terminal any more."""
    sink = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(sink, fd)
    if sink > 2:
        os.close(sink)
