r"""The lifecycle of one run, step by step, each step a persisted state change.

    queued -> uploading -> starting -> running -> downloading -> completed
                                         \\-> failed | blocked | cancelled (with the cause)

:class:`RunDriver` moves one run forward from whatever state it is in, so the same code
starts a new run, resumes one whose driver died (reattach), and finishes one whose
container exited while nobody watched. It holds the run's :class:`RunLock` throughout.

Never two containers for one run: the container is named ``cosmos-<run id>`` (Docker
refuses a second one) and a retried start first looks for the run's container by label
and adopts it. Transient infrastructure errors before the container runs send the run
back to ``queued`` and retry with backoff (up to ``retry.max_attempts``); once the
container runs, a lost link only means reattaching: the container keeps going.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from typing import TYPE_CHECKING

from cosmos_tui.config import no_hosts_message
from cosmos_tui.domain import ACTIVE_STATES, GpuProcess, Run, RunState, RunType
from cosmos_tui.engine import launch
from cosmos_tui.engine.claim import WAITING_FOR_GPU, claim_run, wait_for_gpus
from cosmos_tui.engine.context import EngineContext, HostSource, Observer, stop_run_containers
from cosmos_tui.engine.failures import Failure, caveat_of, classify, classify_error
from cosmos_tui.engine.logs import LocalLog, read_log_lines
from cosmos_tui.engine.metrics_recorder import measure_run
from cosmos_tui.engine.profiles.base import profile_for, settings_for
from cosmos_tui.engine.runlock import RunLock
from cosmos_tui.engine.watch import ContainerWatch
from cosmos_tui.errors import (
    ClaimedElsewhere,
    ConfigError,
    CosmosError,
    DockerError,
    InvalidTransition,
    NoFreeGpus,
    RunBusy,
    TransferFailed,
)
from cosmos_tui.remote.docker_types import LABEL_RUN_ID
from cosmos_tui.remote.gpu_policy import usable_indices
from cosmos_tui.safe_text import one_line
from cosmos_tui.store.queue_store import QueueStore

if TYPE_CHECKING:
    from cosmos_tui.remote.gpu import GpuTelemetry
    from cosmos_tui.remote.host import RemoteHost

logger = logging.getLogger(__name__)


LOCK_TRIES = 5
LOCK_RETRY_SECONDS = 0.2


class RunDriver:
    """Moves one run to a terminal state.

    Args:
        ctx: Shared engine services.
        run_id: The run.
        claimer: Who claims the run: the scheduler that handed it over, or (None) this
            process's ``worker_id``. A run claimed by anyone else is not taken.

    """

    def __init__(self, ctx: EngineContext, run_id: str, claimer: str | None = None) -> None:
        self.ctx = ctx
        self.run_id = run_id
        self.claimer = claimer or ctx.worker_id
        self.lock = RunLock(ctx.run_dir(run_id))
        self.local_log = LocalLog(ctx.run_dir(run_id) / "run.log")

    async def drive(self) -> Run:
        """Drive the run until it ends, or until its host stays unreachable while it runs.

        Returns:
            The run as it was left: terminal, or still running on an unreachable host
            (a later reconcile reattaches).

        Raises:
            RunBusy: When another driver holds the run.

        """
        for _ in range(LOCK_TRIES):  # a reconcile may hold it for a moment to look
            if self.lock.try_acquire():
                break
            await asyncio.sleep(LOCK_RETRY_SECONDS)
        else:
            raise RunBusy(self.run_id, self.lock.holder_pid())
        try:
            return await self._drive()
        finally:
            self.lock.release()
            self.ctx.hub.notify(self.run_id)  # wake log readers: the run may have ended

    async def _drive(self) -> Run:
        store = self.ctx.store
        lost_contact = 0
        while True:
            run = await store.get_run(self.run_id)
            if run.state.is_terminal:
                return run
            try:
                if run.state == RunState.QUEUED:
                    run = await self._claim(run)
                if run.state == RunState.UPLOADING:
                    run = await self._upload(run)
                if run.state == RunState.STARTING:
                    run = await self._start(run)
                if run.state == RunState.RUNNING:
                    watch = ContainerWatch(self.ctx, run, self.local_log, self._retry_transient)
                    async with self._measured(run):
                        run = await watch.watch()
                    lost_contact = 0
                if run.state == RunState.DOWNLOADING:
                    run = await self._download(run)
            except NoFreeGpus as exc:
                await store.update_run(
                    self.run_id, progress_phase=WAITING_FOR_GPU, progress_percent=0.0
                )
                logger.info("%s", exc.message)
                await wait_for_gpus(self.ctx)
                continue
            except ClaimedElsewhere as exc:
                logger.info("run %s is not ours to start: %s", self.run_id, exc.message)
                return await store.get_run(self.run_id)
            except InvalidTransition as exc:
                logger.info("run %s changed under us: %s", self.run_id, exc)
                await self._stop_if_cancelled()
                continue
            except CosmosError as exc:
                failure = classify_error(exc)
                current = await store.get_run(self.run_id)
                if current.state.is_terminal:
                    continue
                if not failure.transient:
                    await self._fail(current, failure)
                    continue
                if current.state in (RunState.UPLOADING, RunState.STARTING):
                    await self._requeue_or_fail(current, failure)
                    continue
                lost_contact += 1
                if current.state == RunState.QUEUED:  # could not even claim: host away
                    if lost_contact >= self.ctx.config.retry.max_attempts:
                        message = f"{failure.message} (gave up after {lost_contact} attempts)"
                        await self._fail(current, Failure(failure.kind, message))
                        continue
                    await self.ctx.sleep(self.ctx.backoff(lost_contact))
                    continue
                if lost_contact > self.ctx.config.retry.max_attempts:
                    logger.warning("run %s: host unreachable, left running: %s", run.id, exc)
                    return current
                await self.ctx.sleep(self.ctx.backoff(lost_contact))
                continue
            if run.state.is_terminal:
                return run

    def _measured(self, run: Run) -> contextlib.AbstractAsyncContextManager[None]:
        """Record the run's GPU metrics while its container runs.

        A scheduler that handed the run over records the metrics of every container it
        drives (services/queue.py), so only a run this driver claimed itself (a detached
        worker, the TUI's run form, reconcile) is measured here.
        """
        if self.claimer != self.ctx.worker_id or run.host is None:
            return contextlib.nullcontext()
        return measure_run(self.ctx.config, self.ctx.store, self.ctx.hosts, run.id, run.host,
                           on_fault=self._fail_on_gpu_fault)  # fmt: skip

    async def _fail_on_gpu_fault(self, run_id: str, detail: str) -> Run:
        """Fail the run and stop its container when its GPU breaks (as the scheduler does)."""
        # cycle: engine/runner.py imports this module (RunDriver) and owns the fault handler
        from cosmos_tui.engine.runner import RunEngine

        return await RunEngine(self.ctx).fail_on_gpu_fault(run_id, detail)

    # steps -------------------------------------------------------------------------------

    async def _claim(self, run: Run) -> Run:
        host = run.host or (self.ctx.config.hosts[0].name if self.ctx.config.hosts else None)
        if host is None:
            raise ConfigError(no_hosts_message(self.ctx.config.source))
        gpus = run.gpus
        queue = QueueStore(self.ctx.store)
        if not (gpus and await queue.claimer(run.id) == self.claimer):
            # Not handed over with its GPUs by a scheduler (nor our own retry): choose
            # them and claim them (a user retry's GPUs of an earlier attempt are stale).
            gpus = await self._choose_gpus(host, run)
            await claim_run(self.ctx, run, self.claimer, host, gpus)
        waited: dict[str, None] = {}
        if run.progress is not None and run.progress.phase == WAITING_FOR_GPU:
            waited = {"progress_phase": None, "progress_percent": None}  # no longer waiting
        return await self.ctx.store.transition(
            run.id,
            RunState.UPLOADING,
            f"attempt {run.attempt + 1} on {host} gpus {','.join(map(str, gpus))}",
            host=host,
            gpus=gpus,
            attempt=run.attempt + 1,
            claimer=self.claimer,
            claimed_by=self.claimer,
            log_path=self.local_log.path,
            exit_code=None,
            failure_kind=None,
            failure_message=None,
            **waited,
        )

    async def _choose_gpus(self, host: str, run: Run) -> tuple[int, ...]:
        """Pick free GPUs as the queue does: ours not held, nobody else's process on them."""
        queue = QueueStore(self.ctx.store)
        held = {
            g
            for a in await queue.allocations()
            if a.host == host and a.container_key not in (run.id, run.batch_id)
            for g in a.gpus
        }
        # lazy: remote.gpu pulls asyncssh and aiodocker; the services import this module
        from cosmos_tui.remote.gpu import GpuTelemetry, query_gpus

        host_config = self.ctx.config.host(host)
        need = run.params.num_gpus
        remote = self.ctx.hosts.get(host)
        reading, processes, ours = await asyncio.gather(
            query_gpus(remote.ssh),
            self._processes(GpuTelemetry(remote.ssh, remote.docker)),
            queue.our_ids(),
        )
        ours |= {run.id, *([run.container_id] if run.container_id else [])}
        indices = list(usable_indices(host_config, reading.samples, processes, ours))
        foreign = len(usable_indices(host_config, reading.samples)) - len(indices)
        if not reading.samples:
            if host_config.gpu_request:
                raise CosmosError(
                    f"{host} reports no GPUs ({reading.reason or 'nvidia-smi listed none'}); "
                    "check the NVIDIA driver on the host with 'cosmos status'"
                )
            indices = list(range(max(need, host_config.gpu_limit or need)))
        if host_config.gpu_limit and len(held) + need > host_config.gpu_limit:
            raise NoFreeGpus(
                f"{host} has {len(held)} GPU(s) held of its gpu_limit {host_config.gpu_limit}, "
                f"run {run.id} needs {need}; it waits for a run to finish"
            )
        free = [g for g in indices if g not in held]
        if len(free) < need:
            others = f" ({foreign} more in use by other users' processes)" if foreign else ""
            raise NoFreeGpus(
                f"{host} has {len(free)} free GPU(s) of {len(indices)}{others}, run {run.id} "
                f"needs {need}; it waits for a run to finish"
            )
        return tuple(free[:need])

    async def _processes(self, telemetry: GpuTelemetry) -> tuple[GpuProcess, ...]:
        """The host's compute processes; none when the query fails (as the queue does)."""
        try:
            return await telemetry.poll_processes()
        except CosmosError as exc:
            logger.info("run %s: GPU processes not read: %s", self.run_id, exc.message)
            return ()

    async def _host(self, run: Run) -> tuple[RemoteHost, launch.RemoteLayout]:
        assert run.host is not None
        host = self.ctx.hosts.get(run.host)
        if run.host not in self.ctx.homes:
            self.ctx.homes[run.host] = await host.files.home()
        layout = launch.RemoteLayout(self.ctx.homes[run.host], await host.tool_dir(), run.id)
        return host, layout

    async def _upload(self, run: Run) -> Run:
        host, layout = await self._host(run)
        prompt = await self.ctx.store.get_prompt(run.prompt_id) if run.prompt_id else None
        family = profile_for(run.profile)
        settings = settings_for(self.ctx.config, run.profile)
        await family.preflight(run, host, layout, settings, os.environ)
        items = launch.run_inputs(run, prompt)
        results = await host.upload_inputs([(i.path, i.sha256, i.size) for i in items])
        remote_inputs = {
            item.role: result.remote_path for item, result in zip(items, results, strict=True)
        }
        await self.ctx.notify(run.id, "uploaded")
        spec = launch.build_run_spec(run, prompt, remote_inputs)
        await host.files.write_text(layout.spec_path, json.dumps(spec, indent=2) + "\n")
        return await self.ctx.store.transition(
            run.id,
            RunState.STARTING,
            f"inputs and spec in {layout.run_dir}",
            spec=spec,
            log_path=self.local_log.path,  # also for runs a scheduler moved to uploading
            attempt=max(1, run.attempt),
        )

    async def _start(self, run: Run) -> Run:
        host, layout = await self._host(run)
        image = launch.image_for(run, host.config, self.ctx.config)
        # Both questions go out together (round trips are what a distant host costs).
        existing, image_present = await asyncio.gather(
            host.docker.list({LABEL_RUN_ID: run.id}), host.docker.image_present(image)
        )
        fresh_attempt = await self._came_from_terminal(run)
        adopted = None
        for info in existing:
            if fresh_attempt and not info.running and info.status != "created":
                await host.docker.remove(info.id)  # this run's own earlier attempt
            else:
                adopted = info
        if adopted is not None:
            container_id = adopted.id
            if adopted.status == "created":
                await host.docker.start(container_id)
            reason = f"adopted container {container_id[:12]} of an earlier attempt"
        else:
            if not image_present:
                raise DockerError(f"No such image: {image} on {host.name}", status=404)
            self._rotate_log(run)
            spec = launch.container_spec(
                run.id,
                launch.build_command(run, self.ctx.config),
                image,
                host.config,
                layout,
                gpus=run.gpus,
                labels={launch.LABEL_ATTEMPT: str(run.attempt), launch.LABEL_PROFILE: run.profile},
                profile=run.profile,
                config=self.ctx.config,
                run_env=profile_for(run.profile).run_env(run),
                run_mounts=profile_for(run.profile).run_mounts(run),
            )
            container_id = await launch.launch_container(
                host,
                layout,
                spec,
                profile=run.profile,
                config=self.ctx.config,
                run_mounts=profile_for(run.profile).run_mounts(run),
                before=[self._fresh_output_dir(host, layout, run.id)],
                on_created=lambda: self.ctx.notify(run.id, "created"),
            )
            reason = f"container {container_id[:12]} started"
        await self.ctx.notify(run.id, "started")
        try:
            return await self.ctx.store.transition(
                run.id, RunState.RUNNING, reason, container_id=container_id
            )
        except InvalidTransition:
            await self._stop_if_cancelled(container_id)
            raise

    async def _fresh_output_dir(
        self, host: RemoteHost, layout: launch.RemoteLayout, run_id: str
    ) -> None:
        """Empty the run's output folder and make it and the inputs folder: one command.

        A run without inputs (text2video) still mounts the shared inputs folder. Files an
        earlier container left as root may not go: the run goes on with them (warned).

        Raises:
            TransferFailed: The folders cannot be made.

        """
        script = 'rm -rf -- "$1" || echo uncleared; mkdir -p -- "$1" "$2"'
        argv = ["sh", "-c", script, "sh", layout.output_dir, layout.inputs_dir]
        result = await host.run(argv, check=False)
        if result.exit_status != 0:
            raise TransferFailed(
                f"could not make {layout.output_dir} and {layout.inputs_dir} on {host.name}: "
                f"{one_line(result.stderr)[-300:] or 'mkdir failed'}; check the owner of "
                "the tool folder and free space there"
            )
        if "uncleared" in result.stdout:
            logger.warning("run %s: could not clear %s", run_id, layout.output_dir)

    async def _came_from_terminal(self, run: Run) -> bool:
        """True when the last requeue was a user retry of an ended run (not a transient one)."""
        for event in reversed(run.events):
            if event.to_state == RunState.QUEUED:
                return event.from_state is not None and event.from_state.is_terminal
        return False

    def _rotate_log(self, run: Run) -> None:
        """Keep an earlier attempt's log as ``run.attempt<N>.log``; start a fresh one."""
        path = self.local_log.path
        if path.exists() and path.stat().st_size > 0:
            path.rename(path.with_name(f"run.attempt{max(1, run.attempt - 1)}.log"))
        self.local_log.cursor_path.unlink(missing_ok=True)

    async def _download(self, run: Run) -> Run:
        # lazy: the download code (~7 ms) is for drivers; the services import this module
        from cosmos_tui.config_parse import max_output_bytes
        from cosmos_tui.engine.outputs import fetch_outputs, plan_outputs, refused_failure

        host, layout = await self._host(run)
        await self.ctx.store.update_run(run.id, progress_phase="downloading", eta_seconds=None)
        plan = await plan_outputs(host, layout.output_dir, max_output_bytes(host.config))
        outputs = await fetch_outputs(host, layout.output_dir, plan, self.ctx.run_dir(run.id))
        if plan.refused:
            failure = refused_failure(run, plan.refused_text(), outputs)
            return await self.ctx.store.transition(
                run.id,
                failure.state,
                failure.message,
                failure_kind=failure.kind,
                failure_message=failure.message,
                outputs=tuple(outputs),
            )
        if run.type == RunType.ENHANCE:
            return await self._enhanced(run, outputs)
        if not profile_for(run.profile).has_output(outputs):
            # Exit 0 without a video: the log's guardrail verdicts or GPU-support warnings
            # say why (a blocked prompt is "blocked", not "failed").
            return await self._fail(run, await self._exit_zero_failure(run))
        outputs.append(self.local_log.path.name)
        await self._done(run)
        caveat = await caveat_of(self.local_log.path)
        return await self.ctx.store.transition(
            run.id,
            RunState.COMPLETED,
            f"{len(outputs) - 1} output file(s) downloaded and verified{caveat}",
            outputs=tuple(outputs),
        )

    async def _exit_zero_failure(self, run: Run) -> Failure:
        lines = await asyncio.to_thread(read_log_lines, self.local_log.path)
        return classify(0, lines, profile=run.profile)

    async def _done(self, run: Run) -> None:
        await self.ctx.store.update_run(
            run.id, progress_phase="done", progress_percent=100.0, eta_seconds=0.0
        )

    async def _enhanced(self, run: Run, outputs: list[str]) -> Run:
        """Keep a reasoner's answer as the run's result prompt (engine/reasoner_answer.py)."""
        # lazy: the reasoner's code and profiles.cosmos3 (~15 ms); the services import this
        from cosmos_tui.engine.reasoner_answer import keep_answer

        return await keep_answer(self.ctx, run, outputs, self.local_log.path)

    # failures ----------------------------------------------------------------------------

    async def _fail(self, run: Run, failure: Failure) -> Run:
        return await self.ctx.store.transition(
            run.id, failure.state, failure.message, **failure.recorded()
        )

    async def _retry_transient(self, run: Run, failure: Failure) -> bool:
        """A model failure that may pass on retry (a download cut by the network).

        The exited container is removed so the next attempt starts a fresh one; after
        ``retry.max_attempts`` attempts the run fails as usual.
        """
        if run.attempt >= self.ctx.config.retry.max_attempts or run.host is None:
            return False
        if run.container_id is not None:
            await self.ctx.hosts.get(run.host).docker.remove(run.container_id)
        await self._requeue_or_fail(run, failure)
        return True

    async def _requeue_or_fail(self, run: Run, failure: Failure) -> None:
        limit = self.ctx.config.retry.max_attempts
        if run.attempt >= limit:
            message = f"{failure.message} (gave up after {run.attempt} attempts)"
            await self._fail(run, Failure(failure.kind, message))
            return
        await self.ctx.store.transition(
            run.id,
            RunState.QUEUED,
            f"retry {run.attempt + 1} of {limit} after: {failure.message}",
            claimed_by=self.claimer,
        )
        await self.ctx.notify(run.id, "requeued")
        await self.ctx.sleep(self.ctx.backoff(run.attempt))

    async def _stop_if_cancelled(self, container_id: str | None = None) -> None:
        """After a cancel won the race, make sure this run's container is stopped."""
        run = await self.ctx.store.get_run(self.run_id)
        if run.state != RunState.CANCELLED or run.host is None:
            return
        await stop_run_containers(self.ctx, run, container_id)


def is_active(run: Run) -> bool:
    """True while the run may hold remote resources."""
    return run.state in ACTIVE_STATES


__all__ = [
    "EngineContext",
    "HostSource",
    "NoFreeGpus",
    "Observer",
    "RunBusy",
    "RunDriver",
    "classify",
    "is_active",
]
