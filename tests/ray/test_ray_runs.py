"""Runs on a real local Ray cluster through the queue, the claim and the run states."""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import Callable
from typing import Any

import pytest

from cosmos_tui.config import BatchingConfig, Config
from cosmos_tui.domain import RunState
from cosmos_tui.engine.cluster_health import node_target
from cosmos_tui.engine.logs import LogHub, read_log_lines
from cosmos_tui.engine.ray_cluster import RayClusterView
from cosmos_tui.engine.ray_job import submission_id
from cosmos_tui.engine.ray_launch import RayLauncher
from cosmos_tui.engine.scheduler import Scheduler
from cosmos_tui.remote.ray_jobs import RayJobs
from cosmos_tui.store.queue_store import QueueStore
from cosmos_tui.store.repositories import Store

pytestmark = pytest.mark.ray


def open_view(config: Config, install: str = "install-test") -> RayClusterView:
    cluster = config.clusters[0]
    return RayClusterView(
        {cluster.name: (cluster, RayJobs(cluster.name, cluster.address))}, install
    )


async def run_queue(store: Store, config: Config, view: RayClusterView) -> Scheduler:
    launcher = RayLauncher(config, store, view, LogHub())
    scheduler = Scheduler(
        QueueStore(store),
        view,
        launcher,
        batching=BatchingConfig(enabled=False),
        poll_interval=0.2,
    )
    stop = asyncio.Event()

    async def refresh() -> None:
        while not stop.is_set():
            await view.refresh()
            scheduler.wake()
            await asyncio.sleep(0.3)

    await view.refresh()
    poller = asyncio.create_task(refresh())
    try:
        await asyncio.wait_for(scheduler.run(until_idle=True), 120)
    finally:
        stop.set()
        await poller
    return scheduler


async def test_runs_placed_by_gpu_count_complete_with_logs_and_outputs(
    make_cluster_config: Callable[..., Config], store: Store, queue_run: Any, local_ray: Any
) -> None:
    config = make_cluster_config()
    view = open_view(config)
    big = await queue_run(num_gpus=4)
    small = await queue_run(num_gpus=1)
    await run_queue(store, config, view)
    big_run = await store.get_run(big.id)
    small_run = await store.get_run(small.id)
    assert big_run.state == RunState.COMPLETED, big_run.failure_message
    assert small_run.state == RunState.COMPLETED, small_run.failure_message
    # Only the 4-GPU worker can hold 4 GPUs; the node that ran the job is recorded.
    assert big_run.host == node_target("ray", local_ray.big_node)
    log = read_log_lines(config.outputs_dir / big.id / "run.log")
    assert any("container cosmos-" in line and "running on GPUs" in line for line in log)
    assert not any("Running entrypoint" in line for line in log)
    assert any(name.endswith(".mp4") for name in big_run.outputs)
    assert (config.outputs_dir / big.id / big_run.outputs[0]).stat().st_size > 0
    # Ray kept one job per run, named by the run id.
    jobs = {job.submission_id for job in await view.clusters["ray"][1].jobs()}
    assert {submission_id(big_run), submission_id(small_run)} <= jobs


async def test_checkpoint_resource_and_priority_order_with_more_runs_than_gpus(
    make_cluster_config: Callable[..., Config], store: Store, queue_run: Any, local_ray: Any
) -> None:
    # Only the small worker holds the checkpoints: its 2 GPUs take one 2-GPU run at a time.
    config = make_cluster_config(resources={"ckpt_t1": 0.001})
    view = open_view(config)
    first = await queue_run(num_gpus=2)
    second = await queue_run(num_gpus=2)
    urgent = await queue_run(num_gpus=2, priority=5)
    await run_queue(store, config, view)
    runs = [await store.get_run(r.id) for r in (urgent, first, second)]
    assert [r.state for r in runs] == [RunState.COMPLETED] * 3, [r.failure_message for r in runs]
    assert {r.host for r in runs} == {node_target("ray", local_ray.small_node)}
    spans = sorted((r.started_at, r.finished_at, r.id) for r in runs)
    # Priority first, then FIFO; never two at once on the 2 GPUs.
    assert [s[2] for s in spans] == [urgent.id, first.id, second.id]
    for earlier, later in itertools.pairwise(spans):
        assert earlier[1] <= later[0]


async def someone_elses_job(client: Any, gpus: int, checkpoint: float) -> str:
    """Submit ``sleep 60`` as another user would, holding ``gpus`` and ``checkpoint`` of
    the checkpoint resource; return its id once it runs."""
    foreign: str = client.submit_job(
        entrypoint="sleep 60",
        entrypoint_num_gpus=gpus,
        entrypoint_resources={"ckpt_t1": checkpoint},
    )
    for _ in range(200):
        if client.get_job_status(foreign).value == "RUNNING":
            break
        await asyncio.sleep(0.1)
    return foreign


