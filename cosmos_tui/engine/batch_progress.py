"""Each member's progress while its batch container runs.

A batch logs its samples one after another (Transfer2.5: ``[i/N] Processing sample
<name>``, batch_t25.py; Cosmos 3: each sample's lines name its folder or name,
batch_c3.py). The lines before the first sample (downloads, the model load) are every
member's; from there on a line belongs to the sample whose section it is in, and feeds
only that member's parser, so each member shows its own phase, percent and ETA (the line
that counts the process's samples is read as a run alone's, :data:`ALONE`). A member
whose sample has not started yet says where it waits. Transfer1 generates a batch as a
whole (COSMOS.md section 3): every member follows the same lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from cosmos_tui.domain import Progress
from cosmos_tui.engine import batch_c3
from cosmos_tui.engine.profiles.transfer25 import SECTION
from cosmos_tui.engine.progress import ProgressTracker, parser_for

if TYPE_CHECKING:
    from cosmos_tui.store.repositories import Store

# Seconds between writes of the members' progress while lines arrive.
WRITE_INTERVAL = 1.0


# The lines that tell a parser how many samples the process runs, and what a run alone
# would have logged instead: each member's parser counts its own sample only.
ALONE: dict[str, tuple[re.Pattern[str], str]] = {
    "transfer2.5": (re.compile(r"\[\d+/\d+\] Processing sample"), "[1/1] Processing sample"),
    "cosmos3": (re.compile(r"Loaded \d+ samples"), "Loaded 1 samples"),
}


def sample_finder(profile: str, run_ids: Sequence[str]) -> Callable[[str], str | None]:
    """Return what tells which member a log line starts or belongs to (None: no sample).

    Transfer1's batches have no per-sample sections: its finder never names one. Cosmos
    3's batches are read in order instead (:class:`~cosmos_tui.engine.batch_c3.Sections`).
    """
    names = set(run_ids)

    def transfer25(line: str) -> str | None:
        found = SECTION.search(line)
        return found.group(3) if found is not None and found.group(3) in names else None

    finders = {"transfer2.5": transfer25}
    return finders.get(profile, lambda _line: None)


class BatchProgress:
    """Per-member progress of one batch container, fed its log lines as they arrive.

    Args:
        profile: The batch's model family (its progress parser and sample sections).
        run_ids: The members, in line order.
        started_at: When the container started (wall-clock seconds).

    """

    def __init__(self, profile: str, run_ids: Sequence[str], started_at: float) -> None:
        self.run_ids = list(run_ids)
        # Cosmos 3: a sample's end already says the next one runs (a reasoner sample logs
        # nothing before its own end)
        self.sections = batch_c3.Sections(run_ids) if profile == "cosmos3" else None
        self.find = self.sections.owner_of if self.sections else sample_finder(profile, run_ids)
        self.alone = ALONE.get(profile)
        self.trackers = {
            run_id: ProgressTracker(parser_for(profile), started_at, None) for run_id in run_ids
        }
        self.current: str | None = None
        self.done: list[str] = []
        self.dirty: set[str] = set(run_ids)

    def feed(self, lines: Sequence[str], now: float) -> None:
        """Feed new log lines to the member (or, before any sample, every member) they are of."""
        for line in lines:
            owner = self.find(line)
            if self.alone is not None:
                line = self.alone[0].sub(self.alone[1], line)
            self._move_to(owner)
            targets = [self.current] if self.current is not None else self.run_ids
            for run_id in targets:
                if self.trackers[run_id].feed([line], now):
                    self.dirty.add(run_id)
            if self.sections is not None:
                self._move_to(self.sections.owner)

    def _move_to(self, owner: str | None) -> None:
        """Make ``owner`` the sample running now (the one before it is done)."""
        if owner is None or owner == self.current:
            return
        if self.current is not None and self.current not in self.done:
            self.done.append(self.current)
        self.current = owner
        self.dirty.update(self.run_ids)  # the others' "waiting" text moves on

    def snapshot(self, run_id: str, now: float) -> Progress:
        """Return a member's progress: its own sample's, or where it waits."""
        if self.current is not None and run_id != self.current and run_id not in self.done:
            position = self.run_ids.index(run_id) + 1
            running = self.run_ids.index(self.current) + 1
            phase = f"waiting: sample {position} of {len(self.run_ids)} (now {running})"
            return Progress(phase, 0.0, None)
        return self.trackers[run_id].snapshot(now)

    async def write(self, store: Store, now: float) -> None:
        """Store the progress of the members whose progress moved since the last write."""
        changed, self.dirty = self.dirty, set()
        for run_id in self.run_ids:
            if run_id not in changed:
                continue
            progress = self.snapshot(run_id, now)
            eta = progress.eta_seconds
            await store.update_run(
                run_id,
                progress_phase=progress.phase,
                progress_percent=round(progress.percent, 1),
                eta_seconds=round(eta, 1) if eta is not None else None,
            )

    async def publish(self, store: Store, clock: Callable[[], float], stop: asyncio.Event) -> None:
        """Write the members' progress every :data:`WRITE_INTERVAL` until ``stop`` is set.

        A stop lets the write under way finish (a database write is never cut short).
        """
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), WRITE_INTERVAL)
            await self.write(store, clock())
