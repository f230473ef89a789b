"""``cosmos demo --cluster ray --headless``: the queue on a local Ray cluster, a node lost.

A local Ray cluster (``ray.cluster_utils.Cluster``: a head without GPUs and two workers
with 2 simulated GPUs each) runs the simulated host's Cosmos stand-in: each job's
entrypoint talks to the sandbox's Docker Engine API socket on this machine, and the
cluster's shared folder lies in the sandbox's root (its containers mount only files
there). Four runs of the sample prompts go through the ordinary queue driver: placement
on nodes, one Ray Job per run, logs, progress, outputs. While the first one runs, the
node it runs on is removed from the cluster.

The scenario passes when every run completed with a valid MP4 output, and the run on
the lost node did so on its second attempt, on the other node, with the gap noted in
its log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cosmos_tui.config import ClusterConfig
from cosmos_tui.domain import Run, RunState
from cosmos_tui.engine.logs import read_log_lines
from cosmos_tui.remote.ray_jobs import require_ray
from cosmos_tui.sandbox.scenario import cancellable, mp4_is_valid, sample_prompts
from cosmos_tui.services import Workbench
from cosmos_tui.services.queue import QueueService

if TYPE_CHECKING:
    from cosmos_tui.config import Config
    from cosmos_tui.sandbox.options import SandboxHandle
    from cosmos_tui.sandbox.workspace import DemoWorkspace
    from cosmos_tui.store.queue_store import Claim

CLUSTER_NAME = "local-ray"
NODE_GPUS = 2
RUNS = (("warehouse-robot", 11), ("rainy-street", 12), ("forest-road", 13), ("warehouse-robot", 14))
AGENT_WAIT_S = 150.0


@dataclasses.dataclass
class LocalCluster:
    """A local Ray cluster for the demo: its dashboard and its worker nodes."""

    cluster: Any  # ray.cluster_utils.Cluster (Ray is an optional extra)
    address: str
    workers: list[Any]

    def remove(self, node_id: str) -> bool:
        """Remove the worker whose node id starts with ``node_id``; False if none."""
        for node in self.workers:
            if node.node_id.startswith(node_id):
                self.cluster.remove_node(node)
                self.workers.remove(node)
                return True
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def local_cluster(
    nodes: Sequence[tuple[int, Mapping[str, float]]] = ((NODE_GPUS, {}), (NODE_GPUS, {})),
    env: Mapping[str, str] | None = None,
) -> Iterator[LocalCluster]:
    """Start a head without GPUs and one node per ``(gpus, custom resources)``; stop all after.

    The head's dashboard agent gets a port of its own (workers get one from the kernel):
    with the default port a second cluster on the machine would accept no jobs. Returns
    once the head's job agent accepts jobs. The demo, the tests and the benches use it.
    ``env`` is set for the processes of the nodes started here (e.g. the NVML stand-in:
    :mod:`cosmos_tui.sandbox.fake_nvml`), and only for them.

    Raises:
        ConfigError: When Ray is not installed (the message says what to install).
    """
    submission = require_ray(CLUSTER_NAME)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from ray.cluster_utils import Cluster  # lazy: Ray is an optional extra

    port = _free_port()
    saved = {name: os.environ.get(name) for name in env or {}}
    os.environ.update(env or {})  # Ray starts the node processes with this process's env
    cluster: Any = None
    try:
        cluster = Cluster(
            initialize_head=True,
            connect=False,
            head_node_args={
                "num_cpus": 1,
                "num_gpus": 0,
                "include_dashboard": True,
                "dashboard_host": "127.0.0.1",
                "dashboard_port": port,
                "dashboard_agent_listen_port": _free_port(),
            },
        )
        workers = [
            cluster.add_node(num_cpus=1, num_gpus=gpus, resources=dict(resources))
            for gpus, resources in nodes
        ]
        cluster.wait_for_nodes()
        _restore(saved)
        address = f"http://127.0.0.1:{port}"
        client = submission.JobSubmissionClient(address)
        deadline = time.monotonic() + AGENT_WAIT_S
        while True:  # the job agent comes up after the nodes
            try:
                client.submit_job(entrypoint="true", entrypoint_num_cpus=0)
                break
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield LocalCluster(cluster, address, workers)
    finally:
        _restore(saved)
        if cluster is not None:
            cluster.shutdown()


def _restore(saved: Mapping[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def with_cluster(config: Config, sandbox: SandboxHandle, address: str, hosts: bool) -> Config:
    """The demo's config with the local cluster added (``hosts``: keep the SSH host)."""
    host = sandbox.host_config()
    root = Path(host.docker_socket).parents[2]  # <root>/var/run/docker.sock
    repo = root / "home" / sandbox.options.user / "cosmos-transfer1"
    shared = root / "shared"
    shared.mkdir(exist_ok=True)
    cluster = ClusterConfig(
        name=CLUSTER_NAME,
        address=address,
        docker_image=host.docker_image,
        docker_socket=host.docker_socket,
        gpu_request=False,  # Ray's GPU ids are the nodes'; the sandbox has its own
        shared_dir=str(shared),
        remote_repo_dir=str(repo),
        checkpoints_dir=str(repo / "checkpoints"),
        python=sys.executable,  # the entrypoint needs only the standard library
        pending_timeout=60.0,
    )
    retry = dataclasses.replace(config.retry, max_attempts=max(2, config.retry.max_attempts))
    return dataclasses.replace(
        config, hosts=config.hosts if hosts else [], clusters=[cluster], retry=retry
    )


