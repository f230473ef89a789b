"""The scheduler: keeps the queue moving by claiming placed runs and launching them.

One pass (:meth:`Scheduler.step`) reads the queue, groups compatible runs into batches,
places groups on free GPUs, claims each placement with a conditional UPDATE and moves its
runs from queued to uploading only while the claim is still ours; then the launcher
(the run lifecycle) takes over in a task. A pass runs again at once when a launch ends
(its GPUs are free), when :meth:`Scheduler.wake` is called, and otherwise every
``poll_interval`` seconds, to see what other processes changed.

Several schedulers (the TUI, ``cosmos queue run`` elsewhere) may share one database: the
claim decides, so no run starts twice and no GPU is given out twice. A scheduler that
dies leaves its started runs to the lifecycle's reconcile, and the runs it had claimed but
not started are released by another scheduler once its heartbeat is stale; one stopped
from outside gives those back itself as it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from cosmos_tui.config import BatchingConfig, Config
from cosmos_tui.engine.batching import plan_groups
from cosmos_tui.engine.queue import HostView, QueuePlan, place
from cosmos_tui.errors import CosmosError
from cosmos_tui.store.queue_store import Claim, QueueStore

# Longest wait for database clean-up after a stop or cancel, when another process holds
# the write lock (the store's busy timeout is longer). A wait for the lock ends within
# about 0.1 s of its cancel (store/transactions.py), so this bounds the clean-up.
CLEANUP_TIMEOUT_S = 5.0

logger = logging.getLogger(__name__)


class Launcher(Protocol):
    """Runs one claimed container (a run alone or a batch) to its end.

    The runs arrive queued and claimed by this scheduler, with host and GPUs set; the
    launcher owns them from there. Its first state change must be the conditional
    queued -> uploading (:meth:`QueueStore.start`, or the lifecycle's own claim step,
    which keeps the host and GPUs), then upload, container, logs, outputs, final state.
    It returns when the container's GPUs are free again.
    """

    async def launch(self, claim: Claim) -> None:
        """Run the claim's container to the end."""
        ...


class ClusterView(Protocol):
    """The latest view of every configured host, for placement."""

    def host_views(self, ours: Collection[str]) -> list[HostView]:
        """Return every host in config order; ``ours`` lists our run and container ids."""
        ...


@dataclass(frozen=True)
class StaticCluster:
    """A fixed cluster (tests, benchmarks, hosts without telemetry)."""

    hosts: tuple[HostView, ...]

    def host_views(self, ours: Collection[str]) -> list[HostView]:
        """Return the fixed hosts."""
        return list(self.hosts)


STALE_AFTER_S = 60.0
"""Seconds without a heartbeat after which a scheduler counts as gone (its claims free)."""


