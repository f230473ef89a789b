"""Docker Engine over the SSH connection, against a real dockerd."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from cosmos_tui.errors import DockerError
from cosmos_tui.remote import ContainerSpec, Mount, RemoteHost
from cosmos_tui.remote.docker import DockerClient
from tests.remote.log_lines import all_lines, read_lines


def _run_id() -> str:
    return f"rn_test{time.monotonic_ns() % 10**12}"


async def test_version_and_image_presence(remote_host: RemoteHost, busybox_image: str) -> None:
    version = await remote_host.docker.version()
    assert version.version and version.api_version
    assert await remote_host.docker.image_present(busybox_image)
    assert not await remote_host.docker.image_present("cosmos-test/absent:1")


async def test_container_lifecycle(remote_host: RemoteHost, busybox_image: str) -> None:
    docker = remote_host.docker
    run_id = _run_id()
    tool_dir = await remote_host.tool_dir()
    await remote_host.run(["sh", "-c", 'echo mounted > "$1/in.txt"', "sh", tool_dir])
    spec = ContainerSpec(
        run_id=run_id,
        image=busybox_image,
        command=("sh", "-c", "cat /data/in.txt; echo err >&2; pwd; echo $GREETING; exit 3"),
        env={"GREETING": "hello there"},
        mounts=(Mount(tool_dir, "/data", read_only=True),),
        workdir="/tmp",
        shm_size_bytes=64 * 1024 * 1024,
        labels={"cosmos.batch_id": "bt_1"},
    )
    container_id = await docker.create(spec)
    info = await docker.inspect(container_id)
    assert info.name == f"cosmos-{run_id}" and info.run_id == run_id
    assert info.labels["cosmos.batch_id"] == "bt_1" and not info.running
    await docker.start(container_id)
    assert await docker.wait(container_id) == 3
    lines = await all_lines(docker, container_id)
    # Docker keeps order within a stream, not across stdout and stderr.
    stdout = [ln.text for ln in lines if ln.text != "err"]
    assert stdout == ["mounted", "/tmp", "hello there"] and len(lines) == 4
    assert all(ln.ts_ns and ln.ts_ns > 1_700_000_000 * 10**9 for ln in lines)
    last = max(lines, key=lambda ln: (ln.ts_ns, ln.text))
    later = await all_lines(docker, container_id, since=last.since)
    # since is inclusive to the nanosecond: the last line comes again, earlier ones not.
    assert last.text in [ln.text for ln in later] and len(later) < len(lines)
    assert all(ln.ts_ns >= last.ts_ns for ln in later)
    info = await docker.inspect(container_id)
    assert info.exit_code == 3 and not info.oom_killed and info.finished_at is not None
    listed = await docker.list({"cosmos.run_id": run_id})
    assert [(c.id, c.exit_code) for c in listed] == [(container_id, 3)]
    await docker.remove(container_id)
    assert await docker.list({"cosmos.run_id": run_id}) == []
    await docker.remove(container_id)  # already gone: not an error


async def test_follow_logs_while_running_and_stop(
    remote_host: RemoteHost, busybox_image: str
) -> None:
    docker = remote_host.docker
    spec = ContainerSpec(
        run_id=_run_id(),
        image=busybox_image,
        command=(
            "sh",
            "-c",
            "trap 'echo bye; exit 0' TERM; i=0; "
            "while :; do echo tick$i; i=$((i+1)); sleep 0.1; done",
        ),
    )
    container_id = await docker.create(spec)
    await docker.start(container_id)
    seen: list[str] = []
    async for line in read_lines(docker, container_id):
        seen.append(line.text)
        if len(seen) == 3:
            break
    assert seen == ["tick0", "tick1", "tick2"]
    assert (await docker.inspect(container_id)).running
    started = time.monotonic()
    await docker.stop(container_id, grace_s=5)
    assert time.monotonic() - started < 4
    info = await docker.inspect(container_id)
    assert not info.running and info.exit_code == 0
    await docker.remove(container_id)


async def test_stop_kills_after_grace(remote_host: RemoteHost, busybox_image: str) -> None:
    docker = remote_host.docker
    spec = ContainerSpec(
        run_id=_run_id(),
        image=busybox_image,
        command=("sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"),
    )
    container_id = await docker.create(spec)
    await docker.start(container_id)
    started = time.monotonic()
    await docker.stop(container_id, grace_s=1)
    assert 0.9 < time.monotonic() - started < 10
    info = await docker.inspect(container_id)
    assert info.exit_code == 137
    await docker.remove(container_id, force=True)


async def test_list_selects_by_label_not_image(
    remote_host: RemoteHost, busybox_image: str, docker_daemon
) -> None:
    # Someone else's container from the same image must never show up.
    docker_daemon.cli("create", "--name", f"other-{_run_id()}", busybox_image, "true")
    run_id = _run_id()
    container_id = await remote_host.docker.create(
        ContainerSpec(run_id=run_id, image=busybox_image, command=("true",))
    )
    ours = await remote_host.docker.list()
    assert container_id in {c.id for c in ours}
    assert all(c.labels.get("cosmos.managed") == "true" for c in ours)
    await remote_host.docker.remove(container_id)


async def test_gpu_request_without_toolkit_is_reported(host_config, busybox_image: str) -> None:
    host = RemoteHost(dataclasses.replace(host_config, gpu_request=True))
    try:
        container_id = await host.docker.create(
            ContainerSpec(run_id=_run_id(), image=busybox_image, command=("true",), gpus=(0, 1))
        )
        with pytest.raises(DockerError) as info:
            await host.docker.start(container_id)
        assert "NVIDIA Container Toolkit" in info.value.message
        assert "gpu_request = false" in info.value.message
        assert not info.value.transient
        await host.docker.remove(container_id, force=True)
    finally:
        await host.close()


async def test_missing_image_on_create(remote_host: RemoteHost) -> None:
    with pytest.raises(DockerError) as info:
        await remote_host.docker.create(
            ContainerSpec(run_id=_run_id(), image="cosmos-test/absent:1", command=("true",))
        )
    assert info.value.status == 404


async def test_dial_stdio_bridge(
    remote_host: RemoteHost, docker_daemon, busybox_image: str
) -> None:
    # The sudo mode's bridge, with a dial command that needs no sudo.
    bridge = DockerClient(
        remote_host.ssh,
        str(docker_daemon.socket_path),
        sudo=True,
        dial_argv=["docker", "-H", f"unix://{docker_daemon.socket_path}", "system", "dial-stdio"],
    )
    try:
        version = await bridge.version()
        assert version.api_version
        results = await asyncio.gather(*(bridge.image_present(busybox_image) for _ in range(6)))
        assert all(results)
    finally:
        await bridge.close()


async def test_thirty_concurrent_mixed_requests(
    remote_host: RemoteHost, busybox_image: str, tmp_path
) -> None:
    local = tmp_path / "in.bin"
    local.write_bytes(b"x" * 100_000)
    tool_dir = await remote_host.tool_dir()
    calls = []
    for i in range(30):
        kind = i % 5
        if kind == 0:
            calls.append(remote_host.run(["echo", str(i)]))
        elif kind == 1:
            calls.append(remote_host.docker.image_present(busybox_image))
        elif kind == 2:
            calls.append(remote_host.docker.list())
        elif kind == 3:
            calls.append(remote_host.files.listdir(tool_dir))
        else:
            calls.append(remote_host.upload_input(local))
    results = await asyncio.gather(*calls)
    assert len(results) == 30
    assert all(results[i] is True for i in range(1, 30, 5))


async def test_build_image_fixture_adds_files(remote_host: RemoteHost, build_image) -> None:
    tag = build_image(
        "cosmos-test/withfiles:1",
        {"/app/run.sh": "echo from-image $GREETING\n", "/app/data.txt": b"\x00\x01"},
        cmd=["sh", "/app/run.sh"],
        env={"GREETING": "hi"},
    )
    docker = remote_host.docker
    container_id = await docker.create(ContainerSpec(run_id=_run_id(), image=tag, command=()))
    try:
        await docker.start(container_id)
        assert await docker.wait(container_id) == 0
        lines = [ln.text for ln in await all_lines(docker, container_id, follow=False)]
        assert lines == ["from-image hi"]
    finally:
        await docker.remove(container_id, force=True)


async def test_out_of_memory_is_reported_by_inspect(
    remote_host: RemoteHost, busybox_image: str
) -> None:
    docker = remote_host.docker
    container_id = await docker.create(
        ContainerSpec(
            run_id=_run_id(),
            image=busybox_image,
            command=("sh", "-c", "head -c 200m /dev/zero | tail"),
            memory_bytes=16 * 1024 * 1024,
        )
    )
    try:
        await docker.start(container_id)
        assert await docker.wait(container_id) == 137
        info = await docker.inspect(container_id)
        assert info.oom_killed and info.exit_code == 137
    finally:
        await docker.remove(container_id, force=True)


async def test_create_error_does_not_show_environment_values(remote_host: RemoteHost) -> None:
    secret = "hf_SECRETTOKEN123"
    with pytest.raises(DockerError) as info:
        await remote_host.docker.create(
            ContainerSpec(
                run_id=_run_id(),
                image=f"cosmos-test/absent-{secret.lower()}:1",
                command=("true",),
                env={"HF_TOKEN": secret.lower()},
            )
        )
    assert secret.lower() not in info.value.message and "***" in info.value.message


async def test_logs_keep_carriage_return_redraws_of_one_frame(
    remote_host, busybox_image: str
) -> None:
    docker = remote_host.docker
    run_id = "rs_crframe0001"
    spec = ContainerSpec(
        run_id=run_id,
        image=busybox_image,
        command=("sh", "-c", "printf ' 45%%|####  | 16/35\\r100%%|######| 35/35\\n'; echo done"),
    )
    container_id = await docker.create(spec)
    try:
        await docker.start(container_id)
        assert await docker.wait(container_id) == 0
        lines = [line.text for line in await all_lines(docker, container_id)]
        assert lines == [" 45%|####  | 16/35", "100%|######| 35/35", "done"]
    finally:
        await docker.remove(container_id)


async def test_a_container_that_cannot_start_is_not_left_behind(
    remote_host: RemoteHost, busybox_image: str
) -> None:
    # its command is not in the image: Docker creates it, then refuses to start it
    from cosmos_tui.engine import launch

    run_id = _run_id()
    layout = launch.RemoteLayout(
        await remote_host.files.home(), await remote_host.tool_dir(), run_id
    )
    await remote_host.files.makedirs(layout.output_dir)
    await remote_host.files.makedirs(layout.inputs_dir)
    spec = launch.container_spec(
        run_id, ("/no/such/program",), busybox_image, remote_host.config, layout
    )
    with pytest.raises(DockerError):
        await launch.launch_container(remote_host, layout, spec)
    assert await remote_host.docker.list({"cosmos.run_id": run_id}) == []
