"""`cosmos tui` in a real pseudo-terminal: a closed terminal or SIGTERM ends it promptly.

The TUI runs as the session leader of its own pty (as under a shell in tmux or ssh), so
closing the pty's leader side hangs the terminal up and the kernel sends SIGHUP, exactly
as when a tmux pane is killed or an ssh session drops. The services hold the SQLite
database in WAL mode; SQLite removes the ``-wal`` file when the last connection closes,
so its absence after exit shows that the services were closed, not just killed.
"""

from __future__ import annotations

import asyncio
import os
import pty
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

COSMOS = Path(sys.executable).parent / "cosmos"


class Terminal:
    """A program running on a 120x40 pseudo-terminal that it has as its controlling tty."""

    def __init__(self, argv: list[str]) -> None:
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
        self.pid, self.leader = pty.fork()
        if self.pid == 0:  # the child: the session leader of the new terminal
            try:
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.output = b""
        self.status: int | None = None

    def read_until(self, done: object, timeout: float = 30) -> bool:
        """Read the screen until ``done()`` is true; False when ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:  # type: ignore[operator]
            self._read(0.1)
        return bool(done())  # type: ignore[operator]

    def read_until_quiet(self, quiet: float = 0.5, timeout: float = 10) -> None:
        """Read until nothing new is drawn for ``quiet`` seconds (the screen settled)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = len(self.output)
            self._read(quiet)
            if len(self.output) == before:
                return

    def hang_up(self) -> None:
        """Close the terminal, as a killed tmux pane or a dropped ssh session does."""
        os.close(self.leader)
        self.leader = -1

    def wait(self, timeout: float) -> int | None:
        """Reap the program (reading its output meanwhile); its exit code, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                self._read(0)
                return self.status
            self._read(0.05)
        return None

    def close(self) -> None:
        """Kill the program if it is still running, and close the terminal."""
        if self.status is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        if self.leader >= 0:
            os.close(self.leader)

    def _read(self, timeout: float) -> None:
        if self.leader < 0:
            time.sleep(timeout)
            return
        ready, _, _ = select.select([self.leader], [], [], timeout)
        if ready:
            try:
                self.output += os.read(self.leader, 65536)
            except OSError:  # EIO: the program has closed its side
                time.sleep(timeout)


@pytest.fixture
def tui(workspace: Path):
    """`cosmos tui` over the empty workspace, once its services are open and shown."""
    terminal = Terminal([str(COSMOS), "tui"])
    wal = workspace / "data" / "cosmos.db-wal"
    try:
        opened = terminal.read_until(
            lambda: b"No GPU hosts configured" in terminal.output and wal.exists()
        )
        assert opened, terminal.output.decode("utf-8", "replace")[-2000:]
        # The panes' first queries have answered: a signal now meets no query half-way.
        terminal.read_until_quiet()
        yield terminal, wal
    finally:
        terminal.close()


def test_closing_the_terminal_ends_the_tui_and_closes_its_services(tui):
    terminal, wal = tui
    started = time.monotonic()
    terminal.hang_up()
    assert terminal.wait(timeout=10) == 128 + signal.SIGHUP
    assert time.monotonic() - started < 5
    assert not wal.exists()


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM], ids=["SIGHUP", "SIGTERM"])
def test_a_signal_ends_the_tui_cleanly(tui, signum: int):
    terminal, wal = tui
    started = time.monotonic()
    os.kill(terminal.pid, signum)
    assert terminal.wait(timeout=10) == 128 + signum
    assert time.monotonic() - started < 5
    assert not wal.exists()
    assert b"Traceback" not in terminal.output


def test_a_signal_ends_the_tui_within_the_bound_when_closing_hangs(tmp_path: Path):
    script = tmp_path / "stuck.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio
            from textual.app import App
            from textual.widgets import Label
            from cosmos_tui.cli.terminal import run_tui

            class Stuck(App):
                def compose(self):
                    yield Label("ready")

                async def action_quit(self):
                    await asyncio.sleep(3600)  # services that never finish closing

            run_tui(Stuck(), grace=1.0)
            """
        ),
        encoding="utf-8",
    )
    terminal = Terminal([sys.executable, str(script)])
    try:
        assert terminal.read_until(lambda: b"ready" in terminal.output)
        started = time.monotonic()
        os.kill(terminal.pid, signal.SIGTERM)
        assert terminal.wait(timeout=10) == 128 + signal.SIGTERM
        assert 1.0 <= time.monotonic() - started < 4
    finally:
        terminal.close()


class _QuitsAtOnce:
    """A stand-in app (run_tui's QuittableApp) that ends as soon as it runs."""

    return_code: int | None = 0

    def run(self, *, auto_pilot: object = None) -> None:
        asyncio.run(asyncio.sleep(0))

    async def action_quit(self) -> None:
        """Nothing to quit: run already returns."""


def test_the_handlers_from_before_the_tui_are_back_after_it_quits():
    from cosmos_tui.cli.terminal import run_tui

    def before(signum: int, _frame: object) -> None:
        raise AssertionError(f"no signal is sent here ({signum})")

    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGHUP, signal.SIGTERM)}
    try:
        signal.signal(signal.SIGHUP, before)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        run_tui(_QuitsAtOnce())
        assert signal.getsignal(signal.SIGHUP) is before
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
        assert "cosmos-tui-watchdog" not in [t.name for t in threading.enumerate()]
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def test_the_handlers_from_before_the_tui_are_back_after_a_signal_ends_it(tmp_path: Path):
    # In a process of its own: after a signal, run_tui's watchdog ends the process. It
    # reports to a file: after SIGHUP its standard streams lead to /dev/null.
    script, report = tmp_path / "restore.py", tmp_path / "report"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio, os, signal, sys
            from cosmos_tui.cli.terminal import run_tui

            def say(*words):
                with open(sys.argv[1], "a") as report:
                    print(*words, file=report)

            class App:
                return_code = 0

                def __init__(self, signum, in_loop):
                    self.signum, self.in_loop = signum, in_loop

                def run(self, *, auto_pilot=None):
                    if not self.in_loop:  # a signal before the app's loop runs
                        os.kill(os.getpid(), self.signum)
                    asyncio.run(self.main())

                async def main(self):
                    self.quit = asyncio.Event()
                    os.kill(os.getpid(), self.signum)
                    await self.quit.wait()

                async def action_quit(self):
                    self.quit.set()

            def before(signum, frame):
                say("handler from before:", signum)
                sys.exit(42)

            for signum in (signal.SIGHUP, signal.SIGTERM):
                signal.signal(signum, before)
            for signum in (signal.SIGHUP, signal.SIGTERM):
                for in_loop in (True, False):
                    try:
                        run_tui(App(signum, in_loop), grace=30)
                    except SystemExit as exc:
                        restored = all(
                            signal.getsignal(s) is before for s in (signal.SIGHUP, signal.SIGTERM)
                        )
                        say("ended:", exc.code, "restored:", restored)
            os.kill(os.getpid(), signal.SIGTERM)
            """
        ),
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, str(script), str(report)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    hup, term = 128 + signal.SIGHUP, 128 + signal.SIGTERM
    assert report.read_text().splitlines() == [
        f"ended: {hup} restored: True",
        f"ended: {hup} restored: True",
        f"ended: {term} restored: True",
        f"ended: {term} restored: True",
        f"handler from before: {signal.SIGTERM}",
    ]
    assert done.returncode == 42
