"""Reading Cosmos log lines: their level, and where the first error is."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from pathlib import Path

LEVEL_RE = re.compile(r"^\[[^|\]]*\|\s*([A-Z]+)\s*\|")
ERROR_RE = re.compile(
    r"Traceback \(most recent call last\)|\b\w*(Error|Exception)\b:|GUARDRAIL BLOCKED|"
    r"ChildFailedError|out of memory|Signal 9"
)
LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR")
LEVEL_RANK = {"TRACE": 0, "DEBUG": 0, "INFO": 1, "SUCCESS": 1, "WARNING": 2, "ERROR": 3}


def log_level(line: str) -> str:
    """Return a line's level: its loguru level, ERROR for error text, else INFO.

    ``CRITICAL`` is an error except for torchrun's "Initialized distributed" notice,
    which every rank logs at that level.
    """
    match = LEVEL_RE.match(line)
    if match:
        level = match.group(1)
        if level == "CRITICAL":
            return "INFO" if "Initialized distributed" in line else "ERROR"
        if level == "ERROR":
            return "ERROR"
        if level in LEVEL_RANK:
            return level
    if ERROR_RE.search(line):
        return "ERROR"
    return "INFO"


def level_rank(level: str) -> int:
    """Return the rank of a level for ``at least`` filtering."""
    return LEVEL_RANK.get(level, 1)


def first_error_index(lines: Iterable[str]) -> int | None:
    """Return the index of the first error line, or None."""
    for index, line in enumerate(lines):
        if log_level(line) == "ERROR":
            return index
    return None


def first_error_window(path: Path, around: int) -> tuple[str, ...]:
    """Return up to ``around`` lines either side of the first error line of a log file."""
    before: deque[str] = deque(maxlen=around)
    window: list[str] = []
    after = -1
    with path.open(encoding="utf-8", errors="replace") as handle:
        for raw in handle:
            line = raw.rstrip("\r\n")
            if after >= 0:
                if after >= around:
                    break
                window.append(line)
                after += 1
            elif log_level(line) == "ERROR":
                window = [*before, line]
                after = 0
            else:
                before.append(line)
    return tuple(window)
