"""Docker's sudo mode (``docker_sudo = true``) against real sudo, sshd and dockerd.

The dockerd of this module keeps its socket root-only (group root), so the test user can
reach it only through ``sudo -n docker system dial-stdio``: a test that passes proves the
bridge goes through sudo. Sudo rights are a file in /etc/sudoers.d/, validated with
``visudo -cf`` and removed after each test.

The test user's login shell is /bin/sh (dash), which reads no startup file for an ssh
command; what prints before a command on real hosts is sshd's ``~/.ssh/rc`` (or bash's
``~/.bashrc``). The test user is shared with other test sessions, so its home is left
alone: a dedicated sshd greets through a ``ForceCommand`` wrapper instead, which prints
into the command's stdout just as those files do.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from cosmos_tui.config import HostConfig
from cosmos_tui.errors import DockerError
from cosmos_tui.remote import ContainerSpec, RemoteHost
from cosmos_tui.remote.docker_sudo import parse_sudo_check, sudo_docker_cli
from cosmos_tui.remote.ssh import CommandResult
from tests.fixtures.hosts import (
    BUSYBOX_TAG,
    TEST_USER,
    DockerDaemon,
    SshServer,
    _make_root,
    make_image_builder,
    start_docker_daemon,
    start_ssh_server,
)
from tests.remote.log_lines import all_lines

SudoersWriter = Callable[..., None]
_LIMIT_S = 60.0  # every call here answers within seconds; a hang fails the test instead


@pytest.fixture(scope="module")
def root_only_daemon() -> Iterator[DockerDaemon]:
    """A dockerd whose socket only root may open, with the busybox image."""
    root = _make_root("cosmos-dockerd-sudo-")
    daemon = start_docker_daemon(root, group="root")
    try:
        make_image_builder(daemon)(BUSYBOX_TAG)
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def sudoers() -> Iterator[SudoersWriter]:
    """``sudoers(*lines)`` installs those lines as /etc/sudoers.d/ file; removed afterwards."""
    visudo = shutil.which("visudo") or "/usr/sbin/visudo"
    if not Path(visudo).exists() or shutil.which("sudo") is None:
        raise RuntimeError("sudo is not installed ('./dev test' installs it with apt-get)")
    # sudo skips included files whose names contain a dot or end in "~".
    target = Path("/etc/sudoers.d") / f"cosmos-tui-test-{os.getpid()}"

    def write(*lines: str) -> None:
        with tempfile.NamedTemporaryFile("w", prefix="sudoers-", delete=False) as draft:
            draft.write("".join(line + "\n" for line in lines))
        staged = Path(draft.name)
        try:
            check = subprocess.run([visudo, "-cf", str(staged)], capture_output=True, text=True)
            assert check.returncode == 0, f"visudo rejects {lines}: {check.stdout}{check.stderr}"
            staged.chmod(0o440)
            shutil.move(staged, target)
        finally:
            staged.unlink(missing_ok=True)

    try:
        yield write
    finally:
        target.unlink(missing_ok=True)


def _sudoers_line(docker_cli: str) -> str:
    return f"{TEST_USER} ALL=(root) NOPASSWD: {docker_cli}"


@pytest.fixture
def sudo_config(host_config: HostConfig, root_only_daemon: DockerDaemon) -> HostConfig:
    """The test host in sudo mode, pointed at the root-only dockerd."""
    return dataclasses.replace(
        host_config, docker_sudo=True, docker_socket=str(root_only_daemon.socket_path)
    )


@pytest.fixture
async def sudo_host(sudo_config: HostConfig) -> AsyncIterator[RemoteHost]:
    """A RemoteHost in sudo mode (no sudo rights yet); closed after the test."""
    host = RemoteHost(sudo_config)
    try:
        yield host
    finally:
        await host.close()


@pytest.fixture
async def docker_cli(sudo_host: RemoteHost) -> str:
    """Full path of the docker CLI on the test user's PATH."""
    found = await sudo_host.run(["sh", "-c", "command -v docker"])
    return found.stdout.strip()


