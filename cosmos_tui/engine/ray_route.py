"""The clusters as one process uses them: the queue driver's cluster part and cancel.

:class:`ClusterJobs` holds each configured cluster's Jobs API client, made on first use
(Ray is imported only then, so a config with a cluster works without the extra until
the cluster is used). :class:`ClusterDriver` is what the queue driver adds when clusters
are configured: node views kept fresh for placement, the :class:`RayLauncher`, and the
reattach of what an earlier driver left. :class:`RoutingLauncher` hands each claim to
the executor of its target: a cluster node's to Ray, an SSH host's to the batch
launcher.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from cosmos_tui.config import ClusterConfig, Config
from cosmos_tui.domain import Run
from cosmos_tui.engine.cluster_health import is_cluster_target, split_target
from cosmos_tui.engine.context import HostSource
from cosmos_tui.engine.logs import LogHub
from cosmos_tui.engine.ray_cluster import RayClusterView, installation_id, node_ssh_host
from cosmos_tui.engine.ray_job import submission_id
from cosmos_tui.engine.ray_launch import RayLauncher
from cosmos_tui.engine.scheduler import Launcher
from cosmos_tui.errors import ConfigError, CosmosError
from cosmos_tui.remote.ray_jobs import RayJobs
from cosmos_tui.remote.tunnel import PortTunnel
from cosmos_tui.store.queue_store import Claim
from cosmos_tui.store.repositories import Store

logger = logging.getLogger(__name__)
REFRESH_SECONDS = 1.0


class ClusterJobs:
    """Each configured cluster's Jobs API client, made on first use.

    A cluster with ``ssh_host`` is reached through an SSH tunnel to its dashboard port
    on that configured host's managed connection (:class:`PortTunnel`), opened again
    after the connection drops.

    Args:
        clusters: The configured clusters.
        hosts: The configured SSH hosts (for tunnels); None when none are at hand.

    """

    def __init__(self, clusters: Sequence[ClusterConfig], hosts: HostSource | None = None) -> None:
        self.configs = {c.name: c for c in clusters}
        self.hosts = hosts
        self._clients: dict[str, RayJobs] = {}

    def client(self, name: str) -> tuple[ClusterConfig, RayJobs]:
        """Return a cluster's config and client.

        Raises:
            ConfigError: When no cluster has that name, or Ray is not installed.

        """
        if name not in self.configs:
            raise ConfigError(f"no [[clusters]] entry is called '{name}'")
        config = self.configs[name]
        if name not in self._clients:
            if config.ssh_host:
                if self.hosts is None:
                    raise ConfigError(f"cluster '{name}' is reached through SSH; no hosts here")
                ssh = self.hosts.get(config.ssh_host).ssh
                tunnel = PortTunnel(name, ssh, config.dashboard_port)
                self._clients[name] = RayJobs(name, "", tunnel=tunnel.address)
            else:
                self._clients[name] = RayJobs(name, config.address)
        return config, self._clients[name]

    def all(self) -> dict[str, tuple[ClusterConfig, RayJobs]]:
        """Return every cluster's config and client."""
        return {name: self.client(name) for name in self.configs}

    async def stop_run(self, run: Run) -> None:
        """Ask Ray to stop the job of a run's current attempt.

        The job's entrypoint stops the container with the cancel grace.

        Raises:
            ClusterUnreachable: When the cluster does not answer (the next driver's
                reattach stops the job of a run that has ended).

        """
        parts = split_target(run.host or "")
        if parts is None:
            return
        _config, jobs = self.client(parts[0])
        await jobs.stop(submission_id(run))


class ClusterDriver:
    """The configured clusters inside one queue driver.

    Args:
        config: The configuration.
        store: The open store.
        hub: Wakes log readers.
        jobs: The clusters' clients.
        refresh_seconds: Seconds between readings of the clusters' nodes and jobs.

    """

    def __init__(
        self,
        config: Config,
        store: Store,
        hub: LogHub,
        jobs: ClusterJobs,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self.view = RayClusterView(jobs.all(), installation_id(config.data_dir))
        self.launcher = RayLauncher(config, store, self.view, hub, hosts=jobs.hosts)
        self.refresh_seconds = refresh_seconds
        self.config = config

    def ssh_host_of(self, target: str) -> str | None:
        """Return the SSH host that reaches a node (``<cluster>/<node>``), or None.

        The cluster's ``node_hosts`` names it by the node's IP; else a host whose
        hostname is that IP. Its telemetry then measures the node's runs.
        """
        parts = split_target(target)
        node = self.view.node(target)
        if parts is None or node is None or parts[0] not in self.view.clusters:
            return None
        return node_ssh_host(self.config, self.view.clusters[parts[0]][0], node.ip)

    async def keep_fresh(self) -> None:
        """Read the clusters now and every ``refresh_seconds`` until cancelled."""
        while True:
            try:
                await self.view.refresh()
            except CosmosError as exc:  # unreachable clusters are handled inside
                logger.warning("reading the clusters failed: %s", exc.message)
            await asyncio.sleep(self.refresh_seconds)


class RoutingLauncher:
    """Hands each claim to its target's executor (the scheduler's Launcher protocol).

    Args:
        hosts: Launches claims on SSH hosts.
        clusters: Launches claims on cluster nodes.

    """

    def __init__(self, hosts: Launcher, clusters: Launcher) -> None:
        self.hosts = hosts
        self.clusters = clusters

    async def launch(self, claim: Claim) -> None:
        """Launch the claim where it was placed."""
        if is_cluster_target(claim.host):
            await self.clusters.launch(claim)
        else:
            await self.hosts.launch(claim)


__all__ = ["ClusterDriver", "ClusterJobs", "RoutingLauncher", "is_cluster_target"]
