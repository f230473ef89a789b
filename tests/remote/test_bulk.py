"""The second connection that large transfers add channels on (SshHost.bulk_channel).

One OpenSSH connection carries at most MaxSessions channels, each with a 2 MiB upload
window: on a long, fast path that caps a transfer (docs/remote.md). A transfer of
BULK_MIN_BYTES or more also reads or writes over channels of a second connection, made
with the same options and host key checks, that joins once its handshake is done.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from cosmos_tui.errors import HostUnreachable
from cosmos_tui.remote import RemoteHost, sftp, sftp_io
from cosmos_tui.remote import ssh as ssh_module
from cosmos_tui.remote.ssh import SshHost

MIB = 1024 * 1024


def _file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def _spy_on_late(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record how many handles each transfer ended with (late ones included)."""
    counts: list[int] = []
    original = sftp_io.Handles.close

    async def close(self: sftp_io.Handles, check: bool = False) -> None:
        counts.append(len(self.handles))
        await original(self, check)

    monkeypatch.setattr(sftp_io.Handles, "close", close)
    return counts


async def test_the_bulk_connection_is_a_second_verified_connection_closed_with_the_host(
    remote_host: RemoteHost,
) -> None:
    main = await remote_host.ssh.channel()
    bulk = await remote_host.ssh.bulk_channel()
    assert bulk is not None and bulk is not main
    assert await remote_host.ssh.bulk_channel() is bulk  # made once, then reused
    result = await bulk.run("echo bulk", check=True)
    assert str(result.stdout).strip() == "bulk"
    await remote_host.close()
    assert bulk.is_closed()


async def test_a_new_main_connection_gets_a_new_bulk_connection(
    remote_host: RemoteHost,
) -> None:
    first = await remote_host.ssh.bulk_channel()
    assert first is not None
    import asyncio

    generation = remote_host.ssh.generation
    (await remote_host.ssh.channel()).abort()  # the link drops
    for _ in range(100):  # the loss is seen, and the connection made again
        await asyncio.sleep(0.05)
        if remote_host.ssh.generation > generation:
            break
    await remote_host.ssh.connect()
    assert remote_host.ssh.generation > generation
    assert first.is_closed()
    second = await remote_host.ssh.bulk_channel()
    assert second is not None and second is not first and not second.is_closed()


