"""Ray executor figures on a local cluster (head + workers with 2 and 4 fake GPUs).

Prints:
- submit-to-entrypoint-running latency (median, p95): ``submit_job`` until the job's
  entrypoint printed its first line (a trivial entrypoint, no container);
- scheduling throughput: N short jobs of 1 GPU each, at most as many live as the
  cluster has GPUs (the tool's gating: the DB is the queue), jobs per minute;
- the cluster's memory: resident set of every Ray process (head + 2 workers).

Usage: python bench/ray_executor.py [--jobs 200] [--latency 10]
(Not bench/ray.py: a script of that name would shadow the ray package.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import time
from pathlib import Path

from cosmos_tui.remote.ray_jobs import RayJobs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ray_memory_mb() -> float:
    """Resident memory of every process whose command line names ray (from /proc)."""
    total_kb = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            if b"ray" not in cmd:
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


async def wait_end(jobs: RayJobs, sid: str) -> None:
    while True:
        job = await jobs.job(sid)
        if job is not None and not job.live:
            return
        await asyncio.sleep(0.05)


async def latency(jobs: RayJobs, count: int) -> list[float]:
    figures = []
    for index in range(count):
        sid = f"bench-lat-{index}-{os.urandom(3).hex()}"
        start = time.perf_counter()
        await jobs.submit(sid, "echo started; sleep 0.2", 1, {}, {"bench": "1"})
        while "started" not in await jobs.logs(sid):
            await asyncio.sleep(0.02)
        figures.append(time.perf_counter() - start)
        await wait_end(jobs, sid)
    return figures


async def throughput(jobs: RayJobs, count: int, gpus: int) -> float:
    queue = [f"bench-tp-{i}-{os.urandom(3).hex()}" for i in range(count)]
    live: set[str] = set()
    start = time.perf_counter()
    while queue or live:
        while queue and len(live) < gpus:
            sid = queue.pop(0)
            await jobs.submit(sid, "true", 1, {}, {"bench": "1"})
            live.add(sid)
        finished = {j.submission_id for j in await jobs.jobs() if not j.live}
        live -= finished
        await asyncio.sleep(0.05)
    return count / (time.perf_counter() - start) * 60


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--latency", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from ray.cluster_utils import Cluster

    port = free_port()
    began = time.perf_counter()
    cluster = Cluster(
        initialize_head=True,
        connect=False,
        head_node_args={
            "num_cpus": 1,
            "num_gpus": 0,
            "dashboard_port": port,
            "dashboard_agent_listen_port": free_port(),
        },
    )
    try:
        cluster.add_node(num_cpus=1, num_gpus=2)
        cluster.add_node(num_cpus=1, num_gpus=4)
        cluster.wait_for_nodes()
        print(f"cluster start (head + 2 workers): {time.perf_counter() - began:.1f} s")
        print(f"cluster memory (RSS of Ray processes): {ray_memory_mb():.0f} MiB")
        jobs = RayJobs("bench", f"http://127.0.0.1:{port}", timeout=30.0)
        figures = asyncio.run(latency(jobs, args.latency))
        p95 = sorted(figures)[max(0, round(0.95 * len(figures)) - 1)]
        print(
            f"submit-to-entrypoint-running: median {statistics.median(figures):.2f} s, "
            f"p95 {p95:.2f} s ({len(figures)} jobs)"
        )
        rate = asyncio.run(throughput(jobs, args.jobs, 6))
        print(f"throughput: {rate:.0f} short jobs/min ({args.jobs} jobs, 6 GPUs)")
        print(f"cluster memory after: {ray_memory_mb():.0f} MiB")
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
