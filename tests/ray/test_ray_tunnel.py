"""A cluster whose dashboard is reached only through SSH: the tunnel, and a tunnel cut.

The cluster's ``ssh_host`` names a configured host (the real test sshd); the dashboard
port is forwarded over that host's managed asyncssh connection. The configured
``address`` points nowhere, so every call must go through the tunnel.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from cosmos_tui.config import Config
from cosmos_tui.domain import GenerationParams, InputFile, Run, RunState
from cosmos_tui.engine.ray_job import container_name
from cosmos_tui.services.queue import QueueService
from cosmos_tui.services.workbench import Workbench
from tests.conftest import write_video
from tests.lifecycle.conftest import cut_ssh
from tests.ray.test_ray_follow import container_log, own_lines

pytestmark = pytest.mark.ray


def tunnelled(config: Config, host: Any, local_ray: Any) -> Config:
    port = urlparse(local_ray.address).port
    assert port is not None
    cluster = dataclasses.replace(
        config.clusters[0], address="http://127.0.0.1:9", ssh_host=host.name, dashboard_port=port
    )
    return dataclasses.replace(config, hosts=[host], clusters=[cluster])


async def add_run(bench: Workbench, tmp_path: Path, name: str) -> Run:
    video = write_video(tmp_path / "videos" / name / "color.mp4", name.encode())
    data = video.read_bytes()
    item = InputFile("color", video, hashlib.sha256(data).hexdigest(), len(data))
    prompt = await bench.store.add_prompt(f"a robot arm, {name}", [item])
    params = GenerationParams(negative_prompt="ugly", num_gpus=1, num_steps=4)
    return await bench.store.add_run(prompt.id, params)


async def test_a_cluster_behind_ssh_is_driven_through_the_tunnel(
    make_cluster_config: Callable[..., Config],
    host_config: Any,
    local_ray: Any,
    tmp_path: Path,
) -> None:
    config = tunnelled(make_cluster_config(), host_config, local_ray)
    async with Workbench.open(config) as bench:
        run = await add_run(bench, tmp_path, "tunnel")
        await asyncio.wait_for(QueueService.of(bench).drive(until_idle=True), 180)
        final = await bench.store.get_run(run.id)
        assert final.state == RunState.COMPLETED, final.failure_message
        assert final.host is not None and final.host.startswith("ray/")


async def test_a_tunnel_cut_mid_stream_resumes_the_log_exactly(
    make_cluster_config: Callable[..., Config],
    host_config: Any,
    local_ray: Any,
    ssh_server: Any,
    docker_daemon: Any,
    tmp_path: Path,
) -> None:
    config = tunnelled(make_cluster_config(speed="0.3"), host_config, local_ray)
    async with Workbench.open(config) as bench:
        run = await add_run(bench, tmp_path, "cut")
        driving = asyncio.create_task(QueueService.of(bench).drive(until_idle=True))
        log_path = config.outputs_dir / run.id / "run.log"
        for _ in range(600):
            if len(own_lines(log_path)) >= 4:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the run did not start")
        assert cut_ssh(ssh_server) > 0  # the SSH connection, and the tunnel on it, drop
        await asyncio.wait_for(driving, 180)
        final = await bench.store.get_run(run.id)
        assert final.state == RunState.COMPLETED, final.failure_message
        expected = container_log(docker_daemon, container_name(final))
        assert own_lines(log_path) == expected  # no line lost, none twice
        assert len(expected) > 10
