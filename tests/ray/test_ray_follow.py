"""Following a cluster run: cancel, a dropped log stream, and reattaching after a restart."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from cosmos_tui.config import Config
from cosmos_tui.domain import RunState
from cosmos_tui.engine.cluster_health import node_target
from cosmos_tui.engine.logs import DockerLogDecoder, LogHub, clean_lines, read_log_lines
from cosmos_tui.engine.ray_cluster import RayClusterView
from cosmos_tui.engine.ray_job import container_name
from cosmos_tui.engine.ray_launch import RayLauncher
from cosmos_tui.errors import ClusterUnreachable
from cosmos_tui.remote.ray_jobs import RayJobs
from cosmos_tui.store.queue_store import QueueStore
from cosmos_tui.store.repositories import Store

pytestmark = pytest.mark.ray


class DroppingJobs(RayJobs):
    """The real Jobs API whose log stream breaks after a few chunks, ``drops`` times."""

    def __init__(self, *args: Any, drops: int = 1, after: int = 3) -> None:
        super().__init__(*args)
        self.drops = drops
        self.after = after

    async def tail(self, submission_id: str) -> AsyncIterator[str]:
        seen = 0
        async for chunk in super().tail(submission_id):
            yield chunk
            seen += 1
            if self.drops > 0 and seen >= self.after:
                self.drops -= 1
                raise ClusterUnreachable("ray", "tunnel closed")


async def claimed(store: Store, run_id: str, target: str) -> Any:
    """Claim and start a queued run on ``target`` as a scheduler does."""
    from cosmos_tui.engine.batching import LaunchGroup
    from cosmos_tui.engine.queue import Placement

    queue = QueueStore(store)
    run = await store.get_run(run_id)
    claim = await queue.claim(
        Placement(LaunchGroup((run,)), target, tuple(range(run.params.num_gpus))), "test-scheduler"
    )
    assert claim is not None
    return await queue.start(run_id, "test-scheduler")


def container_log(docker_daemon: Any, name: str) -> list[str]:
    """The container's log as the pipeline cleans it (stdout and stderr in write order)."""
    socket_arg = f"unix://{docker_daemon.socket_path}"
    raw = subprocess.run(
        ["docker", "-H", socket_arg, "logs", "--timestamps", name],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=True,
    ).stdout
    decoder = DockerLogDecoder()
    lines = decoder.feed(raw) + decoder.flush()
    return [text for line in lines for text in clean_lines(line.data)]


def own_lines(path: Any) -> list[str]:
    return [line for line in read_log_lines(path) if "[cosmos-tui]" not in line]


async def test_dropped_stream_and_restart_reattach_keep_the_log_exact(
    make_cluster_config: Callable[..., Config],
    store: Store,
    queue_run: Any,
    local_ray: Any,
    docker_daemon: Any,
) -> None:
    config = make_cluster_config(speed="0.3")
    cluster = config.clusters[0]
    jobs = DroppingJobs(cluster.name, cluster.address, drops=2, after=2)
    view = RayClusterView({"ray": (cluster, jobs)}, "install-follow")
    await view.refresh()
    run = await queue_run(num_gpus=1)
    started = await claimed(store, run.id, node_target("ray", local_ray.big_node))
    first = RayLauncher(config, store, view, LogHub())
    driving = asyncio.create_task(first.drive(started))
    log_path = config.outputs_dir / run.id / "run.log"
    for _ in range(300):  # the app goes away once some lines are in
        if len(read_log_lines(log_path)) >= 4:
            break
        await asyncio.sleep(0.1)
    assert not driving.done()
    driving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await driving
    assert (await store.get_run(run.id)).state == RunState.RUNNING
    # A new process: it finds the job by its metadata and follows it to the end.
    again = RayLauncher(config, store, view, LogHub())
    ended = await asyncio.wait_for(again.reattach(), 120)
    assert [r.id for r in ended] == [run.id]
    final = await store.get_run(run.id)
    assert final.state == RunState.COMPLETED, final.failure_message
    assert jobs.drops == 0
    expected = container_log(docker_daemon, container_name(final))
    assert own_lines(log_path) == expected  # no line lost, none twice
    assert len(expected) > 10


async def test_cancel_while_running_stops_the_job_and_its_container(
    make_cluster_config: Callable[..., Config],
    store: Store,
    queue_run: Any,
    local_ray: Any,
    docker_daemon: Any,
) -> None:
    config = make_cluster_config(speed="1")
    cluster = config.clusters[0]
    jobs = RayJobs(cluster.name, cluster.address)
    view = RayClusterView({"ray": (cluster, jobs)}, "install-cancel")
    await view.refresh()
    run = await queue_run(num_gpus=2)
    started = await claimed(store, run.id, node_target("ray", local_ray.big_node))
    driving = asyncio.create_task(RayLauncher(config, store, view, LogHub()).drive(started))
    log_path = config.outputs_dir / run.id / "run.log"
    for _ in range(300):
        if len(own_lines(log_path)) >= 2:  # the model is loading in the container
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail(f"the container did not start: {read_log_lines(log_path)}")
    await store.transition(run.id, RunState.CANCELLED, "cancelled by the user")
    final = await asyncio.wait_for(driving, 60)
    assert final.state == RunState.CANCELLED
    job = await jobs.job(run.id)
    assert job is not None and job.status == "STOPPED"
    name = container_name(await store.get_run(run.id))
    running = docker_daemon.cli("ps", "-q", "--filter", f"name={name}").stdout.strip()
    assert running == b""


async def test_a_cluster_run_shows_its_progress_while_it_runs(
    make_cluster_config: Callable[..., Config],
    store: Store,
    queue_run: Any,
    local_ray: Any,
) -> None:
    config = make_cluster_config(speed="0.3")
    cluster = config.clusters[0]
    view = RayClusterView({"ray": (cluster, RayJobs(cluster.name, cluster.address))}, "ip")
    await view.refresh()
    run = await queue_run(num_gpus=1)
    started = await claimed(store, run.id, node_target("ray", local_ray.big_node))
    driving = asyncio.create_task(RayLauncher(config, store, view, LogHub()).drive(started))
    seen = []
    while not driving.done():
        current = await store.get_run(run.id, with_events=False)
        if current.state == RunState.RUNNING and current.progress is not None:
            seen.append(current.progress)
        await asyncio.sleep(0.1)
    final = await driving
    assert final.state == RunState.COMPLETED, final.failure_message
    # The profile's own phases and percent, as for a run on an SSH host.
    assert any(p.percent > 0 and p.phase not in ("", "done") for p in seen), seen
    assert any(p.eta_seconds is not None for p in seen), seen
    percents = [p.percent for p in seen]
    assert percents == sorted(percents)
    after = await store.get_run(run.id, with_events=False)
    assert after.progress is not None and after.progress.percent == 100.0
