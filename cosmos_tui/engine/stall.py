"""The stall watchdog of a running run.

A multi-GPU run can freeze (``Generating chunk 5/6`` and nothing more, every GPU at 0%,
memory still held: cosmos-transfer2.5 issue 17) and would otherwise wait for
``timeouts.run`` (4 h by default). When no new log line arrived and progress did not move
for ``timeouts.stall`` seconds while the run's GPUs sit near 0% utilisation, the run is
marked stalled: an open ``stalled`` alert (with an NCCL hint and how to cancel) and a
``stalled`` prefix on its progress phase. Nothing is stopped unless
``timeouts.stall_action = "cancel"``; then the container is stopped and the run fails
with the kind ``stalled``. A new log line clears the mark.

A batch container (engine/batch_launch.py) is watched the same way: every active member
gets the alert (its message names the other members, as the container stops only once
all of them are cancelled) and a ``stalled`` progress phase.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cosmos_tui.domain import AlertChange, AlertKind, FailureKind, GpuSample
from cosmos_tui.engine.failure_text import explain
from cosmos_tui.errors import CosmosError
from cosmos_tui.store.metrics_store import MetricsStore

if TYPE_CHECKING:
    from cosmos_tui.engine.context import EngineContext
    from cosmos_tui.remote.host import RemoteHost

logger = logging.getLogger(__name__)

IDLE_PERCENT = 5.0
MAX_CHECK_SECONDS = 30.0


def gpus_idle(samples: Sequence[GpuSample], gpus: Sequence[int]) -> bool:
    """True when every sampled GPU of the run reports a utilisation near 0%.

    GPUs the driver reports no utilisation for, or no sample at all, count as unknown:
    an unknown reading never marks a run stalled.
    """
    mine = [s for s in samples if not gpus or s.index in gpus]
    if not mine or any(s.utilization is None for s in mine):
        return False
    return all((s.utilization or 0.0) <= IDLE_PERCENT for s in mine)


class StallWatch:
    """Decides when a run stalled and records it.

    Args:
        ctx: Shared engine services (config, store, clock).
        run_id: The run watched.
        gpus: Its GPU indices on the host.
        sample: Takes one reading of the host's GPUs.
        stop: Stops the run's container (used only with ``stall_action = "cancel"``).
        members: Every run the container holds, when it is a batch's (``run_id`` among
            them); each active one gets the alert and, as batches track no progress of
            their own, a ``stalled`` progress phase written here.

    """

    def __init__(
        self,
        ctx: EngineContext,
        run_id: str,
        gpus: Sequence[int],
        sample: Callable[[], Awaitable[Sequence[GpuSample]]],
        stop: Callable[[], Awaitable[None]],
        members: Sequence[str] = (),
    ) -> None:
        self.ctx = ctx
        self.run_id = run_id
        self.members = tuple(members)
        self.gpus = tuple(gpus)
        self.sample = sample
        self.stop = stop
        self.limit = ctx.config.timeouts.stall
        self.last_activity = ctx.wall()
        self.stalled = False
        self.stopped = False
        self._clearing: asyncio.Task[None] | None = None
        self._phases: dict[str, str | None] = {}

    def activity(self) -> None:
        """A log line arrived or progress moved."""
        self.last_activity = self.ctx.wall()
        if self.stalled:
            self.stalled = False
            self._clearing = asyncio.get_running_loop().create_task(self._alert(raised=False))

    @property
    def minutes(self) -> float:
        """The configured stall time, in minutes (for messages)."""
        return self.limit / 60.0

    async def run(self) -> None:
        """Check until cancelled (disabled when ``timeouts.stall`` is 0)."""
        if self.limit <= 0:
            return
        interval = max(0.1, min(MAX_CHECK_SECONDS, self.limit / 4))
        while True:
            await asyncio.sleep(interval)
            if self.stalled or self.ctx.wall() - self.last_activity < self.limit:
                continue
            try:
                idle = gpus_idle(await self.sample(), self.gpus)
            except CosmosError as exc:
                logger.debug("run %s: no GPU reading for the stall check: %s", self.run_id, exc)
                continue
            if idle and self.ctx.wall() - self.last_activity >= self.limit:
                await self._mark()

    async def _mark(self) -> None:
        self.stalled = True
        quiet = (self.ctx.wall() - self.last_activity) / 60.0
        logger.warning("run %s stalled: no output for %.1f min, GPUs idle", self.run_id, quiet)
        await self._alert(raised=True)
        if self.ctx.config.timeouts.stall_action == "cancel":
            self.stopped = True
            await self.stop()

    def message(self, run_id: str | None = None) -> str:
        """The alert's (and, when stopped, the failure's) one line for ``run_id``."""
        run_id = run_id or self.run_id
        detail = f"{self.minutes:g} min without output or progress"
        text = explain(FailureKind.STALLED, detail).replace("RUN_ID", run_id)
        others = [m for m in self.members if m != run_id]
        if others:
            text += (
                f"; its batch container also holds {', '.join(others)} and stops once "
                "every one of them is cancelled"
            )
        if self.ctx.config.timeouts.stall_action != "cancel":
            text += ' (it is left running: timeouts.stall_action = "alert")'
        return text

    async def _alert(self, raised: bool) -> None:
        changes = []
        for run_id in self.members or (self.run_id,):
            with contextlib.suppress(CosmosError):
                run = await self.ctx.store.get_run(run_id, with_events=False)
                if raised and run.state.is_terminal:
                    continue  # a member cancelled meanwhile is not stalled
                changes.append(
                    AlertChange(
                        run_id,
                        AlertKind.STALLED,
                        raised,
                        datetime.now(UTC),
                        run.host or "",
                        None,
                        self.minutes if raised else None,
                        self.minutes if raised else None,
                        self.message(run_id) if raised else "",
                    )
                )
                if self.members:
                    await self._mark_phase(run_id, run.progress.phase if run.progress else None,
                                           raised, run.state.is_terminal)  # fmt: skip
        with contextlib.suppress(CosmosError):
            await MetricsStore(self.ctx.store).apply(changes)

    async def _mark_phase(self, run_id: str, phase: str | None, raised: bool, ended: bool) -> None:
        """Batch members: show ``stalled`` as the phase while marked, then the old one."""
        if ended:
            return
        if raised:
            self._phases[run_id] = phase
            await self.ctx.store.update_run(
                run_id, progress_phase=f"stalled ({phase or 'running'})"
            )
        elif run_id in self._phases:
            await self.ctx.store.update_run(run_id, progress_phase=self._phases.pop(run_id))


def container_watch(
    ctx: EngineContext,
    host: RemoteHost,
    container_id: str,
    run_id: str,
    gpus: Sequence[int],
    members: Sequence[str] = (),
) -> StallWatch:
    """The watchdog of one container on ``host``: its GPUs' readings; stops by the grace.

    Args:
        ctx: Shared engine services.
        host: The container's host.
        container_id: The container (stopped only with ``stall_action = "cancel"``).
        run_id: The run it runs (a batch's first member).
        gpus: Its GPU indices on the host.
        members: A batch's runs (see :class:`StallWatch`); empty for a single run.

    """
    # lazy: remote.gpu pulls asyncssh and aiodocker; the services import this module
    from cosmos_tui.remote.gpu import query_gpus

    async def sample() -> Sequence[GpuSample]:
        return (await query_gpus(host.ssh)).samples

    async def stop() -> None:
        logger.info("container %s stalled; stopping it", container_id[:12])
        await host.docker.stop(container_id, ctx.config.timeouts.cancel_grace)

    return StallWatch(ctx, run_id, gpus, sample, stop, members=members)
