"""The run engine of one process: drivers as tasks, detached workers, cancel, reconcile.

A run must keep moving with no screen open, so there are two ways to drive one:

- in this process (:meth:`RunEngine.start`): an asyncio task; the TUI uses it. Closing
  the app cancels the task, never the container; the next start reattaches.
- a detached worker (:func:`spawn_worker`): ``python -m cosmos_tui worker RUN_ID`` in a
  new session, with its output in ``<outputs>/<run id>/worker.log``. It drives the run to
  its end and exits. ``cosmos inference`` always uses one, so Ctrl+C (or closing the
  terminal) only stops watching.

Whichever drives a run holds its lock (see runlock.py), so they never collide.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
from pathlib import Path

from cosmos_tui.domain import FailureKind, Run, RunState
from cosmos_tui.engine.cluster_health import is_cluster_target
from cosmos_tui.engine.context import EngineContext, stop_run_containers
from cosmos_tui.engine.failure_text import explain
from cosmos_tui.engine.lifecycle import RunDriver
from cosmos_tui.engine.reconcile import LABEL_BATCH_ID, ReconcileReport, reconcile
from cosmos_tui.errors import CosmosError, InvalidTransition, RunBusy, ValidationError
from cosmos_tui.private_files import open_private, private_dir
from cosmos_tui.store.repositories import RunFilter

logger = logging.getLogger(__name__)

WORKER_LOG = "worker.log"
QUEUE_DRIVER_LOG = "queue-driver.log"
# A cancel's stop that failed transiently is asked again (RunEngine._stop_containers).
STOP_ATTEMPTS = 3
STOP_PAUSE_S = 1.0


class RunEngine:
    """Drives runs for one process.

    Args:
        ctx: Shared engine services.

    """

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self._tasks: dict[str, asyncio.Task[Run | None]] = {}
        self._driving: set[str] = set()

    async def drive(self, run_id: str, claimer: str | None = None) -> Run:
        """Drive a run to its end in this process and return it.

        Args:
            run_id: The run.
            claimer: The scheduler whose claim this is (None: this process's worker id);
                a queued run claimed by anyone else is left to them, not started.

        Raises:
            RunBusy: When another process drives it.

        """
        self._driving.add(run_id)
        try:
            return await RunDriver(self.ctx, run_id, claimer).drive()
        finally:
            self._driving.discard(run_id)

    def driving(self) -> list[str]:
        """Ids of runs a driver of this process is driving now (tasks and queue claims).

        A task made by :meth:`start` counts from the moment it is made, before it runs.
        """
        started = {run_id for run_id, task in self._tasks.items() if not task.done()}
        return sorted(self._driving | started)

    def start(self, run_id: str) -> asyncio.Task[Run | None]:
        """Drive a run in the background of this process (no-op if already driven here)."""
        task = self._tasks.get(run_id)
        if task is not None and not task.done():
            return task
        task = asyncio.create_task(self._drive_quietly(run_id), name=f"drive-{run_id}")
        self._tasks[run_id] = task
        return task

    async def _drive_quietly(self, run_id: str) -> Run | None:
        try:
            return await self.drive(run_id)
        except RunBusy:
            return None
        except CosmosError as exc:
            logger.warning("driving run %s failed: %s", run_id, exc.message)
            return None

    async def close(self) -> None:
        """Stop driving (containers keep running; a later reconcile reattaches)."""
        tasks = [t for t in self._tasks.values() if not t.done()]
        self._tasks.clear()  # first: a second close does not wait for a stuck one again
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def requeue(self, run_id: str, reason: str = "run again by the user") -> Run:
        """Put an ended run back in the queue (a user retry); queued runs are left as is.

        Raises:
            ValidationError: When the run is still active.

        """
        run = await self.ctx.store.get_run(run_id)
        if run.state == RunState.QUEUED:
            return run
        if run.state.is_active:
            raise ValidationError(
                f"run {run_id} is already {run.state.value}; follow it with "
                f"'cosmos logs -f {run_id}'",
                field="id",
            )
        return await self.ctx.store.transition(run_id, RunState.QUEUED, reason, claimed_by=None)

    async def cancel(self, run_id: str) -> Run:
        """Cancel a run: record it, then SIGTERM its container, wait the grace, SIGKILL.

        The state is recorded first, so a driver that sees the container exit knows it
        was a cancel and not a crash. Only containers labelled with this run are touched,
        and the container of its batch once no other run of that batch is active.

        Raises:
            ValidationError: When the run has already ended.

        """
        run = await self.ctx.store.get_run(run_id)
        if run.state.is_terminal:
            raise ValidationError(f"run {run_id} has already ended ({run.state.value})", "id")
        grace = self.ctx.config.timeouts.cancel_grace
        reason = "cancelled by the user"
        if run.state.is_active:
            reason += f"; container stopped (SIGTERM, SIGKILL after {grace:g} s)"
        try:
            cancelled = await self.ctx.store.transition(
                run_id,
                RunState.CANCELLED,
                reason,
                failure_kind=FailureKind.CANCELLED,
                failure_message=explain(FailureKind.CANCELLED),
            )
        except InvalidTransition:
            return await self.ctx.store.get_run(run_id)
        if run.state.is_active and is_cluster_target(run.host):
            await self._stop_cluster_job(run)
        elif run.state.is_active and run.host:
            await self._stop_containers(run)
            if run.batch_id:
                await self._stop_batch_if_ended(run)
        self.ctx.hub.notify(run_id)
        return cancelled

    async def _stop_containers(self, run: Run) -> None:
        """Stop a cancelled run's containers, asking again after a transient failure.

        A link that dies during the stop (the request is lost with it) is re-made by the
        next request, so the stop is asked up to STOP_ATTEMPTS times, STOP_PAUSE_S apart.
        A host still away after that raises: the run stays cancelled and the next
        reconcile stops its container.

        Raises:
            CosmosError: The last failure, or the first one that is not transient.
        """
        for attempt in range(1, STOP_ATTEMPTS + 1):
            try:
                await stop_run_containers(self.ctx, run)
                return
            except CosmosError as exc:
                if not exc.transient or attempt == STOP_ATTEMPTS:
                    raise
                logger.warning(
                    "stopping the container of run %s: %s; asking again", run.id, exc.message
                )
                await self.ctx.sleep(STOP_PAUSE_S)

    async def _stop_cluster_job(self, run: Run) -> None:
        """Stop a cancelled cluster run's job.

        A cluster that does not answer now is left to the next queue driver, whose
        reattach stops the jobs of runs that have ended.
        """
        if self.ctx.clusters is None:
            logger.warning("run %s is on %s but no cluster is configured", run.id, run.host)
            return
        try:
            await self.ctx.clusters.stop_run(run)
        except CosmosError as exc:
            logger.warning("run %s: the cluster job was not stopped now: %s", run.id, exc)

    async def fail_on_gpu_fault(self, run_id: str, detail: str) -> Run:
        """Fail an active run whose GPU broke (requires reset, lost, error) and stop it.

        The state is recorded first (as a cancel is), so the driver that sees the
        container exit keeps this cause instead of classifying the exit.
        """
        run = await self.ctx.store.get_run(run_id)
        if not run.state.is_active:
            return run
        message = explain(FailureKind.GPU_FAULT, detail)
        try:
            failed = await self.ctx.store.transition(
                run_id,
                RunState.FAILED,
                f"GPU fault: {detail}",
                failure_kind=FailureKind.GPU_FAULT,
                failure_message=message,
            )
        except InvalidTransition:
            return await self.ctx.store.get_run(run_id)
        if is_cluster_target(run.host):
            await self._stop_cluster_job(run)  # its driver sees FAILED and keeps it
        elif run.host:
            with contextlib.suppress(CosmosError):  # the GPU may hold the container hostage
                await stop_run_containers(self.ctx, run)
                if run.batch_id:
                    await self._stop_batch_if_ended(run)
        self.ctx.hub.notify(run_id)
        return failed

    async def _stop_batch_if_ended(self, run: Run) -> None:
        """Stop the batch container of a cancelled run once no member of it is active.

        While other members are active the container goes on for them (this run's sample
        is just not collected). The queue driver of the batch stops it as well when it is
        alive; doing it here covers a driver that died.
        """
        assert run.host is not None and run.batch_id is not None
        page = await self.ctx.store.list_runs(RunFilter(batch_id=run.batch_id), 0, 10_000)
        if any(member.state.is_active for member in page.items):
            return
        host = self.ctx.hosts.get(run.host)
        for info in await host.docker.list({LABEL_BATCH_ID: run.batch_id}):
            if info.running:
                await host.docker.stop(info.id, grace_s=self.ctx.config.timeouts.cancel_grace)

    async def reconcile(
        self, detached: bool = False, scan_all_hosts: bool = True
    ) -> ReconcileReport:
        """Match active runs with their containers and drive those that need it.

        Args:
            detached: Hand runs to worker processes (the CLI) instead of tasks here.
            scan_all_hosts: Look for orphans on every host (see :func:`reconcile`).

        """

        async def dispatch(run_id: str) -> None:
            if detached:
                spawn_worker(self.ctx.config.source, self.ctx.run_dir(run_id), run_id)
            else:
                self.start(run_id)

        return await reconcile(self.ctx, dispatch, scan_all_hosts)


def spawn_worker(config_path: Path | None, run_dir: Path, run_id: str) -> int:
    """Start a detached ``cosmos worker RUN_ID`` process; return its pid.

    It runs in its own session (a terminal's Ctrl+C or hang-up does not reach it) and
    writes its messages to ``<run dir>/worker.log``.
    """
    pid = _spawn_detached(config_path, ["worker", run_id], run_dir / WORKER_LOG)
    logger.info("worker %d drives run %s", pid, run_id)
    return pid


def spawn_queue_driver(config_path: Path | None, data_dir: Path) -> int:
    """Start a detached ``cosmos queue run --until-idle`` process; return its pid.

    Runs on cluster nodes are driven by the queue; this one stops once nothing runs and
    nothing is left to start. Its messages go to ``<data dir>/queue-driver.log``.
    """
    argv = ["queue", "run", "--until-idle"]
    pid = _spawn_detached(config_path, argv, data_dir / QUEUE_DRIVER_LOG)
    logger.info("queue driver %d started", pid)
    return pid


def _spawn_detached(config_path: Path | None, args: list[str], log_path: Path) -> int:
    """Start ``cosmos ARGS`` in its own session, its output appended to ``log_path``."""
    private_dir(log_path.parent)
    argv = [sys.executable, "-m", "cosmos_tui"]
    if config_path is not None and config_path.exists():
        argv += ["--config", str(config_path)]
    argv += args
    with open_private(log_path, "ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(os.environ),
        )
    return process.pid
