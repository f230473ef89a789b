"""What a screen shows of runs, read from the store and the output folders.

The run watch (the Runs pane's live changes, by polling the store, which every process
that drives a run writes), a run's main output video and output files, and the log lines
around its first error. They belong to the services, not the UI: ``cosmos_tui.ui.facade``
only passes them on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cosmos_tui.containment import output_file
from cosmos_tui.domain import OutputFile, Run, RunState
from cosmos_tui.engine.logtext import first_error_window
from cosmos_tui.errors import NotFound
from cosmos_tui.store.repositories import RunFilter

if TYPE_CHECKING:
    from cosmos_tui.services.workbench import Workbench

# The runs a watch follows: waiting or holding something on a host.
WATCHED = frozenset({RunState.QUEUED, *(state for state in RunState if state.is_active)})
WATCH_PAGE = 500


async def watch_runs(
    bench: Workbench, shown: Sequence[Run] | None, poll_seconds: float
) -> AsyncIterator[Run]:
    """Yield changed runs, oldest change first, by polling the store.

    Args:
        bench: The services (their store).
        shown: The queued and active runs the caller shows, as it read them: the first
            poll yields what changed since (a run finished meanwhile included) instead of
            taking what it finds as the baseline. None: the first poll is the baseline.
        poll_seconds: The pause between polls.
    """
    seen: dict[str, datetime] | None = None
    if shown is not None:
        seen = {run.id: run.updated_at for run in shown if run.state in WATCHED}
    while True:
        page = await bench.list_runs(RunFilter(states=WATCHED), 0, WATCH_PAGE, sort="updated")
        current = {run.id: run for run in page.items}
        changed: list[Run] = []
        if seen is not None:
            changed = [run for run in page.items if seen.get(run.id) != run.updated_at]
            for run_id in set(seen) - set(current):  # no longer queued or active
                try:
                    changed.append(await bench.get_run(run_id))
                except NotFound:
                    continue
        seen = {run.id: run.updated_at for run in page.items}
        for run in sorted(changed, key=lambda r: r.updated_at):
            yield run
        await asyncio.sleep(poll_seconds)


def output_path(folder: Path, run: Run) -> Path | None:
    """Return the local path of a run's main output video in ``folder`` (its outputs)."""
    for name in run.outputs:
        if name.endswith(".mp4") and "input_control" not in name:
            path = output_file(folder, name, must_exist=False)  # never outside, no links
            if path is not None:
                return path
    return None


async def output_files(folder: Path) -> tuple[OutputFile, ...]:
    """Return the files in a run's local output folder with their sizes (links skipped)."""

    def scan() -> tuple[OutputFile, ...]:
        if not folder.is_dir():
            return ()
        found = []
        for item in sorted(folder.rglob("*")):
            relative = "/".join(item.relative_to(folder).parts)
            path = output_file(folder, relative)
            if path is not None:
                found.append(OutputFile(item.name, path, path.stat().st_size))
        return tuple(found)

    return await asyncio.to_thread(scan)


async def log_context(bench: Workbench, run_id: str, around: int) -> tuple[str, ...]:
    """Return the lines around a run's first error: the engine's classification, or a scan."""
    failure = await bench.runs.failure(run_id)
    if failure is not None and failure.context:
        return tuple(failure.context)
    run = await bench.get_run(run_id)
    candidates = [run.log_path] if run.log_path else []
    candidates.append(bench.output_dir(run_id) / "run.log")
    for path in candidates:
        if path is not None and await asyncio.to_thread(path.is_file):
            return await asyncio.to_thread(first_error_window, path, around)
    return ()
