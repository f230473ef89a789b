"""The project's remote layer, unchanged, against the sandbox: it cannot tell the difference."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cosmos_tui.config import RetryConfig, TimeoutsConfig
from cosmos_tui.domain import HostState
from cosmos_tui.errors import CosmosError, HostKeyUnknown
from cosmos_tui.remote.docker import ContainerSpec, Mount
from cosmos_tui.remote.host import RemoteHost
from cosmos_tui.sandbox import Sandbox

ASSETS = Path(__file__).resolve().parents[2] / "cosmos_tui" / "sandbox" / "assets"
FAST_RETRY = RetryConfig(max_attempts=5, backoff_base=0.05, backoff_max=0.2)


@pytest.fixture
async def host(sandbox: Sandbox) -> AsyncIterator[RemoteHost]:
    remote = RemoteHost(sandbox.host_config(), TimeoutsConfig(connect=5), FAST_RETRY)
    try:
        yield remote
    finally:
        await remote.close()


async def test_commands_and_tool_dir(sandbox: Sandbox, host: RemoteHost):
    result = await host.run(["sh", "-c", "echo $HOME; echo oops >&2"])
    assert result.stdout.strip() == str(sandbox.home) and result.stderr == "oops\n"
    assert await host.tool_dir() == str(sandbox.home / ".cosmos-tui")
    assert host.status().state is HostState.CONNECTED


async def test_content_addressed_upload_is_skipped_the_second_time(
    sandbox: Sandbox, host: RemoteHost
):
    first = await host.upload_input(ASSETS / "street.mp4")
    assert Path(first.remote_path).read_bytes() == (ASSETS / "street.mp4").read_bytes()
    assert Path(first.remote_path).is_relative_to(sandbox.root)
    again = await host.upload_input(ASSETS / "street.mp4")
    assert again.skipped


async def test_a_model_run_through_the_docker_client(
    sandbox: Sandbox, host: RemoteHost, tmp_path: Path
):
    uploaded = await host.upload_input(ASSETS / "robot.mp4")
    tool = await host.tool_dir()
    run_dir = f"{tool}/runs/r_1"
    await host.files.write_text(
        f"{run_dir}/spec.json",
        '{"prompt": "a robot arm", "input_video_path": "/cosmos-tui/inputs/'
        f'{Path(uploaded.remote_path).name}", "edge": {{"control_weight": 0.5}}}}',
    )
    assert await host.docker.image_present(sandbox.options.docker_image)
    assert not await host.docker.image_present("nvcr.io/nvidia/other:1")
    spec = ContainerSpec(
        run_id="r_1",
        image=sandbox.options.docker_image,
        command=(
            "torchrun",
            "--nproc_per_node=1",
            "--nnodes=1",
            "--node_rank=0",
            "cosmos_transfer1/diffusion/inference/transfer.py",
            "--checkpoint_dir",
            "checkpoints",
            "--video_save_folder",
            "/cosmos-tui/run/output",
            "--controlnet_specs",
            "/cosmos-tui/run/spec.json",
            "--num_gpus",
            "1",
        ),
        gpus=(0,),
        mounts=(
            Mount(str(sandbox.home / "cosmos-transfer1"), "/workspace"),
            Mount(f"{tool}/inputs", "/cosmos-tui/inputs", read_only=True),
            Mount(run_dir, "/cosmos-tui/run"),
        ),
        env={"PYTHONPATH": "/workspace"},  # as every launch sets it (docs/cosmos.md)
        workdir="/workspace",
    )
    container_id = await host.docker.create(spec)
    await host.docker.start(container_id)
    frames = [frame async for chunk in host.docker.log_frames(container_id) for frame in chunk]
    assert frames[0].split(b" ", 1)[1].startswith(b"SIMULATED GPU HOST")
    assert any(b"Saved video to" in frame for frame in frames)
    assert any(b"\r" in frame for frame in frames)  # tqdm redraws arrive unaltered
    assert await host.docker.wait(container_id) == 0
    info = await host.docker.inspect(container_id)
    assert info.exit_code == 0 and info.run_id == "r_1" and not info.running
    listed = await host.docker.list(labels={"cosmos.run_id": "r_1"})
    assert [c.id for c in listed] == [container_id]
    result = await host.download(f"{run_dir}/output", "output.mp4", tmp_path)
    assert result.local_path.read_bytes() == (ASSETS / "robot.mp4").read_bytes()


async def test_reconnects_after_the_connection_drops(sandbox: Sandbox, host: RemoteHost):
    await host.run(["true"])
    generation = host.ssh.generation
    sandbox.drop_connections()
    for _ in range(100):
        if host.status().state is not HostState.CONNECTED:
            break
        await asyncio.sleep(0.01)
    result = await host.run(["echo", "back"])
    assert result.stdout == "back\n"
    assert host.ssh.generation > generation


async def test_docker_survives_a_dropped_connection(sandbox: Sandbox, host: RemoteHost):
    assert (await host.docker.version()).api_version
    sandbox.drop_connections()
    await asyncio.sleep(0.1)
    version = None
    for _ in range(20):
        try:
            version = await host.docker.version()
            break
        except CosmosError as exc:
            assert getattr(exc, "transient", False), exc
            await asyncio.sleep(0.1)
    assert version is not None and version.api_version


async def test_an_untrusted_host_key_is_an_error(sandbox: Sandbox, tmp_path: Path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    config = dataclasses.replace(sandbox.host_config(), known_hosts=str(empty))
    remote = RemoteHost(config, TimeoutsConfig(connect=5), FAST_RETRY)
    try:
        with pytest.raises(HostKeyUnknown):
            await remote.run(["true"])
    finally:
        await remote.close()


async def test_gpu_telemetry_follows_a_run_and_attributes_its_process(
    sandbox: Sandbox, tmp_path: Path
):
    from cosmos_tui.remote.gpu import GpuState, GpuTelemetry

    remote = RemoteHost(sandbox.host_config(), TimeoutsConfig(connect=5), FAST_RETRY)
    telemetry = GpuTelemetry(remote.ssh, remote.docker, interval_ms=50, apps_interval_s=0.1)
    try:
        telemetry.start()
        tool = await remote.tool_dir()
        spec = ContainerSpec(
            run_id="r_gpu",
            image=sandbox.options.docker_image,
            command=("sh", "-c", "echo 'Start creating base model'; sleep 30"),
            gpus=(1,),
            mounts=(Mount(tool, "/cosmos-tui"),),
        )
        await remote.run(["mkdir", "-p", tool])
        # a torchrun-less command still loads GPU 1 once it logs the model-loading phase
        container_id = await remote.docker.create(spec)
        await remote.docker.start(container_id)
        process = None
        for _ in range(200):
            samples = telemetry.latest()
            mine = [p for p in telemetry.processes() if p.run_id == "r_gpu"]
            if len(samples) == 2 and samples[1].memory_used_mib and mine:
                process = mine[0]
                break
            await asyncio.sleep(0.05)
        assert telemetry.state is GpuState.OK
        assert process is not None, (telemetry.latest(), telemetry.processes())
        assert process.container_id == container_id
        assert process.gpu_uuid == samples[1].uuid
        assert "SIMULATED" in samples[0].name and samples[0].memory_used_mib == 0
        await remote.docker.stop(container_id, grace_s=1)
        sandbox.faults.smi_failure = True
        for _ in range(100):
            if telemetry.state is GpuState.NO_DRIVER:
                break
            await asyncio.sleep(0.05)
        assert telemetry.state is GpuState.NO_DRIVER
    finally:
        await telemetry.stop()
        await remote.close()
