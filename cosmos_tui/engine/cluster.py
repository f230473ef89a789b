"""The live cluster as the scheduler sees it.

:class:`PoolCluster` reads each configured host's connection state and the latest
nvidia-smi samples and compute processes of its telemetry channel (one long-lived
channel per host, started here), so placement knows which GPUs exist and which ones
someone else is using.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection
from typing import TYPE_CHECKING

from cosmos_tui.config import Config
from cosmos_tui.domain import HostState
from cosmos_tui.engine.queue import HostView, host_view
from cosmos_tui.errors import CosmosError
from cosmos_tui.remote.smi import GpuState

if TYPE_CHECKING:
    from cosmos_tui.remote.pool import HostPool

logger = logging.getLogger(__name__)


class PoolCluster:
    """Host views built from a :class:`HostPool`'s live status and GPU telemetry.

    Args:
        config: The configuration (hosts in order, gpu_limit, max_runs).
        hosts: The open host pool.

    """

    def __init__(self, config: Config, hosts: HostPool) -> None:
        self.config = config
        self.hosts = hosts

    async def start(self, wait_seconds: float = 5.0) -> None:
        """Connect every host and start its telemetry; wait a little for first samples.

        A host that cannot be reached is left to reconnect on its own; it simply offers
        no GPUs until it is back.
        """

        async def _one(name: str) -> None:
            host = self.hosts.get(name)
            try:
                await host.connect()
            except CosmosError as exc:
                logger.warning("host %s is not reachable now: %s", name, exc.message)
                return
            host.gpu.start()

        await asyncio.gather(*(_one(h.name) for h in self.config.hosts))
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            if all(self._has_samples(h.name) for h in self.config.hosts):
                return
            await asyncio.sleep(0.05)

    def _has_samples(self, name: str) -> bool:
        """True once a host has reported its GPUs and their processes, or cannot."""
        host = self.hosts.get(name)
        if host.gpu.latest() and host.gpu.processes_read:
            return True
        if GpuState(host.gpu.state).host_problem:
            return True
        return host.status().state == HostState.DOWN

    def host_views(self, ours: Collection[str]) -> list[HostView]:
        """Return every configured host's current view, in config order.

        A host offers no GPU until its compute processes were read once: the samples
        stream in first, and a GPU someone else uses would look free until then.
        """
        views = []
        for config in self.config.hosts:
            host = self.hosts.get(config.name)
            telemetry = host.gpu
            samples = telemetry.latest() if telemetry.processes_read else ()
            views.append(host_view(config, host.status(), samples, telemetry.processes(), ours))
        return views