def run_cluster_scenario(
    config: Config,
    space: DemoWorkspace,
    sandbox: SandboxHandle,
    cluster: LocalCluster,
    echo: Callable[[str], None],
    timeout: float = 300.0,
) -> int:
    """Run the scenario; return 0 when every run ended as expected, else 1."""
    return asyncio.run(cancellable(_scenario(config, space, cluster, echo, timeout), echo))


async def _scenario(
    config: Config,
    space: DemoWorkspace,
    cluster: LocalCluster,
    echo: Callable[[str], None],
    timeout: float,
) -> int:
    started = time.monotonic()
    echo(
        f"cosmos demo --cluster ray --headless: a local Ray cluster ({len(cluster.workers)} "
        f"nodes, {NODE_GPUS} simulated GPUs each) running the SIMULATED GPU HOST's model"
    )
    async with Workbench.open(config) as bench:
        prompts = await sample_prompts(bench, space)
        runs: list[Run] = []
        for name, seed in RUNS:
            run = await bench.create_run(prompts[name].id, {"seed": seed})
            runs.append(run)
            echo(f"queued {run.id}  {name}")

        def claimed(claim: Claim) -> None:
            echo(f"start {', '.join(claim.run_ids)} on node {claim.host}")

        driving = asyncio.create_task(
            QueueService.of(bench).drive(until_idle=True, on_claim=claimed)
        )
        try:
            lost = await asyncio.wait_for(_lose_a_node(bench, runs[0].id, cluster, echo), 120)
            await asyncio.wait_for(driving, timeout)
        finally:
            if not driving.done():
                driving.cancel()
        finals = [await bench.get_run(run.id) for run in runs]
        results = [_check(bench, run, lost, run.id == runs[0].id) for run in finals]
    echo("")
    echo(f"{'run':<20} {'state':<10} {'attempt':<8} {'node':<26} output")
    for run, problem in results:
        output = bench.output_dir(run.id) / "output.mp4"
        mark = f"   <- {problem}" if problem else ""
        echo(f"{run.id:<20} {run.state.value:<10} {run.attempt:<8} {run.host or '-':<26} "
             f"{output if output.exists() else '-'}{mark}")  # fmt: skip
    passed = bool(lost) and all(problem == "" for _, problem in results)
    if not lost:
        echo("no node was lost: the first run ended before it could be")
    verdict = "scenario OK" if passed else "scenario FAILED"
    echo(f"\n{verdict}: {len(results)} runs in {time.monotonic() - started:.1f} s on the "
         "local Ray cluster, one node lost")  # fmt: skip
    return 0 if passed else 1


async def _lose_a_node(
    bench: Workbench, run_id: str, cluster: LocalCluster, echo: Callable[[str], None]
) -> str:
    """Remove the node ``run_id`` runs on once its container is running; return it."""
    while True:
        run = await bench.get_run(run_id)
        if run.state == RunState.RUNNING and run.host:
            await asyncio.sleep(0.2)  # its entrypoint is running the container
            node = run.host.split("/", 1)[1]
            if not await asyncio.to_thread(cluster.remove, node):
                return ""
            echo(f"node {run.host} lost while {run_id} ran on it")
            return run.host
        if run.state.is_terminal:
            return ""
        await asyncio.sleep(0.2)


def _check(bench: Workbench, run: Run, lost: str, victim: bool) -> tuple[Run, str]:
    """Return the run and what is wrong with how it ended ("" when as expected)."""
    if run.state != RunState.COMPLETED:
        return run, f"ended {run.state.value}: {run.failure_message or ''}"
    if not mp4_is_valid(bench.output_dir(run.id) / "output.mp4"):
        return run, "no valid MP4 output"
    was_lost = any("was lost during attempt" in e.reason for e in run.events)
    if victim and not was_lost:
        return run, "the node was removed under it, yet it was not retried"
    if was_lost:
        log = read_log_lines(bench.output_dir(run.id) / "run.log")
        if run.attempt != 2 or run.host == lost:
            return run, "the lost node's run did not come back on another node"
        if not any("was lost during attempt 1" in line for line in log):
            return run, "the log does not note the lost node"
    return run, ""


__all__ = ["LocalCluster", "local_cluster", "run_cluster_scenario", "with_cluster"]
