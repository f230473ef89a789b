"""Replay of a captured nvidia-smi output by the simulated host's nvidia-smi.

A replay file is a CSV whose first row names the ``--query-gpu`` fields as nvidia-smi
prints its header (``memory.used [MiB]``), then one block of rows per tick, blocks
separated by a blank line. Tick N is answered from ``tick_s * N`` seconds after the
replay starts; the last block holds on. Each query is answered for whatever fields it
asks: a field the capture lacks reads ``[N/A]``, and ``nounits`` drops the units the
header declared. A line of a block that is not a row (``Unable to determine the device
handle ...``) is printed as it is. tests/fixtures/nvidia_smi has real captures and
replays composed from them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cosmos_tui.remote.smi import ALIASES


class ReplayError(ValueError):
    """The replay file cannot be used (says what to change)."""


def _unit(header_cell: str) -> str | None:
    if " [" in header_cell and header_cell.endswith("]"):
        return header_cell.rsplit(" [", 1)[1][:-1]
    return None


@dataclass
class SmiReplay:
    """A parsed replay and its clock.

    Attributes:
        fields: Canonical field names of the columns.
        units: The unit each column's header declared (None: none).
        blocks: Lines of each tick.
        tick_s: Seconds per tick.
        clock: Monotonic clock (injected by tests).
        started: When tick 0 began.
    """

    fields: tuple[str, ...]
    units: tuple[str | None, ...]
    blocks: list[list[str]]
    tick_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)

    @classmethod
    def parse(cls, text: str, tick_s: float = 1.0) -> SmiReplay:
        """Parse a replay's text.

        Raises:
            ReplayError: When the header has no ``index`` field or no block has rows.
        """
        if tick_s <= 0:
            raise ReplayError(f"the replay tick must be positive, not {tick_s:g} s")
        lines = text.replace("\r\n", "\n").split("\n")
        header = lines[0]
        cells = [cell.strip() for cell in header.split(",")]
        fields = tuple(ALIASES.get(c.split(" [", 1)[0], c.split(" [", 1)[0]) for c in cells)
        if "index" not in fields or "uuid" not in fields:
            raise ReplayError(
                "the first row of a replay must name the --query-gpu fields, index and uuid "
                f"among them (it is {header[:80]!r})"
            )
        blocks: list[list[str]] = [[]]
        for line in lines[1:]:
            if not line.strip():
                if blocks[-1]:
                    blocks.append([])
                continue
            blocks[-1].append(line.rstrip())
        blocks = [b for b in blocks if b]
        replay = cls(fields, tuple(_unit(c) for c in cells), blocks, tick_s)
        if not blocks or not replay.rows(0):
            raise ReplayError("the replay has no row of GPU figures under its header")
        replay.restart()
        return replay

    @classmethod
    def load(cls, path: Path, tick_s: float = 1.0) -> SmiReplay:
        """Read and parse a replay file.

        Raises:
            ReplayError: When it cannot be read or used.
        """
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ReplayError(f"cannot read the replay file {path}: {exc}") from exc
        return cls.parse(text, tick_s)

    def restart(self) -> None:
        """Start again from the first tick."""
        self.started = self.clock()

    def tick(self) -> int:
        """The block answered now."""
        elapsed = max(0.0, self.clock() - self.started)
        return min(int(elapsed / self.tick_s), len(self.blocks) - 1)

    def _cells(self, line: str) -> list[str] | None:
        parts = [part.strip() for part in line.split(", ")]
        return parts if len(parts) == len(self.fields) else None

    def rows(self, block: int) -> list[dict[str, str]]:
        """The rows of a block, field -> text."""
        out = []
        for line in self.blocks[block]:
            cells = self._cells(line)
            if cells is not None:
                out.append(dict(zip(self.fields, cells, strict=True)))
        return out

    def gpus(self) -> list[tuple[int, str, str]]:
        """(index, uuid, name) of each GPU of the first block."""
        return [
            (int(r["index"]), r["uuid"], r.get("name", "GPU"))
            for r in self.rows(0)
            if r["index"].isdecimal()
        ]

    def render(self, requested: tuple[str, ...], units: bool, ids: tuple[int, ...] | None) -> str:
        """Answer a ``--query-gpu`` request from the current block."""
        unit_of = dict(zip(self.fields, self.units, strict=True))
        lines = []
        for line in self.blocks[self.tick()]:
            cells = self._cells(line)
            if cells is None:
                lines.append(line + "\n")
                continue
            row = dict(zip(self.fields, cells, strict=True))
            index = row.get("index", "")
            if ids is not None and index.isdecimal() and int(index) not in ids:
                continue
            values = []
            for name in requested:
                key = ALIASES.get(name, name)
                value = row.get(key, "[N/A]")
                unit = unit_of.get(key)
                if not units and unit and value.endswith(f" {unit}"):
                    value = value[: -len(unit) - 1]
                values.append(value)
            lines.append(", ".join(values) + "\n")
        return "".join(lines)
