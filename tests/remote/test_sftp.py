"""SFTP uploads (content-addressed, verified, resumable) and downloads (safe names)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from pathlib import Path

import pytest

from cosmos_tui.errors import TransferCorrupted, TransferFailed, ValidationError
from cosmos_tui.remote import RemoteHost


def _write(path: Path, size: int, seed: bytes = b"x") -> Path:
    block = hashlib.sha256(seed).digest() * 4096
    path.write_bytes((block * (size // len(block) + 1))[:size])
    return path


async def test_upload_is_content_addressed_and_skipped_when_present(
    remote_host: RemoteHost, tmp_path: Path
) -> None:
    local = _write(tmp_path / "Color.MP4", 3_000_000)
    seen: list[tuple[int, int]] = []
    first = await remote_host.upload_input(local, progress=lambda d, t: seen.append((d, t)))
    digest = hashlib.sha256(local.read_bytes()).hexdigest()
    tool_dir = await remote_host.tool_dir()
    assert first.remote_path == f"{tool_dir}/inputs/{digest}.mp4"
    assert first.sha256 == digest and not first.skipped and first.size == 3_000_000
    assert seen[-1] == (3_000_000, 3_000_000)
    remote = await remote_host.run(["sha256sum", first.remote_path])
    assert remote.stdout.split()[0] == digest
    listing = await remote_host.files.listdir(f"{tool_dir}/inputs")
    assert [e.name for e in listing] == [f"{digest}.mp4"]
    second = await remote_host.upload_input(local)
    assert second.skipped and second.remote_path == first.remote_path


async def test_interrupted_upload_resumes(remote_host: RemoteHost, tmp_path: Path) -> None:
    local = _write(tmp_path / "big.bin", 5_000_000, b"resume")
    digest = hashlib.sha256(local.read_bytes()).hexdigest()
    tool_dir = await remote_host.tool_dir()
    part = remote_host.files.partial_path(tool_dir, local)
    # Half of the file already reached the host before the transfer broke off.
    await remote_host.run(["mkdir", "-p", f"{tool_dir}/inputs"])
    partial = tmp_path / "partial"
    partial.write_bytes(local.read_bytes()[:2_500_000])
    await remote_host.files.upload(partial, part)
    result = await remote_host.upload_input(local)
    assert result.resumed_from == 2_500_000 and not result.skipped
    assert (await remote_host.files.remote_sha256(result.remote_path)) == digest


async def test_corrupt_partial_upload_is_discarded(remote_host: RemoteHost, tmp_path: Path) -> None:
    local = _write(tmp_path / "c.bin", 1_000_000, b"corrupt")
    part = remote_host.files.partial_path(await remote_host.tool_dir(), local)
    await remote_host.files.write_text(part, "garbage that is not the prefix")
    with pytest.raises(TransferCorrupted):
        await remote_host.upload_input(local)
    retried = await remote_host.upload_input(local)
    assert retried.resumed_from == 0 and not retried.skipped


async def test_download_verifies_and_resumes(remote_host: RemoteHost, tmp_path: Path) -> None:
    local = _write(tmp_path / "src.bin", 4_000_000, b"down")
    up = await remote_host.upload_input(local)
    remote_dir, name = up.remote_path.rsplit("/", 1)
    target = tmp_path / "out"
    target.mkdir()
    (target / (name + ".part")).write_bytes(local.read_bytes()[:1_000_000])
    result = await remote_host.download(
        remote_dir, name, target, expected_size=4_000_000, verify_hash=True
    )
    assert result.resumed_from == 1_000_000
    assert result.sha256 == up.sha256
    assert (target / name).read_bytes() == local.read_bytes()
    assert not (target / (name + ".part")).exists()
    again = await remote_host.download(remote_dir, name, target, expected_size=4_000_000)
    assert again.skipped


async def test_download_size_mismatch_keeps_finished_file(
    remote_host: RemoteHost, tmp_path: Path
) -> None:
    local = _write(tmp_path / "s.bin", 10_000, b"size")
    up = await remote_host.upload_input(local)
    remote_dir, name = up.remote_path.rsplit("/", 1)
    target = tmp_path / "out"
    target.mkdir()
    (target / name).write_bytes(b"finished earlier")
    with pytest.raises(TransferCorrupted):
        await remote_host.download(remote_dir, name, target, expected_size=9_999)
    assert (target / name).read_bytes() == b"finished earlier"


@pytest.mark.parametrize("size", [10_000, 9_000_000], ids=["small", "chunked"])
@pytest.mark.parametrize("listed", [-1, +1], ids=["grew", "shrank"])
async def test_verified_download_of_a_changed_file_says_its_size(
    remote_host: RemoteHost, tmp_path: Path, size: int, listed: int
) -> None:
    """A verified download trusts the listing's size (no stat); a file of another size
    is still refused with both sizes named, and nothing partial is kept."""
    local = _write(tmp_path / "grown.bin", size, b"grown")
    up = await remote_host.upload_input(local)
    remote_dir, name = up.remote_path.rsplit("/", 1)
    target = tmp_path / "out"
    target.mkdir()
    expected = size + listed
    with pytest.raises(TransferCorrupted) as caught:
        await remote_host.download(remote_dir, name, target, expected, verify_hash=True)
    assert f"has {size} bytes, expected {expected}" in str(caught.value)
    assert sorted(p.name for p in target.iterdir()) == []


@pytest.mark.parametrize("size", [10_000, 9_000_000], ids=["small", "chunked"])
async def test_verified_download_of_a_missing_file_fails_clearly(
    remote_host: RemoteHost, tmp_path: Path, size: int
) -> None:
    tool_dir = await remote_host.tool_dir()
    target = tmp_path / "out"
    with pytest.raises(TransferFailed, match=r"gone\.mp4.*(No such file|does not exist)"):
        await remote_host.download(tool_dir, "gone.mp4", target, size, verify_hash=True)
    assert not (target / "gone.mp4").exists()


@pytest.mark.parametrize("name", ["../x", "a/b", "/etc/passwd", "..", "", "x\\y", "..hidden"])
async def test_download_refuses_paths(remote_host: RemoteHost, tmp_path: Path, name: str) -> None:
    with pytest.raises(ValidationError):
        await remote_host.download("/tmp", name, tmp_path)
    assert os.listdir(tmp_path) == []


async def test_download_of_missing_file(remote_host: RemoteHost, tmp_path: Path) -> None:
    with pytest.raises(TransferFailed):
        await remote_host.download(await remote_host.tool_dir(), "nope.mp4", tmp_path)
    assert not (tmp_path / "nope.mp4").exists()


async def test_host_side_hash(remote_host: RemoteHost, tmp_path: Path) -> None:
    local = _write(tmp_path / "h.bin", 3_000_000, b"chunk")
    up = await remote_host.upload_input(local)
    files = remote_host.files
    assert (
        await files.remote_sha256(up.remote_path) == hashlib.sha256(local.read_bytes()).hexdigest()
    )
    tool_dir = await remote_host.tool_dir()
    assert await files.remote_sha256(f"{tool_dir}/inputs/missing.bin") is None
    # A name a hashing tool could take for an option is still hashed as a file.
    await files.write_text(f"{tool_dir}/-n x", "odd name")
    assert await files.remote_sha256(f"{tool_dir}/-n x") == hashlib.sha256(b"odd name").hexdigest()


async def test_fresh_upload_corrupted_on_the_host_is_caught(
    remote_host: RemoteHost, tmp_path: Path
) -> None:
    local = _write(tmp_path / "v.bin", 40 * 1024 * 1024, b"verify")
    digest = hashlib.sha256(local.read_bytes()).hexdigest()
    part = Path(remote_host.files.partial_path(await remote_host.tool_dir(), local))
    hit = {"done": False}

    def corrupt(done: int, total: int) -> None:
        # The test host is this machine: damage bytes the host just acknowledged.
        if not hit["done"] and done >= total // 2:
            hit["done"] = True
            with part.open("r+b") as handle:
                handle.seek(done - 10)
                handle.write(b"0123456789")

    with pytest.raises(TransferCorrupted):
        await remote_host.upload_input(local, progress=corrupt)
    assert hit["done"] and not part.exists()
    again = await remote_host.upload_input(local)
    assert not again.skipped and again.resumed_from == 0
    assert await remote_host.files.remote_sha256(again.remote_path) == digest


async def test_new_process_skips_known_content_and_uploads_same_size_files(
    remote_host: RemoteHost, tmp_path: Path
) -> None:
    from cosmos_tui.remote.sftp import SftpTransfers

    first = _write(tmp_path / "a.mp4", 2_000_000, b"a")
    done = await remote_host.upload_input(first)
    fresh = SftpTransfers(remote_host.ssh, await remote_host.tool_dir())  # no hash cache
    again = await fresh.upload_input(first)
    assert again.skipped and again.remote_path == done.remote_path
    other = _write(tmp_path / "b.mp4", 2_000_000, b"b")  # same size, other content
    result = await fresh.upload_input(other)
    assert not result.skipped and result.sha256 == hashlib.sha256(other.read_bytes()).hexdigest()
    assert await fresh.remote_sha256(result.remote_path) == result.sha256


async def test_verified_download_checks_an_existing_file(
    remote_host: RemoteHost, tmp_path: Path
) -> None:
    local = _write(tmp_path / "e.bin", 300_000, b"exists")
    up = await remote_host.upload_input(local)
    remote_dir, name = up.remote_path.rsplit("/", 1)
    target = tmp_path / "out"
    target.mkdir()
    (target / name).write_bytes(local.read_bytes())
    same = await remote_host.download(remote_dir, name, target, verify_hash=True)
    assert same.skipped and same.sha256 == up.sha256
    (target / name).write_bytes(b"y" * 300_000)  # same size, other bytes
    fixed = await remote_host.download(remote_dir, name, target, verify_hash=True)
    assert not fixed.skipped and (target / name).read_bytes() == local.read_bytes()


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 256 KiB tmpfs: a local disk that fills up."""
    import subprocess

    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)], check=True
    )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