@pytest.fixture
def sudo_allowed(sudoers: SudoersWriter, docker_cli: str) -> str:
    """Let the test user run exactly the docker CLI as root without a password."""
    sudoers(_sudoers_line(docker_cli))
    return docker_cli


# What a chatty ~/.ssh/rc or ~/.bashrc prints: before the fix, these lines took the places
# of the user's name and the docker CLI's path (which then became sudo's program).
_GREETING = ("Welcome to the GPU host!", "Last login: Mon Jan 1 00:00:00 2024", "", "/usr/bin/x")
_GREETER = """#!/bin/sh
case "$SSH_ORIGINAL_COMMAND" in
*dial-stdio*) ;;  # the bridge's stdout must stay clean, as for docker's own ssh:// transport
*) printf '%s\\n' {lines} ;;
esac
exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"
"""


@pytest.fixture(scope="module")
def greeting_ssh_server() -> Iterator[SshServer]:
    """An sshd for the test user that prints a greeting before each command's output."""
    root = _make_root("cosmos-sshd-greeting-")
    server = start_ssh_server(root)
    try:
        greeter = root / "greeter"
        greeter.write_text(_GREETER.format(lines=" ".join(f"'{line}'" for line in _GREETING)))
        greeter.chmod(0o755)
        server.stop()
        with server.config_path.open("a") as config_file:
            config_file.write(f"ForceCommand {greeter}\n")
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def greeting_host(
    sudo_config: HostConfig, greeting_ssh_server: SshServer
) -> AsyncIterator[RemoteHost]:
    """A RemoteHost in sudo mode whose commands' output starts with a greeting."""
    server = greeting_ssh_server
    host = RemoteHost(dataclasses.replace(sudo_config, **server.connection_fields()))
    try:
        greeted = await host.run(["echo", "mine"])
        assert greeted.stdout.splitlines() == [*_GREETING, "mine"]  # the greeting is there
        yield host
    finally:
        await host.close()


def _check_result(exit_status: int, *stdout: str, stderr: str = "") -> CommandResult:
    text = "".join(line + "\n" for line in stdout)
    return CommandResult(("sh", "-c", "check"), exit_status, text, stderr, 0.1)


def _docker_cli_from(result: CommandResult) -> str:
    return sudo_docker_cli(result, host="gpu1", socket_path="/run/docker.sock", login_user="me")


def _run_id() -> str:
    return f"rn_sudo{time.monotonic_ns() % 10**12}"


async def test_socket_is_closed_to_the_user_without_sudo(
    sudo_config: HostConfig, root_only_daemon: DockerDaemon, docker_cli: str
) -> None:
    host = RemoteHost(dataclasses.replace(sudo_config, docker_sudo=False))
    try:
        with pytest.raises(DockerError) as info:
            await asyncio.wait_for(host.docker.version(), _LIMIT_S)
        assert "permission denied" in info.value.message
        direct = await host.run(
            [docker_cli, "-H", f"unix://{root_only_daemon.socket_path}", "version"], check=False
        )
        assert direct.exit_status != 0 and "permission denied" in direct.stderr
    finally:
        await host.close()


