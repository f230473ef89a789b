"""The facade's live streams (hosts, GPUs, GPU processes) against the simulated host."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from cosmos_tui.config import Config, PathsConfig
from cosmos_tui.domain import HostState
from cosmos_tui.remote.docker import ContainerSpec
from cosmos_tui.sandbox import Sandbox
from cosmos_tui.services import Workbench


async def test_hosts_gpus_and_processes_stream_from_the_host(sandbox: Sandbox, tmp_path: Path):
    config = Config(hosts=[sandbox.host_config()], paths=PathsConfig(data_dir=str(tmp_path)))
    async with Workbench.open(config) as bench:
        hosts = bench.live.watch_hosts()
        gpus = bench.live.watch_gpus()
        processes = bench.live.watch_gpu_processes()
        seen_indices: set[int] = set()
        deadline = time.monotonic() + 20
        while seen_indices != {0, 1}:
            sample = await asyncio.wait_for(anext(gpus), 10)
            assert "SIMULATED" in sample.name and sample.host == "simulated-gpu-host"
            seen_indices.add(sample.index)
            assert time.monotonic() < deadline
        states = set()
        while HostState.CONNECTED not in states:
            states.add((await asyncio.wait_for(anext(hosts), 10)).state)
        docker = bench.hosts.get("simulated-gpu-host").docker
        container_id = await docker.create(
            ContainerSpec(
                run_id="rs_live",
                image=sandbox.options.docker_image,
                command=("sh", "-c", "echo 'Start creating base model'; sleep 30"),
                gpus=(0,),
            )
        )
        await docker.start(container_id)
        while True:
            host, found = await asyncio.wait_for(anext(processes), 10)
            assert host == "simulated-gpu-host"
            if any(p.run_id == "rs_live" for p in found):
                break
            assert time.monotonic() < deadline + 10
        await docker.stop(container_id, grace_s=1)
        for stream in (hosts, gpus, processes):
            await stream.aclose()
