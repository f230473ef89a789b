"""The configured clusters' health over time, for the TUI's GPUs pane.

One :class:`RayClusterView` (its clients made once, a cluster behind SSH tunnelled over
its host's connection) is read every few seconds; each reading yields every cluster's
:class:`ClusterHealth`. Without Ray installed each cluster is shown unreachable with
the message that says what to install, once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from cosmos_tui.engine.cluster_health import ClusterHealth
from cosmos_tui.engine.ray_cluster import RayClusterView, installation_id
from cosmos_tui.engine.ray_route import ClusterJobs
from cosmos_tui.errors import ConfigError

if TYPE_CHECKING:
    from cosmos_tui.services.workbench import Workbench

CLUSTER_INTERVAL_S = 2.0


async def watch_clusters(
    bench: Workbench, interval: float = CLUSTER_INTERVAL_S
) -> AsyncIterator[ClusterHealth]:
    """Yield each configured cluster's health now and every ``interval`` seconds."""
    config = bench.config
    if not config.clusters:
        return
    try:
        jobs = ClusterJobs(config.clusters, bench.hosts).all()
    except ConfigError as exc:
        for cluster in config.clusters:
            yield ClusterHealth(cluster.name, False, exc.message)
        return
    view = RayClusterView(jobs, installation_id(config.data_dir), telemetry=config)
    while True:
        await view.refresh()
        for health in view.health():
            yield health
        await asyncio.sleep(interval)


__all__ = ["CLUSTER_INTERVAL_S", "watch_clusters"]
