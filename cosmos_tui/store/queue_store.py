"""The queue's persistent side: claims, the paused flag, reordering, batches, heartbeats.

Every method is one ``BEGIN IMMEDIATE`` transaction of the shared :class:`Store`, so
several processes (the TUI, ``cosmos queue run`` in another terminal) can drive one
database. A claim is a conditional UPDATE (``state = 'queued' AND claimed_by IS NULL``)
checked by row count, together with a re-check that no GPU it takes is held by anyone
else, so a run is launched by exactly one scheduler and a GPU is never given out twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cosmos_tui.domain import ACTIVE_STATES, Prompt, Run, RunState
from cosmos_tui.errors import InvalidTransition, NotFound, ValidationError
from cosmos_tui.ids import BATCH_PREFIX
from cosmos_tui.store.convert import prompt_from_row, run_from_row
from cosmos_tui.store.repositories import Store
from cosmos_tui.store.tables import (
    AppStateRow,
    BatchRow,
    PromptInputRow,
    PromptRow,
    RunEventRow,
    RunRow,
    SchedulerRow,
)
from cosmos_tui.store.transactions import rowcount


@dataclass(frozen=True)
class Candidate:
    """A queued run with the prompt that batching needs to look at."""

    run: Run
    prompt: Prompt | None


@dataclass(frozen=True)
class Allocation:
    """GPUs held by one of our containers (an active or claimed run, or a batch).

    Attributes:
        host: Where.
        gpus: Which indices.
        container_key: The batch id, or the run id of a run alone.

    """

    host: str
    gpus: tuple[int, ...]
    container_key: str


class _Group(Protocol):
    """The runs of a placement (engine.batching.LaunchGroup)."""

    @property
    def head(self) -> Run:
        """The first run (the group's place in the queue)."""
        ...

    @property
    def is_batch(self) -> bool:
        """Whether the runs share one container."""
        ...

    @property
    def run_ids(self) -> tuple[str, ...]:
        """Their ids, in queue order."""
        ...


class Claimable(Protocol):
    """What a claim needs of a placement (engine.queue.Placement): runs, host, GPUs."""

    @property
    def group(self) -> _Group:
        """The runs to claim."""
        ...

    @property
    def host(self) -> str:
        """Where they run."""
        ...

    @property
    def gpus(self) -> tuple[int, ...]:
        """The GPU indices they take."""
        ...


PAUSED_KEY = "queue.paused"
# How long after a run ended a GPU process of its container still counts as ours.
JUST_ENDED = timedelta(seconds=30)
_ACTIVE = [s.value for s in ACTIVE_STATES]


class _ClaimLost(Exception):
    """Raised inside a claim transaction to roll it back; never leaves this module."""


@dataclass(frozen=True)
class Claim:
    """Runs a scheduler now owns and must start (or release).

    Attributes:
        runs: The claimed runs, in line order, with host and GPUs set.
        host: Where they start.
        gpus: The GPU indices they hold.
        batch_id: The batch they form, or None for one run alone.
        scheduler_id: Who claimed them.

    """

    runs: tuple[Run, ...]
    host: str
    gpus: tuple[int, ...]
    batch_id: str | None
    scheduler_id: str

    @property
    def run_ids(self) -> tuple[str, ...]:
        """Ids of the claimed runs."""
        return tuple(r.id for r in self.runs)


@dataclass(frozen=True)
class Holder:
    """One of our containers holding GPUs now (a run alone or a batch).

    ``devices`` are the GPU indices Ray gave a cluster run on its node (``gpus`` are
    the planner's slots there); empty elsewhere and until the entrypoint says.
    """

    key: str
    run_ids: tuple[str, ...]
    host: str
    gpus: tuple[int, ...]
    running: bool
    devices: tuple[int, ...] = ()


def queue_order() -> tuple[Any, ...]:
    """The ORDER BY of the queue: higher priority first, then first in, first out."""
    return (RunRow.priority.desc(), RunRow.queue_seq.asc(), RunRow.created_at.asc(), RunRow.id)


class QueueStore:
    """Queue operations over an open :class:`Store`.

    Args:
        store: The shared store (its clock and id source are used).

    """

    def __init__(self, store: Store) -> None:
        self.store = store

    # paused flag ---------------------------------------------------------------------

    async def is_paused(self) -> bool:
        """Return whether the queue is paused (seen by every process)."""
        async with self.store.session() as session:
            row = await session.get(AppStateRow, PAUSED_KEY)
            return row is not None and row.value == "1"

    async def set_paused(self, paused: bool) -> None:
        """Pause (no new starts; running runs go on) or resume the queue."""
        now = self.store.clock()
        async with self.store.session() as session:
            row = await session.get(AppStateRow, PAUSED_KEY)
            if row is None:
                session.add(
                    AppStateRow(key=PAUSED_KEY, value="1" if paused else "0", updated_at=now)
                )
            else:
                row.value = "1" if paused else "0"
                row.updated_at = now

    # reading -------------------------------------------------------------------------

    async def queued(self, limit: int = 1000, include_claimed: bool = False) -> list[Candidate]:
        """Return queued runs in queue order, each with its prompt.

        Args:
            limit: Most runs to return.
            include_claimed: Also return runs a scheduler claimed but has not started.

        """
        query = select(RunRow).where(RunRow.state == RunState.QUEUED.value)
        if not include_claimed:
            query = query.where(RunRow.claimed_by.is_(None))
        async with self.store.session() as session:
            rows = (await session.scalars(query.order_by(*queue_order()).limit(limit))).all()
            prompt_ids = {r.prompt_id for r in rows if r.prompt_id}
            prompts = (
                await session.scalars(select(PromptRow).where(PromptRow.id.in_(prompt_ids)))
            ).all()
            inputs = (
                await session.scalars(
                    select(PromptInputRow).where(PromptInputRow.prompt_id.in_(prompt_ids))
                )
            ).all()
        by_prompt: dict[str, list[PromptInputRow]] = {}
        for item in inputs:
            by_prompt.setdefault(item.prompt_id, []).append(item)
        domain_prompts = {p.id: prompt_from_row(p, by_prompt.get(p.id, [])) for p in prompts}
        result = []
        for row in rows:
            prompt = domain_prompts.get(row.prompt_id) if row.prompt_id else None
            run = run_from_row(row, (), prompt.text if prompt else None)
            result.append(Candidate(run=run, prompt=prompt))
        return result

    async def claimer(self, run_id: str) -> str | None:
        """Return who holds a run's claim now (a scheduler or driver id), or None."""
        async with self.store.session() as session:
            return await session.scalar(select(RunRow.claimed_by).where(RunRow.id == run_id))

    async def allocations(self) -> list[Allocation]:
        """Return the GPUs held by our active runs and by claimed, not yet started runs."""
        async with self.store.session() as session:
            return await _allocations(session)

    async def our_ids(self) -> set[str]:
        """Return ids of the runs that hold GPUs, their batches and containers.

        Runs that ended in the last :data:`JUST_ENDED` count too: the process list of a
        host is polled every few seconds and may still show their exited container. A
        GPU process attributed to none of these is someone else's.
        """
        recent = self.store.clock() - JUST_ENDED
        async with self.store.session() as session:
            rows = (
                await session.execute(
                    select(RunRow.id, RunRow.container_id, RunRow.batch_id).where(
                        (RunRow.state.in_(_ACTIVE))
                        | ((RunRow.state == RunState.QUEUED.value) & RunRow.claimed_by.is_not(None))
                        | (RunRow.finished_at >= recent)
                    )
                )
            ).all()
        ours: set[str] = set()
        for run_id, container_id, batch_id in rows:
            ours.add(run_id)
            if batch_id:
                ours.add(batch_id)
            if container_id:
                ours.update({container_id, container_id[:12]})
        return ours

    async def holders(self) -> list[Holder]:
        """Return the containers of our active runs: key, runs, host, GPUs, running or not."""
        async with self.store.session() as session:
            rows = (
                await session.execute(
                    select(
                        RunRow.id,
                        RunRow.batch_id,
                        RunRow.host,
                        RunRow.gpus,
                        RunRow.state,
                        RunRow.devices,
                    )
                    .where(RunRow.state.in_(_ACTIVE), RunRow.host.is_not(None))
                    .order_by(RunRow.id)
                )
            ).all()
        grouped: dict[str, list[Any]] = {}
        for row in rows:
            grouped.setdefault(row.batch_id or row.id, []).append(row)
        return [
            Holder(
                key=key,
                run_ids=tuple(r.id for r in members),
                host=members[0].host,
                gpus=tuple(int(g) for g in (members[0].gpus or "").split(",") if g),
                running=any(r.state == RunState.RUNNING.value for r in members),
                devices=tuple(int(g) for g in (members[0].devices or "").split(",") if g),
            )
            for key, members in grouped.items()
        ]

    # claiming ------------------------------------------------------------------------

    async def claim(
        self,
        placement: Claimable,
        scheduler_id: str,
        max_runs: int | None = None,
        *,
        ignore_pause: bool = False,
    ) -> Claim | None:
        """Claim the runs of a placement for ``scheduler_id``, or return None if lost.

        The one claim of every run, however it was started (the scheduler, a detached
        ``cosmos worker``, the TUI's own driver): in one transaction, the queue must not
        be paused, every run must still be queued and unclaimed (or already claimed by
        ``scheduler_id``), none of the GPUs may be held by another container, and the
        host must be under ``max_runs``; then the runs get the claim, host, GPUs and (for
        several runs) a new batch.

        Args:
            placement: What the planner chose.
            scheduler_id: The claiming scheduler (or run driver).
            max_runs: The host's container limit, re-checked here.
            ignore_pause: Claim even while the queue is paused (a run the user started
                by hand, not through the queue).

        """
        group = placement.group
        run_ids = list(group.run_ids)
        now = self.store.clock()
        batch_id = self.store.ids.new(BATCH_PREFIX) if group.is_batch else None
        gpus_text = ",".join(str(g) for g in placement.gpus)
        try:
            async with self.store.session() as session:
                paused = await session.get(AppStateRow, PAUSED_KEY)
                if not ignore_pause and paused is not None and paused.value == "1":
                    raise _ClaimLost  # paused after the plan was made: nothing new starts
                held = [
                    a
                    for a in await _allocations(session)
                    if a.host == placement.host and a.container_key not in run_ids
                ]
                if set(placement.gpus) & {g for a in held for g in a.gpus}:
                    raise _ClaimLost
                if max_runs is not None and len({a.container_key for a in held}) >= max_runs:
                    raise _ClaimLost
                result = await session.execute(
                    update(RunRow)
                    .where(
                        RunRow.id.in_(run_ids),
                        RunRow.state == RunState.QUEUED.value,
                        or_(RunRow.claimed_by.is_(None), RunRow.claimed_by == scheduler_id),
                    )
                    .values(
                        claimed_by=scheduler_id,
                        claimed_at=now,
                        host=placement.host,
                        gpus=gpus_text,
                        batch_id=batch_id,
                        updated_at=now,
                    )
                )
                if rowcount(result) != len(run_ids):
                    raise _ClaimLost
                if batch_id is not None:
                    session.add(
                        BatchRow(
                            id=batch_id,
                            profile=group.head.profile,
                            run_type=group.head.type.value,
                            host=placement.host,
                            gpus=gpus_text,
                            manifest=json.dumps({"run_ids": run_ids}),
                            created_at=now,
                        )
                    )
        except _ClaimLost:
            return None
        runs = tuple([await self.store.get_run(run_id) for run_id in run_ids])
        return Claim(runs, placement.host, placement.gpus, batch_id, scheduler_id)

    async def release(self, run_ids: Sequence[str], scheduler_id: str) -> int:
        """Give back claimed runs that did not start (they go back in line).

        Only runs still queued and claimed by ``scheduler_id`` are released; returns how many.
        """
        async with self.store.session() as session:
            result = await session.execute(
                update(RunRow)
                .where(
                    RunRow.id.in_(list(run_ids)),
                    RunRow.state == RunState.QUEUED.value,
                    RunRow.claimed_by == scheduler_id,
                )
                .values(claimed_by=None, claimed_at=None, gpus=None, batch_id=None)
            )
            return int(rowcount(result) or 0)

    async def start(self, run_id: str, scheduler_id: str, reason: str = "launching") -> Run:
        """Move a claimed run from queued to uploading, only if ``scheduler_id`` holds it.

        Raises:
            InvalidTransition: When the run is no longer queued or the claim is not ours
                (cancelled meanwhile, or released as stale).

        """
        now = self.store.clock()
        async with self.store.session() as session:
            result = await session.execute(
                update(RunRow)
                .where(
                    RunRow.id == run_id,
                    RunRow.state == RunState.QUEUED.value,
                    RunRow.claimed_by == scheduler_id,
                )
                .values(state=RunState.UPLOADING.value, updated_at=now, finished_at=None)
            )
            if rowcount(result) != 1:
                state = await session.scalar(select(RunRow.state).where(RunRow.id == run_id))
                raise InvalidTransition(run_id, state or "missing", RunState.UPLOADING.value)
            session.add(
                RunEventRow(
                    run_id=run_id,
                    at=now,
                    from_state=RunState.QUEUED.value,
                    to_state=RunState.UPLOADING.value,
                    reason=reason,
                )
            )
        return await self.store.get_run(run_id)

    # reordering and cancelling -------------------------------------------------------

    async def move(self, run_id: str, steps: int) -> list[str]:
        """Move a queued run ``steps`` places up (negative) or down (positive).

        Crossing into a neighbour of another priority takes on that priority, so a move
        always changes the run's place by the asked amount (clamped to the ends).

        Returns:
            The queued run ids in their new order.

        Raises:
            ValidationError: When the run is not queued or is already claimed.

        """
        async with self.store.session() as session:
            rows = list(
                (
                    await session.scalars(
                        select(RunRow)
                        .where(RunRow.state == RunState.QUEUED.value, RunRow.claimed_by.is_(None))
                        .order_by(*queue_order())
                    )
                ).all()
            )
            ids = [r.id for r in rows]
            if run_id not in ids:
                raise ValidationError(
                    f"run {run_id} is not waiting in the queue; only queued runs can move",
                    field="id",
                )
            index = ids.index(run_id)
            target = max(0, min(len(rows) - 1, index + steps))
            if target == index:
                return ids
            moving = rows.pop(index)
            rows.insert(target, moving)
            neighbour = rows[target + 1] if steps < 0 else rows[target - 1]
            moving.priority = neighbour.priority
            seqs = sorted(r.queue_seq for r in rows)
            # Renumber so that the new order holds within each priority.
            for row, seq in zip(rows, _strictly_increasing(seqs), strict=True):
                row.queue_seq = seq
            moving.updated_at = self.store.clock()
            return [r.id for r in rows]

    async def cancel_queued(self, run_id: str, reason: str = "cancelled in the queue") -> Run:
        """Cancel a run that has not started yet.

        Raises:
            ValidationError: When the run is not queued (cancel an active run with
                ``cosmos cancel``).

        """
        run = await self.store.get_run(run_id, with_events=False)
        if run.state != RunState.QUEUED:
            raise ValidationError(
                f"run {run_id} is {run.state.value}, not queued; use 'cosmos cancel' for "
                "a started run",
                field="id",
            )
        return await self.store.transition(run_id, RunState.CANCELLED, reason)

    # batches -------------------------------------------------------------------------

    async def requeue_unstarted(self, run_ids: Sequence[str], reason: str) -> list[str]:
        """Put members of a dead batch whose line never started back in line, together.

        One transaction, so a scheduler sees them all queued at once (they may share a
        container again) and never one of them alone. Each is freed of its claim, batch,
        container, GPUs and progress; its place in line (``queue_seq``) is kept. Only runs
        still ``running`` move (a cancel meanwhile wins); returns the ids that moved.
        """
        now = self.store.clock()
        moved: list[str] = []
        async with self.store.session() as session:
            for run_id in run_ids:
                result = await session.execute(
                    update(RunRow)
                    .where(RunRow.id == run_id, RunRow.state == RunState.RUNNING.value)
                    .values(
                        state=RunState.QUEUED.value, updated_at=now, finished_at=None,
                        claimed_by=None, claimed_at=None, batch_id=None, container_id=None,
                        gpus=None, progress_phase=None, progress_percent=None,
                        eta_seconds=None,
                    )
                )  # fmt: skip
                if rowcount(result) != 1:
                    continue
                session.add(
                    RunEventRow(
                        run_id=run_id,
                        at=now,
                        from_state=RunState.RUNNING.value,
                        to_state=RunState.QUEUED.value,
                        reason=reason,
                    )
                )
                moved.append(run_id)
        return moved

    async def record_batch_manifest(self, batch_id: str, manifest: dict[str, Any]) -> None:
        """Store the JSONL line manifest of a batch (to map outputs after a restart)."""
        async with self.store.session() as session:
            row = await session.get(BatchRow, batch_id)
            if row is None:
                raise NotFound(f"no batch {batch_id}")
            row.manifest = json.dumps(manifest)

    async def batch_manifest(self, batch_id: str) -> dict[str, Any]:
        """Return the manifest of a batch."""
        async with self.store.session() as session:
            row = await session.get(BatchRow, batch_id)
            if row is None:
                raise NotFound(f"no batch {batch_id}")
            return dict(json.loads(row.manifest))

    # schedulers ----------------------------------------------------------------------

    async def heartbeat(self, scheduler_id: str, pid: int, hostname: str) -> None:
        """Record that a scheduler is alive (registering it on the first beat)."""
        now = self.store.clock()
        async with self.store.session() as session:
            row = await session.get(SchedulerRow, scheduler_id)
            if row is None:
                session.add(
                    SchedulerRow(
                        id=scheduler_id,
                        pid=pid,
                        hostname=hostname,
                        started_at=now,
                        heartbeat_at=now,
                    )
                )
            else:
                row.heartbeat_at = now

    async def unregister(self, scheduler_id: str) -> None:
        """Forget a scheduler that stopped cleanly."""
        async with self.store.session() as session:
            await session.execute(delete(SchedulerRow).where(SchedulerRow.id == scheduler_id))

    async def live_schedulers(self, max_age: timedelta) -> list[str]:
        """Return ids of schedulers whose last heartbeat is younger than ``max_age``."""
        cutoff = self.store.clock() - max_age
        async with self.store.session() as session:
            return list(
                await session.scalars(
                    select(SchedulerRow.id).where(SchedulerRow.heartbeat_at >= cutoff)
                )
            )

    async def claims_outside_live_schedulers(self, max_age: timedelta) -> dict[str, str]:
        """Return queued runs claimed by no live scheduler: ``{run id: claimer}``.

        Their claimer is a driver (a ``cosmos worker``, the TUI: it keeps its run's claim
        while the run waits in the queue for its retry) or a scheduler whose last
        heartbeat is older than ``max_age``. Whether a driver still lives is its run
        lock's to say (engine/reconcile.py).
        """
        cutoff = self.store.clock() - max_age
        alive = select(SchedulerRow.id).where(SchedulerRow.heartbeat_at >= cutoff)
        async with self.store.session() as session:
            rows = await session.execute(
                select(RunRow.id, RunRow.claimed_by).where(
                    RunRow.state == RunState.QUEUED.value,
                    RunRow.claimed_by.is_not(None),
                    RunRow.claimed_by.not_in(alive),
                )
            )
            return {run_id: str(claimer) for run_id, claimer in rows.all()}

    async def release_stale_claims(self, max_age: timedelta) -> list[str]:
        """Put back in line runs claimed by schedulers that stopped beating.

        A claimed run that never started is safe to release: its claimer died before the
        conditional start (queued -> uploading), and :meth:`start` checks the claim, so
        a late claimer cannot start it after this. Returns the released run ids.
        """
        cutoff = self.store.clock() - max_age
        async with self.store.session() as session:
            alive = select(SchedulerRow.id).where(SchedulerRow.heartbeat_at >= cutoff)
            stale = (
                await session.scalars(
                    select(RunRow.id).where(
                        RunRow.state == RunState.QUEUED.value,
                        RunRow.claimed_by.is_not(None),
                        RunRow.claimed_by.not_in(alive),
                        RunRow.claimed_at < cutoff,
                    )
                )
            ).all()
            if stale:
                await session.execute(
                    update(RunRow)
                    .where(RunRow.id.in_(stale), RunRow.state == RunState.QUEUED.value)
                    .values(claimed_by=None, claimed_at=None, gpus=None, batch_id=None)
                )
            await session.execute(delete(SchedulerRow).where(SchedulerRow.heartbeat_at < cutoff))
            return list(stale)


async def _allocations(session: AsyncSession) -> list[Allocation]:
    rows = (
        await session.execute(
            select(RunRow.id, RunRow.host, RunRow.gpus, RunRow.batch_id).where(
                RunRow.host.is_not(None),
                RunRow.gpus.is_not(None),
                (RunRow.state.in_(_ACTIVE))
                | ((RunRow.state == RunState.QUEUED.value) & RunRow.claimed_by.is_not(None)),
            )
        )
    ).all()
    return [
        Allocation(
            host=host,
            gpus=tuple(int(g) for g in gpus.split(",") if g),
            container_key=batch_id or run_id,
        )
        for run_id, host, gpus, batch_id in rows
        if host is not None and gpus is not None  # always: the query asks for both set
    ]


def _strictly_increasing(values: Sequence[int]) -> list[int]:
    result: list[int] = []
    for value in values:
        result.append(max(value, result[-1] + 1) if result else value)
    return result
