"""``cosmos status`` for clusters: health, nodes and GPUs of each configured Ray cluster."""

from __future__ import annotations

from typing import Any

from cosmos_tui.config import Config
from cosmos_tui.engine.cluster_health import ClusterHealth
from cosmos_tui.engine.ray_cluster import RayClusterView, installation_id
from cosmos_tui.engine.ray_route import ClusterJobs
from cosmos_tui.remote.pool import HostPool
from cosmos_tui.remote.ray_jobs import ReportedGpu
from cosmos_tui.safe_text import one_line


async def cluster_health(config: Config) -> list[ClusterHealth]:
    """Read every configured cluster once (ConfigError when Ray is not installed).

    A cluster behind SSH is read through a tunnel on its host's connection, closed after.
    """
    hosts = HostPool(config)
    try:
        view = RayClusterView(
            ClusterJobs(config.clusters, hosts).all(),
            installation_id(config.data_dir),
            telemetry=config,
        )
        await view.refresh()
        return view.health()
    finally:
        await hosts.aclose()


def health_text(health: ClusterHealth) -> str:
    """Return the lines of one cluster for people."""
    if not health.reachable:
        return f"cluster {health.name}: unreachable\n  problem: {one_line(health.reason)}"
    alive = [n for n in health.nodes if n.alive]
    lines = [
        f"cluster {health.name}: reachable, {len(alive)}/{len(health.nodes)} node(s) alive, "
        f"{health.gpus_total} GPU(s): {health.gpus_ours:g} ours, {health.gpus_others:g} others"
    ]
    for node in health.nodes:
        extra = ", ".join(f"{k}={v:g}" for k, v in sorted(node.resources.items()))
        role = " head" if node.head else ""
        state = "alive" if node.alive else "DEAD"
        lines.append(
            f"  node {node.node_id[:12]} {one_line(node.ip)}{role} {state} "
            f"{node.gpus} GPU(s){' ' + one_line(extra) if extra else ''}"
        )
        host = health.ssh_hosts.get(node.node_id)
        if host is not None:
            lines.append(f"    over SSH as host {one_line(host)}")
        for gpu in health.reported.get(node.node_id, ()):
            lines.append(f"    {reported_text(gpu)}")
    return "\n".join(lines)


def reported_text(gpu: ReportedGpu) -> str:
    """One GPU as Ray reports it, for people: index, name, busy and memory."""
    busy = "?" if gpu.utilization is None else f"{gpu.utilization:.0f}%"
    return (
        f"GPU{gpu.index} {one_line(gpu.name)[:40]} {busy} busy, "
        f"{gpu.memory_used_mib / 1024:.1f}/{gpu.memory_total_mib / 1024:.1f} GiB (Ray)"
    )


def health_json(health: ClusterHealth) -> dict[str, Any]:
    """Return one cluster as JSON."""
    return {
        "cluster": health.name,
        "reachable": health.reachable,
        "reason": health.reason or None,
        "gpus": {
            "total": health.gpus_total,
            "ours": health.gpus_ours,
            "others": health.gpus_others,
        },
        "nodes": [
            {
                "id": n.node_id,
                "ip": n.ip,
                "alive": n.alive,
                "head": n.head,
                "gpus": n.gpus,
                "resources": dict(n.resources),
                "ssh_host": health.ssh_hosts.get(n.node_id),
                "gpu_use": [
                    {
                        "index": g.index,
                        "name": g.name,
                        "utilization": g.utilization,
                        "memory_used_mib": g.memory_used_mib,
                        "memory_total_mib": g.memory_total_mib,
                    }
                    for g in health.reported.get(n.node_id, ())
                ],
            }
            for n in health.nodes
        ],
    }
