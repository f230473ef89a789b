"""Feeds live GPU telemetry into the metrics tracker and stores what it decides.

While it runs (inside ``cosmos queue run`` or the TUI) it follows each host's sample
stream and connection state, keeps the tracker's set of containers equal to the runs that
hold GPUs (from the store, so runs started by other processes count too), stores alert
changes as they happen and each run's metrics every ``flush_interval`` seconds and once
more when the run lets its GPUs go.

A run driven outside the queue (a ``cosmos worker``, the TUI's run form) is measured by
its own driver with :func:`measure_run`: the same recorder, limited to that run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from typing import TYPE_CHECKING

from cosmos_tui.config import Config
from cosmos_tui.engine.cluster_health import is_cluster_target
from cosmos_tui.engine.metrics import GpuFault, MetricsTracker
from cosmos_tui.errors import CosmosError
from cosmos_tui.store.metrics_store import MetricsStore
from cosmos_tui.store.queue_store import Holder, QueueStore
from cosmos_tui.store.repositories import Store

if TYPE_CHECKING:
    from cosmos_tui.engine.context import HostSource

logger = logging.getLogger(__name__)


class MetricsRecorder:
    """Runs the tracker over live telemetry and persists its results.

    Args:
        queue: Queue operations (which containers hold GPUs).
        stored: Where metrics and alerts go.
        tracker: The tracker (thresholds, clock).
        hosts: The host pool (telemetry and connection state).
        host_names: Hosts to follow.
        refresh_interval: Seconds between re-reads of who holds GPUs.
        flush_interval: Seconds between metric saves.
        on_fault: Called with each run of a container whose GPU broke (requires reset,
            lost, error) and the cause, to fail it; None leaves the runs alone.
        keys: Track only these containers (run or batch ids); None tracks every one.
        locate: The SSH host whose telemetry measures a cluster node (``<cluster>/<node>``),
            or None; a cluster run is tracked there, on the GPUs Ray gave it, once its
            entrypoint has named them.

    """

    def __init__(
        self,
        queue: QueueStore,
        stored: MetricsStore,
        tracker: MetricsTracker,
        hosts: HostSource,
        host_names: Sequence[str],
        refresh_interval: float = 1.0,
        flush_interval: float = 5.0,
        on_fault: Callable[[str, str], Awaitable[object]] | None = None,
        keys: Collection[str] | None = None,
        locate: Callable[[str], str | None] | None = None,
    ) -> None:
        self.queue = queue
        self.stored = stored
        self.tracker = tracker
        self.hosts = hosts
        self.host_names = list(host_names)
        self.refresh_interval = refresh_interval
        self.flush_interval = flush_interval
        self.on_fault = on_fault
        self.keys = None if keys is None else frozenset(keys)
        self.locate = locate
        self._members: dict[str, tuple[str, ...]] = {}
        # refresh() and flush() await the store between steps; the recorder's own loop
        # and a caller's last refresh may overlap, so they take turns.
        self._lock = asyncio.Lock()

    async def run(self, stop: asyncio.Event) -> None:
        """Follow telemetry until ``stop`` is set; store the last metrics on the way out."""
        tasks = [asyncio.create_task(self._refresh_forever(stop))]
        for name in self.host_names:
            tasks.append(asyncio.create_task(self._follow_samples(name)))
            tasks.append(asyncio.create_task(self._follow_state(name)))
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.flush()

    async def refresh(self) -> None:
        """Make the tracked containers equal to those holding GPUs now."""
        async with self._lock:
            holders = {
                h.key: h
                for h in await self.queue.holders()
                if self.keys is None or h.key in self.keys
            }
            for key in list(self._members):
                if key not in holders:
                    run_ids = self._members.pop(key)
                    await self.stored.apply(self.tracker.untrack(key))
                    await self._save(run_ids, forget=True)
            for key, holder in holders.items():
                if key not in self._members:
                    where = self._measured_at(holder)
                    if where is None:
                        continue  # a cluster node nobody measures (yet)
                    self.tracker.track(key, holder.run_ids, *where, holder.running)
                    self._members[key] = holder.run_ids
                else:
                    self.tracker.set_running(key, holder.running)

    def _measured_at(self, holder: Holder) -> tuple[str, tuple[int, ...]] | None:
        """Return the host and GPU indices whose telemetry measures ``holder``."""
        if not is_cluster_target(holder.host):
            return holder.host, holder.gpus
        host = self.locate(holder.host) if self.locate is not None else None
        if host is None or not holder.devices:
            return None
        return host, holder.devices

    async def flush(self) -> None:
        """Store the metrics of every tracked run."""
        async with self._lock:
            for run_ids in list(self._members.values()):
                await self._save(run_ids, forget=False)

    async def _save(self, run_ids: Sequence[str], forget: bool) -> None:
        for run_id in run_ids:
            metrics = self.tracker.metrics(run_id)
            if metrics is not None and metrics.samples:
                await self.stored.save_metrics(run_id, metrics)
            if forget:
                self.tracker.forget(run_id)

    async def _refresh_forever(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        last_flush = loop.time()
        while not stop.is_set():
            await self.refresh()
            if loop.time() - last_flush >= self.flush_interval:
                await self.flush()
                last_flush = loop.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.refresh_interval)

    async def _follow_samples(self, name: str) -> None:
        telemetry = self.hosts.get(name).gpu
        async for batch in telemetry.samples():
            changes = self.tracker.observe(batch)
            if changes:
                await self.stored.apply(changes)
            for fault in self.tracker.take_faults():
                await self._fail(fault)

    async def _fail(self, fault: GpuFault) -> None:
        if self.on_fault is None:
            return
        for run_id in fault.run_ids:
            logger.warning("run %s: %s; failing it", run_id, fault.detail)
            try:
                await self.on_fault(run_id, fault.detail)
            except CosmosError as exc:
                logger.warning("could not fail run %s on its GPU fault: %s", run_id, exc.message)

    async def _follow_state(self, name: str) -> None:
        async for status in self.hosts.get(name).watch():
            changes = self.tracker.host_state(name, status.state)
            if changes:
                await self.stored.apply(changes)


@contextlib.asynccontextmanager
async def measure_run(
    config: Config,
    store: Store,
    hosts: HostSource,
    run_id: str,
    host: str,
    on_fault: Callable[[str, str], Awaitable[object]] | None = None,
) -> AsyncIterator[None]:
    """Record one run's GPU metrics and alerts while the body runs (its own driver).

    Starts the host's telemetry channel (idempotent: the TUI's is shared) and a recorder
    limited to the run; on the way out the run's metrics are stored once more. ``on_fault``
    is called as the scheduler's is when the run's GPU breaks (see :class:`MetricsRecorder`).
    """
    hosts.get(host).gpu.start()
    queue = QueueStore(store)
    recorder = MetricsRecorder(
        queue,
        MetricsStore(store),
        MetricsTracker(config.alerts, store.clock),
        hosts,
        [host],
        on_fault=on_fault,
        keys={run_id},
    )
    stop = asyncio.Event()
    recording = asyncio.create_task(recorder.run(stop))
    try:
        yield
    finally:
        stop.set()
        await recording  # stores the last metrics (a second cancel ends this too)
