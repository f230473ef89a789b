"""Launching a batch: several runs in one container with ``--batch_input_path``.

The batch's files live in its own folder on the host, beside the runs' folders::

    <tool>/runs/<batch id>/spec.json      the shared spec (built from the first run)
    <tool>/runs/<batch id>/batch.jsonl    one line per run, each with its own controls
    <tool>/runs/<batch id>/output/video_<idx>/   what the model writes per line

The container is named and labelled after the batch id. Every member run moves through
its own states (uploading, starting, running, downloading, then completed, blocked or
failed); its log is the container's log (the model logs the batch as a whole, phase by
phase), written to its own ``run.log``; its outputs are the folder whose saved prompt is
its prompt (``video_<i>/prompt.txt``, :func:`~cosmos_tui.engine.batch_outputs.map_outputs`),
downloaded into its own output folder. When the container dies, finished members still
complete, the member it died on ends with the cause, and members that never started go
back in the queue (engine/batch_collect.py). The stall watchdog (engine/stall.py) watches
the container as it watches a single run's: a batch that stops printing while its GPUs
idle is marked stalled on every member, and stopped only with
``timeouts.stall_action = "cancel"`` (the line it froze on then fails as ``stalled``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cosmos_tui.domain import FailureKind, InputFile, Prompt, Run, RunState
from cosmos_tui.engine import batch_recovery, launch
from cosmos_tui.engine.batch_collect import Death, collect
from cosmos_tui.engine.batch_outputs import batch_size_in
from cosmos_tui.engine.batch_progress import BatchProgress
from cosmos_tui.engine.batching import (
    JSONL_NAME,
    SAMPLE_FAMILIES,
    SAMPLE_PROFILES,
    BatchLine,
    BatchPlan,
    build_batch_input,
    is_upsampler,
)
from cosmos_tui.engine.enhance_launch import collect_enhanced, plan_enhance
from cosmos_tui.engine.failures import classify
from cosmos_tui.engine.logs import LocalLog, LogFollower, since_param
from cosmos_tui.engine.profiles import transfer1
from cosmos_tui.engine.profiles.base import profile_for, settings_for
from cosmos_tui.engine.profiles.cosmos3 import command_for as cosmos3_command
from cosmos_tui.engine.profiles.transfer25_profile import command_for as transfer25_command
from cosmos_tui.engine.runlock import RunLock
from cosmos_tui.engine.scheduler import start_reason
from cosmos_tui.engine.stall import StallWatch, container_watch
from cosmos_tui.errors import (
    CosmosError,
    InputChanged,
    InvalidTransition,
    RunBusy,
    TransferFailed,
)
from cosmos_tui.private_files import open_private, private_dir
from cosmos_tui.store.queue_store import Claim, QueueStore

if TYPE_CHECKING:
    from cosmos_tui.config import Config
    from cosmos_tui.engine.launch import RemoteLayout
    from cosmos_tui.engine.lifecycle import EngineContext
    from cosmos_tui.engine.runner import RunEngine
    from cosmos_tui.remote.host import RemoteHost

logger = logging.getLogger(__name__)
RESUME_PAUSE = 0.2  # seconds before a broken log follow is opened again

LOG_NAME = "run.log"
# Seconds between looks at the members' states while a batch container runs.
GUARD_INTERVAL = 1.0


class BatchLauncher:
    """Launches claims: a run alone through the run lifecycle, a batch in one container.

    Args:
        engine: This process's run engine (its context: config, store, hosts).

    """

    def __init__(self, engine: RunEngine) -> None:
        self.engine = engine
        self.ctx: EngineContext = engine.ctx
        self.queue = QueueStore(self.ctx.store)
        self._locks: dict[str, Any] = {}
        self._timed_out: set[str] = set()
        self._stalls: dict[str, StallWatch] = {}

    def release(self, run_ids: Sequence[str]) -> None:
        """Release the run locks taken by :meth:`start_members`."""
        for run_id in run_ids:
            lock = self._locks.pop(run_id, None)
            if lock is not None:
                lock.release()

    def lock_all(self, run_ids: Sequence[str]) -> bool:
        """Take every run's lock, or none (locks held by launches here are left alone)."""
        taken: list[RunLock] = []
        for run_id in run_ids:
            lock = RunLock(self.ctx.run_dir(run_id))
            if run_id in self._locks or not lock.try_acquire():
                for held in taken:
                    held.release()
                return False
            taken.append(lock)
        self._locks.update(zip(run_ids, taken, strict=True))
        return True

    async def launch(self, claim: Claim) -> None:
        """Run the claim to its end."""
        first = claim.runs[0]
        # A single run, Cosmos 3's reasoner enhancements included, goes through the run
        # lifecycle; Transfer1's enhancements share one upsampler container, a batch whose
        # plan and collection are engine/enhance_launch.py's.
        if claim.batch_id is None and not is_upsampler(first):
            try:
                await self.engine.drive(claim.run_ids[0], claimer=claim.scheduler_id)
            except RunBusy as exc:
                # Another driver has it (a retry in backoff): give the claim back.
                logger.info("%s", exc.message)
                await self.queue.release(claim.run_ids, claim.scheduler_id)
            return
        try:
            await self._launch_batch(claim)
        finally:
            self.release(claim.run_ids)

    async def _launch_batch(self, claim: Claim) -> None:
        members = await self.start_members(claim)
        if not members:
            return
        ids = [r.id for r, _ in members]
        what = "enhancement" if is_upsampler(members[0][0]) else "batch"
        try:
            await self._run_batch(claim, members)
        except CosmosError as exc:
            if exc.transient and await self._recover(claim.batch_id or ids[0], ids, exc):
                return
            await self.fail_all(ids, FailureKind.UNKNOWN, f"{what} failed: {exc.message}")
        except Exception:
            # A bug here must not leave runs holding GPUs forever; the scheduler logs it.
            await self.fail_all(ids, FailureKind.UNKNOWN, f"{what} failed: internal error")
            raise

    async def _recover(self, batch_id: str, ids: list[str], error: CosmosError) -> bool:
        """After a transient error (the link dropped): requeue or reattach with backoff.

        Runs without a container yet go back in the queue; once the container runs, a
        lost link only means following it again. Returns False when nothing worked (the
        runs are then left to the next queue driver's reattach, not failed).
        """
        logger.info("batch %s: %s; recovering", batch_id, error.message)
        limit = self.ctx.config.retry.max_attempts
        for attempt in range(1, limit + 1):
            await self.ctx.sleep(self.ctx.backoff(attempt))
            members = [await self.ctx.store.get_run(run_id, with_events=False) for run_id in ids]
            active = [r for r in members if r.state.is_active]
            if not active:
                return True
            try:
                await batch_recovery.reattach(self, batch_id, active)
                return True
            except CosmosError as exc:
                if not exc.transient:
                    return False
                logger.info("batch %s: still unreachable (%s)", batch_id, exc.message)
        logger.warning("batch %s: host unreachable; left for the next reattach", batch_id)
        return True

    # steps -------------------------------------------------------------------------------

    async def start_members(self, claim: Claim) -> list[tuple[Run, Prompt]]:
        """Lock the claim's runs and move them to uploading (only while the claim holds).

        Each member's :class:`RunLock` is held until :meth:`release`, so a reconcile in
        another process leaves the batch's runs alone while this process drives them.
        """
        members = []
        for run in claim.runs:
            lock = RunLock(self.ctx.run_dir(run.id))
            if not lock.try_acquire():
                logger.info("run %s is driven elsewhere; left out of the batch", run.id)
                await self.queue.release([run.id], claim.scheduler_id)
                continue
            self._locks[run.id] = lock
            try:
                started = await self.queue.start(run.id, claim.scheduler_id, start_reason(claim))
            except InvalidTransition:
                self.release([run.id])
                continue  # cancelled after the claim
            prompt = await self.ctx.store.get_prompt(started.prompt_id or "")
            members.append((started, prompt))
        return members

    async def _run_batch(self, claim: Claim, members: list[tuple[Run, Prompt]]) -> None:
        """Plan, upload, start, follow, wait and collect one batch container."""
        batch_id = claim.batch_id or members[0][0].id
        host = self.ctx.hosts.get(claim.host)
        layout = launch.RemoteLayout(await host.files.home(), await host.tool_dir(), batch_id)
        if is_upsampler(members[0][0]):
            plan = await plan_enhance(self, host, members)
        else:
            plan = await self._plan_model(host, layout, members)
        if not plan.members:
            return
        if claim.batch_id is not None:
            await self.queue.record_batch_manifest(batch_id, plan.manifest())
        # a fresh output folder and the inputs folder (mounted even when no member uploads
        # anything, Cosmos 3's text2video samples): one round trip
        script = 'rm -rf -- "$1" && mkdir -p -- "$1" "$2"'
        await host.run(["sh", "-c", script, "sh", layout.output_dir, layout.inputs_dir])
        for name, text in plan.files.items():
            await host.files.write_text(f"{layout.run_dir}/{name}", text)
        ids = plan.run_ids
        for run_id in ids:
            spec = {"spec": plan.specs[run_id]} if run_id in plan.specs else {}
            await self.move(run_id, RunState.STARTING, f"batch {batch_id} uploaded",
                            log_path=self.log_path(run_id), **spec)  # fmt: skip
        if await self.all_ended(ids):
            return  # every member was cancelled while the batch was being set up
        first = plan.members[0][0]
        labels = {"cosmos.batch_id": claim.batch_id or "", "cosmos.batch_runs": ",".join(ids),
                  **plan.labels}  # fmt: skip
        container = launch.container_spec(
            batch_id,
            plan.command,
            launch.image_for(first, host.config, self.ctx.config),
            host.config,
            layout,
            gpus=claim.gpus,
            labels=labels,
            profile=plan.profile,
            config=self.ctx.config,
            run_env=plan.run_env,
            run_mounts=plan.run_mounts,
        )
        container_id = await launch.launch_container(
            host, layout, container, profile=plan.profile, config=self.ctx.config,
            run_mounts=plan.run_mounts,
        )  # fmt: skip
        for run_id in ids:
            await self.move(run_id, RunState.RUNNING, f"batch container {container_id[:12]}",
                             container_id=container_id)  # fmt: skip
        lines = await self.follow(host, container_id, ids, self.deadline(None, len(ids)))
        exit_code = await host.docker.wait(container_id)
        death = None
        if exit_code != 0:
            death = Death(container_id, exit_code, lines, self.batch_size(first))
        await self.collect(host, layout, batch_id, plan.lines, death, lines)

    async def _plan_model(
        self, host: RemoteHost, layout: RemoteLayout, members: list[tuple[Run, Prompt]]
    ) -> BatchPlan:
        """Upload the members' inputs and return the model's batch plan.

        Its files are Transfer1's shared spec and JSONL, Transfer2.5's JSONL of samples,
        or Cosmos 3's sample files (``BatchInput.files``).
        """
        first = members[0][0]
        family = profile_for(first.profile)
        settings = settings_for(self.ctx.config, first.profile)
        await family.preflight(first, host, layout, settings, os.environ)
        remote, members = await self.upload_inputs(host, members, launch.run_inputs)
        if not members:
            return BatchPlan(members=[], command=[], lines=())
        batch = build_batch_input(
            members,
            lambda item: launch.container_input_path(remote[launch.content_key(item)]),
        )
        files = batch.files()
        first = members[0][0]
        return BatchPlan(
            members=members,
            command=batch_command(first, self.ctx.config, list(files)),
            lines=batch.lines,
            files=files,
            specs={run.id: batch.spec_for(run.id) for run, _ in members},
            profile=first.profile,
            labels={launch.LABEL_PROFILE: first.profile},
            run_env=family.run_env(first),
            run_mounts=family.run_mounts(first),
        )

    async def upload_inputs(
        self,
        host: RemoteHost,
        members: list[tuple[Run, Prompt]],
        inputs_of: Callable[[Run, Prompt], Sequence[InputFile]],
    ) -> tuple[dict[tuple[str, str], str], list[tuple[Run, Prompt]]]:
        """Upload each distinct input the members send once; a member whose file fails alone.

        Each member sends ``inputs_of(run, prompt)``: what it would alone for a model
        batch (``launch.run_inputs``: the prompt's inputs its family reads, and its own
        files), its colour video for an enhancement. The distinct inputs go up side by side, as
        a single run's do (the transfer layer bounds how many move at once). A member
        fails, with its own file's cause, only when no member's file still holds a content
        it recorded (changed since, or unreadable here): the content is what a run sends,
        as for a single run, whose content the host already holds is not read again. The
        others go on. A transient failure (the link) is the batch's, and stops the other
        uploads, and so is any other error.

        Returns:
            The remote path per input content (see :func:`launch.content_key`) and the members
            that can still run.
        """
        wanted = {run.id: inputs_of(run, prompt) for run, prompt in members}
        # Members that send the same content share one upload, from the first member's
        # file that can still be read as recorded.
        sources: dict[tuple[str, str], list[InputFile]] = {}
        for items in wanted.values():
            for item in items:
                paths = sources.setdefault(launch.content_key(item), [])
                if all(known.path != item.path for known in paths):
                    paths.append(item)
        # by this machine's path and the content recorded from it (one path may have
        # been recorded with two contents, by two prompts at two times)
        refused: dict[tuple[Path, tuple[str, str]], InputChanged | TransferFailed] = {}

        async def send(key: tuple[str, str]) -> str | None:
            for item in sources[key]:
                try:
                    uploaded = await host.upload_input(
                        item.path, expected_sha256=item.sha256, expected_size=item.size
                    )
                except (InputChanged, TransferFailed) as exc:
                    if isinstance(exc, TransferFailed) and exc.transient:
                        raise  # the link: the batch's
                    refused[item.path, key] = exc
                    continue
                return uploaded.remote_path
            return None

        sends = {key: asyncio.ensure_future(send(key)) for key in sources}
        try:
            await asyncio.gather(*sends.values())
        except BaseException:
            for task in sends.values():
                task.cancel()
            await asyncio.gather(*sends.values(), return_exceptions=True)
            raise
        remote = {key: path for key, task in sends.items() if (path := task.result())}
        kept = []
        for run, prompt in members:
            # Missing content: every file that recorded it was refused, this one's too.
            failed = [
                refused[item.path, launch.content_key(item)]
                for item in wanted[run.id]
                if launch.content_key(item) not in remote
            ]
            if failed:
                await self.drop_member(run.id, failed[0])
                continue
            kept.append((run, prompt))
        return remote, kept

    async def drop_member(self, run_id: str, error: InputChanged | TransferFailed) -> None:
        """Fail one member whose own file could not be sent; the batch goes on without it.

        Raises:
            TransferFailed: A transient failure (the link), which is the whole batch's.
        """
        if isinstance(error, TransferFailed) and error.transient:
            raise error
        await self.end(run_id, RunState.FAILED, error.message, FailureKind.UNKNOWN)
        self.release([run_id])

    def batch_size(self, run: Run) -> int:
        """The model's ``--batch_size`` for a batch of ``run``'s profile (1: none is sent)."""
        config = self.ctx.config
        profile = config.profiles.get(run.profile) or config.profiles["transfer1"]
        return batch_size_in(profile.extra_args)

    def deadline(self, started_at: float | None, lines: int) -> float:
        """Return when a batch of ``lines`` runs has run too long: timeouts.run per line."""
        start = self.ctx.wall() if started_at is None else started_at
        return start + self.ctx.config.timeouts.run * max(1, lines)

    def failure(
        self, container_id: str, exit_code: int, lines: list[str], size: int,
        run_id: str | None = None, profile: str = "transfer1",
    ) -> tuple[FailureKind, str, int]:  # fmt: skip
        """Classify a batch container that exited non-zero (stopped for time or a stall)."""
        stall = self._stalls.get(container_id)
        if stall is not None and stall.stopped:
            return FailureKind.STALLED, stall.message(run_id), exit_code
        timed_out = container_id in self._timed_out
        found = classify(exit_code, lines, timed_out=timed_out, profile=profile,
                         timeout_seconds=self.ctx.config.timeouts.run * size)  # fmt: skip
        return found.kind, found.message, exit_code

    async def all_ended(self, run_ids: Sequence[str]) -> bool:
        """True when every run has ended (cancelled by the user, in any process)."""
        for run_id in run_ids:
            run = await self.ctx.store.get_run(run_id, with_events=False)
            if not run.state.is_terminal:
                return False
        return True

    async def _guard(
        self, host: RemoteHost, container_id: str, ids: list[str], deadline: float
    ) -> None:
        """Stop the container once every member was cancelled, or when it runs too long.

        A cancel of one member leaves the container to the others (that run's sample is
        simply not collected); the container's GPUs count as free once no member is
        active, so it must not run on behind their back.
        """
        grace = self.ctx.config.timeouts.cancel_grace
        while True:
            await asyncio.sleep(GUARD_INTERVAL)
            if await self.all_ended(ids):
                logger.info("every run of container %s ended; stopping it", container_id[:12])
                await host.docker.stop(container_id, grace_s=grace)
                return
            if self.ctx.wall() >= deadline:
                logger.info("container %s ran past its time limit; stopping it", container_id[:12])
                self._timed_out.add(container_id)
                await host.docker.stop(container_id, grace_s=grace)
                return

    async def follow(
        self, host: RemoteHost, container_id: str, ids: list[str], deadline: float
    ) -> list[str]:
        """Write the container's log to every member's run.log; return its clean lines.

        Meanwhile the container is stopped when all its runs were cancelled or when it
        runs past ``deadline`` (wall-clock seconds).
        """
        first = LocalLog(self.log_path(ids[0]), secrets=launch.log_secrets(host.config))
        first.open()
        others = []
        for run_id in ids[1:]:
            path = self.log_path(run_id)
            private_dir(path.parent)
            others.append(open_private(path, "a", encoding="utf-8"))
        collected: list[str] = []

        def _copy(lines: list[str]) -> None:
            collected.extend(lines)
            for handle in others:
                handle.writelines(text + "\n" for text in lines)
                handle.flush()

        stall = await self._stall_watch(host, container_id, ids)
        run = await self.ctx.store.get_run(ids[0], with_events=False)
        started = run.started_at.timestamp() if run.started_at else self.ctx.wall()
        progress = BatchProgress(run.profile, ids, started)

        def _lines(lines: list[str]) -> None:
            stall.activity()
            progress.feed(lines, self.ctx.wall())
            _copy(lines)

        guard = asyncio.create_task(self._guard(host, container_id, ids, deadline))
        watchdog = asyncio.create_task(stall.run())
        stop = asyncio.Event()
        publish = asyncio.create_task(progress.publish(self.ctx.store, self.ctx.wall, stop))
        try:
            await self._follow_to_the_end(host, container_id, first, ids[0], _lines)
        finally:
            stop.set()
            with contextlib.suppress(CosmosError):
                await publish  # its last write, not cut short
            for task in (guard, watchdog):
                if not task.done():
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError, CosmosError):
                    await task
            for handle in others:
                handle.close()
        return collected

    async def _follow_to_the_end(
        self,
        host: RemoteHost,
        container_id: str,
        local_log: LocalLog,
        run_id: str,
        on_lines: Callable[[list[str]], None],
    ) -> None:
        """Follow the log until the container has exited, then read what is left once.

        A follow that broke while the container runs is opened again; one that ended
        with the container can end before Docker handed over its last lines (the dying
        sample's traceback), so the log since the cursor is read once more, without
        following, as a single run's watch does. The cursor drops the lines seen twice.
        """

        async def read(follow: bool) -> None:
            cursor = local_log.cursor
            since = since_param(cursor.since_ns) if cursor.since_ns is not None else None
            follower = LogFollower(run_id, local_log, self.ctx.hub, on_lines)
            await follower.follow(host.docker.log_frames(container_id, since=since, follow=follow))

        await read(follow=True)
        while (await host.docker.inspect(container_id)).running:
            await asyncio.sleep(RESUME_PAUSE)
            await read(follow=True)
        await read(follow=False)

    async def _stall_watch(self, host: RemoteHost, container_id: str, ids: list[str]) -> StallWatch:
        """The stall watchdog of a batch container: its GPUs' readings, every member marked."""
        first = await self.ctx.store.get_run(ids[0], with_events=False)
        watch = container_watch(self.ctx, host, container_id, ids[0], first.gpus, members=ids)
        self._stalls[container_id] = watch
        return watch

    async def collect(
        self,
        host: RemoteHost,
        layout: RemoteLayout,
        batch_id: str,
        lines: Sequence[BatchLine],
        death: Death | None = None,
        log_lines: Sequence[str] = (),
    ) -> None:
        """End the batch's members once its container exited.

        Transfer1's batches are collected by engine/batch_collect.py (outputs matched by
        the saved prompt), Transfer2.5's by engine/batch_t25.py and Cosmos 3's by
        engine/batch_c3.py (by sample name), the upsampler's by engine/enhance_launch.py
        (each enhanced prompt by run id).
        """
        first = await self.ctx.store.get_run(lines[0].run_id, with_events=False)
        if is_upsampler(first):
            await collect_enhanced(self, host, layout, [line.run_id for line in lines], death)
            return
        if first.profile in SAMPLE_PROFILES:
            ids = [line.run_id for line in lines]
            family = SAMPLE_FAMILIES[first.profile]
            await family.collect(self, host, layout, batch_id, ids, log_lines, death)
            return
        await collect(self, host, layout, batch_id, lines, death)

    # after a crash (engine/batch_recovery.py) -------------------------------------------

    async def reattach_orphans(self) -> list[str]:
        """Pick up batches whose driving process died; return their ids."""
        return await batch_recovery.reattach_orphans(self)

    async def sweep_orphans(self, interval: float) -> None:
        """Pick up orphaned batches every ``interval`` seconds until cancelled."""
        await batch_recovery.sweep_orphans(self, interval)

    # state helpers -----------------------------------------------------------------------

    def log_path(self, run_id: str) -> Path:
        """Return a run's local log file."""
        return self.ctx.run_dir(run_id) / LOG_NAME

    async def move(self, run_id: str, target: RunState, reason: str, **fields: Any) -> None:
        """Move one run on; a run that changed meanwhile (cancelled) is left alone."""
        try:
            await self.ctx.store.transition(run_id, target, reason, **fields)
        except InvalidTransition:
            logger.info("run %s of a batch changed meanwhile (cancelled?)", run_id)

    async def end(
        self, run_id: str, target: RunState, message: str, kind: FailureKind,
        exit_code: int | None = None,
    ) -> None:  # fmt: skip
        """End one member (blocked only from running, else failed) unless it already ended."""
        run = await self.ctx.store.get_run(run_id, with_events=False)
        if run.state.is_terminal:
            return
        if target == RunState.BLOCKED and run.state != RunState.RUNNING:
            target = RunState.FAILED
        await self.move(run_id, target, message, failure_kind=kind,
                         failure_message=message, exit_code=exit_code)  # fmt: skip

    async def fail_all(
        self, run_ids: list[str], kind: FailureKind, message: str, exit_code: int | None = None
    ) -> None:
        """End runs as failed (or blocked, for the guardrail) unless they already ended."""
        target = RunState.BLOCKED if kind == FailureKind.GUARDRAIL else RunState.FAILED
        for run_id in run_ids:
            await self.end(run_id, target, message, kind, exit_code)


