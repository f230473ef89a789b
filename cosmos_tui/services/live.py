"""The live service: host states, GPU samples and GPU processes as streams.

:class:`LiveService` is one part of :class:`~cosmos_tui.services.workbench.Workbench`
(``bench.live``), built with the config and the host pool. These are the streams the
TUI's panes follow (see ``cosmos_tui.ui.facade.FacadeAdapter``): each merges every
configured host, and watching GPUs starts each host's one long-lived telemetry channel
(which connects the host and keeps retrying with backoff while it is unreachable).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from cosmos_tui.domain import GpuHostHealth, GpuProcess, GpuSample, HostStatus
from cosmos_tui.errors import CosmosError

if TYPE_CHECKING:
    from cosmos_tui.config import Config
    from cosmos_tui.remote.host import RemoteHost
    from cosmos_tui.remote.pool import HostPool

logger = logging.getLogger(__name__)
T = TypeVar("T")

PROCESS_POLL_SECONDS = 2.0


class LiveService:
    """Live host and GPU streams (``bench.live``).

    Args:
        config: The validated configuration.
        hosts: The host pool (hosts are made, and connect, on first use).

    """

    def __init__(self, config: Config, hosts: HostPool) -> None:
        self.config = config
        self.hosts = hosts

    async def watch_hosts(self) -> AsyncIterator[HostStatus]:
        """Yield every host's connection state now, then each change, until closed."""

        async def one(host: RemoteHost, out: Callable[[HostStatus], Awaitable[None]]) -> None:
            async for status in host.watch():
                await out(status)

        async for status in _merged(self._hosts(), one):
            yield status

    async def watch_gpus(self) -> AsyncIterator[GpuSample]:
        """Yield each GPU sample of every host as its telemetry channel reads it."""

        async def one(host: RemoteHost, out: Callable[[GpuSample], Awaitable[None]]) -> None:
            telemetry = host.gpu
            telemetry.start()
            for sample in telemetry.latest():
                await out(sample)
            async for batch in telemetry.samples():
                for sample in batch:
                    await out(sample)

        async for sample in _merged(self._hosts(), one):
            yield sample

    async def watch_gpu_hosts(self) -> AsyncIterator[GpuHostHealth]:
        """Yield each host's GPU telemetry state now, then each change (with its reason)."""

        async def one(host: RemoteHost, out: Callable[[GpuHostHealth], Awaitable[None]]) -> None:
            telemetry = host.gpu
            telemetry.start()
            async for health in telemetry.states():
                await out(health)

        async for health in _merged(self._hosts(), one):
            yield health

    async def watch_gpu_processes(self) -> AsyncIterator[tuple[str, tuple[GpuProcess, ...]]]:
        """Yield ``(host, processes)`` whenever a host's GPU compute processes change."""

        async def one(
            host: RemoteHost,
            out: Callable[[tuple[str, tuple[GpuProcess, ...]]], Awaitable[None]],
        ) -> None:
            telemetry = host.gpu
            telemetry.start()
            last: tuple[GpuProcess, ...] | None = None
            while True:
                processes = telemetry.processes()
                if processes != last:
                    last = processes
                    await out((host.name, processes))
                await asyncio.sleep(PROCESS_POLL_SECONDS)

        async for item in _merged(self._hosts(), one):
            yield item

    def _hosts(self) -> list[RemoteHost]:
        return [self.hosts.get(host.name) for host in self.config.hosts]


async def _merged(
    hosts: list[RemoteHost],
    one: Callable[[RemoteHost, Callable[[T], Awaitable[None]]], Awaitable[None]],
) -> AsyncIterator[T]:
    """Run ``one`` per host, yielding what each passes to its ``out`` callback."""
    queue: asyncio.Queue[T] = asyncio.Queue(maxsize=256)

    async def guarded(host: RemoteHost) -> None:
        try:
            await one(host, queue.put)
        except CosmosError as exc:
            logger.warning("live stream of host %s ended: %s", host.name, exc.message)

    tasks = [asyncio.create_task(guarded(host)) for host in hosts]
    try:
        while True:
            yield await queue.get()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
