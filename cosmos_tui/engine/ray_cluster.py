"""A Ray cluster as the scheduler sees it: one placement target per node with GPUs.

The database stays the queue: Ray Jobs has no FIFO queue and fails a job left PENDING
for ``RAY_JOB_START_TIMEOUT_SECONDS`` (15 minutes by default), so the tool's own
placement (:func:`cosmos_tui.engine.queue.place`, strict FIFO within priority) decides
what to submit, and submits a run only when a node shows enough free GPUs. Each alive
node that holds every resource the cluster config asks for (a checkpoint set, say)
becomes a :class:`HostView` named ``<cluster>/<node id prefix>``; its GPUs are slots
``0..n-1`` (Ray picks the physical ones and tells the entrypoint in
``CUDA_VISIBLE_DEVICES``). GPUs held by live jobs that are not ours count as foreign.

:meth:`RayClusterView.refresh` reads the cluster (nodes and jobs, two HTTP calls);
:meth:`host_views` answers from the last reading, as the scheduler's protocol is
synchronous. A cluster that does not answer offers no nodes: its runs wait, queued.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cosmos_tui.config import ClusterConfig, Config
from cosmos_tui.engine.cluster_health import (
    ClusterHealth,
    node_target,
    split_target,
)
from cosmos_tui.engine.queue import HostView
from cosmos_tui.errors import ClusterUnreachable, CosmosError
from cosmos_tui.remote.ray_jobs import (
    META_INSTALL,
    GpuHolder,
    RayJob,
    RayJobs,
    RayNode,
    ReportedGpu,
)

logger = logging.getLogger(__name__)


def node_ssh_host(config: Config, cluster: ClusterConfig, ip: str) -> str | None:
    """Return the ``[[hosts]]`` name that reaches a node over SSH, or None.

    The cluster's ``node_hosts`` names it by the node's IP; else a host whose hostname
    is that IP.
    """
    named = cluster.node_hosts.get(ip)
    if named is not None:
        return named
    return next((h.name for h in config.hosts if h.hostname == ip), None)


@dataclass
class _Reading:
    nodes: list[RayNode] = field(default_factory=list)
    jobs: list[RayJob] = field(default_factory=list)
    error: str | None = None
    reported: dict[str, tuple[ReportedGpu, ...]] = field(default_factory=dict)
    holders: list[GpuHolder] | None = None  # None: the state API did not say


def foreign_gpus(
    jobs: Sequence[RayJob], holders: Sequence[GpuHolder] | None, install_id: str
) -> dict[str, float]:
    """GPUs held on each node (by node id) by anything but this installation's jobs.

    Two sources, the larger per node wins: other installations' live jobs (their GPU
    count in metadata), and every alive actor and running task holding GPUs (the state
    API: anyone's job entrypoints, other Ray work) less our own jobs' entrypoints.
    """
    others: dict[str, float] = {}
    ours: set[str] = set()
    for job in jobs:
        if job.metadata.get(META_INSTALL) == install_id:
            ours.add(job.submission_id)
        elif job.live and job.driver_node_id and job.num_gpus > 0:
            others[job.driver_node_id] = others.get(job.driver_node_id, 0.0) + job.num_gpus
    if holders is not None:
        held: dict[str, float] = {}
        for holder in holders:
            if holder.submission_id is None or holder.submission_id not in ours:
                held[holder.node_id] = held.get(holder.node_id, 0.0) + holder.gpus
        for node_id, gpus in held.items():
            others[node_id] = max(others.get(node_id, 0.0), gpus)
    return others


def eligible(node: RayNode, config: ClusterConfig) -> bool:
    """True when runs may go to the node: alive, with GPUs and the configured resources.

    Without a shared folder a run is staged through the SSH host that reaches its node,
    so only nodes named in ``node_hosts`` take runs.
    """
    if not node.alive or node.gpus <= 0:
        return False
    if not config.shared_dir and node.ip not in config.node_hosts:
        return False
    return all(node.resources.get(name, 0.0) >= amount for name, amount in config.resources.items())


def node_views(
    config: ClusterConfig,
    nodes: Sequence[RayNode],
    jobs: Sequence[RayJob],
    install_id: str,
    holders: Sequence[GpuHolder] | None = None,
) -> list[HostView]:
    """Return a view per eligible node, GPUs held by anything not ours marked foreign."""
    others = foreign_gpus(jobs, holders, install_id)
    views = []
    for node in sorted(nodes, key=lambda n: n.node_id):
        if not eligible(node, config):
            continue
        foreign = min(node.gpus, round(others.get(node.node_id, 0.0) + 0.4999))
        views.append(
            HostView(
                name=node_target(config.name, node.node_id),
                online=True,
                gpus=tuple(range(node.gpus)),
                foreign_busy=frozenset(range(node.gpus - foreign, node.gpus)),
                batches=False,
            )
        )
    return views


class RayClusterView:
    """The configured clusters' nodes, for placement, ``cosmos status`` and the launcher.

    Args:
        clusters: Each cluster's config and Jobs API client.
        install_id: This installation's id (its jobs' metadata names it).
        telemetry: The whole config, for views that show GPUs (the GPUs pane, ``cosmos
            status``): each reading then also reads the GPUs Ray's agents report, and
            health names the SSH host that reaches each node. None: placement only.

    """

    def __init__(
        self,
        clusters: Mapping[str, tuple[ClusterConfig, RayJobs]],
        install_id: str,
        telemetry: Config | None = None,
    ) -> None:
        self.clusters = dict(clusters)
        self.install_id = install_id
        self.telemetry = telemetry
        self._readings: dict[str, _Reading] = {name: _Reading() for name in self.clusters}

    async def refresh(self) -> None:
        """Read every cluster's nodes and jobs; a cluster that fails offers nothing.

        With ``telemetry``, also the GPUs its agents report; a dashboard that cannot
        give them (an older Ray, an agent down) leaves them out, nothing else.
        """
        for name, (_config, jobs) in self.clusters.items():
            try:
                reading = _Reading(await jobs.nodes(), await jobs.jobs())
            except ClusterUnreachable as exc:
                logger.warning("%s", exc.message)
                self._readings[name] = _Reading(error=exc.message)
                continue
            try:
                # read after the jobs: an entrypoint of ours submitted in between counts
                # as someone else's until the next reading (placement errs to waiting)
                reading.holders = await jobs.gpu_holders()
            except CosmosError as exc:  # placement falls back on the jobs' metadata
                logger.info("cluster %s: no actors or tasks from Ray: %s", name, exc.message)
            if self.telemetry is not None:
                try:
                    reading.reported = await jobs.gpu_usage()
                except CosmosError as exc:
                    logger.info("cluster %s: no GPU usage from Ray: %s", name, exc.message)
            self._readings[name] = reading

    def host_views(self, ours: Collection[str]) -> list[HostView]:
        """Return every cluster's node views from the last reading."""
        views: list[HostView] = []
        for name, (config, _jobs) in self.clusters.items():
            reading = self._readings[name]
            views.extend(
                node_views(config, reading.nodes, reading.jobs, self.install_id, reading.holders)
            )
        return views

    def error(self, cluster: str) -> str | None:
        """Why the last reading of ``cluster`` failed (None: it answered)."""
        reading = self._readings.get(cluster)
        return reading.error if reading is not None else None

    def node(self, target: str) -> RayNode | None:
        """Return the node a placement name stands for (last reading)."""
        parts = split_target(target)
        if parts is None or parts[0] not in self._readings:
            return None
        for node in self._readings[parts[0]].nodes:
            if node.node_id.startswith(parts[1]):
                return node
        return None

    def unique_ip(self, cluster: str, node: RayNode) -> bool:
        """True when no other alive node shares the node's IP (so ``node:<ip>`` pins it)."""
        nodes = self._readings[cluster].nodes
        return sum(1 for n in nodes if n.alive and n.ip == node.ip) == 1

    def health(self) -> list[ClusterHealth]:
        """Return each cluster's health from the last reading."""
        result = []
        for name in self.clusters:
            reading = self._readings[name]
            if reading.error is not None:
                result.append(ClusterHealth(name, False, reading.error))
                continue
            ours = sum(
                j.num_gpus
                for j in reading.jobs
                if j.live and j.metadata.get(META_INSTALL) == self.install_id
            )
            foreign = foreign_gpus(reading.jobs, reading.holders, self.install_id)
            held: dict[str, tuple[float, float]] = {n: (0.0, g) for n, g in foreign.items()}
            for job in reading.jobs:
                node_id = job.driver_node_id
                if job.live and node_id and job.metadata.get(META_INSTALL) == self.install_id:
                    mine, theirs = held.get(node_id, (0.0, 0.0))
                    held[node_id] = (mine + job.num_gpus, theirs)
            config = self.clusters[name][0]
            with_gpus = {n.node_id for n in reading.nodes if n.alive and n.gpus > 0}
            ssh_hosts = {}
            if self.telemetry is not None:
                for node in reading.nodes:
                    host = node_ssh_host(self.telemetry, config, node.ip)
                    if host is not None:
                        ssh_hosts[node.node_id] = host
            result.append(
                ClusterHealth(
                    name,
                    True,
                    nodes=tuple(reading.nodes),
                    gpus_total=sum(n.gpus for n in reading.nodes if n.alive),
                    gpus_ours=ours,
                    gpus_others=sum(foreign.values()),
                    held=held,
                    reported={k: v for k, v in reading.reported.items() if k in with_gpus},
                    ssh_hosts=ssh_hosts,
                )
            )
        return result


@dataclass(frozen=True)
class CombinedCluster:
    """SSH hosts and cluster nodes in one placement list (the queue places across both)."""

    parts: tuple[object, ...]

    def host_views(self, ours: Collection[str]) -> list[HostView]:
        """Return the views of every part, in order."""
        views: list[HostView] = []
        for part in self.parts:
            views.extend(part.host_views(ours))  # type: ignore[attr-defined]
        return views


def installation_id(data_dir: Path) -> str:
    """Return this installation's id (made once, kept in the data folder).

    Cluster jobs carry it in their metadata, so a restarted app finds its own jobs
    and never adopts another installation's.
    """
    path = data_dir / "installation-id"
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        data_dir.mkdir(parents=True, exist_ok=True)
        value = f"cosmos-{uuid.uuid4().hex[:16]}"
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(value + "\n", encoding="utf-8")
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)  # the first writer wins; others read its id
        temporary.unlink(missing_ok=True)
        return path.read_text(encoding="utf-8").strip()
