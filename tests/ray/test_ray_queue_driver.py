"""The app's queue driver on a real local Ray cluster: routing, cancel, reattach, node loss.

``QueueService.drive`` is what ``cosmos queue run`` and the TUI run; with a
``[[clusters]]`` entry it places runs on cluster nodes beside SSH hosts, runs each as a
Ray Job, and takes over what an earlier driver left.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import itertools
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from cosmos_tui.config import Config, RetryConfig
from cosmos_tui.domain import FailureKind, GenerationParams, InputFile, Run, RunState
from cosmos_tui.engine.cluster_health import node_target
from cosmos_tui.engine.logs import LogHub, read_log_lines
from cosmos_tui.engine.ray_cluster import RayClusterView
from cosmos_tui.engine.ray_job import container_name, submission_id
from cosmos_tui.engine.ray_launch import RayLauncher
from cosmos_tui.remote.ray_jobs import RayJobs
from cosmos_tui.sandbox.netshape import LinkShape, ShapedLink
from cosmos_tui.services.queue import QueueService
from cosmos_tui.services.workbench import Workbench
from tests.conftest import write_video
from tests.ray.test_ray_follow import container_log, own_lines

pytestmark = pytest.mark.ray


COUNTER = itertools.count()


async def add_run(
    bench: Workbench, tmp_path: Path, num_gpus: int = 1, target: str | None = None
) -> Run:
    n = next(COUNTER)
    video = write_video(tmp_path / "videos" / f"q{n}" / "color.mp4", f"q{n}".encode())
    data = video.read_bytes()
    item = InputFile("color", video, hashlib.sha256(data).hexdigest(), len(data))
    prompt = await bench.store.add_prompt(f"a robot arm, take {n}", [item])
    params = GenerationParams(negative_prompt="ugly", num_gpus=num_gpus, num_steps=4)
    run = await bench.store.add_run(prompt.id, params)
    if target is not None:  # pinned, as `--host CLUSTER` pins it
        await bench.store.update_run(run.id, target=target)
    return run


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def running_with_lines(bench: Workbench, run_id: str, lines: int = 2) -> Callable[[], Any]:
    async def check() -> bool:
        run = await bench.store.get_run(run_id, with_events=False)
        log = read_log_lines(bench.config.outputs_dir / run_id / "run.log")
        own = [line for line in log if "[cosmos-tui]" not in line]
        return run.state == RunState.RUNNING and len(own) >= lines

    return check


def job_status(jobs: RayJobs, sid: str, wanted: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        job = await jobs.job(sid)
        return job is not None and job.status == wanted

    return check


def containers(docker_daemon: Any, name: str, running_only: bool = False) -> list[str]:
    args = ["ps", "--format", "{{.Names}}", "--filter", f"name=^{name}$"]
    if not running_only:
        args.insert(1, "-a")
    return docker_daemon.cli(*args).stdout.decode().split()


def jobs_of(config: Config) -> RayJobs:
    cluster = config.clusters[0]
    return RayJobs(cluster.name, cluster.address)


async def stop_driver(driving: asyncio.Task[Any]) -> None:
    driving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await driving


async def test_the_queue_driver_runs_cluster_runs_alone_and_cancel_stops_the_job(
    make_cluster_config: Callable[..., Config],
    tmp_path: Path,
    local_ray: Any,
    docker_daemon: Any,
) -> None:
    config = make_cluster_config(speed="0.3")
    jobs = jobs_of(config)
    async with Workbench.open(config) as bench:
        doomed, first, second = [await add_run(bench, tmp_path) for _ in range(3)]
        driving = asyncio.create_task(QueueService.of(bench).drive(until_idle=True))
        await until(running_with_lines(bench, doomed.id), 120, "the first run to run")
        # The CLI's reconcile leaves cluster runs to the queue driver.
        report = await bench.runs.reconcile()
        assert doomed.id not in report.failed and doomed.id not in report.dispatched
        assert not any("/" in name for name, _reason in report.unreachable)
        cancelled = await bench.runs.cancel(doomed.id)
        assert cancelled.state == RunState.CANCELLED
        await until(job_status(jobs, doomed.id, "STOPPED"), 30, "the job to stop")
        await asyncio.wait_for(driving, 240)
        for run_id in (first.id, second.id):
            run = await bench.store.get_run(run_id)
            assert run.state == RunState.COMPLETED, run.failure_message
            assert run.host is not None and run.host.startswith("ray/")
            assert run.batch_id is None  # several alike runs, but a node takes single runs
            assert (config.outputs_dir / run_id / run.outputs[0]).stat().st_size > 0
        assert (await bench.store.get_run(doomed.id)).state == RunState.CANCELLED
        name = container_name(await bench.store.get_run(doomed.id))
        assert containers(docker_daemon, name, running_only=True) == []


async def test_cancel_with_no_driver_left_stops_the_job_on_the_cluster(
    make_cluster_config: Callable[..., Config],
    tmp_path: Path,
    local_ray: Any,
    docker_daemon: Any,
) -> None:
    config = make_cluster_config(speed="1")
    jobs = jobs_of(config)
    async with Workbench.open(config) as bench:
        run = await add_run(bench, tmp_path, num_gpus=2)
        driving = asyncio.create_task(QueueService.of(bench).drive())
        await until(running_with_lines(bench, run.id), 120, "the run to run")
        await stop_driver(driving)  # the app went away; the job goes on
        job = await jobs.job(submission_id(await bench.store.get_run(run.id)))
        assert job is not None and job.live
        cancelled = await bench.runs.cancel(run.id)
        assert cancelled.state == RunState.CANCELLED
        await until(job_status(jobs, run.id, "STOPPED"), 30, "the job to stop")
        name = container_name(await bench.store.get_run(run.id))
        for _ in range(100):
            if not containers(docker_daemon, name, running_only=True):
                break
            await asyncio.sleep(0.1)
        assert containers(docker_daemon, name, running_only=True) == []


async def test_a_new_driver_follows_live_jobs_and_stops_those_of_ended_runs(
    make_cluster_config: Callable[..., Config],
    tmp_path: Path,
    local_ray: Any,
    docker_daemon: Any,
) -> None:
    config = make_cluster_config(speed="0.3")
    jobs = jobs_of(config)
    async with Workbench.open(config) as bench:
        kept, dropped = [await add_run(bench, tmp_path) for _ in range(2)]
        driving = asyncio.create_task(QueueService.of(bench).drive())
        for run in (kept, dropped):
            await until(running_with_lines(bench, run.id), 120, f"{run.id} to run")
        await stop_driver(driving)
        # A cancel recorded while the cluster could not be reached: the job runs on.
        await bench.store.transition(dropped.id, RunState.CANCELLED, "cancelled by the user")
        assert (await jobs.job(dropped.id)).live  # type: ignore[union-attr]
        await asyncio.wait_for(QueueService.of(bench).drive(until_idle=True), 240)
        final = await bench.store.get_run(kept.id)
        assert final.state == RunState.COMPLETED, final.failure_message
        await until(job_status(jobs, dropped.id, "STOPPED"), 30, "the ended run's job to stop")
        log = read_log_lines(config.outputs_dir / kept.id / "run.log")
        assert len(log) == len(set(log))  # followed on by the second driver, nothing twice
        assert sum("container exited 0" in line for line in log) == 1


async def test_a_lost_node_sends_its_run_to_another_node_as_a_new_attempt(
    make_cluster_config: Callable[..., Config],
    tmp_path: Path,
    local_ray: Any,
    docker_daemon: Any,
) -> None:
    config = make_cluster_config(speed="0.3")
    jobs = jobs_of(config)
    client = jobs._sdk()
    cluster = local_ray.cluster
    node = cluster.add_node(num_cpus=1, num_gpus=1)
    cluster.wait_for_nodes()
    lost = node_target("ray", node.node_id)
    # Someone else's jobs hold every GPU of the two other nodes, so the run can only start
    # on the new one (Ray, not the tool, picks among nodes that share an IP).
    blockers = [
        client.submit_job(entrypoint="sleep 600", entrypoint_num_gpus=gpus, entrypoint_num_cpus=0)
        for gpus in (4, 2)
    ]
    removed = False
    try:
        for sid in blockers:
            await until(job_status(jobs, sid, "RUNNING"), 60, f"blocker {sid}")
        async with Workbench.open(config) as bench:
            run = await add_run(bench, tmp_path)
            driving = asyncio.create_task(QueueService.of(bench).drive(until_idle=True))
            await until(running_with_lines(bench, run.id), 120, "the run to run")
            assert (await bench.store.get_run(run.id)).host == lost
            for sid in blockers:
                client.stop_job(sid)
            cluster.remove_node(node)
            removed = True
            await asyncio.wait_for(driving, 240)
            final = await bench.store.get_run(run.id)
            assert final.state == RunState.COMPLETED, final.failure_message
            assert final.attempt == 2
            assert final.host is not None and final.host.startswith("ray/") and final.host != lost
            log = read_log_lines(config.outputs_dir / run.id / "run.log")
            note = [i for i, line in enumerate(log) if "was lost during attempt 1" in line]
            assert len(note) == 1 and "retry 2 of 2 on another node" in log[note[0]]
            assert lost in log[note[0]]
            assert any("container exited 0" in line for line in log[note[0] :])
            reasons = [event.reason for event in final.events]
            assert any("was lost during attempt 1" in reason for reason in reasons)
            # One container per attempt; the retry never reuses the lost attempt's.
            assert container_name(final) == f"cosmos-{run.id}-a2"
            assert len(containers(docker_daemon, f"cosmos-{run.id}-a2")) == 1
            assert len(containers(docker_daemon, f"cosmos-{run.id}-a1")) == 1
            assert (bench.config.outputs_dir / run.id / "run.log").exists()
            assert not (bench.config.outputs_dir / run.id / "run.attempt1.log").exists()
    finally:
        for sid in blockers:
            client.stop_job(sid)
        if not removed:
            cluster.remove_node(node)


async def test_a_lost_node_on_the_last_attempt_fails_the_run_saying_so(
    make_cluster_config: Callable[..., Config],
    tmp_path: Path,
    local_ray: Any,
) -> None:
    config = make_cluster_config(speed="1")
    config = dataclasses.replace(config, retry=RetryConfig(max_attempts=1, backoff_base=0.1))
    client = jobs_of(config)._sdk()
    cluster = local_ray.cluster
    node = cluster.add_node(num_cpus=1, num_gpus=1)
    cluster.wait_for_nodes()
    blockers = [
        client.submit_job(entrypoint="sleep 600", entrypoint_num_gpus=gpus, entrypoint_num_cpus=0)
        for gpus in (4, 2)
    ]
    removed = False
    try:
        for sid in blockers:
            await until(job_status(jobs_of(config), sid, "RUNNING"), 60, f"blocker {sid}")
        async with Workbench.open(config) as bench:
            run = await add_run(bench, tmp_path)
            driving = asyncio.create_task(QueueService.of(bench).drive(until_idle=True))
            await until(running_with_lines(bench, run.id), 120, "the run to run")
            assert (await bench.store.get_run(run.id)).host == node_target("ray", node.node_id)
            cluster.remove_node(node)
            removed = True
            await asyncio.wait_for(driving, 120)
            final = await bench.store.get_run(run.id)
            assert final.state == RunState.FAILED
            assert final.failure_kind == FailureKind.CONTAINER_GONE
            assert "was lost during attempt 1; no retry left (1 attempts)" in (
                final.failure_message or ""
            )
    finally:
        for sid in blockers:
            client.stop_job(sid)
        if not removed:
            cluster.remove_node(node)


async def test_the_app_driver_keeps_runs_queued_while_the_cluster_is_down(
    make_cluster_config: Callable[..., Config], tmp_path: Path
) -> None:
    config = make_cluster_config()
    down = dataclasses.replace(config.clusters[0], address="http://127.0.0.1:9")
    config = dataclasses.replace(config, clusters=[down])
    async with Workbench.open(config) as bench:
        run = await add_run(bench, tmp_path)
        stop = asyncio.Event()
        driving = asyncio.create_task(QueueService.of(bench).drive(stop=stop))
        await asyncio.sleep(3)
        stop.set()
        await asyncio.wait_for(driving, 30)
        after = await bench.store.get_run(run.id)
        assert after.state == RunState.QUEUED and after.failure_kind is None
        view = await QueueService.of(bench).view()
        assert [g.head.id for g in view.groups] == [run.id]


async def test_a_user_retry_of_a_cancelled_cluster_run_starts_a_fresh_log(
    make_cluster_config: Callable[..., Config],
    tmp_path: Path,
    local_ray: Any,
) -> None:
    config = make_cluster_config(speed="0.3")
    async with Workbench.open(config) as bench:
        run = await add_run(bench, tmp_path)
        driving = asyncio.create_task(QueueService.of(bench).drive(until_idle=True))
        await until(running_with_lines(bench, run.id, lines=3), 120, "the run to run")
        await bench.runs.cancel(run.id)
        await asyncio.wait_for(driving, 120)
        folder = config.outputs_dir / run.id
        first = read_log_lines(folder / "run.log")
        assert not any("container exited 0" in line for line in first)
        # Retried by the user: with only clusters configured it goes to the queue.
        assert bench.runs.goes_to_queue(None, (await bench.store.get_run(run.id)).host)
        await bench.runs.start(run.id)
        await asyncio.wait_for(QueueService.of(bench).drive(until_idle=True), 180)
        final = await bench.store.get_run(run.id)
        assert final.state == RunState.COMPLETED, final.failure_message
        assert final.attempt == 2
        assert read_log_lines(folder / "run.attempt1.log") == first
        again = read_log_lines(folder / "run.log")
        assert any("container exited 0" in line for line in again)
        # Each log holds its own attempt only (the entrypoint names the container).
        assert any(f"cosmos-{run.id}-a1" in line for line in first)
        assert not any(f"cosmos-{run.id}-a1" in line for line in again)
        assert any(f"cosmos-{run.id}-a2" in line for line in again)


async def test_cancel_while_the_job_waits_to_start_stops_it_before_its_container(
    make_cluster_config: Callable[..., Config],
    tmp_path: Path,
    local_ray: Any,
    docker_daemon: Any,
) -> None:
    config = make_cluster_config(resources={"ckpt_t1": 0.001}, pending_timeout=120.0)
    jobs = jobs_of(config)
    client = jobs._sdk()
    # Someone else's job takes the node's whole checkpoint resource and no GPU: the
    # queue sees the GPUs free and submits; Ray keeps ours PENDING (the run STARTING).
    foreign = client.submit_job(
        entrypoint="sleep 120", entrypoint_num_gpus=0, entrypoint_resources={"ckpt_t1": 1.0}
    )
    try:
        await until(job_status(jobs, foreign, "RUNNING"), 60, "the foreign job")
        async with Workbench.open(config) as bench:
            run = await add_run(bench, tmp_path, num_gpus=2)
            driving = asyncio.create_task(QueueService.of(bench).drive(until_idle=True))

            async def pending() -> bool:
                current = await bench.store.get_run(run.id, with_events=False)
                job = await jobs.job(submission_id(current)) if current.attempt else None
                return current.state == RunState.STARTING and job is not None

            await until(pending, 60, "the job to wait in Ray")
            cancelled = await bench.runs.cancel(run.id)
            assert cancelled.state == RunState.CANCELLED
            client.stop_job(foreign)  # Ray places ours now, and stops it at once
            await asyncio.wait_for(driving, 120)
            await until(job_status(jobs, run.id, "STOPPED"), 60, "our job to stop")
            final = await bench.store.get_run(run.id)
            assert final.state == RunState.CANCELLED
            for _ in range(100):
                if not containers(docker_daemon, container_name(final), running_only=True):
                    break
                await asyncio.sleep(0.1)
            assert containers(docker_daemon, container_name(final), running_only=True) == []
    finally:
        client.stop_job(foreign)


async def test_a_shared_folder_this_machine_cannot_write_fails_the_run_once(
    make_cluster_config: Callable[..., Config],
    tmp_path: Path,
    local_ray: Any,
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the shared folder should be\n")
    config = make_cluster_config()
    cluster = dataclasses.replace(config.clusters[0], shared_dir=str(blocked / "shared"))
    config = dataclasses.replace(config, clusters=[cluster])
    async with Workbench.open(config) as bench:
        run = await add_run(bench, tmp_path)
        await asyncio.wait_for(QueueService.of(bench).drive(until_idle=True), 120)
        final = await bench.store.get_run(run.id)
        assert final.state == RunState.FAILED, [(e.to_state, e.reason) for e in final.events]
        assert (final.failure_message or "").startswith("staging failed: ")
        # one pass through staging, not a requeue loop
        assert sum(e.to_state == RunState.UPLOADING for e in final.events) == 1


async def test_stopping_a_job_that_was_never_submitted_returns_at_once(
    make_cluster_config: Callable[..., Config], store: Any, local_ray: Any
) -> None:
    config = make_cluster_config()
    jobs = jobs_of(config)
    view = RayClusterView({"ray": (config.clusters[0], jobs)}, "install-stop")
    launcher = RayLauncher(config, store, view, LogHub())
    began = asyncio.get_running_loop().time()
    assert await launcher._stop_until_ended(jobs, "rs_never_submitted", tries=30) is True
    assert asyncio.get_running_loop().time() - began < 5


async def test_pinned_runs_go_to_their_cluster_or_ssh_host_and_nowhere_else(
    make_cluster_config: Callable[..., Config],
    make_config: Callable[..., Config],
    tmp_path: Path,
) -> None:
    # A real SSH host (sshd, dockerd, the nvidia-smi stand-in) beside the cluster: left
    # to itself the queue would send a run to the node with the most free GPUs.
    ssh = make_config(scenario="ok").hosts[0]
    config = dataclasses.replace(make_cluster_config(speed="0.3"), hosts=[ssh])
    async with Workbench.open(config) as bench:
        to_cluster, to_host = await add_run(bench, tmp_path), await add_run(bench, tmp_path)
        await bench.store.update_run(to_cluster.id, target="ray")
        await bench.store.update_run(to_host.id, target=ssh.name)
        view = await QueueService.of(bench).view()
        assert {g.head.id: g.target for g in view.groups} == {
            to_cluster.id: "ray",
            to_host.id: ssh.name,
        }
        await asyncio.wait_for(QueueService.of(bench).drive(until_idle=True), 240)
        cluster_run = await bench.store.get_run(to_cluster.id)
        host_run = await bench.store.get_run(to_host.id)
        for run in (cluster_run, host_run):
            assert run.state == RunState.COMPLETED, run.failure_message
            assert (config.outputs_dir / run.id / run.outputs[0]).stat().st_size > 0
        assert cluster_run.host is not None and cluster_run.host.startswith("ray/")
        assert host_run.host == ssh.name


def through(config: Config, port: int) -> Config:
    """The config with the cluster's dashboard reached through a proxy on ``port``."""
    cluster = dataclasses.replace(config.clusters[0], address=f"http://127.0.0.1:{port}")
    return dataclasses.replace(config, clusters=[cluster])


