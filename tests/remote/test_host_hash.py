"""The host-side sha256 computed while an upload is still arriving."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from cosmos_tui.errors import TransferCorrupted
from cosmos_tui.remote import RemoteHost
from cosmos_tui.remote.host_hash import MIB, streamed_host_sha256
from cosmos_tui.remote.ssh import DEFAULT_MAX_SESSIONS
from tests.fixtures.hosts import TEST_USER

FEEDER_MARK = "read -r skip count"


def _write(path: Path, size: int, seed: bytes) -> Path:
    block = hashlib.sha256(seed).digest() * 4096
    path.write_bytes((block * (size // len(block) + 1))[:size])
    return path


def _feeders(tool_dir: str) -> list[str]:
    """The hashing processes left on files under ``tool_dir`` (this test's own: other
    test files run beside this one as the same user)."""
    pattern = f"{FEEDER_MARK}.* {re.escape(tool_dir)}/"
    found = subprocess.run(
        ["pgrep", "-u", TEST_USER, "-f", pattern], capture_output=True, text=True
    )
    return found.stdout.split()


@pytest.mark.parametrize("size", [0, 1000, 5 * MIB, 70 * MIB + 123])
async def test_streamed_digest_of_a_file_written_in_steps(
    remote_host: RemoteHost, tmp_path: Path, size: int
) -> None:
    tool_dir = await remote_host.tool_dir()
    source = _write(tmp_path / "src.bin", size, b"steps")
    data = source.read_bytes()
    target = Path(tool_dir) / "growing.bin"
    await remote_host.run(["touch", str(target)])
    async with streamed_host_sha256(remote_host.ssh, str(target)) as host_hash:
        with target.open("ab") as handle:  # the test host is this machine
            step = 3 * MIB + 17  # not aligned to the hasher's blocks
            for start in range(0, size, step):
                handle.write(data[start : start + step])
                handle.flush()
                host_hash.written(min(start + step, size))
        digest = await host_hash.digest(60)
    assert digest == hashlib.sha256(data).hexdigest()
    assert _feeders(await remote_host.tool_dir()) == []


async def test_upload_is_verified_by_the_stream_without_a_second_hash(
    remote_host: RemoteHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = _write(tmp_path / "s.bin", 40 * MIB + 5, b"stream")
    whole_file_hashes: list[str] = []
    original = remote_host.files.remote_sha256

    async def counting(path: str) -> str | None:
        whole_file_hashes.append(path)
        return await original(path)

    monkeypatch.setattr(remote_host.files, "remote_sha256", counting)
    result = await remote_host.upload_input(local)
    assert result.sha256 == hashlib.sha256(local.read_bytes()).hexdigest()
    assert whole_file_hashes == []  # the host's digest came with the last byte
    assert _feeders(await remote_host.tool_dir()) == []


async def test_upload_survives_the_host_hash_stream_dying(
    remote_host: RemoteHost, tmp_path: Path
) -> None:
    local = _write(tmp_path / "d.bin", 64 * MIB, b"dies")
    mine = f"{FEEDER_MARK}.* {re.escape(await remote_host.tool_dir())}/"
    killed: list[bool] = []

    def kill_feeder(done: int, total: int) -> None:
        if not killed and done >= total // 2:
            killed.append(True)
            subprocess.run(["pkill", "-u", TEST_USER, "-f", mine], check=False)

    result = await remote_host.upload_input(local, progress=kill_feeder)
    assert killed
    digest = hashlib.sha256(local.read_bytes()).hexdigest()
    assert result.sha256 == digest
    assert await remote_host.files.remote_sha256(result.remote_path) == digest


async def test_resumed_upload_corrupted_before_the_resume_is_caught(
    remote_host: RemoteHost, tmp_path: Path
) -> None:
    local = _write(tmp_path / "r.bin", 36 * MIB, b"resume")
    tool_dir = await remote_host.tool_dir()
    part = Path(remote_host.files.partial_path(tool_dir, local))
    await remote_host.run(["mkdir", "-p", str(part.parent)])
    prefix = bytearray(local.read_bytes()[: 20 * MIB])
    prefix[MIB] ^= 0xFF  # one flipped byte in what "arrived" earlier
    staged = tmp_path / "prefix"
    staged.write_bytes(bytes(prefix))
    await remote_host.files.upload(staged, str(part))
    with pytest.raises(TransferCorrupted):
        await remote_host.upload_input(local)
    assert not part.exists()
    again = await remote_host.upload_input(local)
    assert again.resumed_from == 0
    assert again.sha256 == hashlib.sha256(local.read_bytes()).hexdigest()


async def test_recorded_content_on_the_host_is_used_without_reading_the_file(
    remote_host: RemoteHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cosmos_tui.remote import sftp

    local = _write(tmp_path / "color.mp4", 3 * MIB, b"recorded")
    recorded = hashlib.sha256(local.read_bytes()).hexdigest()
    first = await remote_host.upload_input(local, expected_sha256=recorded)
    assert first.sha256 == recorded and not first.skipped
    # A new process: nothing cached. The file changed since, but the host holds the
    # recorded content, which is what the prompt's runs use.
    local.write_bytes(b"edited".ljust(3 * MIB, b"!"))
    reads: list[Path] = []
    monkeypatch.setattr(sftp, "file_sha256", lambda path: reads.append(path) or "x" * 64)
    fresh = sftp.SftpTransfers(remote_host.ssh, await remote_host.tool_dir())
    again = await fresh.upload_input(local, expected_sha256=recorded)
    assert again.skipped and again.remote_path == first.remote_path and again.sha256 == recorded
    assert reads == []


@pytest.mark.parametrize("resume", [False, True])
async def test_an_input_changed_since_it_was_recorded_is_refused(
    remote_host: RemoteHost, tmp_path: Path, resume: bool
) -> None:
    from cosmos_tui.errors import InputChanged

    local = _write(tmp_path / "depth.mp4", 5 * MIB, b"original")
    recorded = hashlib.sha256(local.read_bytes()).hexdigest()
    local.write_bytes(_write(tmp_path / "other", 5 * MIB, b"edited").read_bytes())
    tool_dir = await remote_host.tool_dir()
    part = Path(remote_host.files.partial_path(tool_dir, local))
    if resume:  # half of the edited file reached the host before a break
        await remote_host.run(["mkdir", "-p", str(part.parent)])
        staged = tmp_path / "half"
        staged.write_bytes(local.read_bytes()[: 2 * MIB])
        await remote_host.files.upload(staged, str(part))
    with pytest.raises(InputChanged) as info:
        await remote_host.upload_input(local, expected_sha256=recorded)
    assert str(local) in info.value.message and "changed" in info.value.message
    assert not info.value.transient
    assert not part.exists()
    assert [e.name for e in await remote_host.files.listdir(f"{tool_dir}/inputs")] == []


async def test_a_size_change_is_refused_before_sending(
    remote_host: RemoteHost, tmp_path: Path
) -> None:
    from cosmos_tui.errors import InputChanged

    local = _write(tmp_path / "seg.mp4", MIB, b"size")
    recorded = hashlib.sha256(local.read_bytes()).hexdigest()
    with local.open("ab") as handle:
        handle.write(b"more")
    sent: list[int] = []
    with pytest.raises(InputChanged):
        await remote_host.upload_input(
            local, progress=lambda d, t: sent.append(d), expected_sha256=recorded, expected_size=MIB
        )
    assert sent == []


@pytest.mark.parametrize("old_first", [True, False])
async def test_concurrent_uploads_of_one_file_expecting_other_content_do_not_share(
    remote_host: RemoteHost, tmp_path: Path, old_first: bool
) -> None:
    import asyncio

    from cosmos_tui.errors import InputChanged

    # An old prompt recorded the file before it was edited; a new prompt recorded it since.
    local = _write(tmp_path / "color.mp4", 24 * MIB, b"old")
    old = hashlib.sha256(local.read_bytes()).hexdigest()
    _write(local, 24 * MIB, b"new")
    new = hashlib.sha256(local.read_bytes()).hexdigest()

    async def upload(expected: str) -> object:
        try:
            return await remote_host.upload_input(
                local, expected_sha256=expected, expected_size=24 * MIB
            )
        except InputChanged as exc:
            return exc

    order = [old, new] if old_first else [new, old]
    first = asyncio.create_task(upload(order[0]))
    await asyncio.sleep(0.05)  # the first one is under way
    second = asyncio.create_task(upload(order[1]))
    results = dict(zip(order, await asyncio.gather(first, second), strict=True))
    assert isinstance(results[old], InputChanged)
    assert not isinstance(results[new], Exception) and results[new].sha256 == new


async def test_upload_without_a_spare_session_slot_hashes_the_whole_file(
    remote_host: RemoteHost, tmp_path: Path
) -> None:
    import asyncio
    import contextlib

    local = _write(tmp_path / "busy.bin", 10 * MIB, b"busy")
    ssh = remote_host.ssh
    await remote_host.tool_dir()
    async with contextlib.AsyncExitStack() as stack:
        # Every slot but one is held (log follows, telemetry, docker bridges...).
        for _ in range(DEFAULT_MAX_SESSIONS - 1):
            await asyncio.wait_for(stack.enter_async_context(ssh.session_slot()), 5)
        result = await asyncio.wait_for(remote_host.upload_input(local), 30)
    assert result.sha256 == hashlib.sha256(local.read_bytes()).hexdigest()
    assert _feeders(await remote_host.tool_dir()) == []


async def test_a_file_edited_while_it_is_sent_is_hashed_again_next_time(
    remote_host: RemoteHost, tmp_path: Path
) -> None:
    import os

    local = _write(tmp_path / "edit.mp4", 24 * MIB, b"before")
    edited: list[bool] = []

    def edit(done: int, total: int) -> None:
        if not edited and done >= total // 2:
            edited.append(True)
            with local.open("r+b") as handle:  # the part already sent changes
                handle.write(b"EDITED")
            stat = local.stat()
            os.utime(local, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    await remote_host.upload_input(local, progress=edit)
    assert edited
    again = await remote_host.upload_input(local)
    assert again.sha256 == hashlib.sha256(local.read_bytes()).hexdigest()
    assert await remote_host.files.remote_sha256(again.remote_path) == again.sha256


async def test_a_run_upload_is_checked_against_the_recorded_sha_without_hashing_locally(
    remote_host: RemoteHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cosmos_tui.remote import sftp

    local = _write(tmp_path / "vis.mp4", 12 * MIB, b"run path")
    recorded = hashlib.sha256(local.read_bytes()).hexdigest()
    hashers: list[object] = []
    original = sftp.send_file

    async def spying(*args: object, **kwargs: object) -> None:
        hashers.append(args[6] if len(args) > 6 else kwargs.get("hasher"))
        await original(*args, **kwargs)

    monkeypatch.setattr(sftp, "send_file", spying)
    monkeypatch.setattr(sftp, "file_sha256", lambda path: pytest.fail("local file hashed"))
    result = await remote_host.upload_input(local, expected_sha256=recorded, expected_size=12 * MIB)
    assert hashers == [None] and result.sha256 == recorded and not result.skipped
    assert await remote_host.files.remote_sha256(result.remote_path) == recorded


async def test_a_spare_slot_is_taken_only_while_enough_stay_free(
    remote_host: RemoteHost,
) -> None:
    import contextlib

    ssh = remote_host.ssh
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(DEFAULT_MAX_SESSIONS - 3):
            await stack.enter_async_context(ssh.session_slot())
        # Three free: with two to be left free, one may be taken, then none.
        assert await stack.enter_async_context(ssh.spare_session_slot(leave_free=2))
        assert not await stack.enter_async_context(ssh.spare_session_slot(leave_free=2))
        # Without a reserve the last two go too, then none is left.
        assert await stack.enter_async_context(ssh.spare_session_slot())
        assert await stack.enter_async_context(ssh.spare_session_slot())
        assert not await stack.enter_async_context(ssh.spare_session_slot())
    # Everything was given back: every slot is free again.
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(DEFAULT_MAX_SESSIONS):
            assert await stack.enter_async_context(ssh.spare_session_slot())


async def test_a_large_upload_spreads_over_channels_and_leaves_a_command_room(
    remote_host: RemoteHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import contextlib

    from cosmos_tui.remote import sftp

    local = _write(tmp_path / "large.mp4", 80 * MIB + 5, b"spread")
    channels: list[int] = []
    original = sftp.send_file

    async def spying(sessions: list[object], *args: object, **kwargs: object) -> None:
        channels.append(len(sessions))
        # Every extra channel is held now: a command (telemetry, a hash) still starts.
        done = await asyncio.wait_for(remote_host.run(["echo", "room"]), 10)
        assert done.stdout.strip() == "room"
        await original(sessions, *args, **kwargs)

    monkeypatch.setattr(sftp, "send_file", spying)
    async with contextlib.AsyncExitStack() as stack:
        # Telemetry's nvidia-smi stream, a log follow and the shared SFTP session hold
        # a slot each.
        for _ in range(3):
            await stack.enter_async_context(remote_host.ssh.session_slot())
        result = await remote_host.upload_input(local)
    assert channels and 1 < channels[0] <= sftp.UPLOAD_CHANNELS
    assert result.sha256 == hashlib.sha256(local.read_bytes()).hexdigest()
    assert await remote_host.files.remote_sha256(result.remote_path) == result.sha256


async def _stage(remote_host: RemoteHost, tmp_path: Path, remote: str, content: bytes) -> None:
    """Put ``content`` at ``remote`` on the host, as an earlier upload would have left it."""
    staged = tmp_path / f"staged-{hashlib.sha256(remote.encode()).hexdigest()[:8]}"
    staged.write_bytes(content)
    await remote_host.run(["mkdir", "-p", str(Path(remote).parent)])
    await remote_host.files.upload(staged, remote)


@pytest.mark.parametrize(
    ("marker", "resumed"),
    [
        pytest.param(f"{16 * MIB:020d}\n", 16 * MIB, id="marker-says-16MiB"),
        # Created but cut before its first write: nothing can be vouched for.
        pytest.param("", 0, id="empty-marker"),
        pytest.param("garbage\n", 0, id="unreadable-marker"),
    ],
)
async def test_a_multi_channel_part_resumes_only_from_what_its_marker_vouches_for(
    remote_host: RemoteHost, tmp_path: Path, marker: str, resumed: int
) -> None:
    from cosmos_tui.remote.sftp_io import marker_path

    local = _write(tmp_path / "multi.mp4", 48 * MIB + 7, b"multi")
    data = local.read_bytes()
    part = remote_host.files.partial_path(await remote_host.tool_dir(), local)
    # 32 MiB arrived out of order: the first 16 MiB, then a hole of zeros, then data.
    landed = data[: 16 * MIB] + bytes(8 * MIB) + data[24 * MIB : 32 * MIB]
    await _stage(remote_host, tmp_path, part, landed)
    await _stage(remote_host, tmp_path, marker_path(part), marker.encode())
    result = await remote_host.upload_input(local)
    assert result.resumed_from == resumed
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert await remote_host.files.remote_sha256(result.remote_path) == result.sha256
    leftovers = await remote_host.run(["ls", "-a", str(Path(part).parent)])
    assert ".part" not in leftovers.stdout, leftovers.stdout


async def test_a_part_that_holds_every_byte_is_verified_and_placed_without_sending(
    remote_host: RemoteHost, tmp_path: Path
) -> None:
    local = _write(tmp_path / "whole.mp4", 20 * MIB + 3, b"whole")
    data = local.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    part = remote_host.files.partial_path(await remote_host.tool_dir(), local)
    await _stage(remote_host, tmp_path, part, data)  # cut after the last byte arrived
    seen: list[tuple[int, int]] = []
    result = await remote_host.upload_input(
        local, progress=lambda done, total: seen.append((done, total)),
        expected_sha256=sha, expected_size=len(data),
    )  # fmt: skip
    assert result.resumed_from == len(data) and not result.skipped
    assert result.sha256 == sha
    assert seen and seen[-1] == (len(data), len(data))
    assert await remote_host.files.remote_sha256(result.remote_path) == sha
    leftovers = await remote_host.run(["ls", "-a", str(Path(part).parent)])
    assert ".part" not in leftovers.stdout, leftovers.stdout
