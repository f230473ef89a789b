"""Cluster config, health in ``cosmos status``, a cluster that is down, Ray not installed."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cosmos_tui.config import BatchingConfig, Config, load_config
from cosmos_tui.domain import RunState
from cosmos_tui.engine.logs import LogHub
from cosmos_tui.engine.ray_cluster import RayClusterView, installation_id
from cosmos_tui.engine.ray_launch import RayLauncher
from cosmos_tui.engine.scheduler import Scheduler
from cosmos_tui.errors import ClusterUnreachable, ConfigError
from cosmos_tui.remote.ray_jobs import RayJobs
from cosmos_tui.store.queue_store import QueueStore
from cosmos_tui.store.repositories import Store

CLUSTER_TOML = """
[paths]
data_dir = "{data}"

[[clusters]]
name = "lab"
kind = "{kind}"
address = "{address}"
shared_dir = "/shared/cosmos"
resources = {{ ckpt_t1 = 0.001 }}
"""


def write_config(tmp_path: Path, address: str, kind: str = "ray") -> Path:
    path = tmp_path / "config.toml"
    text = CLUSTER_TOML.format(data=tmp_path / "data", kind=kind, address=address)
    path.write_text(text, encoding="utf-8")
    return path


def cosmos(config: Path, *args: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = "\n".join(
        [
            "import sys",
            prelude,
            "from cosmos_tui.cli import main",
            "sys.argv[0] = 'cosmos'",
            "main()",
        ]
    )
    env = {**os.environ, "COSMOS_CONFIG": str(config), "PYTHONPATH": os.getcwd()}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_clusters_section_is_parsed_and_bad_kinds_are_refused(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "http://head:8265"))
    assert [c.name for c in config.clusters] == ["lab"]
    assert config.clusters[0].resources == {"ckpt_t1": 0.001}
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path, "http://head:8265", kind="slurm"))
    assert 'the only kind is "ray"' in caught.value.message
    assert caught.value.line == 7
    tunnel = tmp_path / "tunnel.toml"
    text = CLUSTER_TOML.format(data=tmp_path / "data", kind="ray", address="http://x:1")
    tunnel.write_text(text + 'ssh_host = "head"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(tunnel)
    assert (
        "tunnel.toml:11: 'clusters[0].ssh_host' is 'head', which is not a [[hosts]] name "
        "(known: none)" in caught.value.message
    )
    assert caught.value.line == 11


def test_without_ray_a_cluster_says_what_to_install(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9")
    # Ray made unimportable, as on an install without the extra.
    result = cosmos(config, "status", prelude="sys.modules['ray'] = None")
    assert result.returncode == 1, result.stderr
    assert "pip install 'cosmos-tui[ray]'" in result.stderr
    assert "Traceback" not in result.stderr
    # Everything else works without it.
    assert cosmos(config, "--help", prelude="sys.modules['ray'] = None").returncode == 0


@pytest.mark.ray
def test_status_shows_the_clusters_nodes_and_gpus(local_ray: Any, tmp_path: Path) -> None:
    config = write_config(tmp_path, local_ray.address)
    result = cosmos(config, "status", "--json")
    assert result.returncode == 0, result.stderr
    [cluster] = json.loads(result.stdout)
    assert cluster["reachable"] is True
    assert cluster["gpus"]["total"] == 6
    gpus = sorted(n["gpus"] for n in cluster["nodes"] if n["alive"])
    assert gpus == [0, 2, 4]
    assert any(n["resources"].get("ckpt_t1") == 1 for n in cluster["nodes"])
    text = cosmos(config, "status")
    assert "cluster lab: reachable, 3/3 node(s) alive, 6 GPU(s)" in text.stdout


async def test_a_cluster_that_is_down_keeps_its_runs_queued(
    tmp_path: Path, store: Store, queue_run: Any
) -> None:
    config_path = write_config(tmp_path, "http://127.0.0.1:9")
    result = cosmos(config_path, "status", "--check")
    assert result.returncode == 1
    assert "cluster lab: unreachable" in result.stdout
    config: Config = load_config(config_path)
    cluster = config.clusters[0]
    jobs = RayJobs(cluster.name, cluster.address, timeout=2.0)
    with pytest.raises(ClusterUnreachable):
        await jobs.nodes()
    view = RayClusterView({"lab": (cluster, jobs)}, installation_id(config.data_dir))
    run = await queue_run(num_gpus=1)
    scheduler = Scheduler(
        QueueStore(store),
        view,
        RayLauncher(config, store, view, LogHub()),
        batching=BatchingConfig(enabled=False),
    )
    await view.refresh()
    assert view.health()[0].reachable is False
    plan = await scheduler.plan()
    assert [w.group.head.id for w in plan.waiting] == [run.id]
    assert "no host" in plan.waiting[0].reason
    assert await scheduler.step() == []
    assert (await store.get_run(run.id)).state == RunState.QUEUED


@pytest.mark.ray
async def test_a_submit_is_idempotent(local_ray: Any) -> None:
    jobs = RayJobs("ray", local_ray.address)
    first = await jobs.submit("rs_idempotent", "true", 0, {}, {"cosmos.run_id": "rs_idempotent"})
    again = await jobs.submit("rs_idempotent", "true", 0, {}, {"cosmos.run_id": "rs_idempotent"})
    assert first.submission_id == again.submission_id == "rs_idempotent"
    listed = [j for j in await jobs.jobs() if j.submission_id == "rs_idempotent"]
    assert len(listed) == 1


def installation_ids_are_stable(tmp_path: Path) -> None:
    assert installation_id(tmp_path) == installation_id(tmp_path)


test_installation_ids_are_stable: Callable[[Path], None] = installation_ids_are_stable


async def test_a_head_that_is_down_at_submit_is_not_taken_for_a_lost_node(
    tmp_path: Path, store: Store, queue_run: Any
) -> None:
    # Without a shared folder a run's inputs are on its node's disk: a node the view
    # cannot find is gone, and the run is placed again. A head that does not answer is
    # not that: the run keeps its attempt and waits for the head.
    config: Config = load_config(write_config(tmp_path, "http://127.0.0.1:9"))
    cluster = dataclasses.replace(config.clusters[0], shared_dir="", node_hosts={"10.0.0.5": "x"})
    jobs = RayJobs(cluster.name, cluster.address, timeout=1.0)
    view = RayClusterView({"lab": (cluster, jobs)}, installation_id(config.data_dir))
    await view.refresh()
    assert view.error("lab") is not None
    run = await queue_run(num_gpus=1)
    await store.transition(run.id, RunState.UPLOADING, "claimed", host="lab/0123456789ab")
    run = await store.transition(run.id, RunState.STARTING, "staged", attempt=1)
    launcher = RayLauncher(dataclasses.replace(config, clusters=[cluster]), store, view, LogHub())
    driving = asyncio.create_task(launcher.drive(run))
    try:
        for _ in range(100):
            current = await store.get_run(run.id, with_events=False)
            if current.progress is not None and current.progress.phase == "cluster unreachable":
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the run never waited for the head")
        assert current.state == RunState.STARTING and current.attempt == 1
    finally:
        driving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await driving
