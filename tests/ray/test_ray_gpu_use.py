"""Per-GPU figures of cluster nodes as Ray's own agents report them (NVML).

The session cluster's agents load the NVML stand-in (tests/ray/conftest.py), so Ray
reads GPUs the test sets; the tool reads them from the dashboard as for a real cluster.
A node reached over SSH points at its host card instead (nvidia-smi's figures there).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cosmos_tui.cli.cluster_status import health_text
from cosmos_tui.config import Config, HostConfig, load_config
from cosmos_tui.engine.cluster_health import ClusterHealth
from cosmos_tui.engine.ray_cluster import RayClusterView, installation_id
from cosmos_tui.remote.ray_jobs import RayJobs
from tests.ray.conftest import IDLE_GPUS
from tests.ray.test_ray_cluster import cosmos, write_config

pytestmark = [pytest.mark.ray, pytest.mark.timeout(180)]

H100 = "NVIDIA H100 80GB HBM3"
BUSY = [(37, 2048, 81559, H100), (91, 40960, 81559, H100)]
CHANGED = [(3, 512, 81559, H100), (64, 70000, 81559, H100)]


@pytest.fixture
def gpus(local_ray: Any) -> Iterator[Any]:
    """The session's NVML stand-in; back to idle GPUs after the test."""
    yield local_ray
    local_ray.set_gpus(IDLE_GPUS)


def figures(health: ClusterHealth, node_id: str) -> list[tuple[float | None, float, str]]:
    return [(g.utilization, g.memory_used_mib, g.name) for g in health.reported.get(node_id, ())]


async def reported_as(
    view: RayClusterView, nodes: list[str], wanted: list[tuple[int, int, int, str]]
) -> ClusterHealth:
    """Read the cluster until every node in ``nodes`` reports ``wanted`` (Ray: ~5 s)."""
    expected = [(float(u), float(used), name) for u, used, _total, name in wanted]
    deadline = time.monotonic() + 60
    while True:
        await view.refresh()
        [health] = view.health()
        if all(figures(health, node) == expected for node in nodes):
            return health
        if time.monotonic() > deadline:
            pytest.fail(f"Ray never reported {expected}: {dict(health.reported)}")
        await asyncio.sleep(0.5)


def lab_view(config: Config) -> RayClusterView:
    cluster = config.clusters[0]
    jobs = RayJobs(cluster.name, cluster.address, timeout=5.0)
    return RayClusterView({cluster.name: (cluster, jobs)}, installation_id(config.data_dir), config)


async def test_each_nodes_gpus_show_as_ray_reports_them_and_follow_changes(
    gpus: Any, tmp_path: Path
) -> None:
    path = write_config(tmp_path, gpus.address)
    view = lab_view(load_config(path))
    workers = [gpus.small_node, gpus.big_node]
    gpus.set_gpus(BUSY)
    health = await reported_as(view, workers, BUSY)
    head = next(n for n in health.nodes if n.head)
    assert head.node_id not in health.reported  # no GPU for Ray there: none shown
    assert health.ssh_hosts == {}

    result = await asyncio.to_thread(cosmos, path, "status", "--json")
    assert result.returncode == 0, result.stderr
    [cluster] = json.loads(result.stdout)
    nodes = {n["id"]: n for n in cluster["nodes"]}
    assert nodes[head.node_id]["gpu_use"] == []
    small = nodes[gpus.small_node]
    assert small["ssh_host"] is None
    assert small["gpu_use"] == [
        {
            "index": 0,
            "name": H100,
            "utilization": 37.0,
            "memory_used_mib": 2048.0,
            "memory_total_mib": 81559.0,
        },
        {
            "index": 1,
            "name": H100,
            "utilization": 91.0,
            "memory_used_mib": 40960.0,
            "memory_total_mib": 81559.0,
        },
    ]
    text = await asyncio.to_thread(cosmos, path, "status")
    assert f"GPU1 {H100} 91% busy, 40.0/79.6 GiB (Ray)" in text.stdout, text.stdout

    gpus.set_gpus(CHANGED)  # read live, every few seconds
    health = await reported_as(view, workers, CHANGED)
    assert figures(health, gpus.big_node)[1] == (64.0, 70000.0, H100)


async def test_a_node_reached_over_ssh_points_at_its_host_card(gpus: Any, tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, gpus.address))
    view = lab_view(config)
    await view.refresh()
    [health] = view.health()
    small = next(n for n in health.nodes if n.node_id == gpus.small_node)
    host = HostConfig(name="gpu-box", hostname=small.ip)
    with_host = dataclasses.replace(config, hosts=[host])
    view = lab_view(with_host)
    await view.refresh()
    [health] = view.health()
    # every node of the local cluster shares this machine's IP: all reach "gpu-box"
    assert health.ssh_hosts[gpus.small_node] == "gpu-box"
    text = health_text(health)
    assert "over SSH as host gpu-box" in text
    named = dataclasses.replace(
        config,
        hosts=[dataclasses.replace(host, hostname="elsewhere")],
        clusters=[dataclasses.replace(config.clusters[0], node_hosts={small.ip: "gpu-box"})],
    )
    view = lab_view(named)
    await view.refresh()
    assert view.health()[0].ssh_hosts[gpus.big_node] == "gpu-box"
