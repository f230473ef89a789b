"""The queue part of the facade: the plan, pause and resume, reorder, cancel, drive.

Used by ``cosmos queue``/``cosmos stats`` and the TUI through :meth:`QueueService.of`
on an open Workbench. Everything returned is a domain value or a frozen dataclass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cosmos_tui.domain import ACTIVE_STATES, Run, RunAlert, RunState
from cosmos_tui.engine.batching import LaunchGroup, plan_groups
from cosmos_tui.engine.cluster import PoolCluster
from cosmos_tui.engine.metrics import MetricsTracker
from cosmos_tui.engine.metrics_recorder import MetricsRecorder
from cosmos_tui.engine.queue import Placement, Waiting
from cosmos_tui.engine.ray_cluster import CombinedCluster
from cosmos_tui.engine.ray_route import ClusterDriver, ClusterJobs, RoutingLauncher
from cosmos_tui.engine.scheduler import CLEANUP_TIMEOUT_S, ClusterView, Launcher, Scheduler
from cosmos_tui.errors import ConfigError, CosmosError
from cosmos_tui.store.metrics_store import MetricsStore, RunStats
from cosmos_tui.store.queue_store import Claim, QueueStore
from cosmos_tui.store.repositories import RunFilter

if TYPE_CHECKING:
    from cosmos_tui.services.workbench import Workbench


logger = logging.getLogger(__name__)

# Seconds between looks for batches whose driving process died (another scheduler's).
ORPHAN_SWEEP_S = 30.0


@dataclass(frozen=True)
class QueueView:
    """What ``cosmos queue`` shows.

    Attributes:
        paused: Whether the queue is paused.
        groups: Queued runs grouped into containers (batches), in start order.
        placements: Groups that would start now and where (only with live hosts).
        waiting: Groups that would wait, and why (only with live hosts).
        active: Runs that hold or are about to hold GPUs.
        open_alerts: Alerts not cleared yet.
        live: Whether host telemetry was consulted.

    """

    paused: bool
    groups: tuple[LaunchGroup, ...]
    placements: tuple[Placement, ...]
    waiting: tuple[Waiting, ...]
    active: tuple[Run, ...]
    open_alerts: tuple[RunAlert, ...]
    live: bool


class QueueService:
    """Queue operations over an open Workbench.

    Args:
        bench: The facade (config, store, hosts, run engine).

    """

    def __init__(self, bench: Workbench) -> None:
        self.bench = bench
        self.queue = QueueStore(bench.store)
        self.metrics = MetricsStore(bench.store)

    @classmethod
    def of(cls, bench: Workbench) -> QueueService:
        """Return the queue service of ``bench``."""
        return cls(bench)

    async def view(self, cluster: ClusterView | None = None) -> QueueView:
        """Return the queue's plan: batches in order, and placement when hosts are live."""
        batching = self.bench.config.batching
        paused = await self.queue.is_paused()
        placements: tuple[Placement, ...] = ()
        waiting: tuple[Waiting, ...] = ()
        if cluster is not None:
            plan = await self.scheduler(cluster, _NoLaunch()).plan()
            placements, waiting = plan.placements, plan.waiting
            groups = [p.group for p in placements] + [w.group for w in waiting]
            order = {c.run.id: i for i, c in enumerate(await self.queue.queued())}
            groups.sort(key=lambda g: order.get(g.head.id, len(order)))
        else:
            candidates = await self.queue.queued()
            groups = plan_groups(candidates, batching.enabled, batching.max_size)
        active = await self.bench.store.list_runs(RunFilter(states=ACTIVE_STATES), 0, 1000)
        alerts = await self.metrics.alerts(open_only=True)
        return QueueView(
            paused=paused,
            groups=tuple(groups),
            placements=placements,
            waiting=waiting,
            active=active.items,
            open_alerts=tuple(alerts),
            live=cluster is not None,
        )

    async def pause(self) -> None:
        """Pause the queue: nothing new starts; running runs go on."""
        await self.queue.set_paused(True)

    async def resume(self) -> None:
        """Resume the queue."""
        await self.queue.set_paused(False)

    async def is_paused(self) -> bool:
        """Return whether the queue is paused."""
        return await self.queue.is_paused()

    async def move(self, run_id: str, steps: int) -> list[str]:
        """Move a queued run up (negative) or down (positive); return the new order."""
        return await self.queue.move(await self.bench.resolve(run_id, "run"), steps)

    async def cancel(self, run_ids: Sequence[str]) -> list[Run]:
        """Cancel queued runs (not started yet).

        Every id is checked first: an unknown run or one that is not queued cancels none.
        """
        full_ids = [await self.bench.resolve(run_id, "run") for run_id in run_ids]
        for run_id in full_ids:
            run = await self.bench.store.get_run(run_id, with_events=False)
            if run.state != RunState.QUEUED:
                await self.queue.cancel_queued(run_id)  # raises the 'not queued' error
        return [await self.queue.cancel_queued(run_id) for run_id in full_ids]

    async def stats(self, since: datetime | None = None) -> RunStats:
        """Return the figures of ``cosmos stats``."""
        return await self.metrics.stats(since)

    async def runs_per_day(self, since: datetime) -> dict[str, int]:
        """Runs created per UTC day since ``since`` (the Stats screen's chart)."""
        return await self.metrics.runs_per_day(since)

    async def alerts(self, run_id: str | None = None, open_only: bool = False) -> list[RunAlert]:
        """Return alerts, of one run or of every run."""
        full = await self.bench.resolve(run_id, "run") if run_id else None
        return await self.metrics.alerts(full, open_only=open_only)

    def scheduler(self, cluster: ClusterView, launcher: Launcher) -> Scheduler:
        """Return a scheduler over this database with the config's batching settings."""
        return Scheduler.for_config(self.queue, self.bench.config, cluster, launcher)

    async def run(
        self,
        cluster: ClusterView,
        launcher: Launcher,
        stop: asyncio.Event | None = None,
        until_idle: bool = False,
        on_claim: Callable[[Claim], None] | None = None,
        follow: Sequence[tuple[Awaitable[object], str]] = (),
    ) -> Scheduler:
        """Drive the queue until ``stop`` (or until idle); return the scheduler used.

        ``follow`` is work that counts as running runs (reattaching an earlier driver's).
        """
        scheduler = self.scheduler(cluster, _Reporting(launcher, on_claim))
        for work, name in follow:
            scheduler.follow(work, name)
        await scheduler.run(stop=stop, until_idle=until_idle)
        return scheduler

    async def drive(
        self,
        stop: asyncio.Event | None = None,
        until_idle: bool = False,
        on_claim: Callable[[Claim], None] | None = None,
        orphan_sweep_s: float = ORPHAN_SWEEP_S,
    ) -> Scheduler:
        """Drive the queue on the configured hosts, recording GPU metrics and alerts.

        Connects every host, starts its telemetry, picks up batches whose driving process
        died (at the start and every ``orphan_sweep_s`` seconds), then runs the scheduler
        (runs alone go through the run lifecycle, batches share one container) and the
        metrics recorder side by side until ``stop`` is set (or, with ``until_idle``,
        nothing is left).
        """
        # lazy: the batch launcher (~40 ms) is only for driving; 'cosmos queue' views skip it
        from cosmos_tui.engine.batch_launch import BatchLauncher

        config = self.bench.config
        cluster = PoolCluster(config, self.bench.hosts)
        await cluster.start()
        tracker = MetricsTracker(config.alerts, self.bench.store.clock)
        clusters = self._clusters()
        recorder = MetricsRecorder(
            self.queue,
            self.metrics,
            tracker,
            self.bench.hosts,
            [h.name for h in config.hosts],
            on_fault=self.bench.runs.engine.fail_on_gpu_fault,
            locate=clusters.ssh_host_of if clusters is not None else None,
        )
        recorder_stop = asyncio.Event()
        recording = asyncio.create_task(recorder.run(recorder_stop))
        helpers: list[asyncio.Task[Any]] = []
        try:
            batches = BatchLauncher(self.bench.runs.engine)
            await batches.reattach_orphans()
            helpers.append(asyncio.create_task(batches.sweep_orphans(orphan_sweep_s)))
            launcher: Launcher = batches
            view: ClusterView = cluster
            follow: list[tuple[Awaitable[object], str]] = []
            if clusters is not None:
                # Nodes are read before the first pass, so runs that fit start at once.
                await clusters.view.refresh()
                helpers.append(asyncio.create_task(clusters.keep_fresh()))
                follow.append((clusters.launcher.reattach(), "reattach-clusters"))
                view = CombinedCluster((cluster, clusters.view))
                launcher = RoutingLauncher(launcher, clusters.launcher)
            return await self.run(view, launcher, stop, until_idle, on_claim, follow)
        finally:
            for helper in helpers:
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError, CosmosError):
                    await helper
            # One budget for the whole clean-up: the last metrics, then the recorder's end
            # (a store error there, e.g. the database locked elsewhere, ends it too).
            loop = asyncio.get_running_loop()
            deadline = loop.time() + CLEANUP_TIMEOUT_S
            with contextlib.suppress(asyncio.TimeoutError, CosmosError):
                await asyncio.wait_for(recorder.refresh(), CLEANUP_TIMEOUT_S)
            recorder_stop.set()
            with contextlib.suppress(asyncio.TimeoutError, CosmosError):
                await asyncio.wait_for(recording, max(0.1, deadline - loop.time()))

    def _clusters(self) -> ClusterDriver | None:
        """The configured clusters for this driver (None: none, or Ray not installed).

        Without Ray the SSH hosts are driven as ever; ``cosmos status`` says what to
        install, and runs wait in the queue rather than fail.
        """
        config = self.bench.config
        if not config.clusters:
            return None
        try:
            jobs = ClusterJobs(config.clusters, self.bench.hosts)
            return ClusterDriver(config, self.bench.store, self.bench.runs.engine.ctx.hub, jobs)
        except ConfigError as exc:
            logger.warning("clusters are not driven: %s", exc.message)
            return None

    async def keep_moving(self) -> AsyncIterator[str]:
        """Drive the queue until the iterator is closed; yield one news line per start.

        For the TUI: closing the iterator (or cancelling its task) stops following runs;
        their containers keep going and the next driver reattaches them.
        """
        news: asyncio.Queue[str] = asyncio.Queue()

        def _claimed(claim: Claim) -> None:
            batch = f" (batch {claim.batch_id})" if claim.batch_id else ""
            gpus = ",".join(str(g) for g in claim.gpus)
            news.put_nowait(f"started {', '.join(claim.run_ids)} on {claim.host} GPU {gpus}{batch}")

        driving = asyncio.create_task(self.drive(on_claim=_claimed))
        try:
            while True:
                getter = asyncio.ensure_future(news.get())
                done, _ = await asyncio.wait({getter, driving}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    yield getter.result()
                    continue
                getter.cancel()
                driving.result()
                return
        finally:
            if not driving.done():
                driving.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await driving


class _NoLaunch:
    """A launcher for planning only."""

    async def launch(self, claim: Claim) -> None:
        raise RuntimeError("planning only")  # pragma: no cover - never called


class _Reporting:
    """Tells a callback about each claim before launching it."""

    def __init__(self, inner: Launcher, on_claim: Callable[[Claim], None] | None) -> None:
        self.inner = inner
        self.on_claim = on_claim

    async def launch(self, claim: Claim) -> None:
        if self.on_claim is not None:
            self.on_claim(claim)
        await self.inner.launch(claim)
