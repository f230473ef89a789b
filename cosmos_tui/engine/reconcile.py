"""Reconcile: match every active run with its container, and report strangers.

Run when the app or ``cosmos inference``/``cosmos reconcile`` starts, and periodically by
the TUI. For each run in an active state whose driver is gone (its lock is free):

- ``uploading``/``starting``: the step is resumed (uploads are idempotent, the start
  adopts a container that was already made);
- ``running`` with its container running: reattach (logs resume from the cursor);
- ``running`` with its container exited: finish it (drain logs, classify, download);
- ``running`` with no container: failed, "container disappeared";
- ``downloading``: the download resumes (outputs are in the run's remote folder);
- ``queued`` and claimed by no live scheduler, its lock free: its driver put it back for
  a retry and died in the back-off (or its scheduler died), holding the claim that keeps
  everyone else off it. The claim is given back; a driver's run is driven again, a
  scheduler's is left to the queue (its pause and order).

Runs of a batch (one container labelled ``cosmos.batch_id`` for several runs) are left to
the queue's batch launcher, which reattaches, collects or requeues a whole batch
(:meth:`~cosmos_tui.engine.batch_launch.BatchLauncher.reattach_orphans`); only a
``running`` batch run whose batch container is gone is failed here, "container
disappeared". A batch container is never an orphan while one of its runs is active.

Containers with our labels that are still running while their run (every run of their
batch) was cancelled are our leftovers (a cancel that could not reach the host): they are
stopped (SIGTERM, grace, SIGKILL) and reported as stopped. Containers whose run is
unknown, or still running while their run ended otherwise, are reported as orphans,
never stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from cosmos_tui.domain import ACTIVE_STATES, Run, RunState
from cosmos_tui.engine.claim import is_driver_claim
from cosmos_tui.engine.cluster_health import is_cluster_target
from cosmos_tui.engine.failures import classify_error
from cosmos_tui.engine.lifecycle import EngineContext
from cosmos_tui.engine.runlock import RunLock
from cosmos_tui.engine.scheduler import STALE_AFTER_S
from cosmos_tui.errors import ContainerGone, CosmosError, InvalidTransition, NotFound
from cosmos_tui.owner import LABEL_OWNER, Ownership, ownership
from cosmos_tui.store.queue_store import QueueStore
from cosmos_tui.store.repositories import RunFilter

if TYPE_CHECKING:
    from cosmos_tui.remote.docker import ContainerInfo

logger = logging.getLogger(__name__)

Dispatch = Callable[[str], Awaitable[None]]

LABEL_BATCH_ID = "cosmos.batch_id"


@dataclass(frozen=True)
class Orphan:
    """A container with our labels that no active run accounts for.

    Attributes:
        host: Where it is.
        container_id: Its id.
        name: Its name.
        run_id: The run its label names (None when unlabelled).
        status: Docker's state (running, exited...).
        reason: Why it is an orphan.

    """

    host: str
    container_id: str
    name: str
    run_id: str | None
    status: str
    reason: str


@dataclass(frozen=True)
class ReconcileReport:
    """What a reconcile pass did.

    Attributes:
        dispatched: Runs handed to a driver (reattached, resumed or being finished).
        failed: Runs marked failed because their container disappeared.
        busy: Runs another process is driving right now (left alone).
        orphans: Containers with our labels and no active run.
        unreachable: Hosts that could not be asked, with the reason.
        batched: Runs of a batch left to the queue's batch launcher (``cosmos queue run``).
        stopped: Our leftover containers stopped because their runs were cancelled.
        foreign: Other installations' containers (see :mod:`cosmos_tui.owner`): listed,
            never touched.

    """

    dispatched: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    busy: tuple[str, ...] = ()
    orphans: tuple[Orphan, ...] = ()
    unreachable: tuple[tuple[str, str], ...] = field(default=())
    batched: tuple[str, ...] = ()
    stopped: tuple[Orphan, ...] = ()
    foreign: tuple[Orphan, ...] = ()


async def reconcile(
    ctx: EngineContext, dispatch: Dispatch, scan_all_hosts: bool = True
) -> ReconcileReport:
    """Match active runs with containers; hand runs that need a driver to ``dispatch``.

    Args:
        ctx: Shared engine services.
        dispatch: Starts a driver for a run id (an in-process task or a worker process);
            it must not wait for the run to end.
        scan_all_hosts: Also list every configured host's containers to find orphans.
            False asks only the hosts of runs that nobody drives (no connection at all
            when there are none): the quick check a CLI command makes on start.

    """
    page = await ctx.store.list_runs(RunFilter(states=ACTIVE_STATES), 0, 10_000)
    # Runs on cluster nodes have no container a host lists: the queue driver's Ray
    # launcher reattaches them from the cluster's jobs (RayLauncher.reattach).
    active = [r for r in page.items if not is_cluster_target(r.host)]
    if not scan_all_hosts:
        active = [r for r in active if RunLock(ctx.run_dir(r.id)).is_free()]
    containers: dict[str, list[ContainerInfo]] = {}
    unreachable: list[tuple[str, str]] = []
    host_names = {r.host for r in active if r.host}
    if scan_all_hosts:
        host_names |= {h.name for h in ctx.config.hosts}
    foreign: list[Orphan] = []
    for name in sorted(host_names):
        try:
            docker = ctx.hosts.get(name).docker
            listed = await docker.list(everyone=True)
        except CosmosError as exc:
            unreachable.append((name, exc.message))
            continue
        containers[name] = []
        for info in listed:
            whose = ownership(info.labels, getattr(docker, "owner", None), await _known(ctx, info))
            if whose == Ownership.FOREIGN:
                label = info.labels.get(LABEL_OWNER) or "not set"
                reason = f"another installation's (owner {label}, run unknown here)"
                item = Orphan(name, info.id, info.name, info.run_id, info.status, reason)
                foreign.append(item)
            else:
                containers[name].append(info)
    dispatched: list[str] = []
    failed: list[str] = []
    busy: list[str] = []
    batched: list[str] = []
    for run in active:
        if run.host and run.host not in containers and run.host in dict(unreachable):
            continue
        lock = RunLock(ctx.run_dir(run.id))
        if not lock.try_acquire(record=False):
            busy.append(run.id)
            continue
        try:
            here = containers.get(run.host or "", [])
            if run.batch_id:
                own = [c for c in here if c.labels.get(LABEL_BATCH_ID) == run.batch_id]
            else:
                own = [c for c in here if c.run_id == run.id]
            if run.state == RunState.RUNNING and not own:
                if await _mark_gone(ctx, run):
                    failed.append(run.id)
                continue
            if run.batch_id:
                batched.append(run.id)  # the queue's batch launcher reattaches batches
                continue
        finally:
            lock.release()
        await dispatch(run.id)
        dispatched.append(run.id)
    for run_id in await _stranded_claims(ctx, busy):
        await dispatch(run_id)
        dispatched.append(run_id)
    orphans, stopped = await _orphans(ctx, containers)
    return ReconcileReport(
        tuple(dispatched),
        tuple(failed),
        tuple(busy),
        tuple(orphans),
        tuple(unreachable),
        tuple(batched),
        tuple(stopped),
        tuple(foreign),
    )


async def _stranded_claims(ctx: EngineContext, busy: list[str]) -> list[str]:
    """Give back the claims of queued runs whose driver is gone; return those to drive.

    A live driver holds its run's lock through the back-off (those go to ``busy``); a
    live scheduler's claims are its own. A dead scheduler's runs, and runs that only the
    queue starts (a batch's, a cluster run), get their claim back and wait for a queue
    driver; only a dead driver's run is driven again here.
    """
    queue = QueueStore(ctx.store)
    age = timedelta(seconds=STALE_AFTER_S)
    to_drive: list[str] = []
    for run_id, claimer in (await queue.claims_outside_live_schedulers(age)).items():
        lock = RunLock(ctx.run_dir(run_id))
        if not lock.try_acquire(record=False):
            busy.append(run_id)
            continue
        try:
            run = await ctx.store.get_run(run_id, with_events=False)
            if not await queue.release([run_id], claimer):
                continue  # it moved on meanwhile
        finally:
            lock.release()
        if not is_driver_claim(claimer) or run.batch_id or is_cluster_target(run.host):
            # the queue's: its pause, priorities and order decide when it starts
            logger.info("run %s: claim of %s given back; the queue starts it", run_id, claimer)
            continue
        logger.info("run %s: its driver %s is gone; driving it again", run_id, claimer)
        to_drive.append(run_id)
    return to_drive


async def _known(ctx: EngineContext, info: ContainerInfo) -> bool:
    """True when this database knows the run or batch a container is labelled with."""
    batch_id = info.labels.get(LABEL_BATCH_ID)
    if batch_id:
        page = await ctx.store.list_runs(RunFilter(batch_id=batch_id), 0, 1)
        return bool(page.items)
    if not info.run_id:
        return False
    try:
        await ctx.store.get_run(info.run_id, with_events=False)
    except NotFound:
        return False
    return True


async def _mark_gone(ctx: EngineContext, run: Run) -> bool:
    """Record that a running run's container vanished; False if the run moved meanwhile."""
    label = f"batch {run.batch_id}" if run.batch_id else f"run {run.id}"
    failure = classify_error(ContainerGone(f"no container labelled with {label}"))
    try:
        await ctx.store.transition(
            run.id,
            failure.state,
            failure.message,
            failure_kind=failure.kind,
            failure_message=failure.message,
        )
    except InvalidTransition:
        return False
    return True


async def _orphans(
    ctx: EngineContext, containers: dict[str, list[ContainerInfo]]
) -> tuple[list[Orphan], list[Orphan]]:
    """Return the orphans (reported only) and our cancelled leftovers (stopped here)."""
    orphans: list[Orphan] = []
    stopped: list[Orphan] = []
    grace = ctx.config.timeouts.cancel_grace
    for host, infos in containers.items():
        for info in infos:
            reason, cancelled = await _orphan_reason(ctx, info)
            if reason is None:
                continue
            if cancelled and info.running:
                try:
                    await ctx.hosts.get(host).docker.stop(info.id, grace_s=grace)
                except CosmosError as exc:
                    reason += f"; stopping it failed: {exc.message}"
                else:
                    reason += f"; stopped (SIGTERM, SIGKILL after {grace:g} s)"
                    stopped.append(
                        Orphan(host, info.id, info.name, info.run_id, info.status, reason)
                    )
                    continue
            orphans.append(Orphan(host, info.id, info.name, info.run_id, info.status, reason))
    return orphans, stopped


async def _orphan_reason(ctx: EngineContext, info: ContainerInfo) -> tuple[str | None, bool]:
    """Why a container is an orphan (None: it is not) and whether its runs were cancelled."""
    batch_id = info.labels.get(LABEL_BATCH_ID)
    if batch_id:
        page = await ctx.store.list_runs(RunFilter(batch_id=batch_id), 0, 10_000)
        members = list(page.items)
        if not members:
            return "no run of this database is in its batch", False
        if any(r.state in ACTIVE_STATES for r in members) or not info.running:
            return None, False
        if all(r.state == RunState.CANCELLED for r in members):
            return f"every run of batch {batch_id} was cancelled", True
        return f"still running while every run of batch {batch_id} ended", False
    run_id = info.run_id
    if run_id is None:
        return "has our labels but no run id", False
    try:
        run = await ctx.store.get_run(run_id, with_events=False)
    except NotFound:
        return "its run is not in this database", False
    if not info.running or run.state in ACTIVE_STATES:
        return None, False
    if run.state == RunState.CANCELLED:
        return "its run was cancelled", True
    return f"still running while its run is {run.state.value}", False
