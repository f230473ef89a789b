"""Runs through the tool on a local Ray cluster, beside the same runs on an SSH host.

Everything is real but the model: a local Ray cluster (``ray.cluster_utils.Cluster``:
head + workers with 2 and 4 fake GPUs), a real dockerd running the Cosmos stand-in
(no delays) as each job's container, a real sshd + the same dockerd as the SSH host.

Prints, each beside its anchor measured in the same run:
- claim-to-job-running latency of runs driven by the app's queue driver (the run's
  ``uploading -> running`` in its timeline: inputs and spec staged, the job submitted,
  Ray placed it and started its entrypoint, which then creates the container), median
  and p95, beside a hand-submitted Ray job's submit-to-entrypoint-running
  (``JobSubmissionClient.submit_job`` of ``true``, what ``ray job submit`` does);
- claim-to-container-started latency (the run's container's ``State.StartedAt``),
  beside a hand-submitted
  Ray job whose entrypoint is ``docker run -d`` of the same image: submit to the
  container's ``State.StartedAt``;
- scheduling throughput: RUNS queued short runs, runs per minute from the first claim
  to the last completion;
- overhead per run (everything but the container's own time) on the cluster, beside
  the same runs one at a time on the SSH host (the SSH executor);
- the cluster's memory (resident set of every Ray process) after the runs.

Usage (as root, like the tests): .venv/bin/python bench/ray_runs.py [--runs 200] [--ssh 10]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _lifecycle_host import test_host, with_env, write_mp4
from ray_executor import ray_memory_mb

from cosmos_tui.config import ClusterConfig, Config
from cosmos_tui.domain import Run, RunState
from cosmos_tui.sandbox.ray_scenario import local_cluster
from cosmos_tui.sandbox.standin import standin_script_path
from cosmos_tui.services import Workbench
from cosmos_tui.services.queue import QueueService


def seconds(run: Run, start: RunState, end: RunState) -> float:
    """Seconds between the run's first entry into ``start`` and into ``end``."""
    times: dict[RunState, Any] = {}
    for event in run.events:
        times.setdefault(event.to_state, event.at)
    return (times[end] - times[start]).total_seconds()


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def hand_submitted(address: str, count: int) -> list[float]:
    """Submit ``true`` by hand ``count`` times: seconds until each job left PENDING."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(address)
    latencies = []
    for _ in range(count):
        began = time.monotonic()
        sid = client.submit_job(entrypoint="true", entrypoint_num_gpus=1, entrypoint_num_cpus=0)
        while client.get_job_status(sid) == JobStatus.PENDING:
            time.sleep(0.02)
        latencies.append(time.monotonic() - began)
        while not client.get_job_status(sid).is_terminal():
            time.sleep(0.05)
    return latencies


def hand_docker_run(address: str, socket: str, image: str, count: int) -> list[float]:
    """Submit ``docker run -d IMAGE true`` by hand: seconds from submit to container start."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(address)
    docker = ["docker", "-H", f"unix://{socket}"]
    latencies = []
    for index in range(count):
        name = f"cosmos-bench-anchor-{os.getpid()}-{index}"
        began = time.time()
        sid = client.submit_job(
            entrypoint=f"{' '.join(docker)} run -d --name {name} --entrypoint true {image}",
            entrypoint_num_gpus=1,
            entrypoint_num_cpus=0,
        )
        while not client.get_job_status(sid).is_terminal():
            time.sleep(0.05)
        started = subprocess.run(
            [*docker, "inspect", "-f", "{{.State.StartedAt}}", name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        subprocess.run([*docker, "rm", "-f", name], capture_output=True, check=False)
        latencies.append(stamp_seconds(started) - began)
    return latencies


def stamp_seconds(stamp: str) -> float:
    """Seconds since the epoch of an RFC 3339 stamp with nanoseconds (Docker's, ours)."""
    head, _, fraction = stamp.rstrip("Z").partition(".")
    moment = datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.UTC)
    return moment.timestamp() + float("0." + (fraction or "0"))


def container_started(socket: str, run: Run) -> float:
    """Seconds from the run's claim (uploading) to its container's ``State.StartedAt``."""
    claimed = next(e.at for e in run.events if e.to_state == RunState.UPLOADING)
    name = f"cosmos-{run.id}-a{max(1, run.attempt)}"
    started = subprocess.run(
        ["docker", "-H", f"unix://{socket}", "inspect", "-f", "{{.State.StartedAt}}", name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return stamp_seconds(started) - claimed.replace(tzinfo=datetime.UTC).timestamp()


async def queue_runs(bench: Workbench, prompt_id: str, count: int) -> list[str]:
    ids = []
    for index in range(count):
        run = await bench.create_run(prompt_id, {"seed": index, "num_gpus": 1})
        ids.append(run.id)
    return ids


async def main(runs: int, ssh_runs: int) -> None:
    files = {"/bin/torchrun": standin_script_path().read_text()}
    with test_host(files, "cosmos-bench/standin:ray") as (host_config, work):
        host_config = with_env(host_config, COSMOS_STANDIN_SPEED="0")
        host = host_config.hosts[0]
        videos = work / "videos"
        write_mp4(videos / "color.mp4", 256 * 1024)
        with local_cluster(((2, {}), (4, {}))) as cluster:
            address = cluster.address
            anchor = await asyncio.to_thread(hand_submitted, address, 10)
            docker_anchor = await asyncio.to_thread(
                hand_docker_run, address, host.docker_socket, host.docker_image, 10
            )
            shared = work / "shared"
            repo = shared / "cosmos-transfer1"
            script = repo / "cosmos_transfer1" / "diffusion" / "inference" / "transfer.py"
            script.parent.mkdir(parents=True)
            script.write_text("# stand-in checkout\n")
            lab = ClusterConfig(
                name="lab",
                address=address,
                docker_image=host.docker_image,
                docker_socket=host.docker_socket,
                gpu_request=False,
                shared_dir=str(shared),
                remote_repo_dir=str(repo),
                checkpoints_dir=str(repo / "checkpoints"),
                python=sys.executable,
                env={"COSMOS_STANDIN_SPEED": "0"},
            )
            ray_config: Config = dataclasses.replace(
                host_config,
                hosts=[],
                clusters=[lab],
                paths=dataclasses.replace(host_config.paths, data_dir=str(work / "ray-data")),
            )
            async with Workbench.open(ray_config) as bench:
                prompt = await bench.create_prompt("bench", videos)
                ids = await queue_runs(bench, prompt.id, runs)
                began = time.monotonic()
                await QueueService.of(bench).drive(until_idle=True)
                wall = time.monotonic() - began
                finals = [await bench.get_run(run_id) for run_id in ids]
                started = [
                    container_started(host.docker_socket, r)
                    for r in finals
                    if r.state == RunState.COMPLETED
                ]
                serial = []  # one at a time, as the SSH runs below: no contention
                for run_id in await queue_runs(bench, prompt.id, ssh_runs):
                    await QueueService.of(bench).drive(until_idle=True)
                    serial.append(await bench.get_run(run_id))
            done = [r for r in finals if r.state == RunState.COMPLETED]
            assert len(done) == runs, [(r.id, r.state, r.failure_message) for r in finals]
            latency = [seconds(r, RunState.UPLOADING, RunState.RUNNING) for r in done]
            ray_overhead = [
                seconds(r, RunState.UPLOADING, RunState.COMPLETED)
                - seconds(r, RunState.RUNNING, RunState.DOWNLOADING)
                for r in done
            ]
            serial_latency = [seconds(r, RunState.UPLOADING, RunState.RUNNING) for r in serial]
            serial_overhead = [
                seconds(r, RunState.UPLOADING, RunState.COMPLETED)
                - seconds(r, RunState.RUNNING, RunState.DOWNLOADING)
                for r in serial
            ]
            memory = ray_memory_mb()
        async with Workbench.open(host_config) as bench:
            prompt = await bench.create_prompt("bench", videos)
            ssh_overhead = []
            for run_id in await queue_runs(bench, prompt.id, ssh_runs + 1):
                final = await bench.runs.drive(run_id)
                assert final.state == RunState.COMPLETED, final.failure_message
                ssh_overhead.append(
                    seconds(final, RunState.UPLOADING, RunState.COMPLETED)
                    - seconds(final, RunState.RUNNING, RunState.DOWNLOADING)
                )
            ssh_overhead = ssh_overhead[1:]  # the first one uploads the input (cold)
    print(f"cluster: head + 2 workers (2 and 4 fake GPUs), {os.cpu_count()} cores here")
    print("submit to running, seconds: median, p95")
    tool = f"{statistics.median(latency):.2f}, {p95(latency):.2f}"
    hand = f"{statistics.median(anchor):.2f}, {p95(anchor):.2f}"
    print(f"  a run through the tool (claim to job running)        {tool}  ({runs} runs)")
    alone = f"{statistics.median(serial_latency):.2f}, {p95(serial_latency):.2f}"
    print(f"  the same, one run at a time                          {alone}  ({ssh_runs} runs)")
    print(f"  anchor: 'true' submitted by hand (to entrypoint)      {hand}  (10 jobs)")
    print("claim to container started, seconds: median, p95")
    tool = f"{statistics.median(started):.2f}, {p95(started):.2f}"
    print(f"  a run through the tool                               {tool}  ({runs} runs)")
    hand = f"{statistics.median(docker_anchor):.2f}, {p95(docker_anchor):.2f}"
    print(f"  anchor: 'docker run -d' submitted by hand            {hand}  (10 jobs)")
    print(f"throughput: {runs} queued 1-GPU runs in {wall:.1f} s = {60 * runs / wall:.1f} runs/min")
    print("overhead per run (all but the container's own time), seconds, median:")
    print(f"  Ray executor  {statistics.median(ray_overhead):.2f}  ({runs} runs, 6 at once)")
    ray_alone = statistics.median(serial_overhead)
    print(f"  Ray executor  {ray_alone:.2f}  ({ssh_runs} runs, one at a time)")
    print(
        f"  SSH executor  {statistics.median(ssh_overhead):.2f}  ({ssh_runs} runs, one at a time)"
    )
    print(f"cluster memory after the runs: {memory:.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--ssh", type=int, default=10)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.runs, arguments.ssh))