def batch_command(first: Run, config: Config, files: Sequence[str] = ()) -> list[str]:
    """Return the argv of a batch container (the first run's setup, the batch's files).

    Args:
        first: The batch's first run (its setup arguments are every member's).
        config: The configuration (the family's settings).
        files: The batch's file names (``BatchInput.files``): Cosmos 3 reads each of its
            sample files, the others the JSONL.
    """
    if first.profile == "cosmos3":
        inputs = [f"{launch.CONTAINER_RUN}/{name}" for name in files]
        settings = settings_for(config, first.profile)
        return cosmos3_command(first, settings, inputs, keep_going=True)
    if first.profile in SAMPLE_PROFILES:
        return transfer25_command(
            first, settings_for(config, first.profile), (f"{launch.CONTAINER_RUN}/{JSONL_NAME}",)
        )
    profile = config.profiles.get(first.profile) or config.profiles["transfer1"]
    paths = transfer1.LaunchPaths(
        spec_path=f"{launch.CONTAINER_RUN}/{launch.SPEC_NAME}",
        output_dir=f"{launch.CONTAINER_RUN}/{launch.OUTPUT_DIR_NAME}",
        batch_input_path=f"{launch.CONTAINER_RUN}/{JSONL_NAME}",
    )
    return transfer1.build_argv(
        first.params, paths, script=profile.script, extra_args=profile.extra_args
    )