async def test_version_and_container_lifecycle_through_sudo(
    sudo_host: RemoteHost, sudo_allowed: str, root_only_daemon: DockerDaemon
) -> None:
    docker = sudo_host.docker
    version = await asyncio.wait_for(docker.version(), _LIMIT_S)
    assert version.version and version.api_version
    assert await docker.image_present(BUSYBOX_TAG)
    assert not await docker.image_present("cosmos-test/absent:1")
    run_id = _run_id()
    spec = ContainerSpec(
        run_id=run_id,
        image=BUSYBOX_TAG,
        command=("sh", "-c", "echo out; echo err >&2; printf 'a\\rb\\n'; exit 4"),
        env={"GREETING": "hello"},
    )
    container_id = await docker.create(spec)
    try:
        await docker.start(container_id)
        assert await asyncio.wait_for(docker.wait(container_id), _LIMIT_S) == 4
        lines = [line.text for line in await all_lines(docker, container_id)]
        assert [text for text in lines if text != "err"] == ["out", "a", "b"]
        assert lines.count("err") == 1 and len(lines) == 4
        info = await docker.inspect(container_id)
        assert info.name == f"cosmos-{run_id}" and info.exit_code == 4
        listed = await docker.list({"cosmos.run_id": run_id})
        assert [c.id for c in listed] == [container_id]
        # The root-only daemon really ran it: the container is there, seen as root.
        assert container_id in root_only_daemon.cli("ps", "-aq", "--no-trunc").stdout.decode()
        # Several API connections at once, each its own sudo bridge.
        results = await asyncio.gather(*(docker.image_present(BUSYBOX_TAG) for _ in range(8)))
        assert all(results)
    finally:
        await docker.remove(container_id, force=True)
    assert await docker.list({"cosmos.run_id": run_id}) == []


async def test_sudo_not_allowed_names_the_sudoers_line_to_add(
    sudo_host: RemoteHost, sudoers: SudoersWriter, docker_cli: str
) -> None:
    started = time.monotonic()
    with pytest.raises(DockerError) as info:
        await asyncio.wait_for(sudo_host.docker.version(), _LIMIT_S)
    assert time.monotonic() - started < 15
    message = info.value.message
    assert "docker_sudo" in message and "a password is required" in message
    assert f"'{_sudoers_line(docker_cli)}' in /etc/sudoers.d/" in message
    assert not info.value.transient
    # The line the message names is the one that is needed: add it, and the same client
    # connects on its next call.
    suggested = re.search(r"'([^']+NOPASSWD: [^']+)'", message)
    assert suggested is not None
    sudoers(suggested.group(1))
    assert (await asyncio.wait_for(sudo_host.docker.version(), _LIMIT_S)).version


async def test_sudo_allowed_but_daemon_stopped_says_daemon(
    sudo_config: HostConfig, sudo_allowed: str, root_only_daemon: DockerDaemon
) -> None:
    connected = RemoteHost(sudo_config)
    fresh = RemoteHost(sudo_config)
    try:
        assert (await asyncio.wait_for(connected.docker.version(), _LIMIT_S)).version
        root_only_daemon.stop()
        for host in (fresh, connected):  # the sudo check, then an established bridge
            with pytest.raises(DockerError) as info:
                await asyncio.wait_for(host.docker.version(), _LIMIT_S)
            message = info.value.message
            assert info.value.transient, message
            assert "daemon" in message and "does not answer" in message
            assert "sudoers" not in message and "NOPASSWD" not in message
    finally:
        root_only_daemon.start()
    try:
        for host in (fresh, connected):
            assert (await asyncio.wait_for(host.docker.version(), _LIMIT_S)).version
    finally:
        await fresh.close()
        await connected.close()


# the check's output, read by prefix -----------------------------------------------------


def test_the_check_reads_its_values_by_prefix_among_greeting_lines() -> None:
    result = _check_result(
        0,
        *_GREETING,
        "PATH=/opt/evil/bin",
        "cosmos-user=alice",
        "cosmos-docker=/usr/bin/docker",
        "cosmos-version=26.1.5 26.1.5",
        "Have a nice day",
    )
    check = parse_sudo_check(result.stdout)
    assert (check.user, check.docker, check.version) == (
        "alice",
        "/usr/bin/docker",
        "26.1.5 26.1.5",
    )
    assert _docker_cli_from(result) == "/usr/bin/docker"


def test_a_path_with_spaces_is_one_value() -> None:
    result = _check_result(0, "cosmos-user=a", "cosmos-docker=/opt/my docker/bin/docker")
    assert _docker_cli_from(result) == "/opt/my docker/bin/docker"


