"""The sandbox's SSH server: exec, SFTP confinement, forwarding, host keys, faults."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import asyncssh
import pytest

from cosmos_tui.sandbox import Sandbox
from tests.sandbox.conftest import connect


async def test_exec_pumps_stdout_stderr_and_exit_status(conn: asyncssh.SSHClientConnection):
    result = await conn.run("echo out; echo err >&2; exit 3", encoding="utf-8")
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"
    assert result.exit_status == 3


async def test_exec_pumps_stdin_and_runs_in_home(
    sandbox: Sandbox, conn: asyncssh.SSHClientConnection
):
    result = await conn.run("cat; pwd", input="hello\n", encoding="utf-8")
    assert result.stdout == f"hello\n{sandbox.home}\n"
    assert str(sandbox.home).startswith(str(sandbox.root))


async def test_a_client_signal_ends_the_command(conn: asyncssh.SSHClientConnection):
    process = await conn.create_process("sleep 30")
    await asyncio.sleep(0.2)
    process.send_signal("TERM")
    result = await asyncio.wait_for(process.wait(), timeout=5)
    assert result.exit_signal is not None and result.exit_signal[0] == "TERM"


async def test_large_output_arrives_whole(conn: asyncssh.SSHClientConnection):
    result = await conn.run("seq 1 200000", encoding="utf-8")
    lines = result.stdout.splitlines()
    assert len(lines) == 200000 and lines[-1] == "200000"


async def test_the_host_key_is_verified_never_accepted(sandbox: Sandbox, tmp_path: Path):
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        await asyncssh.connect(
            "127.0.0.1",
            sandbox.port,
            username="demo",
            known_hosts=str(empty),
            client_keys=[str(sandbox.client_key_path)],
            config=[],
            agent_path=None,
        )


async def test_an_unknown_client_key_is_refused(sandbox: Sandbox):
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh.connect(
            "127.0.0.1",
            sandbox.port,
            username="demo",
            client_keys=[stranger],
            known_hosts=str(sandbox.known_hosts_path),
            config=[],
            agent_path=None,
        )


async def test_sftp_is_confined_to_the_root(sandbox: Sandbox, conn: asyncssh.SSHClientConnection):
    async with conn.start_sftp_client() as sftp:
        assert await sftp.realpath(".") == str(sandbox.home)
        await sftp.makedirs(".cosmos-tui/inputs", exist_ok=True)
        async with sftp.open(".cosmos-tui/inputs/a.txt", "w") as handle:
            await handle.write("data")
        assert (sandbox.home / ".cosmos-tui" / "inputs" / "a.txt").read_text() == "data"
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.stat("/etc/passwd")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.open("../../../../../../etc/passwd")


async def test_docker_socket_is_reached_through_streamlocal_forwarding(
    sandbox: Sandbox, conn: asyncssh.SSHClientConnection, tmp_path: Path
):
    local = tmp_path / "docker.sock"
    listener = await conn.forward_local_path(str(local), str(sandbox.docker_socket))
    try:
        connector = aiohttp.UnixConnector(path=str(local))
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.get("http://docker/_ping") as response,
        ):
            assert await response.text() == "OK"
            assert response.headers["API-Version"]
    finally:
        listener.close()


async def test_forwarding_outside_the_root_is_refused(
    conn: asyncssh.SSHClientConnection, tmp_path: Path
):
    with pytest.raises(asyncssh.ChannelOpenError):
        await conn.open_unix_connection("/run/docker.sock")


async def test_dropped_connections_are_seen_by_the_client(sandbox: Sandbox):
    client = await connect(sandbox)
    process = await client.create_process("sleep 30")
    assert sandbox.drop_connections() == 1
    await asyncio.wait_for(client.wait_closed(), timeout=5)
    with pytest.raises((asyncssh.Error, BrokenPipeError, ConnectionError)):
        await client.run("true", check=True)
    del process
    again = await connect(sandbox)
    assert (await again.run("echo back", encoding="utf-8")).stdout == "back\n"
    again.close()


async def test_host_down_refuses_then_comes_back_on_the_same_port(sandbox: Sandbox):
    port = sandbox.port
    await sandbox.host_down()
    with pytest.raises(OSError):
        await connect(sandbox)
    await sandbox.host_up()
    assert sandbox.port == port
    client = await connect(sandbox)
    assert (await client.run("true")).exit_status == 0
    client.close()