async def test_download_larger_than_the_free_space_is_refused_before_writing(
    remote_host: RemoteHost, tmp_path: Path, tiny_disk: Path
) -> None:
    up = await remote_host.upload_input(_write(tmp_path / "big.bin", 1_000_000, b"full"))
    remote_dir, name = up.remote_path.rsplit("/", 1)
    with pytest.raises(TransferFailed) as info:
        await remote_host.download(remote_dir, name, tiny_disk)
    assert f"not enough space in {tiny_disk}" in info.value.message
    assert "free some space" in info.value.message and not info.value.transient
    assert os.listdir(tiny_disk) == []


async def test_local_disk_filling_up_mid_download_leaves_nothing_behind(
    remote_host: RemoteHost, tmp_path: Path, tiny_disk: Path
) -> None:
    up = await remote_host.upload_input(_write(tmp_path / "mid.bin", 200_000, b"mid"))
    remote_dir, name = up.remote_path.rsplit("/", 1)

    def fill_the_disk(done: int, total: int) -> None:
        # Something else takes the space after the download checked it.
        if done == 0:
            filler = tiny_disk / "filler"
            with filler.open("wb") as handle, contextlib.suppress(OSError):
                while True:
                    handle.write(b"\0" * 65536)
                    handle.flush()

    with pytest.raises(TransferFailed) as info:
        await remote_host.download(remote_dir, name, tiny_disk, progress=fill_the_disk)
    assert f"{tiny_disk} ran out of space" in info.value.message
    assert sorted(os.listdir(tiny_disk)) == ["filler"]


