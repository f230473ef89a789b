"""The Ray executor: runs a claimed run as a Ray Job, through the same states and files.

The scheduler claims the run on a node (:mod:`cosmos_tui.engine.ray_cluster`) with the
same conditional UPDATE as for SSH hosts; from there the states are the usual ones::

    queued -> uploading (inputs and spec into the shared folder)
           -> starting (submit_job; submission id = run id, so a resubmit is a no-op)
           -> running (Ray placed it; the node is recorded as the run's host)
           -> downloading (outputs copied from the shared folder, size checked)
           -> completed | failed | blocked | cancelled

The container is the one :func:`launch.container_spec` builds for any host, sent as the
Docker create body to the entrypoint (:mod:`cosmos_tui.engine.ray_entry_script`). Its
log reaches the usual ``run.log`` through ``tail_job_logs``: the entrypoint prints
Docker's timestamped lines, so :class:`LogFollower` de-duplicates a resumed stream
exactly as for SSH, and diagnosis reads the same file. A cancel in the database (from
any process) is turned into ``stop_job``. After a restart, :meth:`RayLauncher.reattach`
finds this installation's live jobs by their metadata and follows them on.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from cosmos_tui.config import ClusterConfig, Config
from cosmos_tui.config_parse import max_output_bytes
from cosmos_tui.domain import ACTIVE_STATES, FailureKind, Run, RunState
from cosmos_tui.engine.cluster_health import node_target, split_target
from cosmos_tui.engine.context import HostSource
from cosmos_tui.engine.failures import Failure, caveat_of, classify
from cosmos_tui.engine.logs import (
    LocalLog,
    LogFollower,
    LogHub,
    read_log_lines,
)
from cosmos_tui.engine.ray_cluster import RayClusterView, node_ssh_host
from cosmos_tui.engine.ray_job import (
    ProgressWriter,
    begin_attempt_log,
    container_exit_code,
    container_name,
    entrypoint,
    note_gap,
    once,
    probed,
    submission_id,
    timestamped_lines,
)
from cosmos_tui.engine.ray_stage import SharedStage, SshStage, Stage
from cosmos_tui.engine.runlock import RunLock
from cosmos_tui.errors import ClusterUnreachable, CosmosError, InvalidTransition, NotFound
from cosmos_tui.remote.ray_jobs import META_INSTALL, META_OWNER, META_RUN, RayJob, RayJobs
from cosmos_tui.safe_text import one_line
from cosmos_tui.store.queue_store import Claim, QueueStore
from cosmos_tui.store.repositories import RunFilter, Store

logger = logging.getLogger(__name__)
POLL_SECONDS = 0.2
LEASE_WAIT_SECONDS = 5.0
RUNNING_ERRORS = 5
COLLECTS = 8  # with the backoff (capped by retry.backoff_max): minutes for a host to return
NODE_WAIT_SECONDS = 10.0
PROBE_SECONDS = 15.0  # a log stream silent this long: ask the head whether the job runs
REOPEN_SECONDS = 300.0  # silent this long while the job runs: open a new stream


class RayLauncher:
    """Launches claims placed on cluster nodes (the scheduler's Launcher protocol).

    Args:
        config: The configuration.
        store: The open store.
        view: The clusters (nodes, and their Jobs API clients).
        hub: Wakes log readers.
        sleep: Waits (injectable).
        hosts: The SSH hosts, for clusters without a shared folder (each run staged
            through the host that reaches its node: ``ClusterConfig.node_hosts``).

    """

    def __init__(
        self,
        config: Config,
        store: Store,
        view: RayClusterView,
        hub: LogHub,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        hosts: HostSource | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.view = view
        self.hub = hub
        self.sleep = sleep
        self.hosts = hosts

    def _stage_for(self, cluster: ClusterConfig, run: Run) -> Stage:
        """The cluster's shared folder, or the SSH host that reaches the run's node."""
        if cluster.shared_dir:
            return SharedStage(cluster)
        assert run.host is not None
        down = self.view.error(cluster.name)
        if down is not None:  # the last reading failed: no node is known to be gone
            raise ClusterUnreachable(cluster.name, down)
        node = self.view.node(run.host)
        name = node_ssh_host(self.config, cluster, node.ip) if node is not None else None
        if name is None or self.hosts is None:
            # a node the view no longer shows (lost), or one no host reaches: the
            # scheduler places the run again (nodes without a host are not offered)
            raise CosmosError(f"no SSH host reaches node {run.host} to stage the run")
        host = self.hosts.get(name)
        return SshStage(host, max_output_bytes(host.config))

    def _cluster(self, target: str) -> tuple[ClusterConfig, RayJobs]:
        parts = split_target(target)
        if parts is None or parts[0] not in self.view.clusters:
            raise CosmosError(f"'{target}' is not a node of a configured cluster")
        return self.view.clusters[parts[0]]

    async def launch(self, claim: Claim) -> None:
        """Run the claim's runs (one job each) to their ends."""
        for run in claim.runs:
            started = await QueueStore(self.store).start(
                run.id, claim.scheduler_id, f"placed on {claim.host}"
            )
            await self.drive(started)

    async def drive(self, run: Run) -> Run:
        """Move one run from uploading (or later, when reattaching) to its end.

        The run's driving lease (:class:`RunLock`, as for SSH runs) is held throughout;
        a run another driver holds is left to it and returned as it is.
        """
        assert run.host is not None
        lock = RunLock(self.config.outputs_dir / run.id)
        # A driver that just put the run back in the queue may still hold the lease for
        # a moment: wait for it (bounded) rather than leave a claimed run undriven.
        waited = 0.0
        while not lock.try_acquire():
            if waited >= LEASE_WAIT_SECONDS:
                return await self.store.get_run(run.id, with_events=False)
            await asyncio.sleep(0.1)
            waited += 0.1
        try:
            return await self._drive(await self.store.get_run(run.id))
        finally:
            lock.release()

    async def _drive(self, run: Run) -> Run:
        assert run.host is not None
        cluster, jobs = self._cluster(run.host)
        local_log = LocalLog(self.config.outputs_dir / run.id / "run.log")
        errors = 0  # refused calls while the job runs, in all
        collects = 0  # transient failures while the outputs come back
        while not run.state.is_terminal and run.state != RunState.QUEUED:
            try:
                if run.state == RunState.UPLOADING:
                    run = await self._stage(run, cluster, local_log)
                if run.state == RunState.STARTING:
                    run = await self._submit(run, cluster, jobs)
                if run.state == RunState.RUNNING:
                    run = await self._follow(run, jobs, local_log)
                if run.state == RunState.DOWNLOADING:
                    run = await self._collect(run, cluster, local_log)
            except ClusterUnreachable as exc:
                logger.info("%s", exc.message)
                await self.store.update_run(run.id, progress_phase="cluster unreachable")
                await self.sleep(1.0)
                run = await self.store.get_run(run.id)
                if run.state == RunState.CANCELLED and run.attempt:
                    # cancelled while the head did not answer: keep asking, then leave it
                    # to the next driver (its reattach stops jobs of ended runs)
                    await self._stop_until_ended(jobs, submission_id(run), tries=30)
            except InvalidTransition:
                run = await self.store.get_run(run.id)
                if run.state == RunState.CANCELLED:
                    await self._stop_until_ended(jobs, submission_id(run), tries=30)
            except (CosmosError, OSError) as exc:  # refused, never placed, a file step failed
                message = exc.message if isinstance(exc, CosmosError) else str(exc)
                current = await self.store.get_run(run.id)
                if current.state == RunState.RUNNING and errors < RUNNING_ERRORS:
                    # one refused call (an HTTP 500) must not fail a healthy job
                    errors += 1
                    logger.warning("run %s: %s; following it again", run.id, message)
                    await self.sleep(1.0)
                    run = current
                    continue
                transient = isinstance(exc, CosmosError) and exc.transient
                if current.state == RunState.DOWNLOADING and transient and collects < COLLECTS:
                    # the node's SSH host away a while: the outputs are still on its disk
                    collects += 1
                    logger.warning("run %s: %s; collecting again", run.id, message)
                    await self.store.update_run(run.id, progress_phase="collecting again")
                    await self.sleep(self._backoff(collects))
                    run = current
                    continue
                if isinstance(exc, OSError) and current.state == RunState.UPLOADING:
                    # this machine's view of the shared folder: a retry would fail alike
                    failure = Failure(FailureKind.UNKNOWN, f"staging failed: {message}")
                    run = await self._fail(current, failure)
                    break
                if current.state in (RunState.STARTING, RunState.RUNNING):
                    # a job may exist: the retry (or the failure) must not leave it running
                    await self._stop_until_ended(jobs, submission_id(current), tries=5)
                run = await self._requeue_or_fail(current, message)
                if run.state == RunState.QUEUED:
                    break  # the scheduler places it again
        self.hub.notify(run.id)
        return run

    async def reattach(self) -> list[Run]:
        """Take over what a driver that stopped left on the clusters; return the runs' ends.

        - a live job of this installation whose run is still active is followed on;
        - a live job whose run has ended (cancelled while no driver could reach the
          cluster) is stopped;
        - an active run placed on a cluster node with no job yet (its driver died while
          staging or submitting) is driven on: staging again, or submitting under the
          same submission id, which adopts a job that did get in.

        Clusters are taken over side by side (one that does not answer holds up only its
        own runs), and runs too; one another driver holds is left to it.
        """
        page = await self.store.list_runs(RunFilter(states=ACTIVE_STATES), 0, 10_000)
        placed: dict[str, list[str]] = {}
        for run in page.items:  # active runs have a host: never queued
            parts = split_target(run.host or "")
            if parts is not None:
                placed.setdefault(parts[0], []).append(run.id)
        outcomes = await asyncio.gather(
            *(
                self._reattach_cluster(name, jobs, placed.get(name, []))
                for name, (_config, jobs) in self.view.clusters.items()
            ),
            return_exceptions=True,
        )
        ended: list[Run] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                if isinstance(outcome, asyncio.CancelledError):
                    raise outcome
                logger.warning("reattaching a cluster failed: %s", outcome)
            else:
                ended.extend(outcome)
        return ended

    async def _reattach_cluster(self, name: str, jobs: RayJobs, placed: list[str]) -> list[Run]:
        ids = set(placed)
        for job in await self._jobs_when_reachable(name, jobs, wait=bool(placed)):
            run_id = job.metadata.get(META_RUN)
            if job.metadata.get(META_INSTALL) != self.view.install_id or run_id is None:
                continue
            try:
                run = await self.store.get_run(run_id, with_events=False)
            except NotFound:
                continue  # another database of this installation
            if job.live and (run.state.is_terminal or job.submission_id != submission_id(run)):
                logger.info("stopping job %s: its run is %s", job.submission_id, run.state)
                await self._stop_until_ended(jobs, job.submission_id, tries=5)
            elif run.state.is_active:
                ids.add(run.id)
        runs = [await self.store.get_run(run_id) for run_id in sorted(ids)]
        outcomes = await asyncio.gather(*(self.drive(r) for r in runs), return_exceptions=True)
        ended = []
        for run, outcome in zip(runs, outcomes, strict=True):
            if isinstance(outcome, asyncio.CancelledError):
                raise outcome
            if isinstance(outcome, BaseException):
                logger.warning("run %s: following it failed: %s", run.id, outcome)
            else:
                ended.append(outcome)
        return ended

    async def _stop_until_ended(self, jobs: RayJobs, sid: str, tries: int | None = None) -> bool:
        """Ask Ray to stop a job until it has ended; False when ``tries`` ran out first.

        A head that does not answer is asked again each second.
        """
        attempt = 0
        while tries is None or attempt < tries:
            attempt += 1
            with contextlib.suppress(CosmosError):
                job = await jobs.job(sid)
                if job is None or not job.live:
                    return True  # ended, or never submitted
                await jobs.stop(sid)
                job = await jobs.job(sid)
                if job is None or not job.live:
                    return True
            await self.sleep(1.0)
        logger.warning("job %s: not stopped yet; the next driver stops it", sid)
        return False

    async def _jobs_when_reachable(self, name: str, jobs: RayJobs, wait: bool) -> list[RayJob]:
        """List a cluster's jobs; with ``wait``, until it answers (its runs need following).

        Without runs of ours active there, a cluster that does not answer is skipped: the
        next driver stops what it left of ended runs.
        """
        told = False
        while True:
            try:
                return await jobs.jobs()
            except ClusterUnreachable as exc:
                if not wait:
                    logger.warning("cluster %s: %s", name, exc.message)
                    return []
                if not told:
                    logger.warning("cluster %s: %s; its runs wait for it", name, exc.message)
                    told = True
                await self.sleep(1.0)

    # steps ------------------------------------------------------------------------------

    async def _stage(self, run: Run, cluster: ClusterConfig, local_log: LocalLog) -> Run:
        """Put inputs (content-addressed) and the spec where the attempt's node sees them."""
        await asyncio.to_thread(begin_attempt_log, local_log, run)
        stage = self._stage_for(cluster, run)
        layout = await stage.layout(run.id, run.attempt + 1)
        prompt = await self.store.get_prompt(run.prompt_id) if run.prompt_id else None
        spec = await stage.put(run, prompt, layout)
        return await self.store.transition(
            run.id,
            RunState.STARTING,
            f"inputs and spec in {layout.run_dir}",
            spec=spec,
            log_path=local_log.path,
            attempt=run.attempt + 1,  # each pass through uploading is a new attempt
        )

    async def _submit(self, run: Run, cluster: ClusterConfig, jobs: RayJobs) -> Run:
        """Submit (idempotent), wait until Ray places it, record the node."""
        assert run.host is not None
        layout = await self._stage_for(cluster, run).layout(run.id, run.attempt)
        resources = dict(cluster.resources)
        node = self.view.node(run.host)
        if not cluster.shared_dir:
            # the inputs are on that node's disk: the job may go nowhere else (nodes that
            # share an IP share a machine, and its disk)
            if node is None or not node.alive:
                raise CosmosError(f"node {run.host} is gone; its staged inputs with it")
            resources[f"node:{node.ip}"] = 0.001
        elif node is not None and self.view.unique_ip(cluster.name, node):
            resources[f"node:{node.ip}"] = 0.001  # exactly the node the queue planned
        grace = self.config.timeouts.cancel_grace
        job = await jobs.submit(
            submission_id(run),
            entrypoint(cluster, run, self.config, grace, layout),
            run.params.num_gpus,
            resources,
            {META_INSTALL: self.view.install_id, META_RUN: run.id, META_OWNER: getpass.getuser()},
            env_vars={"RAY_JOB_STOP_WAIT_TIME_S": str(int(grace) + 5)},
        )
        waited = 0.0
        while job.status == "PENDING":
            if waited >= cluster.pending_timeout:
                await jobs.stop(job.submission_id)
                raise CosmosError(f"job {job.submission_id} stayed PENDING {waited:.0f} s")
            current = await self.store.get_run(run.id)
            if current.state == RunState.CANCELLED:
                # Ray keeps a stop sent while PENDING and applies it once the job is placed
                for _ in range(30):
                    try:
                        await jobs.stop(job.submission_id)
                        break
                    except CosmosError:
                        await self.sleep(1.0)
                return current
            await self.sleep(POLL_SECONDS)
            waited += POLL_SECONDS
            job = await jobs.job(job.submission_id) or job
        # Ray may report RUNNING a moment before the node it chose: without it the run
        # would show (and a lost node be judged by) the node the queue planned.
        waited = 0.0
        while job.live and not job.driver_node_id and waited < NODE_WAIT_SECONDS:
            await self.sleep(POLL_SECONDS)
            waited += POLL_SECONDS
            job = await jobs.job(job.submission_id) or job
        host = node_target(cluster.name, job.driver_node_id) if job.driver_node_id else run.host
        return await self.store.transition(
            run.id,
            RunState.RUNNING,
            f"Ray job {job.submission_id} on node {host}",
            host=host,
            container_id=container_name(run),
        )

    async def _follow(self, run: Run, jobs: RayJobs, local_log: LocalLog) -> Run:
        """Stream the job's log into run.log until the job ends; resume after breaks.

        The profile's progress parser reads the lines as they come (as for SSH runs);
        the phase, percent and ETA are stored when they move, at most once a second.
        """
        sid = submission_id(run)
        local_log.open()
        stopper = asyncio.create_task(self._stop_on_cancel(run.id, sid, jobs))
        progress = ProgressWriter(self.store, run)
        publisher = asyncio.create_task(progress.publish())
        try:
            while True:
                follower = LogFollower(run.id, local_log, self.hub, progress.feed, from_start=True)
                try:
                    alive = partial(self._live, jobs, sid)
                    stream = probed(jobs.tail(sid), alive, PROBE_SECONDS, REOPEN_SECONDS)
                    await follower.follow(timestamped_lines(stream))
                except ClusterUnreachable as exc:
                    logger.info("run %s: %s; resuming", run.id, exc.message)
                    await self.sleep(0.5)
                job = await jobs.job(sid)  # the stream ends when the job does
                if job is None or not job.live:
                    break
            # The whole log once more: lines a broken last stream missed (the rest are
            # dropped as duplicates by the cursor). A lost node's log is gone with it.
            try:
                whole = await jobs.logs(sid)
            except ClusterUnreachable:
                if job is None or not await self._node_lost(run, job):
                    raise
                whole = ""
            follower = LogFollower(run.id, local_log, self.hub, progress.feed, from_start=True)
            await follower.follow(timestamped_lines(once(whole), whole=True))
        finally:
            local_log.close()
            for task in (stopper, publisher):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return await self._finish(run, job, local_log)

    async def _live(self, jobs: RayJobs, sid: str) -> bool:
        """True while the job runs (the probe of a silent log stream)."""
        job = await jobs.job(sid)
        return job is not None and job.live

    async def _stop_on_cancel(self, run_id: str, sid: str, jobs: RayJobs) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            with contextlib.suppress(CosmosError):
                run = await self.store.get_run(run_id, with_events=False)
                if run.state == RunState.CANCELLED:
                    break
        # Until Ray has it stopped: the follow ends with the job.
        await self._stop_until_ended(jobs, sid)

    async def _finish(self, run: Run, job: RayJob | None, local_log: LocalLog) -> Run:
        current = await self.store.get_run(run.id)
        if current.state != RunState.RUNNING:
            return current
        lines = await asyncio.to_thread(read_log_lines, local_log.path)
        exit_code = container_exit_code(lines)
        if job is None:
            return await self._fail(run, Failure(FailureKind.CONTAINER_GONE, "the Ray job is gone"))
        if job.status == "SUCCEEDED":
            return await self.store.transition(
                run.id, RunState.DOWNLOADING, "container exited 0", exit_code=0
            )
        if job.status == "STOPPED" and exit_code is None:
            failure = Failure(FailureKind.UNKNOWN, f"the Ray job was stopped: {job.message}")
        elif job.status == "FAILED" and exit_code is None and await self._node_lost(run, job):
            return await self._retry_lost_node(run, job, local_log)
        else:
            failure = classify(exit_code, lines, profile=run.profile)
        return await self._fail(run, failure)

    async def _collect(self, run: Run, cluster: ClusterConfig, local_log: LocalLog) -> Run:
        stage = self._stage_for(cluster, run)
        layout = await stage.layout(run.id, run.attempt)
        fetched = await stage.fetch(layout, self.config.outputs_dir / run.id)
        outputs = fetched.names
        if fetched.refused:
            # lazy: the download code is for drivers (as in engine/lifecycle.py)
            from cosmos_tui.engine.outputs import refused_failure

            return await self._fail(run, refused_failure(run, fetched.refused, outputs))
        if not any(name.endswith(".mp4") for name in outputs):
            lines = await asyncio.to_thread(read_log_lines, local_log.path)
            return await self._fail(run, classify(0, lines, profile=run.profile))
        await self.store.update_run(run.id, progress_phase="done", progress_percent=100.0)
        caveat = await caveat_of(local_log.path)
        return await self.store.transition(
            run.id,
            RunState.COMPLETED,
            f"{len(outputs)} output file(s) copied and verified{caveat}",
            outputs=(*outputs, local_log.path.name),
        )

    async def _node_lost(self, run: Run, job: RayJob) -> bool:
        """True when the job failed because its node died (not because its entrypoint did)."""
        assert run.host is not None
        await self.view.refresh()
        parts = split_target(run.host)
        error = self.view.error(parts[0]) if parts else None
        if error is not None:  # the head does not answer: nothing is known of the node
            raise ClusterUnreachable(parts[0] if parts else run.host, error)
        node = self.view.node(run.host)
        if node is None or not node.alive:
            return True
        text = job.message.lower()
        return "node" in text and ("died" in text or "dead" in text)

    async def _retry_lost_node(self, run: Run, job: RayJob, local_log: LocalLog) -> Run:
        """Queue the run again after its node was lost, noting the gap in its log.

        The next attempt has its own submission id, container name and shared folder,
        so it never adopts or overwrites what the lost node may still be running. The
        node is named when the cluster shows it dead; a job that died with its node
        before Ray said which node it was on is described by Ray's message.
        """
        assert run.host is not None
        limit = self.config.retry.max_attempts
        node = self.view.node(run.host)
        if node is None or not node.alive:
            lost, said = f"node {run.host} was lost during attempt {run.attempt}", ""
        else:
            lost = f"its node was lost during attempt {run.attempt}"
            said = f" (Ray: {one_line(job.message)[:160]})"
        if run.attempt >= limit:
            note = f"{lost}; no retry left ({limit} attempts){said}"
            note_gap(local_log, note)
            return await self._fail(run, Failure(FailureKind.CONTAINER_GONE, note))
        note = f"{lost}; retry {run.attempt + 1} of {limit} on another node{said}"
        note_gap(local_log, note)
        self.hub.notify(run.id)
        return await self.store.transition(run.id, RunState.QUEUED, note, claimed_by=None)

    async def _requeue_or_fail(self, run: Run, message: str) -> Run:
        """Queue the run again for a new attempt, or fail it after ``retry.max_attempts``.

        A run that failed while staging (its node's SSH host away, an upload cut) has
        used an attempt too, and waits a backoff before it is placed again: a host that
        stays away fails the run after ``max_attempts`` instead of a retry at once, forever.
        """
        if run.state.is_terminal:
            return run
        limit = self.config.retry.max_attempts
        used = run.attempt + 1 if run.state == RunState.UPLOADING else run.attempt
        if used >= limit or run.state not in (RunState.UPLOADING, RunState.STARTING):
            failure = Failure(FailureKind.UNKNOWN, f"{message} (attempt {used})")
            return await self._fail(run, failure, attempt=used)
        if run.state == RunState.UPLOADING:
            delay = self._backoff(used)
            await self.store.update_run(run.id, progress_phase=f"staging again in {delay:.0f} s")
            await self.sleep(delay)
            current = await self.store.get_run(run.id)
            if current.state != run.state:  # cancelled meanwhile
                return current
        return await self.store.transition(
            run.id,
            RunState.QUEUED,
            f"retry {used + 1} of {limit} after: {message}",
            claimed_by=None,
            attempt=used,
        )

    def _backoff(self, attempt: int) -> float:
        """Seconds before retry ``attempt`` (1-based): exponential, capped by the config."""
        retry = self.config.retry
        delay: float = min(retry.backoff_max, retry.backoff_base * (2 ** max(0, attempt - 1)))
        return delay

    async def _fail(self, run: Run, failure: Failure, attempt: int | None = None) -> Run:
        counted: dict[str, Any] = {} if attempt is None else {"attempt": attempt}
        return await self.store.transition(
            run.id, failure.state, failure.message, **failure.recorded(), **counted
        )


__all__ = ["RayLauncher"]