async def test_a_job_left_pending_is_stopped_and_retried_then_fails(
    make_cluster_config: Callable[..., Config],
    store: Store,
    queue_run: Any,
    local_ray: Any,
    docker_daemon: Any,
) -> None:
    from ray.job_submission import JobSubmissionClient

    # Someone else's job takes the node's whole checkpoint resource and no GPU: placement
    # sees the GPUs free, Ray keeps ours PENDING; it must not stay there.
    client = JobSubmissionClient(local_ray.address)
    foreign = await someone_elses_job(client, gpus=0, checkpoint=1.0)
    try:
        config = make_cluster_config(resources={"ckpt_t1": 0.001}, pending_timeout=1.0)
        view = open_view(config)
        run = await queue_run(num_gpus=2)
        await run_queue(store, config, view)
        final = await store.get_run(run.id)
        assert final.state == RunState.FAILED
        assert "stayed PENDING" in (final.failure_message or "")
        assert final.attempt == config.retry.max_attempts
    finally:
        client.stop_job(foreign)
    # Ray delivers a stop sent while PENDING only once the job is placed: both attempts
    # then end STOPPED, their containers stopped if they got that far.
    jobs = view.clusters["ray"][1]
    for _ in range(300):
        ours = [j for j in await jobs.jobs() if j.metadata.get("cosmos.run_id") == run.id]
        if all(not j.live for j in ours):
            break
        await asyncio.sleep(0.1)
    assert [j.status for j in ours] == ["STOPPED"] * config.retry.max_attempts
    running = docker_daemon.cli("ps", "-q", "--filter", f"label=cosmos.run_id={run.id}")
    assert running.stdout.strip() == b""  # none left running (an exited one may stay)


async def test_gpus_held_by_someone_elses_job_make_a_run_wait_not_fail(
    make_cluster_config: Callable[..., Config],
    store: Store,
    queue_run: Any,
    local_ray: Any,
) -> None:
    from ray.job_submission import JobSubmissionClient

    # A job of someone who does not use the tool holds the checkpoint node's 2 GPUs;
    # the Jobs API does not say how many, Ray's actors do (its entrypoint is one).
    client = JobSubmissionClient(local_ray.address)
    foreign = await someone_elses_job(client, gpus=2, checkpoint=0.5)
    try:
        config = make_cluster_config(resources={"ckpt_t1": 0.001})
        view = open_view(config)
        await view.refresh()
        [health] = view.health()
        assert health.held[local_ray.small_node] == (0.0, 2.0)
        assert health.gpus_others == 2.0
        run = await queue_run(num_gpus=2)
        scheduler = Scheduler(
            QueueStore(store),
            view,
            RayLauncher(config, store, view, LogHub()),
            batching=BatchingConfig(enabled=False),
        )
        plan = await scheduler.plan()
        assert [w.group.head.id for w in plan.waiting] == [run.id]
        assert await scheduler.step() == []  # nothing submitted to sit PENDING
        assert (await store.get_run(run.id)).state == RunState.QUEUED
    finally:
        client.stop_job(foreign)
    for _ in range(300):  # its entrypoint actor ends a moment after the job
        await view.refresh()
        if view.health()[0].gpus_others == 0:
            break
        await asyncio.sleep(0.1)
    await run_queue(store, config, view)  # the GPUs are free again: it runs
    final = await store.get_run(run.id)
    assert final.state == RunState.COMPLETED, final.failure_message
    assert final.attempt == 1
    assert final.host == node_target("ray", local_ray.small_node)


async def test_gpus_reserved_by_a_placement_group_count_as_others(
    make_cluster_config: Callable[..., Config], local_ray: Any
) -> None:
    from ray.job_submission import JobSubmissionClient

    # How Ray Train, Tune and Serve hold GPUs: a placement group's bundle, its actors'
    # resources renamed (GPU_group_...). A job of someone else reserves 2 GPUs that way.
    # ray.init() with this cluster's own GCS address: another local cluster (the demo's)
    # may be the machine's "current" one
    script = (
        f"import ray, time; ray.init(address='{local_ray.cluster.address}'); "
        "pg = ray.util.placement_group([{'GPU': 2, 'ckpt_t1': 0.5}]); "
        "ray.get(pg.ready()); print('reserved', flush=True); time.sleep(60)"
    )
    client = JobSubmissionClient(local_ray.address)
    entry = f'{sys.executable} -c "{script}"'
    foreign = client.submit_job(entrypoint=entry, entrypoint_num_cpus=0)
    try:
        view = open_view(make_cluster_config())
        held: Any = None
        for _ in range(300):
            await view.refresh()
            held = view.health()[0].held.get(local_ray.small_node)
            if held == (0.0, 2.0):
                break
            await asyncio.sleep(0.2)
        assert held == (0.0, 2.0), (held, client.get_job_logs(foreign)[-2000:])
        [small] = [v for v in view.host_views(()) if local_ray.small_node[:12] in v.name]
        assert len(small.foreign_busy) == 2  # placement sees the node full
    finally:
        client.stop_job(foreign)