@pytest.mark.parametrize("where", ["a file", "under a file"])
async def test_download_into_an_unusable_local_folder(
    remote_host: RemoteHost, tmp_path: Path, where: str
) -> None:
    up = await remote_host.upload_input(_write(tmp_path / "l.bin", 1000, b"local"))
    remote_dir, name = up.remote_path.rsplit("/", 1)
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    local_dir = blocker if where == "a file" else blocker / "sub"
    with pytest.raises(TransferFailed) as info:
        await remote_host.download(remote_dir, name, local_dir)
    assert "failed on this machine" in info.value.message
    assert str(local_dir) in info.value.message
    assert blocker.read_text() == "not a folder"


async def test_upload_of_a_missing_local_file(remote_host: RemoteHost, tmp_path: Path) -> None:
    missing = tmp_path / "gone.mp4"
    with pytest.raises(TransferFailed) as info:
        await remote_host.files.upload(missing, await remote_host.tool_dir() + "/x.mp4")
    assert f"cannot read {missing}" in info.value.message


async def test_waiter_uploads_itself_when_the_first_upload_is_cancelled(
    remote_host: RemoteHost, tmp_path: Path
) -> None:
    # Two runs share an input; the run whose upload is under way is cancelled.
    local = _write(tmp_path / "shared.mp4", 64 * 1024 * 1024, b"shared")
    sending = asyncio.Event()

    def first_progress(done: int, total: int) -> None:
        if done > 0:
            sending.set()

    first = asyncio.create_task(remote_host.upload_input(local, progress=first_progress))
    await asyncio.wait_for(sending.wait(), 30)
    second = asyncio.create_task(remote_host.upload_input(local))
    await asyncio.sleep(0)  # the second caller now waits for the first
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    result = await asyncio.wait_for(second, 60)
    assert await remote_host.files.remote_sha256(result.remote_path) == result.sha256
    assert result.sha256 == hashlib.sha256(local.read_bytes()).hexdigest()


async def test_downloads_are_private_whatever_the_umask(
    remote_host: RemoteHost, tmp_path: Path
) -> None:
    import os
    import stat

    local = _write(tmp_path / "src.bin", 100_000, b"priv")
    up = await remote_host.upload_input(local)
    remote_dir, name = up.remote_path.rsplit("/", 1)
    target = tmp_path / "outputs" / "rs_private"
    previous = os.umask(0)
    try:
        await remote_host.download(remote_dir, name, target, expected_size=100_000)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((target / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
