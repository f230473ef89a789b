"""~/.ssh/config aliases, ProxyJump and ssh-agent are honoured."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from cosmos_tui.config import HostConfig
from cosmos_tui.domain import HostState
from cosmos_tui.errors import AuthenticationFailed, HostKeyUnknown, HostUnreachable
from cosmos_tui.remote import RemoteHost


def _alias_config(tmp_path: Path, ssh_server, extra: str = "") -> Path:
    path = tmp_path / "ssh_config"
    path.write_text(
        "Host cosmos-alias\n"
        "  HostName 127.0.0.1\n"
        f"  Port {ssh_server.port}\n"
        f"  User {ssh_server.user}\n"
        f"  IdentityFile {ssh_server.client_key}\n"
        f"  UserKnownHostsFile {ssh_server.known_hosts}\n" + extra
    )
    return path


async def test_alias_from_ssh_config(ssh_server, tmp_path: Path) -> None:
    config = HostConfig(name="aliased", hostname="cosmos-alias")
    host = RemoteHost(config, ssh_config=_alias_config(tmp_path, ssh_server))
    try:
        result = await host.run(["id", "-un"])
        assert result.stdout.strip() == ssh_server.user
    finally:
        await host.close()


async def test_proxy_jump_from_ssh_config(ssh_server, tmp_path: Path) -> None:
    jump = (
        "Host cosmos-jump\n"
        "  HostName 127.0.0.1\n"
        f"  Port {ssh_server.port}\n"
        f"  User {ssh_server.user}\n"
        f"  IdentityFile {ssh_server.client_key}\n"
        f"  UserKnownHostsFile {ssh_server.known_hosts}\n"
    )
    path = _alias_config(tmp_path, ssh_server, "  ProxyJump cosmos-jump\n" + jump)
    host = RemoteHost(HostConfig(name="jumped", hostname="cosmos-alias"), ssh_config=path)
    try:
        result = await host.run(["sh", "-c", "echo $SSH_CONNECTION"])
        # Through the jump host the target sees a connection from 127.0.0.1 to itself,
        # and two sshd sessions are open (the jump's forward and ours).
        assert result.stdout.split()[2] == "127.0.0.1"
    finally:
        await host.close()
    # The jump is really taken: through a jump host that is down, the target is unreachable.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    path.write_text(
        _alias_config(
            tmp_path,
            ssh_server,
            "  ProxyJump cosmos-jump\n"
            + jump.replace(f"Port {ssh_server.port}", f"Port {dead_port}"),
        ).read_text()
    )
    host = RemoteHost(HostConfig(name="jumped", hostname="cosmos-alias"), ssh_config=path)
    try:
        with pytest.raises(HostUnreachable):
            await host.run(["true"])
    finally:
        await host.close()


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    sock = tmp_path / "agent.sock"
    proc = __import__("subprocess").Popen(
        ["ssh-agent", "-D", "-a", str(sock)], stdout=-3, stderr=-3
    )
    try:
        for _ in range(100):
            if sock.exists():
                break
            __import__("time").sleep(0.02)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield sock
    finally:
        proc.terminate()
        proc.wait()


async def test_ssh_agent_is_used(ssh_server, agent: Path, tmp_path: Path) -> None:
    added = await asyncio.create_subprocess_exec(
        "ssh-add", "-q", str(ssh_server.client_key), env={**os.environ}
    )
    assert await added.wait() == 0
    config = HostConfig(
        name="agent",
        hostname="127.0.0.1",
        port=ssh_server.port,
        user=ssh_server.user,
        known_hosts=str(ssh_server.known_hosts),
    )
    empty_config = tmp_path / "empty_ssh_config"
    empty_config.write_text("")
    host = RemoteHost(config, ssh_config=empty_config)
    try:
        assert (await host.run(["echo", "via agent"])).stdout == "via agent\n"
    finally:
        await host.close()


def _config_without_known_hosts(tmp_path: Path, ssh_server, known_hosts_line: str) -> Path:
    path = tmp_path / "ssh_config_kh"
    path.write_text(
        "Host cosmos-alias\n"
        "  HostName 127.0.0.1\n"
        f"  Port {ssh_server.port}\n"
        f"  User {ssh_server.user}\n"
        f"  IdentityFile {ssh_server.client_key}\n" + known_hosts_line
    )
    return path


async def test_trust_records_in_user_known_hosts_file_of_ssh_config(
    ssh_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cosmos_tui.remote import trust_host_key

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    known = tmp_path / "from_ssh_config" / "known_hosts"
    path = _config_without_known_hosts(tmp_path, ssh_server, f"  UserKnownHostsFile {known}\n")
    host = RemoteHost(HostConfig(name="aliased", hostname="cosmos-alias"), ssh_config=path)
    try:
        info = await host.host_key()
        assert not info.trusted and info.known_hosts_path == known
        trust_host_key(info)
        assert (await host.run(["echo", "ok"])).stdout == "ok\n"
    finally:
        await host.close()
    assert not (tmp_path / "home" / ".ssh" / "known_hosts").exists()


async def test_user_known_hosts_file_none_does_not_turn_off_host_key_checks(
    ssh_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = _config_without_known_hosts(tmp_path, ssh_server, "  UserKnownHostsFile none\n")
    host = RemoteHost(HostConfig(name="aliased", hostname="cosmos-alias"), ssh_config=path)
    try:
        with pytest.raises(HostKeyUnknown) as info:
            await host.run(["true"])
        assert "cosmos host trust aliased" in info.value.message
        key = await host.host_key()
        assert key.known_hosts_path == tmp_path / "home" / ".ssh" / "known_hosts"
    finally:
        await host.close()


async def test_too_many_keys_offered_is_authentication_failed(
    ssh_server, agent: Path, tmp_path: Path
) -> None:
    import shutil

    from tests.fixtures.hosts import _make_root, start_ssh_server

    root = _make_root("cosmos-sshd-maxauth-")
    server = start_ssh_server(root)
    try:
        server.stop()
        with server.config_path.open("a") as config_file:
            config_file.write("MaxAuthTries 1\n")
        server.start()
        wrong = []
        for name in ("wrong_a", "wrong_b"):
            proc = await asyncio.create_subprocess_exec(
                "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)
            )
            await proc.wait()
            wrong.append(tmp_path / name)
        added = await asyncio.create_subprocess_exec("ssh-add", "-q", str(wrong[0]))
        assert await added.wait() == 0
        config = HostConfig(
            name="manykeys",
            hostname="127.0.0.1",
            port=server.port,
            user=server.user,
            identity_file=str(wrong[1]),
            known_hosts=str(server.known_hosts),
        )
        empty_config = tmp_path / "empty_ssh_config"
        empty_config.write_text("")
        host = RemoteHost(config, ssh_config=empty_config)
        try:
            with pytest.raises(AuthenticationFailed) as info:
                await host.connect()
            assert "IdentitiesOnly" in info.value.message and not info.value.transient
            assert host.status().state is HostState.DOWN
        finally:
            await host.close()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


async def test_untrusted_proxy_jump_host_key_is_not_sent_to_host_trust(
    ssh_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the jump host's key is nowhere
    path = tmp_path / "ssh_config_jump"
    path.write_text(
        "Host cosmos-alias\n"
        "  HostName 127.0.0.1\n"
        f"  Port {ssh_server.port}\n"
        f"  User {ssh_server.user}\n"
        f"  IdentityFile {ssh_server.client_key}\n"
        f"  UserKnownHostsFile {ssh_server.known_hosts}\n"
        "  ProxyJump cosmos-jump\n"
        "Host cosmos-jump\n"
        "  HostName localhost\n"
        f"  Port {ssh_server.port}\n"
        f"  User {ssh_server.user}\n"
        f"  IdentityFile {ssh_server.client_key}\n"
    )
    host = RemoteHost(HostConfig(name="jumped", hostname="cosmos-alias"), ssh_config=path)
    try:
        for call in (host.run(["true"]), host.host_key()):
            with pytest.raises(HostKeyUnknown) as info:
                await call
            assert "localhost" in info.value.message and "ProxyJump" in info.value.message
            assert "cosmos host trust" not in info.value.message
    finally:
        await host.close()