@pytest.mark.parametrize(
    "stdout",
    [
        (),
        _GREETING,
        ("cosmos-user=alice",),
        ("cosmos-docker=/usr/bin/docker",),
        ("alice", "/usr/bin/docker", "26.1.5"),  # the values without their prefixes
    ],
    ids=["nothing", "greeting-only", "no-docker", "no-user", "unprefixed"],
)
def test_a_check_without_its_values_is_refused(stdout: tuple[str, ...]) -> None:
    with pytest.raises(DockerError) as info:
        _docker_cli_from(_check_result(0, *stdout))
    message = info.value.message
    assert "gpu1" in message and "cosmos-user=/cosmos-docker=" in message
    assert not info.value.transient


@pytest.mark.parametrize(
    ("found", "status"),
    [("", 5), ("docker", 5), ("docker", 0), ("Last login: Mon", 0), ("./docker", 0)],
)
def test_a_docker_cli_that_is_not_an_absolute_path_is_refused(found: str, status: int) -> None:
    result = _check_result(status, *_GREETING, "cosmos-user=alice", f"cosmos-docker={found}")
    with pytest.raises(DockerError) as info:
        _docker_cli_from(result)
    message = info.value.message
    assert "the PATH of alice there has no docker CLI" in message
    assert (repr(found) in message) if found else "(none;" in message
    assert not info.value.transient


def test_docker_run_by_sudo_without_its_daemon_is_transient() -> None:
    result = _check_result(
        1,
        *_GREETING,
        "cosmos-user=alice",
        "cosmos-docker=/usr/bin/docker",
        "cosmos-version=26.1.5",
        stderr="Cannot connect to the Docker daemon at unix:///run/docker.sock",
    )
    with pytest.raises(DockerError) as info:
        _docker_cli_from(result)
    assert info.value.transient and "does not answer at /run/docker.sock" in info.value.message


def test_sudo_refusing_docker_names_the_user_and_the_path() -> None:
    result = _check_result(
        1,
        *_GREETING,
        "cosmos-user=alice",
        "cosmos-docker=/usr/local/bin/docker",
        stderr="sudo: a password is required",
    )
    with pytest.raises(DockerError) as info:
        _docker_cli_from(result)
    assert "'alice ALL=(root) NOPASSWD: /usr/local/bin/docker'" in info.value.message
    assert not info.value.transient


def test_an_unknown_user_name_falls_back_to_the_configured_one() -> None:
    result = _check_result(1, "cosmos-user=", "cosmos-docker=/usr/bin/docker")
    with pytest.raises(DockerError) as info:
        _docker_cli_from(result)
    assert "'me ALL=(root) NOPASSWD: /usr/bin/docker'" in info.value.message


# the same against a real host whose commands print a greeting first --------------------


async def test_a_greeting_host_gets_the_sudoers_line_for_its_user_and_docker(
    greeting_host: RemoteHost, sudoers: SudoersWriter, docker_cli: str
) -> None:
    with pytest.raises(DockerError) as info:
        await asyncio.wait_for(greeting_host.docker.version(), _LIMIT_S)
    message = info.value.message
    assert not info.value.transient, message
    assert f"'{_sudoers_line(docker_cli)}' in /etc/sudoers.d/" in message


async def test_a_greeting_host_runs_containers_through_sudo(
    greeting_host: RemoteHost, sudo_allowed: str
) -> None:
    docker = greeting_host.docker
    assert (await asyncio.wait_for(docker.version(), _LIMIT_S)).version
    run_id = _run_id()
    spec = ContainerSpec(run_id=run_id, image=BUSYBOX_TAG, command=("sh", "-c", "echo hi"))
    container_id = await docker.create(spec)
    try:
        await docker.start(container_id)
        assert await asyncio.wait_for(docker.wait(container_id), _LIMIT_S) == 0
        assert [line.text for line in await all_lines(docker, container_id)] == ["hi"]
    finally:
        await docker.remove(container_id, force=True)