def new_scheduler_id() -> str:
    """Return an id naming this process's scheduler (host, pid and a random part)."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{os.urandom(3).hex()}"


class Scheduler:
    """Drives the queue of one database.

    Args:
        queue: Queue operations over the store.
        cluster: Where the hosts and their free GPUs come from.
        launcher: Runs claimed containers.
        batching: Batching settings (on, max size).
        scheduler_id: This scheduler's id (one is made when None).
        poll_interval: Seconds between passes when nothing wakes the scheduler.
        heartbeat_interval: Seconds between heartbeats.
        stale_after: Seconds without heartbeat after which another scheduler's claims
            are released.
        split_batches: Split batches in halves while GPUs would otherwise stay idle
            (shorter makespan for one extra model load per split).
        monotonic: Monotonic clock, for latency figures.

    """

    def __init__(
        self,
        queue: QueueStore,
        cluster: ClusterView,
        launcher: Launcher,
        batching: BatchingConfig | None = None,
        scheduler_id: str | None = None,
        poll_interval: float = 0.5,
        heartbeat_interval: float = 5.0,
        stale_after: float = STALE_AFTER_S,
        split_batches: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.queue = queue
        self.cluster = cluster
        self.launcher = launcher
        self.batching = batching or BatchingConfig()
        self.id = scheduler_id or new_scheduler_id()
        self.poll_interval = poll_interval
        self.heartbeat_interval = heartbeat_interval
        self.stale_after = stale_after
        self.split_batches = split_batches
        self._monotonic = monotonic
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_beat: float | None = None
        self._waiting_for_gpus = False
        self.freed_at: float | None = None
        self.latencies: list[float] = []
        self.launched: list[Claim] = []

    @classmethod
    def for_config(
        cls, queue: QueueStore, config: Config, cluster: ClusterView, launcher: Launcher
    ) -> Scheduler:
        """Return a scheduler with the config's batching settings."""
        return cls(queue, cluster, launcher, batching=config.batching)

    def wake(self) -> None:
        """Ask for a pass now (a run was queued, a GPU was freed)."""
        self._wake.set()

    @property
    def busy(self) -> int:
        """Number of containers this scheduler is running now."""
        return len(self._tasks)

    async def plan(self) -> QueuePlan:
        """Return what would start now, without claiming anything (``cosmos queue``)."""
        candidates = await self.queue.queued()
        ours = await self.queue.our_ids()
        hosts = self.cluster.host_views(ours)
        allocations = await self.queue.allocations()
        free_by_host = place([], hosts, allocations).free
        free = sum(len(free_by_host[h.name]) for h in hosts if h.online)
        # Only SSH hosts run batches; with nothing but cluster nodes every run goes alone.
        batching = self.batching.enabled and any(h.batches for h in hosts)
        groups = plan_groups(
            candidates,
            batching,
            self.batching.max_size,
            free_gpus=free if self.split_batches else None,
        )
        return place(groups, hosts, allocations, paused=await self.queue.is_paused())

    async def step(self) -> list[Claim]:
        """Run one pass: plan, claim, start and hand claims to the launcher."""
        await self._heartbeat()
        plan = await self.plan()
        self._waiting_for_gpus = any(w.until_free for w in plan.waiting)
        if not plan.placements and not plan.waiting:
            self.freed_at = None  # nothing was waiting for the GPU that came free
        hosts = {h.name: h for h in self.cluster.host_views(())}
        claims: list[Claim] = []
        for placement in plan.placements:
            limit = hosts[placement.host].max_runs if placement.host in hosts else None
            claim = await self.queue.claim(placement, self.id, max_runs=limit)
            if claim is None:
                # Another scheduler got there first; plan again with fresh numbers.
                self._wake.set()
                break
            claims.append(claim)
            self._spawn(claim)
        return claims

    async def run(self, stop: asyncio.Event | None = None, until_idle: bool = False) -> None:
        """Keep passing until ``stop`` is set (or, with ``until_idle``, nothing is left).

        Args:
            stop: Set it to end the loop; running launches are awaited first.
            until_idle: End once nothing runs here and nothing is left that could start
                when GPUs come free (work of other schedulers included).

        """
        stop = stop or asyncio.Event()
        claimed: list[str] = []
        try:
            while not stop.is_set():
                self._wake.clear()
                claims = await self.step()
                idle = not claims and not self._tasks and not self._wake.is_set()
                if until_idle and idle and not self._waiting_for_gpus:
                    break
                waiters = [asyncio.ensure_future(self._wake.wait())]
                waiters.append(asyncio.ensure_future(stop.wait()))
                _done, pending = await asyncio.wait(
                    waiters, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED
                )
                for waiter in pending:
                    waiter.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
        except asyncio.CancelledError:
            # Stopped from outside (app closing, Ctrl+C): stop following; containers keep
            # running on their hosts and the next driver reattaches them.
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            # Claims on runs still queued (not started yet, or sent back for a retry) go
            # back in line at once, not after the stale-claim delay: another driver may
            # start them now. Runs that moved on are left alone by the release.
            claimed = [run_id for claim in self.launched for run_id in claim.run_ids]
            raise
        finally:
            # Bounded, as one: another process may hold the write lock for up to its busy
            # timeout; the timeout's cancel ends the wait for it at once
            # (store/transactions.py), and the heartbeat going stale releases the entry
            # and its claims anyway.
            with contextlib.suppress(asyncio.TimeoutError, CosmosError):
                await asyncio.wait_for(self._clean_up(claimed), CLEANUP_TIMEOUT_S)

    async def _clean_up(self, unstarted: list[str]) -> None:
        """Give back the claims on ``unstarted`` runs still queued, then leave the queue.

        A release that fails (the database) is left to the stale-claim delay; the
        unregister is tried all the same.
        """
        if unstarted:
            with contextlib.suppress(CosmosError):
                await self.queue.release(unstarted, self.id)
        await self.queue.unregister(self.id)

    # internals -----------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        now = self._monotonic()
        if self._last_beat is not None and now - self._last_beat < self.heartbeat_interval:
            return
        self._last_beat = now
        await self.queue.heartbeat(self.id, os.getpid(), socket.gethostname())
        released = await self.queue.release_stale_claims(timedelta(seconds=self.stale_after))
        if released:
            logger.info("released %d run(s) claimed by stopped schedulers", len(released))

    def _spawn(self, claim: Claim) -> None:
        if self.freed_at is not None:
            self.latencies.append(self._monotonic() - self.freed_at)
            self.freed_at = None
        self.launched.append(claim)
        task = asyncio.create_task(self._launch(claim), name=f"launch-{claim.run_ids[0]}")
        self._tasks.add(task)

    def follow(self, work: Awaitable[object], name: str) -> None:
        """Count ``work`` as running here (a reattach of runs an earlier driver started).

        ``run(until_idle=True)`` waits for it like for its own launches.
        """
        task = asyncio.create_task(self._guard(work, name), name=name)
        self._tasks.add(task)

    async def _launch(self, claim: Claim) -> None:
        await self._guard(self.launcher.launch(claim), ",".join(claim.run_ids))

    async def _guard(self, work: Awaitable[object], what: str) -> None:
        try:
            await work
        except CosmosError as exc:
            logger.warning("launch of %s failed: %s", what, exc.message)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("launcher crashed on %s", what)
        finally:
            self._tasks.discard(asyncio.current_task())
            self.freed_at = self._monotonic()
            self._wake.set()


def start_reason(claim: Claim) -> str:
    """Return the timeline reason of a claimed run's start (where, which batch)."""
    where = f"{claim.host} GPU {','.join(str(g) for g in claim.gpus)}"
    if claim.batch_id:
        return f"placed on {where} in batch {claim.batch_id} of {len(claim.runs)}"
    return f"placed on {where}"
