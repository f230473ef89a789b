"""Watching a running container until it ends.

Logs go to the local file, progress to the store; the wall-clock limit is enforced and
the exit is classified.

The log stream is resumed from the local log's cursor each time it ends early (a
dropped SSH link ends it silently), so the local file stays equal to the container's
log. When the container has exited, one last non-following read drains what is left,
then the exit is classified.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

from cosmos_tui.domain import FailureKind, Run, RunState
from cosmos_tui.engine import launch
from cosmos_tui.engine.failures import Failure, classify
from cosmos_tui.engine.logs import LocalLog, LogFollower, read_log_lines, since_param
from cosmos_tui.engine.progress import ProgressTracker, expected_duration, parser_for
from cosmos_tui.engine.stall import StallWatch, container_watch
from cosmos_tui.errors import ContainerGone, DockerError, InvalidTransition
from cosmos_tui.store.repositories import RunFilter

if TYPE_CHECKING:
    from cosmos_tui.engine.lifecycle import EngineContext
    from cosmos_tui.remote.docker import ContainerInfo
    from cosmos_tui.remote.host import RemoteHost

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL = 1.0
PROGRESS_TICK = 0.25
RESUME_PAUSE = 0.2
HISTORY_LIMIT = 200


class ContainerWatch:
    """Follows one running run until its container exits, then records the outcome.

    Args:
        ctx: Shared engine services.
        run: The run, in state ``running`` with a container id.
        local_log: Its local log.
        requeue: Called with a transient failure (a download cut by the network); True
            when it queued the run again instead of failing it.

    """

    def __init__(
        self,
        ctx: EngineContext,
        run: Run,
        local_log: LocalLog,
        requeue: Callable[[Run, Failure], Awaitable[bool]] | None = None,
    ) -> None:
        self.ctx = ctx
        self.run = run
        self.local_log = local_log
        self.requeue = requeue
        self.tracker: ProgressTracker | None = None
        self.stall: StallWatch | None = None
        self._dirty = True

    async def watch(self) -> Run:
        """Follow, enforce the time limit, and move the run on when the container exits.

        Returns:
            The run after its next state change (downloading, failed, blocked...).

        Raises:
            CosmosError: When the host cannot be reached (the caller reattaches later).

        """
        run = self.run
        assert run.host is not None and run.container_id is not None
        host = self.ctx.hosts.get(run.host)
        self.local_log.secrets = launch.log_secrets(
            host.config, profile=run.profile, config=self.ctx.config
        )
        self.local_log.open()
        started = run.started_at.timestamp() if run.started_at else self.ctx.wall()
        expected = await self._expected_duration(run)
        self.tracker = ProgressTracker(parser_for(run.profile), started, expected)
        history = await asyncio.to_thread(read_log_lines, self.local_log.path)
        self.tracker.feed(history, self.ctx.wall())
        limit = self.ctx.config.timeouts.run
        deadline = started + limit
        progress_task = asyncio.create_task(self._publish_progress())
        self.stall = self._stall_watch(host)
        stall_task = asyncio.create_task(self.stall.run())
        timed_out = False
        info: ContainerInfo | None = None
        try:
            while True:
                remaining = deadline - self.ctx.wall()
                if remaining <= 0:
                    timed_out = True
                    logger.info("run %s exceeded %.0f s; stopping it", run.id, limit)
                    await host.docker.stop(run.container_id, self.ctx.config.timeouts.cancel_grace)
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._follow(host, follow=True), remaining)
                info = await self._inspect(host)
                if not info.running:
                    break
                await asyncio.sleep(RESUME_PAUSE)
            await self._follow(host, follow=False)  # lines a broken follow missed
            if info is None or info.running:  # stopped for the time limit: read it again
                info = await self._inspect(host)
        finally:
            self.local_log.close()
            for task in (progress_task, stall_task):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._write_progress()
        return await self._finish(info, timed_out)

    async def _follow(self, host: RemoteHost, follow: bool) -> None:
        assert self.run.container_id is not None
        cursor = self.local_log.cursor
        since = since_param(cursor.since_ns) if cursor.since_ns is not None else None
        follower = LogFollower(self.run.id, self.local_log, self.ctx.hub, self._on_lines)
        frames: AsyncIterator[list[bytes]] = host.docker.log_frames(
            self.run.container_id, since=since, follow=follow
        )
        await follower.follow(frames)

    def _on_lines(self, lines: list[str]) -> None:
        if self.stall is not None:
            self.stall.activity()
        if self.tracker is not None and self.tracker.feed(lines, self.ctx.wall()):
            self._dirty = True

    def _stall_watch(self, host: RemoteHost) -> StallWatch:
        """The watchdog: GPU readings of this run's GPUs; stops by the configured grace."""
        assert self.run.container_id is not None
        return container_watch(self.ctx, host, self.run.container_id, self.run.id, self.run.gpus)

    async def _inspect(self, host: RemoteHost) -> ContainerInfo:
        assert self.run.container_id is not None
        try:
            return await host.docker.inspect(self.run.container_id)
        except DockerError as exc:
            if exc.status == 404:
                raise ContainerGone(
                    f"container {self.run.container_id[:12]} of run {self.run.id} disappeared"
                ) from exc
            raise

    async def _expected_duration(self, run: Run) -> float | None:
        page = await self.ctx.store.list_runs(
            RunFilter(states=frozenset({RunState.COMPLETED})), 0, HISTORY_LIMIT
        )
        durations = [
            r.duration_seconds
            for r in page.items
            if r.profile == run.profile
            and r.type == run.type
            and r.params.num_steps == run.params.num_steps
            and r.params.num_gpus == run.params.num_gpus
            and r.duration_seconds
        ]
        return expected_duration(d for d in durations if d is not None)

    async def _publish_progress(self) -> None:
        """Store progress soon after a phase change, and every second for the time fill."""
        since_write = PROGRESS_INTERVAL
        while True:
            await asyncio.sleep(PROGRESS_TICK)
            since_write += PROGRESS_TICK
            if self._dirty or since_write >= PROGRESS_INTERVAL:
                self._dirty = False
                since_write = 0.0
                await self._write_progress()

    async def _write_progress(self) -> None:
        if self.tracker is None:
            return
        snapshot = self.tracker.snapshot(self.ctx.wall())
        eta = snapshot.eta_seconds
        phase = snapshot.phase
        if self.stall is not None and self.stall.stalled:
            phase = f"stalled ({phase})"
        await self.ctx.store.update_run(
            self.run.id,
            progress_phase=phase,
            progress_percent=round(snapshot.percent, 1),
            eta_seconds=round(eta, 1) if eta is not None else None,
        )

    async def _finish(self, info: ContainerInfo, timed_out: bool) -> Run:
        store = self.ctx.store
        current = await store.get_run(self.run.id)
        if current.state != RunState.RUNNING:
            return current  # cancelled (or finished by someone else) meanwhile
        self.ctx.hub.notify(self.run.id)
        exit_code = info.exit_code
        if exit_code == 0 and not timed_out:
            return await store.transition(
                self.run.id, RunState.DOWNLOADING, "container exited 0", exit_code=0
            )
        lines = await asyncio.to_thread(read_log_lines, self.local_log.path)
        failure = classify(
            exit_code,
            lines,
            oom_killed=info.oom_killed,
            timed_out=timed_out,
            timeout_seconds=self.ctx.config.timeouts.run,
            profile=self.run.profile,
        )
        if self.stall is not None and self.stall.stopped:
            failure = Failure(
                FailureKind.STALLED,
                self.stall.message(),
                failure.context,
                failure.error_line,
                exit_code,
                phase=failure.phase,
            )
        if failure.transient and self.requeue is not None and await self.requeue(current, failure):
            return await store.get_run(self.run.id)
        try:
            return await store.transition(
                self.run.id,
                failure.state,
                failure.message,
                failure_kind=failure.kind,
                failure_message=failure.message,
                exit_code=exit_code,
            )
        except InvalidTransition:
            return await store.get_run(self.run.id)
