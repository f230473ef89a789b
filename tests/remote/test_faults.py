"""Faults on real servers: each ends in the documented state or error, and recovery works."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import shutil
import time
from pathlib import Path

import pytest

from cosmos_tui.config import RetryConfig, TimeoutsConfig
from cosmos_tui.domain import HostState
from cosmos_tui.errors import DockerError, HostUnreachable, TransferFailed
from cosmos_tui.remote import RemoteHost
from cosmos_tui.remote.gpu import GpuState, GpuTelemetry
from tests.fixtures.hosts import _make_root, start_docker_daemon, start_ssh_server
from tests.remote.log_lines import all_lines, read_lines

FAST_RETRY = RetryConfig(max_attempts=4, backoff_base=0.1, backoff_max=0.5)


async def _wait_state(host: RemoteHost, state: HostState, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while host.status().state is not state:
        assert time.monotonic() < deadline, f"still {host.status()}"
        await asyncio.sleep(0.02)


async def test_cut_mid_command_then_reconnects(remote_host: RemoteHost, ssh_server) -> None:
    states = []

    async def watch() -> None:
        async for status in remote_host.watch():
            states.append(status)

    watcher = asyncio.create_task(watch())
    command = asyncio.create_task(remote_host.run(["sleep", "5"]))
    await asyncio.sleep(0.3)
    assert ssh_server.kill_sessions() >= 1
    with pytest.raises(HostUnreachable) as info:
        await command
    assert info.value.transient
    await _wait_state(remote_host, HostState.CONNECTED)
    assert (await remote_host.run(["echo", "back"])).stdout == "back\n"
    watcher.cancel()
    reconnecting = [s for s in states if s.state is HostState.RECONNECTING]
    assert reconnecting and reconnecting[-1].next_attempt_at is not None
    assert reconnecting[0].reason and "connection" in reconnecting[0].reason


async def test_cut_mid_stream(remote_host: RemoteHost, ssh_server) -> None:
    got = []
    with pytest.raises(HostUnreachable):
        async with remote_host.stream(
            ["sh", "-c", "while :; do echo tick; sleep 0.05; done"]
        ) as lines:
            async for line in lines:
                got.append(line)
                if len(got) == 3:
                    ssh_server.kill_sessions()
    assert len(got) >= 3
    await _wait_state(remote_host, HostState.CONNECTED)


async def test_docker_forward_is_remade_after_reconnect(
    remote_host: RemoteHost, ssh_server
) -> None:
    assert (await remote_host.docker.version()).version
    ssh_server.kill_sessions()
    await _wait_state(remote_host, HostState.RECONNECTING, timeout=5)
    await _wait_state(remote_host, HostState.CONNECTED)
    assert (await remote_host.docker.version()).version


async def test_telemetry_survives_a_dropped_connection(
    remote_host: RemoteHost, ssh_server, fake_gpu
) -> None:
    remote_host.ssh.retry = FAST_RETRY
    telemetry = GpuTelemetry(remote_host.ssh, None, interval_ms=100, apps_interval_s=0)
    telemetry.start()
    try:
        async for _ in telemetry.samples():
            break
        ssh_server.kill_sessions()
        await asyncio.sleep(0.2)
        count = 0
        async for _ in telemetry.samples():
            count += 1
            if count == 3:
                break
        assert telemetry.state is GpuState.OK and telemetry.restarts >= 1
    finally:
        await telemetry.stop()


async def test_host_down_then_back(host_config, tmp_path: Path) -> None:
    root = _make_root("cosmos-sshd-down-")
    server = start_ssh_server(root)
    config = dataclasses.replace(host_config, **server.connection_fields())
    host = RemoteHost(config, TimeoutsConfig(connect=2), FAST_RETRY)
    try:
        await host.run(["true"])
        server.stop()
        await _wait_state(host, HostState.DOWN, timeout=15)
        assert host.status().reason
        with pytest.raises(HostUnreachable):
            await host.run(["true"])
        server.start()
        assert (await host.run(["echo", "up"])).stdout == "up\n"
        assert host.status().state is HostState.CONNECTED
    finally:
        await host.close()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


async def test_upload_interrupted_halfway_resumes(
    remote_host: RemoteHost, ssh_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cosmos_tui.remote import sftp_io

    local = tmp_path / "big.bin"
    block = hashlib.sha256(b"interrupt").digest() * 32768
    local.write_bytes(block * 120)  # 120 MiB
    # Each chunk is read 0.1 s slower (as from a slow disk), so the upload is still
    # going when the host's marker has recorded a prefix: the cut lands mid-way.
    read_chunk = sftp_io._read_chunk

    def slow_read(*args: object) -> bytes:
        time.sleep(0.1)
        return read_chunk(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(sftp_io, "_read_chunk", slow_read)
    marker = Path(
        sftp_io.marker_path(remote_host.files.partial_path(await remote_host.tool_dir(), local))
    )
    upload = asyncio.ensure_future(remote_host.upload_input(local))
    # Cut once the host's record of what arrived (the marker beside the .part, kept as
    # chunks land out of order over several channels) says a prefix is there.
    while not marker.exists() or int(marker.read_text().strip() or 0) < 8 * 1024 * 1024:
        assert not upload.done(), upload
        await asyncio.sleep(0.01)
    ssh_server.kill_sessions()
    with pytest.raises((TransferFailed, HostUnreachable)) as info:
        await upload
    assert info.value.transient
    await _wait_state(remote_host, HostState.CONNECTED)
    result = await remote_host.upload_input(local)
    assert result.resumed_from > 0 and not result.skipped
    assert await remote_host.files.remote_sha256(result.remote_path) == result.sha256


async def test_download_interrupted_halfway_resumes(
    remote_host: RemoteHost, ssh_server, tmp_path: Path
) -> None:
    local = tmp_path / "src.bin"
    # 120 MiB: half of it is well past the reads in flight (4 x 8 MiB) when the link is cut
    local.write_bytes(hashlib.sha256(b"d").digest() * 32768 * 120)
    up = await remote_host.upload_input(local)
    remote_dir, name = up.remote_path.rsplit("/", 1)
    target = tmp_path / "out"
    cut = {"done": False}

    def progress(done: int, total: int) -> None:
        if not cut["done"] and done >= total // 2:
            cut["done"] = True
            ssh_server.kill_sessions()

    with pytest.raises((TransferFailed, HostUnreachable)):
        await remote_host.download(remote_dir, name, target, progress=progress)
    assert not (target / name).exists()
    await _wait_state(remote_host, HostState.CONNECTED)
    result = await remote_host.download(remote_dir, name, target, verify_hash=True)
    assert result.resumed_from > 0 and result.sha256 == up.sha256


async def test_docker_socket_denied_then_fixed(remote_host: RemoteHost, docker_daemon) -> None:
    socket_path = docker_daemon.socket_path
    mode = socket_path.stat().st_mode & 0o777
    socket_path.chmod(0o600)
    try:
        with pytest.raises(DockerError) as info:
            await remote_host.docker.version()
        assert "docker group" in info.value.message and "docker_sudo" in info.value.message
        assert "usermod -aG docker cosmostest" in info.value.message
    finally:
        socket_path.chmod(mode)
    assert (await remote_host.docker.version()).version


async def test_a_missing_docker_socket_is_named_with_what_to_do(host_config) -> None:
    # the socket is not checked before the first call: the call that cannot get through
    # asks the host why, and that is the error
    config = dataclasses.replace(host_config, docker_socket="/run/no-such-dir/docker.sock")
    host = RemoteHost(config)
    try:
        with pytest.raises(DockerError) as info:
            await host.docker.version()
        message = info.value.message
        assert "no Docker socket at /run/no-such-dir/docker.sock" in message
        assert "docker_socket" in message and info.value.transient
        with pytest.raises(DockerError, match="no Docker socket"):
            await host.docker.list()
    finally:
        await host.close()


async def test_dockerd_stopped_then_started(host_config) -> None:
    root = _make_root("cosmos-dockerd-stop-")
    daemon = start_docker_daemon(root)
    host = RemoteHost(dataclasses.replace(host_config, docker_socket=str(daemon.socket_path)))
    try:
        assert (await host.docker.version()).version
        daemon.stop()
        with pytest.raises(DockerError) as info:
            await host.docker.version()
        assert info.value.transient
        assert "daemon" in info.value.message
        daemon.start()
        assert (await host.docker.version()).version
    finally:
        await host.close()
        daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


async def test_log_follow_cut_then_resumed_from_last_timestamp(
    remote_host: RemoteHost, ssh_server, busybox_image: str
) -> None:
    from cosmos_tui.remote.docker import ContainerSpec

    docker = remote_host.docker
    container_id = await docker.create(
        ContainerSpec(
            run_id=f"rn_cut{time.monotonic_ns() % 10**9}",
            image=busybox_image,
            command=(
                "sh",
                "-c",
                "i=0; while [ $i -lt 40 ]; do echo n$i; i=$((i+1)); sleep 0.05; done",
            ),
        )
    )
    await docker.start(container_id)
    seen = []
    try:
        with pytest.raises(DockerError) as info:
            async for line in read_lines(docker, container_id):
                seen.append(line)
                if len(seen) == 5:
                    ssh_server.kill_sessions()
        assert info.value.transient
        await _wait_state(remote_host, HostState.CONNECTED)
        rest = await all_lines(docker, container_id, since=seen[-1].since)
        texts = [line.text for line in seen] + [
            line.text for line in rest if line.ts_ns > seen[-1].ts_ns
        ]
        assert texts == [f"n{i}" for i in range(40)]
    finally:
        await docker.remove(container_id, force=True)


async def test_docker_daemon_that_never_answers_times_out(host_config) -> None:
    # A hung dockerd: its socket accepts connections but never answers a request.
    root = _make_root("cosmos-dockerd-hung-")
    root.chmod(0o755)
    socket_path = root / "docker.sock"
    accepted: list[asyncio.StreamWriter] = []

    async def never_answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_unix_server(never_answer, path=str(socket_path))
    socket_path.chmod(0o666)
    config = dataclasses.replace(host_config, docker_socket=str(socket_path))
    host = RemoteHost(config, TimeoutsConfig(connect=5, command=1.5))
    try:
        started = time.monotonic()
        with pytest.raises(DockerError) as info:
            await asyncio.wait_for(host.docker.version(), 20)
        assert time.monotonic() - started < 10
        assert info.value.transient and "Docker" in info.value.message
        assert accepted, "the request never reached the socket"
    finally:
        await host.close()
        server.close()
        for writer in accepted:
            writer.close()
        shutil.rmtree(root, ignore_errors=True)
