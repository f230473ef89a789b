"""The managed SSH connection against a real sshd."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time

import pytest

from cosmos_tui.config import TimeoutsConfig
from cosmos_tui.domain import HostState
from cosmos_tui.errors import (
    AuthenticationFailed,
    CommandTimedOut,
    ConfigError,
    HostKeyUnknown,
    HostUnreachable,
    RemoteCommandFailed,
    RemoteError,
)
from cosmos_tui.remote import RemoteHost


async def test_run_returns_output_and_status(remote_host: RemoteHost) -> None:
    result = await remote_host.run(["printf", "%s\n", "a b", "$HOME;`x`"])
    assert result.stdout == "a b\n$HOME;`x`\n"
    assert result.exit_status == 0
    assert remote_host.status().state is HostState.CONNECTED
    assert remote_host.status().latency_ms is not None


async def test_nonzero_exit_raises_with_stderr_tail(remote_host: RemoteHost) -> None:
    with pytest.raises(RemoteCommandFailed) as info:
        await remote_host.run(["sh", "-c", "echo boom >&2; exit 3"])
    assert info.value.exit_status == 3
    assert "boom" in info.value.stderr_tail
    result = await remote_host.run(["sh", "-c", "exit 4"], check=False)
    assert result.exit_status == 4


async def test_command_timeout(remote_host: RemoteHost) -> None:
    with pytest.raises(RemoteCommandFailed) as info:
        await remote_host.run(["sleep", "5"], timeout=0.3)
    assert info.value.timed_out
    assert info.value.transient
    assert isinstance(info.value, CommandTimedOut) and isinstance(info.value, RemoteError)
    assert (await remote_host.run(["true"])).exit_status == 0


async def test_thirty_concurrent_commands_succeed(remote_host: RemoteHost) -> None:
    results = await asyncio.gather(
        *(remote_host.run(["sh", "-c", f"sleep 0.2; echo {i}"]) for i in range(30))
    )
    assert [r.stdout.strip() for r in results] == [str(i) for i in range(30)]


async def test_input_text_reaches_stdin(remote_host: RemoteHost) -> None:
    result = await remote_host.run(["cat"], input_text="hello\n")
    assert result.stdout == "hello\n"


async def test_empty_input_text_is_an_empty_stdin(remote_host: RemoteHost) -> None:
    result = await remote_host.run(["cat"], input_text="", timeout=5)
    assert result.exit_status == 0 and result.stdout == ""


async def test_stream_lines(remote_host: RemoteHost) -> None:
    async with remote_host.stream(["sh", "-c", "for i in 1 2 3; do echo line$i; done"]) as lines:
        got = [line async for line in lines]
        assert await lines.wait() == 0
    assert got == ["line1", "line2", "line3"]


async def test_unknown_host_key_is_refused_with_fingerprint(host_config, tmp_path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    host = RemoteHost(dataclasses.replace(host_config, known_hosts=str(empty)))
    try:
        with pytest.raises(HostKeyUnknown) as info:
            await host.run(["true"])
        assert info.value.fingerprint.startswith("SHA256:")
        assert "cosmos host trust testhost" in info.value.message
        assert not info.value.changed
        assert host.status().state is HostState.DOWN
    finally:
        await host.close()


async def test_changed_host_key_is_reported_as_changed(host_config, tmp_path) -> None:
    other = tmp_path / "other_key"
    proc = await asyncio.create_subprocess_exec(
        "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)
    )
    await proc.wait()
    kind, key = (tmp_path / "other_key.pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{host_config.port} {kind} {key}\n")
    host = RemoteHost(dataclasses.replace(host_config, known_hosts=str(known)))
    try:
        with pytest.raises(HostKeyUnknown) as info:
            await host.connect()
        assert info.value.changed
        assert "CHANGED" in info.value.message
    finally:
        await host.close()


async def test_changed_host_key_of_another_type_is_reported_as_changed(
    host_config, ssh_server, tmp_path
) -> None:
    # known_hosts holds an RSA key for the host; the host only has an ed25519 key.
    other = tmp_path / "rsa_key"
    proc = await asyncio.create_subprocess_exec(
        "ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(other)
    )
    await proc.wait()
    kind, key = (tmp_path / "rsa_key.pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{host_config.port} {kind} {key}\n")
    real = ssh_server.host_key_pub.read_text().split()[1]
    host = RemoteHost(dataclasses.replace(host_config, known_hosts=str(known)))
    try:
        with pytest.raises(HostKeyUnknown) as info:
            await host.connect()
        assert info.value.changed and not info.value.transient
        assert host.status().state is HostState.DOWN
        key_info = await host.host_key()
        assert key_info.changed and not key_info.trusted
        assert key_info.known_hosts_line.split()[2] == real
        assert info.value.fingerprint == key_info.fingerprint
    finally:
        await host.close()


async def test_trust_records_key_then_connects(host_config, tmp_path) -> None:
    from cosmos_tui.remote import trust_host_key

    known = tmp_path / "ssh" / "known_hosts"
    host = RemoteHost(dataclasses.replace(host_config, known_hosts=str(known)))
    try:
        info = await host.host_key()
        assert not info.trusted and info.fingerprint.startswith("SHA256:")
        trust_host_key(info)
        assert (await host.run(["echo", "ok"])).stdout == "ok\n"
        again = await host.host_key()
        assert again.trusted
    finally:
        await host.close()


async def test_trust_appends_after_a_last_line_without_newline(host_config, tmp_path) -> None:
    from cosmos_tui.remote import trust_host_key

    other = (
        "other.example ssh-ed25519 "
        "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    )
    known = tmp_path / "known_hosts"
    known.write_text(other)  # hand-edited: no newline at the end
    host = RemoteHost(dataclasses.replace(host_config, known_hosts=str(known)))
    try:
        trust_host_key(await host.host_key())
        assert (await host.run(["echo", "ok"])).stdout == "ok\n"
    finally:
        await host.close()
    assert known.read_text().splitlines()[0] == other


async def test_wrong_key_is_authentication_failed(host_config, tmp_path) -> None:
    key = tmp_path / "wrong"
    proc = await asyncio.create_subprocess_exec(
        "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)
    )
    await proc.wait()
    host = RemoteHost(dataclasses.replace(host_config, identity_file=str(key)))
    try:
        with pytest.raises(AuthenticationFailed):
            await host.connect()
        assert host.status().state is HostState.DOWN
    finally:
        await host.close()


async def test_unreachable_port(host_config) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    host = RemoteHost(dataclasses.replace(host_config, port=port))
    try:
        with pytest.raises(HostUnreachable) as info:
            await host.connect()
        assert info.value.transient
        assert host.status().state is HostState.DOWN
        assert host.status().reason
    finally:
        await host.close()


async def test_refused_connection_names_the_port(host_config) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    host = RemoteHost(dataclasses.replace(host_config, port=port))
    try:
        with pytest.raises(HostUnreachable) as info:
            await host.connect()
        assert f"127.0.0.1:{port} refused the connection" in info.value.message
        assert "sshd" in info.value.message
    finally:
        await host.close()


async def test_unresolvable_host_name_says_check_hostname(host_config) -> None:
    host = RemoteHost(dataclasses.replace(host_config, hostname="no-such-host.invalid"))
    try:
        with pytest.raises(HostUnreachable) as info:
            await host.run(["true"])
        assert "cannot resolve no-such-host.invalid" in info.value.message
        assert "'hostname'" in info.value.message
        assert host.status().state is HostState.DOWN
    finally:
        await host.close()


async def test_host_that_accepts_but_never_speaks_ssh_times_out(host_config) -> None:
    # TCP connects, but no SSH banner ever comes (a hung sshd, or the wrong service).
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    port = silent.getsockname()[1]
    host = RemoteHost(dataclasses.replace(host_config, port=port), TimeoutsConfig(connect=1))
    try:
        started = time.monotonic()
        with pytest.raises(HostUnreachable) as info:
            await host.run(["true"])
        assert time.monotonic() - started < 5
        assert f"timed out connecting to 127.0.0.1:{port}" in info.value.message
        assert info.value.transient and host.status().state is HostState.DOWN
        with pytest.raises(HostUnreachable):
            await host.host_key()
    finally:
        await host.close()
        silent.close()


async def test_missing_identity_file_is_a_config_error(host_config, tmp_path) -> None:
    missing = tmp_path / "no_such_key"
    host = RemoteHost(dataclasses.replace(host_config, identity_file=str(missing)))
    try:
        with pytest.raises(ConfigError) as info:
            await host.connect()
        assert str(missing) in info.value.message and "identity_file" in info.value.message
        assert not info.value.transient
        assert host.status().state is HostState.DOWN
    finally:
        await host.close()


async def test_timed_out_command_is_stopped_on_the_host(remote_host: RemoteHost) -> None:
    marker = "31.4159"
    with pytest.raises(RemoteCommandFailed):
        await remote_host.run(["sleep", marker], timeout=1.0)
    for _ in range(100):
        left = await remote_host.run(["pgrep", "-f", f"^sleep {marker}"], check=False)
        if left.exit_status == 1:
            break
        await asyncio.sleep(0.05)
    assert left.exit_status == 1, left.stdout


async def test_closed_stream_stops_the_remote_command(remote_host: RemoteHost) -> None:
    marker = "27.1828"
    async with remote_host.stream(["sh", "-c", f"echo go; exec sleep {marker}"]) as lines:
        async for _ in lines:
            break
    for _ in range(50):
        left = await remote_host.run(["pgrep", "-f", f"^sleep {marker}"], check=False)
        if left.exit_status == 1:
            break
        await asyncio.sleep(0.05)
    assert left.exit_status == 1, left.stdout


async def test_watch_ends_with_down_when_closed(host_config) -> None:
    host = RemoteHost(host_config)
    seen = []

    async def watch() -> None:
        async for status in host.watch():
            seen.append(status.state)

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0)
    await host.connect()
    await host.close()
    await asyncio.wait_for(watcher, 5)
    assert seen[0] is HostState.UNKNOWN
    assert HostState.CONNECTING in seen and HostState.CONNECTED in seen
    assert seen[-1] is HostState.DOWN
