"""Running the TUI in a terminal that may go away: SIGHUP and SIGTERM end it in bounded time.

Shared by ``cosmos tui`` and ``cosmos demo``. A signal quits the app the normal way (its
quit action closes the services; runs keep going on their hosts, nothing is cancelled).
SIGHUP means the terminal is gone (a killed tmux pane, a dropped ssh session): Textual's
output thread dies on the first write to a hung-up terminal and its later writes then
block for good, so the standard streams are pointed at /dev/null before quitting. A
watchdog ends the process if the orderly way out takes longer than its bound.

The signal handler runs in the main thread between any two bytecodes, possibly while that
thread holds one of threading's internal locks (starting a thread, as aiosqlite and
``asyncio.to_thread`` do). So it takes no lock the main thread could hold and starts no
thread: the watchdog thread is started before the app runs and waits on an Event that only
the handler (or ``run_tui`` itself, after the handlers are restored) sets.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable
from typing import Any, Protocol

from cosmos_tui.cli.context import fail

# The services get 5 s to close (CosmosApp); the rest is for Textual and the caller.
SHUTDOWN_GRACE_SECONDS = 8.0
TERMINATION_SIGNALS = (signal.SIGHUP, signal.SIGTERM)


class QuittableApp(Protocol):
    """What run_tui needs of a Textual app (Textual itself stays inside cosmos_tui.ui)."""

    @property
    def return_code(self) -> int | None:
        """The app's exit status once it ended (None until then); read only."""

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
    out when that finishes in time, with status 128 + the signal's number. The handlers
    of SIGHUP and SIGTERM in place before the call are back in place when it ends.

    Args:
        app: The Textual app; its ``action_quit`` is what a signal calls.
        auto_pilot: Passed to ``App.run`` (bench/first-frame timing).
        grace: The most seconds from the first signal to the end of the process.

    Raises:
        SystemExit: 128 + the signal's number after a signal; 1 (with an ``error:``
            line) when the app ended with an error.
    """
    shutdown = _Shutdown(app, grace)
    previous = {signum: signal.getsignal(signum) for signum in TERMINATION_SIGNALS}
    watchdog = threading.Thread(target=shutdown.watch, name="cosmos-tui-watchdog", daemon=True)
    watchdog.start()
    try:
        for signum in TERMINATION_SIGNALS:
            signal.signal(signum, shutdown.handle)
        app.run(auto_pilot=auto_pilot)
    finally:
        for signum, handler in previous.items():
            # None: a handler not installed from Python; the default is the closest.
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        if shutdown.signum is None:  # no signal came: the watchdog is not needed
            shutdown.stand_down()
            watchdog.join()
    if shutdown.signum is not None:
        sys.exit(128 + shutdown.signum)
    if app.return_code:
        fail("the terminal UI ended with an error")


class _Shutdown:
    """The state a signal sets, the watchdog that bounds the way out, the quit task."""

    def __init__(self, app: QuittableApp, grace: float) -> None:
        self._app = app
        self._grace = grace
        self.signum: int | None = None  # the first signal, once one came
        self._deadline = 0.0
        self._woken = threading.Event()
        self._quitting: set[asyncio.Future[None]] = set()

    def handle(self, signum: int, _frame: object) -> None:
        """The signal handler: note the signal, wake the watchdog, schedule the quit."""
        if signum == signal.SIGHUP:
            _detach_from_terminal()
        if self.signum is not None:  # already on the way out, under the watchdog
            return
        # Set before the Event: a nested signal returns above instead of entering its lock.
        self.signum = signum
        self._deadline = time.monotonic() + self._grace
        self._woken.set()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # the app is not running (yet, or any more)
            sys.exit(128 + signum)
        loop.call_soon_threadsafe(self._quit)

    def _quit(self) -> None:
        """In the app's loop: start its quit action and hold the task until it is done."""
        task = asyncio.ensure_future(self._app.action_quit())
        self._quitting.add(task)
        task.add_done_callback(self._quitting.discard)

    def watch(self) -> None:
        """The watchdog thread: after a signal, end the process when the grace is over."""
        self._woken.wait()
        if self.signum is None:  # stood down: the app ended without a signal
            return
        time.sleep(max(0.0, self._deadline - time.monotonic()))
        os._exit(128 + self.signum)

    def stand_down(self) -> None:
        """End the watchdog thread (only once no handler of ours can run any more)."""
        self._woken.set()


def _detach_from_terminal() -> None:
    """Point stdin, stdout and stderr at /dev/null: nobody reads the terminal any more."""
    sink = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(sink, fd)
    if sink > 2:
        os.close(sink)
