"""Stored GPU metrics and alerts of runs, and the figures of ``cosmos stats``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update

from cosmos_tui.domain import AlertChange, AlertKind, RunAlert, RunMetrics, RunState
from cosmos_tui.store.repositories import Store
from cosmos_tui.store.tables import RunAlertRow, RunRow


@dataclass(frozen=True)
class RunStats:
    """What ``cosmos stats`` reports.

    Attributes:
        since: The start of the window (None: all time).
        total: Runs created in the window.
        by_state: Run count per state.
        mean_duration_by_profile: Mean seconds from start to finish of completed runs,
            per ``type/profile``.
        gpu_hours: GPU time of runs in the window (measured where telemetry was folded
            in, else duration times GPUs asked for).
        energy_wh: Energy measured by telemetry.
        failures_by_kind: Failed and blocked runs per classified cause.
        open_alerts: Alerts not cleared yet, on runs in the window.

    """

    since: datetime | None
    total: int
    by_state: dict[str, int]
    mean_duration_by_profile: dict[str, float]
    gpu_hours: float
    energy_wh: float
    failures_by_kind: dict[str, int]
    open_alerts: int


def alert_from_row(row: RunAlertRow) -> RunAlert:
    """Return the domain alert of a row."""
    return RunAlert(
        id=row.id,
        run_id=row.run_id,
        kind=AlertKind(row.kind),
        message=row.message,
        raised_at=row.raised_at,
        host=row.host,
        gpu_index=row.gpu_index,
        value=row.value,
        threshold=row.threshold,
        cleared_at=row.cleared_at,
    )


class MetricsStore:
    """Metrics and alerts over an open :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def save_metrics(self, run_id: str, metrics: RunMetrics) -> None:
        """Replace the stored metrics of a run (a missing run is ignored: it was deleted)."""
        async with self.store.session() as session:
            await session.execute(
                update(RunRow)
                .where(RunRow.id == run_id)
                .values(metrics=json.dumps(metrics.to_dict(), sort_keys=True))
            )

    async def apply(self, changes: Iterable[AlertChange]) -> None:
        """Store raised alerts and mark cleared ones, in one transaction.

        An alert already open for the same run, kind and GPU is not raised again: the
        TUI and a ``cosmos queue run`` elsewhere each record the same telemetry.
        """
        items = list(changes)
        if not items:
            return
        async with self.store.session() as session:
            existing = set(await session.scalars(select(RunRow.id).where(
                RunRow.id.in_({c.run_id for c in items})
            )))  # fmt: skip
            for change in items:
                if change.run_id not in existing:
                    continue
                condition = [
                    RunAlertRow.run_id == change.run_id,
                    RunAlertRow.kind == change.kind.value,
                    RunAlertRow.cleared_at.is_(None),
                ]
                if change.gpu_index is None:
                    condition.append(RunAlertRow.gpu_index.is_(None))
                else:
                    condition.append(RunAlertRow.gpu_index == change.gpu_index)
                if change.raised:
                    open_id = await session.scalar(select(RunAlertRow.id).where(*condition))
                    if open_id is not None:
                        continue  # already open (raised by another process driving the queue)
                    session.add(
                        RunAlertRow(
                            run_id=change.run_id,
                            kind=change.kind.value,
                            host=change.host,
                            gpu_index=change.gpu_index,
                            value=change.value,
                            threshold=change.threshold,
                            message=change.message,
                            raised_at=change.at,
                        )
                    )
                    await session.flush()
                else:
                    await session.execute(
                        update(RunAlertRow).where(*condition).values(cleared_at=change.at)
                    )

    async def alerts(
        self,
        run_id: str | None = None,
        open_only: bool = False,
        since: datetime | None = None,
        limit: int = 200,
    ) -> list[RunAlert]:
        """Return alerts, newest first, optionally of one run, open ones, or recent ones."""
        query = select(RunAlertRow)
        if run_id is not None:
            query = query.where(RunAlertRow.run_id == run_id)
        if open_only:
            query = query.where(RunAlertRow.cleared_at.is_(None))
        if since is not None:
            query = query.where(RunAlertRow.raised_at >= since)
        query = query.order_by(RunAlertRow.raised_at.desc(), RunAlertRow.id.desc()).limit(limit)
        async with self.store.session() as session:
            return [alert_from_row(row) for row in (await session.scalars(query)).all()]

    async def runs_per_day(self, since: datetime) -> dict[str, int]:
        """Runs created per UTC day (``YYYY-MM-DD``) since ``since``; days without runs absent."""
        day = func.date(RunRow.created_at)
        async with self.store.session() as session:
            rows = await session.execute(
                select(day, func.count()).where(RunRow.created_at >= since).group_by(day)
            )
            return {str(date): int(count) for date, count in rows.all()}

    async def stats(self, since: datetime | None = None) -> RunStats:
        """Return run counts, durations, GPU-hours and failure kinds since ``since``."""
        window = [RunRow.created_at >= since] if since is not None else []
        duration = (func.julianday(RunRow.finished_at) - func.julianday(RunRow.started_at)) * 86400
        gpus = func.coalesce(func.json_extract(RunRow.params, "$.num_gpus"), 1)
        measured = func.json_extract(RunRow.metrics, "$.gpu_seconds")
        async with self.store.session() as session:
            by_state = dict(
                (
                    await session.execute(
                        select(RunRow.state, func.count()).where(*window).group_by(RunRow.state)
                    )
                ).all()
            )
            durations = (
                await session.execute(
                    select(RunRow.type, RunRow.profile, func.avg(duration))
                    .where(
                        *window,
                        RunRow.state == RunState.COMPLETED.value,
                        RunRow.started_at.is_not(None),
                        RunRow.finished_at.is_not(None),
                    )
                    .group_by(RunRow.type, RunRow.profile)
                )
            ).all()
            gpu_seconds = await session.scalar(
                select(
                    func.coalesce(
                        func.sum(
                            func.coalesce(
                                measured,
                                func.coalesce(duration, 0) * gpus,
                            )
                        ),
                        0.0,
                    )
                ).where(*window, RunRow.started_at.is_not(None))
            )
            energy = await session.scalar(
                select(
                    func.coalesce(func.sum(func.json_extract(RunRow.metrics, "$.energy_wh")), 0.0)
                ).where(*window)
            )
            failures = dict(
                (
                    await session.execute(
                        select(func.coalesce(RunRow.failure_kind, "unknown"), func.count())
                        .where(
                            *window,
                            RunRow.state.in_([RunState.FAILED.value, RunState.BLOCKED.value]),
                        )
                        .group_by(func.coalesce(RunRow.failure_kind, "unknown"))
                    )
                ).all()
            )
            open_alerts = await session.scalar(
                select(func.count())
                .select_from(RunAlertRow)
                .join(RunRow, RunRow.id == RunAlertRow.run_id)
                .where(*window, RunAlertRow.cleared_at.is_(None))
            )
        return RunStats(
            since=since,
            total=sum(by_state.values()),
            by_state={str(k): int(v) for k, v in by_state.items()},
            mean_duration_by_profile={
                f"{run_type}/{profile}": float(mean or 0.0) for run_type, profile, mean in durations
            },
            gpu_hours=float(gpu_seconds or 0.0) / 3600.0,
            energy_wh=float(energy or 0.0),
            failures_by_kind={str(k): int(v) for k, v in failures.items()},
            open_alerts=int(open_alerts or 0),
        )
