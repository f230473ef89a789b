"""The newcomer's first seconds, in a real pseudo-terminal: `cosmos demo` prints no Python
warnings before its first frame, and Enter right after start opens the run form.

The terminal's output is read as a screen by pyte (a terminal emulator), as tmux would
show it. The same check by hand: `./dev demo` in tmux on a fresh clone (README).
"""

from __future__ import annotations

import os
from pathlib import Path

import pyte
import pytest

from tests.cli.test_tui_signals import COSMOS, Terminal

pytestmark = pytest.mark.timeout(150)
ALTERNATE_SCREEN = b"\x1b[?1049h"  # Textual's first frame starts by switching to it


class Screen:
    """The 120x40 screen a terminal shows for the bytes a program wrote."""

    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal
        self.screen = pyte.Screen(120, 40)
        self.stream = pyte.ByteStream(self.screen)
        self.fed = 0

    def text(self) -> str:
        """The screen now, one line per row."""
        self.stream.feed(self.terminal.output[self.fed :])
        self.fed = len(self.terminal.output)
        return "\n".join(self.screen.display)

    def wait_for(self, words: str, timeout: float = 60) -> bool:
        """Read until ``words`` are on the screen."""
        return self.terminal.read_until(lambda: words in self.text(), timeout)


def test_demo_starts_clean_and_enter_opens_the_run_form(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("PYTHONWARNINGS", raising=False)  # as a newcomer's shell has it
    terminal = Terminal([str(COSMOS), "demo", "--workspace", str(tmp_path / "ws")])
    screen = Screen(terminal)
    try:
        first = terminal.read_until(lambda: ALTERNATE_SCREEN in terminal.output, 60)
        assert first, terminal.output.decode("utf-8", "replace")[-2000:]
        before = terminal.output.split(ALTERNATE_SCREEN)[0].decode("utf-8", "replace")
        assert "Warning" not in before and "warn(" not in before, before
        assert "Traceback" not in before, before
        # the sample prompts are listed; the Prompts pane has the focus (no runs yet)
        assert screen.wait_for("A rainy city street"), screen.text()
        assert screen.wait_for("connected"), screen.text()
        os.write(terminal.leader, b"\r")
        assert screen.wait_for("New run", 30), screen.text()
    finally:
        terminal.close()
