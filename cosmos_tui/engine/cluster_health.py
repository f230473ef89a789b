"""What the UI shows of a Ray cluster, and the placement names of its nodes.

Kept apart from :mod:`cosmos_tui.engine.ray_cluster` (which reads the clusters and
places runs, and brings the queue and the store with it) so that the TUI's panes can
name these types without loading SQLAlchemy before the first frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cosmos_tui.remote.ray_jobs import RayNode, ReportedGpu

NODE_ID_CHARS = 12


def node_target(cluster: str, node_id: str) -> str:
    """Return the placement name of a node: ``<cluster>/<node id prefix>``."""
    return f"{cluster}/{node_id[:NODE_ID_CHARS]}"


def split_target(name: str) -> tuple[str, str] | None:
    """Return (cluster, node prefix) of a placement name, or None for an SSH host."""
    cluster, slash, node = name.partition("/")
    return (cluster, node) if slash else None


def is_cluster_target(host: str | None) -> bool:
    """True when a run's host is a cluster node (``<cluster>/<node>``), not an SSH host."""
    return host is not None and split_target(host) is not None


@dataclass(frozen=True)
class ClusterHealth:
    """What ``cosmos status`` shows of a cluster.

    Attributes:
        name: The configured name.
        reachable: Whether the head answered.
        reason: Why not, when it did not.
        nodes: Its nodes.
        gpus_total: GPUs of alive nodes.
        gpus_ours: GPUs held by live jobs of this installation.
        gpus_others: GPUs held by anything else: others' jobs, Ray actors and tasks.
        held: Per node id: GPUs held there by (our jobs, anything else).
        reported: Per node id: its GPUs as Ray's dashboard agent reads them (NVML), for
            nodes with GPUs; read only by views made with ``telemetry``.
        ssh_hosts: Per node id: the ``[[hosts]]`` entry that reaches it over SSH (its
            own card has the nvidia-smi figures).

    """

    name: str
    reachable: bool
    reason: str = ""
    nodes: tuple[RayNode, ...] = ()
    gpus_total: int = 0
    gpus_ours: float = 0.0
    gpus_others: float = 0.0
    held: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    reported: Mapping[str, tuple[ReportedGpu, ...]] = field(default_factory=dict)
    ssh_hosts: Mapping[str, str] = field(default_factory=dict)


__all__ = [
    "NODE_ID_CHARS",
    "ClusterHealth",
    "is_cluster_target",
    "node_target",
    "split_target",
]
