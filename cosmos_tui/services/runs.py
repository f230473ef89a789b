"""The run service: start, drive, cancel, follow logs, reconcile.

:class:`RunService` is one part of :class:`~cosmos_tui.services.workbench.Workbench`
(``bench.runs``), built with what it uses: the config, the store, the host pool and the
facade's id resolver. Everything returned is a domain value (Run, LogBatch, Failure,
ReconcileReport).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cosmos_tui.config import no_hosts_message
from cosmos_tui.domain import LogBatch, Run, RunState, RunType
from cosmos_tui.engine.claim import driver_id
from cosmos_tui.engine.cluster_health import is_cluster_target
from cosmos_tui.engine.context import EngineContext, Observer
from cosmos_tui.engine.failures import Failure, classify
from cosmos_tui.engine.logs import LogHub, read_log_lines, tail_log
from cosmos_tui.engine.ray_route import ClusterJobs
from cosmos_tui.engine.reconcile import ReconcileReport
from cosmos_tui.engine.runlock import RunLock
from cosmos_tui.engine.runner import RunEngine, spawn_queue_driver, spawn_worker
from cosmos_tui.errors import ConfigError, CosmosError, RunStalled, ValidationError
from cosmos_tui.services.closing import bounded_close
from cosmos_tui.store.queue_store import QueueStore

if TYPE_CHECKING:
    from cosmos_tui.config import Config
    from cosmos_tui.remote.pool import HostPool
    from cosmos_tui.store.repositories import Store

logger = logging.getLogger(__name__)

LOG_NAME = "run.log"
# A queue driver heartbeats every 5 s; one silent this long has stopped.
LIVE_DRIVER_AGE = timedelta(seconds=15)


@dataclass(frozen=True)
class RunOptions:
    """How this process's run engine keeps time and reports its steps (tests inject them).

    Args:
        observer: Called with ``(run_id, step)`` at each lifecycle step.
        sleep: The engine's pause (a test shortens the retry back-off).
        wall: The wall clock in seconds.
        worker_id: This driver's name in claims (host:pid by default; it must hold a
            colon, which tells a driver's claim from a scheduler's: engine/claim.py).

    """

    observer: Observer | None = None
    sleep: Callable[[float], Awaitable[None]] | None = None
    wall: Callable[[], float] | None = None
    worker_id: str | None = None


class RunService:
    """Run lifecycle operations (``bench.runs``).

    Args:
        config: The validated configuration.
        store: The open store.
        hosts: The host pool.
        resolve: The facade's resolver of a typed id or unique prefix to a full id.
        drive_queue: Drives the queue in this process until nothing is left to start
            (``bench.queue.drive(until_idle=True)``).
        options: The run engine's clock, sleep and step observer (tests).

    """

    def __init__(
        self,
        config: Config,
        store: Store,
        hosts: HostPool,
        resolve: Callable[[str, str | None], Awaitable[str]],
        drive_queue: Callable[[], Awaitable[object]],
        options: RunOptions | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.hosts = hosts
        self.resolve = resolve
        self.options = options if options is not None else RunOptions()
        self._drive_queue = drive_queue
        self._engine: RunEngine | None = None
        self._queue_task: asyncio.Task[None] | None = None
        self._queue_again = False

    @property
    def engine(self) -> RunEngine:
        """The run engine of this process (made on first use)."""
        if self._engine is None:
            given = self.options
            options: dict[str, Any] = {
                "wall": given.wall or time.time,
                "worker_id": given.worker_id or driver_id(socket.gethostname(), os.getpid()),
            }
            if given.observer is not None:
                options["observer"] = given.observer
            if given.sleep is not None:
                options["sleep"] = given.sleep
            if self.config.clusters:
                options["clusters"] = ClusterJobs(self.config.clusters, self.hosts)
            ctx = EngineContext(
                config=self.config, store=self.store, hosts=self.hosts, hub=LogHub(), **options
            )
            self._engine = RunEngine(ctx)
        return self._engine

    @property
    def drives_queue(self) -> bool:
        """Whether this process drives the queue now (:meth:`drive_queue_here`)."""
        return self._queue_task is not None and not self._queue_task.done()

    def drive_queue_here(self) -> None:
        """Drive the queue in this process until nothing is left to start (the TUI).

        Asked while a drive is ending, it drives once more (the drive may have looked at
        the queue before the run came). :meth:`close` stops it.
        """
        self._queue_again = True
        if not self.drives_queue:
            self._queue_task = asyncio.create_task(self._drive_until_idle())
            self._queue_task.add_done_callback(_log_queue_failure)

    async def _drive_until_idle(self) -> None:
        while self._queue_again:
            self._queue_again = False
            await self._drive_queue()

    async def close(self, hand_over: bool = False) -> None:
        """Stop driving runs in this process; their containers keep running.

        Args:
            hand_over: Let detached processes carry on what this process drove (the
                TUI quits this way): a ``cosmos worker`` for each run it was driving that
                has not ended (running, or still queued for a GPU or a retry), and a
                queue driver when it drove the queue (that one picks up the batches and
                starts what waits). Without it, the next reconcile reattaches the active
                ones.
        """
        queue_driven = self.drives_queue
        driving = self._engine.driving() if self._engine is not None else []
        # Each stop is bounded (a task that never ends must not freeze a quit), and the
        # hand-over happens whatever they did, failures and Ctrl+C included.
        try:
            if self._queue_task is not None:
                # forgotten first: a second close (the TUI's, then the Workbench's) does
                # not wait for a stuck one again
                queue_task, self._queue_task = self._queue_task, None
                queue_task.cancel()
                stopped = asyncio.gather(queue_task, return_exceptions=True)
                await self._stop(stopped, "the queue drive")
            if self._engine is not None:
                await self._stop(self._engine.close(), "the runs driven here")
        finally:
            if hand_over:
                await self._hand_over(driving, queue_driven)

    @staticmethod
    async def _stop(step: Awaitable[object], what: str) -> None:
        """One bounded stop of :meth:`close`; a failure is logged, the close goes on."""
        try:
            await bounded_close(step, what)
        except Exception:
            logger.exception("stopping %s failed", what)

    async def _hand_over(self, driving: list[str], queue_driven: bool) -> None:
        """Start the detached processes that :meth:`close` hands the runs over to.

        A run still queued here (waiting for a GPU, or for its retry) is first given back
        by this process's claim (a queue claim was given back by the scheduler as it
        stopped); it goes to the queue driver when the queue was driven here (which
        keeps the queue's pause), else to a worker. A run that cannot be handed over is
        logged and left to the next reconcile or queue driver.
        """
        queue = QueueStore(self.store)
        for run_id in driving:
            try:
                run = await self.store.get_run(run_id, with_events=False)
                if run.state.is_terminal or run.batch_id is not None:
                    continue  # a batch's members: the queue driver reattaches the batch
                if run.state == RunState.QUEUED:
                    await queue.release([run_id], self.engine.ctx.worker_id)
                    if queue_driven:
                        continue  # the queue driver below places it
                pid = spawn_worker(self.config.source, self.config.outputs_dir / run_id, run_id)
                logger.info("run %s handed over to worker %d", run_id, pid)
            except (CosmosError, OSError) as exc:
                logger.warning("run %s was not handed over: %s", run_id, exc)
        if queue_driven:
            try:
                pid = spawn_queue_driver(self.config.source, self.config.data_dir)
                logger.info("the queue handed over to driver %d", pid)
            except OSError as exc:
                logger.warning("the queue was not handed over: %s", exc)

    def log_path(self, run_id: str) -> Path:
        """The local log of a run (``<outputs>/<run id>/run.log``)."""
        return self.config.outputs_dir / run_id / LOG_NAME

    def require_host(self, host: str | None = None) -> None:
        """Check that a run can be placed: a host or cluster is configured (``host`` one).

        Called before anything is recorded, so a command that cannot run leaves no row.

        Raises:
            ConfigError: No ``[[hosts]]`` or ``[[clusters]]`` table in the config (the
                message names the file), or no host or cluster called ``host``.
        """
        if not self.config.hosts and not self.config.clusters:
            raise ConfigError(no_hosts_message(self.config.source))
        clusters = [c.name for c in self.config.clusters]
        if host is None or host in clusters:
            return
        if not clusters:
            self.config.host(host)
        elif host not in {h.name for h in self.config.hosts}:
            hosts = ", ".join(h.name for h in self.config.hosts) or "none"
            raise ConfigError(
                f"no host or cluster named '{host}' (hosts: {hosts}; clusters: "
                f"{', '.join(clusters)})",
                path=self.config.source,
            )

    def goes_to_queue(self, host: str | None, last_host: str | None = None) -> bool:
        """True when a started run is left to the queue's driver rather than a worker.

        That is when ``host`` names a cluster, or no host is given and either only
        clusters are configured or the run last ran on a cluster node (``last_host``):
        cluster runs are placed on nodes and submitted by the queue driver.
        """
        clusters = {c.name for c in self.config.clusters}
        if host is not None:
            return host in clusters
        if not clusters:
            return False
        return not self.config.hosts or is_cluster_target(last_host)

    async def start(self, run_id: str, detach: bool = False, host: str | None = None) -> Run:
        """Start (or restart) a run and return at once; it keeps moving in the background.

        An ended run is queued again first. ``detach`` hands it to a worker process that
        outlives this one (the CLI); otherwise a task of this process drives it (the TUI).

        Args:
            run_id: Run id or unique prefix.
            detach: Drive it in a detached ``cosmos worker`` process.
            host: Run on this configured host or cluster, and pin it there (default: where
                the run is pinned; else the run's host or the first one).

        """
        self.require_host(host)
        full_id = await self.resolve(run_id, "run")
        found = await self.store.get_run(full_id, with_events=False)
        if host is None and found.target is not None:
            self.require_host(found.target)  # the config may have dropped it since
            host = found.target
        # Transfer1's enhancements share the queue's upsampler container; a Cosmos 3
        # reasoner run started by itself (a retry) runs alone, like any other run.
        if found.type == RunType.ENHANCE and found.profile != "cosmos3":
            raise ValidationError(
                f"{full_id} is a prompt enhancement; those are started by the queue (several "
                "prompts share one container): run 'cosmos queue run --until-idle'",
                field="id",
            )
        run = await self.engine.requeue(full_id)
        if self.goes_to_queue(host, found.host):
            # The queue places it: on the cluster asked for, or anywhere when none was
            # (a run that last ran on a node, with SSH hosts too: the queue may pick one).
            if run.target != host:
                await self.store.update_run(full_id, target=host)
                run = dataclasses.replace(run, target=host)
            if detach:
                # Always a new one: a driver already up may be about to stop (until idle);
                # several drivers share the queue through its atomic claim.
                spawn_queue_driver(self.config.source, self.config.data_dir)
            return run  # in-process, the caller drives the queue (the TUI's facade)
        if host is not None:
            self.config.host(host)
            await self.store.update_run(full_id, host=host, target=host)
        if detach:
            spawn_worker(self.config.source, self.config.outputs_dir / full_id, full_id)
        else:
            self.engine.start(full_id)
        return run

    async def retry(self, run_id: str) -> Run:
        """Run an ended run again (queued anew and driven by this process)."""
        return await self.start(run_id)

    async def drive(self, run_id: str) -> Run:
        """Drive a run to its end in this process (``cosmos worker``, tests).

        Raises:
            RunBusy: When another process drives it.

        """
        return await self.engine.drive(await self.resolve(run_id, "run"))

    async def cancel(self, run_id: str) -> Run:
        """Cancel a run: recorded as cancelled, its container stopped (TERM, grace, KILL)."""
        return await self.engine.cancel(await self.resolve(run_id, "run"))

    async def reconcile(
        self, detached: bool = False, scan_all_hosts: bool = True
    ) -> ReconcileReport:
        """Reattach, finish or fail every active run; report orphan containers.

        Args:
            detached: Drive the runs that need it in worker processes (the CLI).
            scan_all_hosts: Also look for orphans on every configured host; False only
                asks hosts of runs that nobody drives (cheap: for CLI start-up).

        """
        return await self.engine.reconcile(detached, scan_all_hosts)

    async def keep_moving(
        self, interval: float = 60.0, detached: bool = False
    ) -> AsyncIterator[ReconcileReport]:
        """Reconcile now and every ``interval`` seconds, yielding each report (the TUI).

        Errors of one pass are reported through ``unreachable`` and never end the loop.
        """
        while True:
            yield await self.reconcile(detached=detached)
            await asyncio.sleep(interval)

    async def follow_log(
        self,
        run_id: str,
        tail: int | None = None,
        follow: bool = True,
        poll_seconds: float = 0.2,
    ) -> AsyncIterator[LogBatch]:
        """Yield a run's log in batches (<= 200 lines), following until the run ends.

        Works in any process: it reads the local log that the run's driver writes, and
        is woken at once when that driver is in this process.

        Args:
            run_id: Run id or unique prefix.
            tail: Start with the last ``tail`` lines only.
            follow: Keep following while the run is active.
            poll_seconds: How often to look when the driver is in another process.

        """
        full_id = await self.resolve(run_id, "run")

        async def ended() -> bool:
            run = await self.store.get_run(full_id, with_events=False)
            return run.state.is_terminal

        async for batch in tail_log(
            full_id,
            self.log_path(full_id),
            tail=tail,
            follow=follow,
            is_done=ended,
            hub=self.engine.ctx.hub,
            poll_seconds=poll_seconds,
        ):
            yield batch

    async def watch(
        self, run_id: str, interval: float = 0.5, stall_after: float | None = None
    ) -> AsyncIterator[Run]:
        """Yield the run now and each time its state or progress changes, until it ends.

        Args:
            run_id: Run id or unique prefix.
            interval: Seconds between looks at the store.
            stall_after: Raise :class:`RunStalled` when no live process has driven the
                unfinished run for this many seconds (its worker died, or gave up on an
                unreachable host); None waits for ever.

        """
        full_id = await self.resolve(run_id, "run")
        last: tuple[Any, ...] | None = None
        lock = RunLock(self.config.outputs_dir / full_id)
        loop = asyncio.get_running_loop()
        undriven_since: float | None = None
        while True:
            run = await self.store.get_run(full_id)
            key = (run.state, run.progress, len(run.events))
            if key != last:
                last = key
                yield run
            if run.state.is_terminal:
                return
            if stall_after is not None and not await self._driven(run, lock):
                undriven_since = undriven_since or loop.time()
                if loop.time() - undriven_since >= stall_after:
                    raise RunStalled(full_id, run.state.value)
            else:
                undriven_since = None
            await asyncio.sleep(interval)

    async def _driven(self, run: Run, lock: RunLock) -> bool:
        """True when a live process drives the run (a queued one: any queue driver too)."""
        if lock.holder_alive():
            return True
        if run.state != RunState.QUEUED:
            return False
        return bool(await QueueStore(self.store).live_schedulers(LIVE_DRIVER_AGE))

    async def failure(self, run_id: str) -> Failure | None:
        """Return a failed run's cause with the log lines around its first error."""
        run = await self.store.get_run(await self.resolve(run_id, "run"))
        if run.failure_kind is None:
            return None
        lines = await asyncio.to_thread(read_log_lines, self.log_path(run.id))
        found = classify(run.exit_code, lines, profile=run.profile)
        return Failure(
            kind=run.failure_kind,
            message=run.failure_message or "",
            context=found.context if lines else (),
            error_line=found.error_line,
            exit_code=run.exit_code,
            detail=found.detail,
            rank=found.rank,
            phase=found.phase,
        )


def _log_queue_failure(task: asyncio.Task[None]) -> None:
    """Log why this process's queue drive ended with an error (it is no one's to raise)."""
    if not task.cancelled() and task.exception() is not None:
        logger.error("driving the queue in this process failed", exc_info=task.exception())
