"""Runs the stall watchdog marked stalled, as the TUI offers to cancel them.

The watchdog (engine/stall.py) leaves a stalled run running under the default policy
(``timeouts.stall_action = "alert"``) and marks it by its progress phase
(``stalled (<phase>)``). The main screen announces each newly stalled run once, with
the key that cancels it, and shows that key in the footer while some run is stalled.
"""

from __future__ import annotations

from cosmos_tui.domain import Run

STALLED_PREFIX = "stalled"


def is_stalled(run: Run) -> bool:
    """True when ``run`` is still active and its progress phase says stalled."""
    phase = run.progress.phase if run.progress is not None else ""
    return run.state.is_active and (phase or "").startswith(STALLED_PREFIX)


def stalled_text(run: Run, key: str) -> str:
    """The notification of a newly stalled run, naming the key that cancels it."""
    phase = run.progress.phase if run.progress is not None else STALLED_PREFIX
    return (
        f"{run.id} stalled: no new log line while its GPUs sat idle ({phase}); it is left "
        f"running. press {key} to cancel it"
    )


class StalledRuns:
    """The runs shown as stalled now, the most recently stalled last."""

    def __init__(self) -> None:
        self._runs: dict[str, Run] = {}

    def update(self, run: Run) -> bool:
        """Record a run's latest state; True when it has just become stalled."""
        if not is_stalled(run):
            self._runs.pop(run.id, None)
            return False
        fresh = run.id not in self._runs
        self._runs[run.id] = run
        return fresh

    def remove(self, run_ids: tuple[str, ...] | list[str]) -> None:
        """Forget deleted runs."""
        for run_id in run_ids:
            self._runs.pop(run_id, None)

    @property
    def newest(self) -> Run | None:
        """The run that stalled last (None when no run is stalled)."""
        return next(reversed(self._runs.values()), None)