async def test_a_large_upload_and_download_use_the_second_connection(
    remote_host: RemoteHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    counts = _spy_on_late(monkeypatch)
    # Loopback moves a file this size faster than the late channels open: each chunk
    # takes 50 ms more here (as on a slower link), so they join while it moves.
    for name in ("_read_chunk", "_write_chunk"):
        step = getattr(sftp_io, name)

        def slowed(*args: Any, _step: Any = step) -> Any:
            time.sleep(0.05)
            return _step(*args)

        monkeypatch.setattr(sftp_io, name, slowed)
    assert await remote_host.ssh.bulk_channel() is not None
    local = _file(tmp_path / "big.mp4", sftp.BULK_MIN_BYTES + 3 * MIB + 11)
    sha = hashlib.sha256(local.read_bytes()).hexdigest()
    result = await remote_host.upload_input(local, expected_sha256=sha)
    assert result.sha256 == sha
    assert await remote_host.files.remote_sha256(result.remote_path) == sha
    down = tmp_path / "down"
    down.mkdir()
    name = Path(result.remote_path).name
    got = await remote_host.download(
        str(Path(result.remote_path).parent), name, down, result.size, verify_hash=True
    )
    assert got.sha256 == sha and (down / name).read_bytes() == local.read_bytes()
    uploaded_over, downloaded_over = counts
    # More channels than the main connection gives one transfer: the late ones joined.
    assert uploaded_over > sftp.UPLOAD_CHANNELS
    assert downloaded_over > sftp.DOWNLOAD_CHANNELS


async def test_a_host_that_refuses_a_second_connection_still_gets_the_file(
    remote_host: RemoteHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = SshHost._create
    attempts: list[int] = []

    async def refuse_second(self: SshHost, client: Any, **extra: Any) -> Any:
        attempts.append(1)
        raise HostUnreachable(self.name, "too many connections (MaxStartups)")

    await remote_host.ssh.channel()  # the main connection is up before the refusals
    monkeypatch.setattr(SshHost, "_create", refuse_second)
    local = _file(tmp_path / "big.mp4", sftp.BULK_MIN_BYTES + 1)
    sha = hashlib.sha256(local.read_bytes()).hexdigest()
    result = await remote_host.upload_input(local, expected_sha256=sha)
    assert result.sha256 == sha
    assert await remote_host.files.remote_sha256(result.remote_path) == sha
    assert await remote_host.ssh.bulk_channel() is None
    assert len(attempts) == 1  # not asked again on this connection
    assert remote_host.ssh.status().state.value == "connected"
    monkeypatch.setattr(SshHost, "_create", original)


async def test_a_large_input_already_on_a_fresh_connection_is_skipped_leaving_no_session(
    remote_host: RemoteHost, tmp_path: Path
) -> None:
    local = _file(tmp_path / "there.mp4", 12 * MIB)
    sha = hashlib.sha256(local.read_bytes()).hexdigest()
    first = await remote_host.upload_input(local, expected_sha256=sha)
    await remote_host.close()
    again = RemoteHost(remote_host.config)  # a new process: no shared session yet
    try:
        await again.connect()
        result = await again.upload_input(local, expected_sha256=sha)
        assert result.skipped and result.remote_path == first.remote_path
        assert again.ssh._slots_held == 1  # the shared SFTP session only
    finally:
        await again.close()


async def test_an_upload_whose_marker_cannot_be_removed_is_still_placed(
    remote_host: RemoteHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncssh

    async def refuse(self: sftp_io.AckMarker) -> None:
        raise asyncssh.SFTPPermissionDenied("marker folder made read-only")

    monkeypatch.setattr(sftp_io.AckMarker, "remove", refuse)
    local = _file(tmp_path / "marked.mp4", 40 * MIB + 1)
    sha = hashlib.sha256(local.read_bytes()).hexdigest()
    result = await remote_host.upload_input(local, expected_sha256=sha)
    assert result.sha256 == sha and not result.skipped
    assert await remote_host.files.remote_sha256(result.remote_path) == sha


def _spy_on_adoptions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record, per transfer, how many late sessions opened its file."""
    adopted: dict[int, int] = {}
    order: list[int] = []
    original_init = sftp_io.Handles.__init__
    original_adopt = sftp_io.Handles._adopt

    def init(self: sftp_io.Handles, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        adopted[id(self)] = 0
        order.append(id(self))

    async def adopt(self: sftp_io.Handles, session: Any) -> None:
        before = len(self.handles)
        await original_adopt(self, session)
        adopted[id(self)] += len(self.handles) - before

    monkeypatch.setattr(sftp_io.Handles, "__init__", init)
    monkeypatch.setattr(sftp_io.Handles, "_adopt", adopt)
    counts: list[int] = []

    original_close = sftp_io.Handles.close

    async def close(self: sftp_io.Handles, check: bool = False) -> None:
        counts.append(adopted[id(self)])
        await original_close(self, check)

    monkeypatch.setattr(sftp_io.Handles, "close", close)
    return counts


async def test_inputs_sent_together_use_the_second_connection_when_their_sum_is_large(
    remote_host: RemoteHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run's control videos: each under the threshold, together over it. The second
    # connection is asked for as they start, and each gets a channel on it. The main
    # channels' writes are held until every transfer has one (as on a long link, where
    # their windows are slow to come back), so no timing decides the outcome.
    import asyncio

    import asyncssh

    monkeypatch.setattr(sftp, "BULK_MIN_BYTES", 64 * MIB)
    # One channel each on the main connection: the three (and their hash streams) all
    # find a session slot there while the held writes keep them under way together.
    monkeypatch.setattr(sftp, "UPLOAD_CHANNELS", 1)
    joined: dict[int, int] = {}
    every_one_joined = asyncio.Event()
    original_adopt = sftp_io.Handles._adopt

    async def adopt(self: sftp_io.Handles, session: Any) -> None:
        before = len(self.handles)
        await original_adopt(self, session)
        if len(self.handles) > before:
            self.handles[-1]._late_one = True  # type: ignore[attr-defined]
            joined[id(self)] = joined.get(id(self), 0) + 1
            if len(joined) == 3:
                every_one_joined.set()

    original_write = asyncssh.SFTPClientFile.write

    async def write(self: asyncssh.SFTPClientFile, data: Any, offset: int | None = None) -> Any:
        if not getattr(self, "_late_one", False):
            with contextlib.suppress(TimeoutError):  # never a hang: the assert says it
                await asyncio.wait_for(every_one_joined.wait(), 60)
        return await original_write(self, data, offset)

    monkeypatch.setattr(sftp_io.Handles, "_adopt", adopt)
    monkeypatch.setattr(asyncssh.SFTPClientFile, "write", write)
    await remote_host.connect()
    files = [_file(tmp_path / f"control{i}.mp4", 4 * sftp_io.CHUNK_BYTES + i) for i in range(3)]
    shas = [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
    results = await remote_host.upload_inputs(
        [(f, sha, f.stat().st_size) for f, sha in zip(files, shas, strict=True)]
    )
    for result, sha in zip(results, shas, strict=True):
        assert result.sha256 == sha and not result.skipped
        assert await remote_host.files.remote_sha256(result.remote_path) == sha
    assert remote_host.ssh._bulk is not None  # asked for by their sum
    assert every_one_joined.is_set(), joined  # the first one too, which began alone
    assert all(n >= 1 for n in joined.values()), joined
    assert sum(joined.values()) <= ssh_module.BULK_SESSIONS


async def test_one_small_input_alone_does_not_open_a_second_connection(
    remote_host: RemoteHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sftp, "BULK_MIN_BYTES", 64 * MIB)
    local = _file(tmp_path / "alone.mp4", 4 * sftp_io.CHUNK_BYTES)
    sha = hashlib.sha256(local.read_bytes()).hexdigest()
    result = await remote_host.upload_inputs([(local, sha, local.stat().st_size)])
    assert result[0].sha256 == sha
    assert remote_host.ssh._bulk is None


async def test_a_late_session_joins_while_the_transfer_waits_on_its_oldest_write(
    remote_host: RemoteHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The transfer does not wait for its next acknowledgement to use a channel that
    # just opened: the late handle gets a chunk while the first ones are still held.
    import asyncio

    import asyncssh

    adopted = _spy_on_adoptions(monkeypatch)
    release = asyncio.Event()
    written_by: list[str] = []
    original_write = asyncssh.SFTPClientFile.write

    async def write(self: asyncssh.SFTPClientFile, data: Any, offset: int | None = None) -> Any:
        late = getattr(self, "_late_one", False)
        written_by.append("late" if late else "first")
        if not late:
            await release.wait()  # the first channel's acknowledgements are slow
        return await original_write(self, data, offset)

    monkeypatch.setattr(asyncssh.SFTPClientFile, "write", write)
    original_adopt = sftp_io.Handles._adopt

    async def adopt(self: sftp_io.Handles, session: Any) -> None:
        await original_adopt(self, session)
        self.handles[-1]._late_one = True  # type: ignore[attr-defined]

    monkeypatch.setattr(sftp_io.Handles, "_adopt", adopt)
    local = _file(tmp_path / "joined.bin", 6 * sftp_io.CHUNK_BYTES)
    tool = await remote_host.tool_dir()
    conn = await remote_host.ssh.channel()
    async with conn.start_sftp_client() as main, conn.start_sftp_client() as extra:
        late = sftp_io.LateSessions()
        part = f"{tool}/joined.part"
        sending = asyncio.ensure_future(
            sftp_io.send_file(main, local, part, 0, local.stat().st_size, None, late=late)
        )
        for _ in range(1000):  # the first channel's window is full and held
            await asyncio.sleep(0.02)
            if len(written_by) >= sftp_io.WRITES_IN_FLIGHT:
                break
        try:
            assert written_by and "late" not in written_by
            late.add(extra)
            for _ in range(1000):
                await asyncio.sleep(0.02)
                if "late" in written_by:
                    break
            assert "late" in written_by  # used before any acknowledgement came back
        finally:
            release.set()
        await asyncio.wait_for(sending, 30)
    assert adopted == [1]
    data = await remote_host.run(["sha256sum", part])
    assert data.stdout.split()[0] == hashlib.sha256(local.read_bytes()).hexdigest()