def phase_is(bench: Workbench, run_id: str, phase: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        run = await bench.store.get_run(run_id, with_events=False)
        return run.progress is not None and run.progress.phase == phase

    return check


async def test_a_head_that_goes_away_mid_run_keeps_the_run_and_its_log_exact(
    make_cluster_config: Callable[..., Config],
    tmp_path: Path,
    local_ray: Any,
    docker_daemon: Any,
) -> None:
    direct = make_cluster_config(speed="0.3")
    with ShapedLink(int(local_ray.address.rsplit(":", 1)[1]), LinkShape()) as link:
        config = through(direct, link.port)
        async with Workbench.open(config) as bench:
            run = await add_run(bench, tmp_path)
            driving = asyncio.create_task(QueueService.of(bench).drive(until_idle=True))
            await until(running_with_lines(bench, run.id, 3), 120, "the run to run")
            before = await bench.store.get_run(run.id)
            await asyncio.to_thread(link.down)  # the head's machine is gone (RST, refused)
            await until(phase_is(bench, run.id, "cluster unreachable"), 30, "the phase")
            await asyncio.sleep(3)
            during = await bench.store.get_run(run.id)
            # Not a lost node: the same attempt, still running, nothing queued again.
            assert during.state == RunState.RUNNING and during.attempt == before.attempt
            assert not driving.done()
            await asyncio.to_thread(link.up)
            await asyncio.wait_for(driving, 180)
            final = await bench.store.get_run(run.id)
            assert final.state == RunState.COMPLETED, final.failure_message
            assert final.attempt == before.attempt
    log_path = config.outputs_dir / run.id / "run.log"
    expected = container_log(docker_daemon, container_name(final))
    assert own_lines(log_path) == expected and len(expected) > 10  # none lost, none twice
    notes = [line for line in read_log_lines(log_path) if "[cosmos-tui]" in line]
    assert len(notes) == 2 and "running on GPUs" in notes[0]  # the entrypoint's own
    assert notes[1].endswith("container exited 0")  # and no gap, no new attempt


async def test_a_cancel_while_the_head_is_away_stops_the_job_once_it_is_back(
    make_cluster_config: Callable[..., Config],
    tmp_path: Path,
    local_ray: Any,
    docker_daemon: Any,
) -> None:
    direct = make_cluster_config(speed="1")
    jobs = jobs_of(direct)  # the test's own view, not through the proxy
    with ShapedLink(int(local_ray.address.rsplit(":", 1)[1]), LinkShape()) as link:
        config = through(direct, link.port)
        async with Workbench.open(config) as bench:
            run = await add_run(bench, tmp_path)
            driving = asyncio.create_task(QueueService.of(bench).drive(until_idle=True))
            await until(running_with_lines(bench, run.id), 120, "the run to run")
            await asyncio.to_thread(link.down)
            await until(phase_is(bench, run.id, "cluster unreachable"), 30, "the phase")
            cancelled = await bench.runs.cancel(run.id)  # the stop does not get through
            assert cancelled.state == RunState.CANCELLED
            await asyncio.sleep(2)
            sid = submission_id(await bench.store.get_run(run.id))
            assert (job := await jobs.job(sid)) is not None and job.live
            await asyncio.to_thread(link.up)  # back within the driver's 30 s of asking
            await until(job_status(jobs, sid, "STOPPED"), 30, "the job to stop")
            await asyncio.wait_for(driving, 60)
            assert (await bench.store.get_run(run.id)).state == RunState.CANCELLED
    name = container_name(cancelled)
    for _ in range(100):
        if not containers(docker_daemon, name, running_only=True):
            break
        await asyncio.sleep(0.1)
    assert containers(docker_daemon, name, running_only=True) == []


def processes_naming(name: str) -> dict[int, int]:
    """Return {pid: parent pid} of the processes whose command line holds ``name``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if name.encode() in command:
            found[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return found


async def test_an_entrypoint_killed_outright_leaves_no_container_running(
    make_cluster_config: Callable[..., Config],
    tmp_path: Path,
    docker_daemon: Any,
) -> None:
    config = make_cluster_config(speed="1")
    async with Workbench.open(config) as bench:
        run = await add_run(bench, tmp_path)
        driving = asyncio.create_task(QueueService.of(bench).drive(until_idle=True))
        await until(running_with_lines(bench, run.id), 120, "the run to run")
        name = container_name(await bench.store.get_run(run.id))
        assert containers(docker_daemon, name, running_only=True) == [name]
        found = processes_naming(name)
        # The watchdog leads a session of its own, under the entrypoint.
        watchdogs = {
            pid for pid, parent in found.items() if parent in found and os.getsid(pid) == pid
        }
        assert watchdogs, found
        for pid in set(found) - watchdogs:  # the entrypoint's whole group, as a raylet's end
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for _ in range(200):
            if not containers(docker_daemon, name, running_only=True):
                break
            await asyncio.sleep(0.1)
        assert containers(docker_daemon, name, running_only=True) == []
        await asyncio.wait_for(driving, 60)
        final = await bench.store.get_run(run.id)
        assert final.state == RunState.FAILED  # the job failed; the run says so
    assert not set(processes_naming(name)) & watchdogs  # the watchdog ended too


async def test_a_node_that_is_also_an_ssh_host_gives_its_runs_gpu_metrics(
    make_cluster_config: Callable[..., Config],
    make_config: Callable[..., Config],
    fake_gpu: Any,
    tmp_path: Path,
) -> None:
    fake_gpu.set_variant("8gpu")  # the node's nvidia-smi (the stand-in), read over SSH
    ssh = make_config(scenario="ok").hosts[0]
    direct = make_cluster_config(speed="0.3")
    ip = (await jobs_of(direct).nodes())[0].ip  # every node of the local cluster shares it
    cluster = dataclasses.replace(direct.clusters[0], node_hosts={ip: ssh.name})
    config = dataclasses.replace(direct, hosts=[ssh], clusters=[cluster])
    async with Workbench.open(config) as bench:
        run = await add_run(bench, tmp_path, target="ray")
        await asyncio.wait_for(QueueService.of(bench).drive(until_idle=True), 240)
        final = await bench.store.get_run(run.id)
    assert final.state == RunState.COMPLETED, final.failure_message
    assert final.host is not None and final.host.startswith("ray/")
    # The GPU Ray gave the entrypoint (CUDA_VISIBLE_DEVICES), not the planner's slot.
    assert len(final.devices) == 1 and 0 <= final.devices[0] < 6
    assert final.metrics is not None and final.metrics.samples >= 2
    assert final.metrics.util_peak is not None and final.metrics.util_peak > 0


async def test_without_a_shared_folder_a_run_is_staged_over_ssh_to_its_node(
    make_cluster_config: Callable[..., Config],
    make_config: Callable[..., Config],
    local_ray: Any,
    tmp_path: Path,
) -> None:
    ssh = make_config(scenario="ok").hosts[0]
    direct = make_cluster_config(speed="0.3")
    ip = (await jobs_of(direct).nodes())[0].ip
    cluster = dataclasses.replace(direct.clusters[0], shared_dir="", node_hosts={ip: ssh.name})
    config = dataclasses.replace(direct, hosts=[ssh], clusters=[cluster])
    async with Workbench.open(config) as bench:
        run = await add_run(bench, tmp_path, target="ray")
        await asyncio.wait_for(QueueService.of(bench).drive(until_idle=True), 240)
        final = await bench.store.get_run(run.id)
        host = bench.hosts.get(ssh.name)
        tool_dir = await host.tool_dir()
        listing = await host.files.listdir(f"{tool_dir}/runs/{run.id}/output")
        inputs = {entry.name for entry in await host.files.listdir(f"{tool_dir}/inputs")}
        prompt = await bench.store.get_prompt(run.prompt_id or "")
    assert final.state == RunState.COMPLETED, final.failure_message
    assert final.host is not None and final.host.startswith("ray/")
    # The input was uploaded content-addressed into the node's own tool folder.
    assert f"{prompt.inputs[0].sha256}.mp4" in inputs
    local = config.outputs_dir / run.id
    assert final.outputs and all((local / name).stat().st_size > 0 for name in final.outputs)
    videos = [name for name in final.outputs if name.endswith(".mp4")]
    assert videos and {entry.name for entry in listing} >= {Path(v).name for v in videos}
    # Nothing went through the (unset) shared folder.
    assert not (local_ray.shared / "runs" / run.id).exists()


def staged_over_ssh(
    make_cluster_config: Callable[..., Config],
    make_config: Callable[..., Config],
    ssh_server: Any,
    link: ShapedLink,
    ip: str,
    speed: str = "0.3",
) -> Config:
    """A cluster without a shared folder whose node is reached over SSH through ``link``."""
    ssh = make_config(scenario="ok").hosts[0]
    ssh = dataclasses.replace(ssh, **ssh_server.connection_fields(link.port))
    direct = make_cluster_config(speed=speed)
    cluster = dataclasses.replace(direct.clusters[0], shared_dir="", node_hosts={ip: ssh.name})
    return dataclasses.replace(direct, hosts=[ssh], clusters=[cluster])


async def test_a_node_whose_ssh_host_is_away_fails_the_run_after_its_attempts(
    make_cluster_config: Callable[..., Config],
    make_config: Callable[..., Config],
    ssh_server: Any,
    local_ray: Any,
    tmp_path: Path,
) -> None:
    ip = (await jobs_of(make_cluster_config()).nodes())[0].ip
    with ShapedLink(ssh_server.port, LinkShape()) as link:
        config = staged_over_ssh(make_cluster_config, make_config, ssh_server, link, ip)
        await asyncio.to_thread(link.down)  # the node's SSH host refuses every connection
        async with Workbench.open(config) as bench:
            run = await add_run(bench, tmp_path, target="ray")
            await asyncio.wait_for(QueueService.of(bench).drive(until_idle=True), 120)
            final = await bench.store.get_run(run.id)
    limit = config.retry.max_attempts
    assert final.state == RunState.FAILED, final.state
    # Each staging that failed used an attempt: the run did not go round forever.
    assert final.attempt == limit
    assert f"(attempt {limit})" in (final.failure_message or "")
    reasons = [e.reason for e in final.events if e.to_state == RunState.QUEUED]
    assert any(r.startswith(f"retry 2 of {limit} after:") for r in reasons), reasons
    # Nothing reached Ray.
    sids = {j.submission_id for j in await jobs_of(config).jobs()}
    assert not any(sid.startswith(run.id) for sid in sids)


async def test_outputs_are_collected_again_when_the_nodes_ssh_host_comes_back(
    make_cluster_config: Callable[..., Config],
    make_config: Callable[..., Config],
    ssh_server: Any,
    local_ray: Any,
    tmp_path: Path,
) -> None:
    ip = (await jobs_of(make_cluster_config()).nodes())[0].ip
    with ShapedLink(ssh_server.port, LinkShape()) as link:
        config = staged_over_ssh(make_cluster_config, make_config, ssh_server, link, ip, "1")
        config = dataclasses.replace(
            config, retry=RetryConfig(max_attempts=2, backoff_base=0.5, backoff_max=1.0)
        )
        async with Workbench.open(config) as bench:
            run = await add_run(bench, tmp_path, target="ray")
            driving = asyncio.create_task(QueueService.of(bench).drive(until_idle=True))
            await until(running_with_lines(bench, run.id), 120, "the run to run")
            await asyncio.to_thread(link.down)  # away while the job ends
            await until(phase_is(bench, run.id, "collecting again"), 120, "a second collect")
            link.up()
            await asyncio.wait_for(driving, 120)
            final = await bench.store.get_run(run.id)
    assert final.state == RunState.COMPLETED, final.failure_message
    local = config.outputs_dir / run.id
    videos = [name for name in final.outputs if name.endswith(".mp4")]
    assert videos and all((local / name).stat().st_size > 0 for name in videos)
