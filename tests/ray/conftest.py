"""One real local Ray cluster per test session, and what the Ray executor tests share.

The cluster (``ray.cluster_utils.Cluster``: real GCS, raylets and dashboard on this
machine) has a head without GPUs and two workers with fake GPUs: ``small`` with 2 and
the checkpoint resource ``ckpt_t1``, ``big`` with 4. Starting it takes about 15 s on
2 cores, so it is started once and shut down (every Ray process ended) at the end.
Job entrypoints run the Cosmos stand-in on the session's real dockerd. Its nodes' agents
read GPUs from the NVML stand-in (``sandbox/fake_nvml.py``; the same two GPUs for every
node, as they share this machine), whose figures a test sets with ``LocalRay.set_gpus``.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cosmos_tui.config import ClusterConfig, Config, PathsConfig, RetryConfig, TimeoutsConfig
from cosmos_tui.domain import GenerationParams, InputFile, Run
from cosmos_tui.sandbox.fake_nvml import build_fake_nvml, nvml_env, write_gpus
from cosmos_tui.sandbox.ray_scenario import local_cluster
from cosmos_tui.store.repositories import Store
from tests.conftest import write_video
from tests.lifecycle.conftest import SPEED
from tests.lifecycle.conftest import make_config as make_config  # a real SSH host
from tests.lifecycle.conftest import standin_image as standin_image  # the session image

CHECKPOINT_RESOURCE = "ckpt_t1"
# What each node's NVML stand-in reports until a test sets other figures.
IDLE_GPUS = [(0, 0, 81559, "NVIDIA H100 80GB HBM3"), (0, 0, 81559, "NVIDIA H100 80GB HBM3")]


@dataclass
class LocalRay:
    """The session's cluster: dashboard URL, node ids, a shared folder, and the cluster
    itself (``ray.cluster_utils.Cluster``: tests add and remove nodes)."""

    address: str
    small_node: str
    big_node: str
    shared: Path
    cluster: Any = None
    gpus_file: Path | None = None

    def set_gpus(self, gpus: list[tuple[int, int, int, str]]) -> None:
        """Set what every node's NVML reports: (utilization %, used MiB, total MiB, name)."""
        assert self.gpus_file is not None
        write_gpus(self.gpus_file, gpus)


@pytest.fixture(scope="session")
def local_ray() -> Iterator[LocalRay]:
    """Start head + 2 GPU workers; shut every Ray process down afterwards."""
    nodes = ((2, {CHECKPOINT_RESOURCE: 1.0}), (4, {}))
    shared = Path(tempfile.mkdtemp(prefix="cosmos-ray-shared-"))
    nvml = build_fake_nvml(shared / "nvml")
    gpus_file = shared / "nvml" / "gpus"
    write_gpus(gpus_file, IDLE_GPUS)
    try:
        with local_cluster(nodes, env=nvml_env(nvml, gpus_file)) as started:
            small, big = started.workers
            yield LocalRay(
                address=started.address,
                small_node=small.node_id,
                big_node=big.node_id,
                shared=shared,
                cluster=started.cluster,
                gpus_file=gpus_file,
            )
    finally:
        shutil.rmtree(shared, ignore_errors=True)


@pytest.fixture
def make_cluster_config(
    local_ray: LocalRay,
    docker_daemon: Any,
    standin_image: str,
    tmp_path: Path,
) -> Callable[..., Config]:
    """Return ``make(scenario="ok", speed=SPEED, **cluster_fields) -> Config``."""
    repo = local_ray.shared / "cosmos-transfer1"
    script = repo / "cosmos_transfer1" / "diffusion" / "inference" / "transfer.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text("# stand-in checkout\n")

    def _make(scenario: str = "ok", speed: str = SPEED, **fields: Any) -> Config:
        shared = tmp_path / "shared"
        shared.mkdir(exist_ok=True)
        cluster = ClusterConfig(
            name="ray",
            address=local_ray.address,
            docker_image=standin_image,
            docker_socket=str(docker_daemon.socket_path),
            gpu_request=False,
            shared_dir=str(shared),
            remote_repo_dir=str(repo),
            checkpoints_dir=str(repo / "checkpoints"),
            python=sys.executable,
            env={"COSMOS_STANDIN_SPEED": speed, "COSMOS_STANDIN_SCENARIO": scenario},
            **fields,
        )
        return Config(
            clusters=[cluster],
            timeouts=TimeoutsConfig(connect=5.0, command=10.0, run=60.0, cancel_grace=2.0),
            retry=RetryConfig(max_attempts=2, backoff_base=0.1, backoff_max=0.5),
            paths=PathsConfig(data_dir=str(tmp_path / "data")),
        )

    return _make


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store.open(tmp_path / "ray.db") as opened:
        yield opened


@pytest.fixture
def queue_run(store: Store, tmp_path: Path) -> Callable[..., Any]:
    """Return ``await queue_run(num_gpus=1, priority=0) -> Run`` with a real input video."""
    counter = iter(range(1000))

    async def _make(num_gpus: int = 1, priority: int = 0) -> Run:
        n = next(counter)
        video = write_video(tmp_path / "videos" / f"{n}" / "color.mp4", f"v{n}".encode())
        data = video.read_bytes()
        item = InputFile("color", video, hashlib.sha256(data).hexdigest(), len(data))
        prompt = await store.add_prompt(f"a robot arm number {n}", [item])
        params = GenerationParams(negative_prompt="ugly", num_gpus=num_gpus, num_steps=4)
        return await store.add_run(prompt.id, params, priority=priority)

    return _make
