"""Transfer throughput: our SFTP upload/download of a large file vs scp, on loopback.

Starts a throwaway sshd (root needed, as in the tests), then times:
  scp up / down, our upload_input (hash + send + host-side sha256sum + rename),
  our download (size-verified; and with hash verification), re-upload of the unchanged file.

Usage: .venv/bin/python bench/transfer.py [--mb 500] [--repeat 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pwd
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _ssh_host import host_config, load_average, openssh_options, ssh_server

from cosmos_tui.remote import RemoteHost
from tests.fixtures.hosts import TEST_USER


def make_file(path: Path, megabytes: int) -> None:
    with path.open("wb") as handle:
        for _ in range(megabytes):
            handle.write(os.urandom(1024 * 1024))


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def scp(server, args: list[str]) -> float:
    base = ["scp", "-q", *openssh_options(server)]
    started = time.perf_counter()
    subprocess.run([*base, *args], check=True)
    return time.perf_counter() - started


async def measure(server, local: Path, tool_dir: str, repeat: int) -> dict[str, list[float]]:
    """Interleave scp and ours in each round, so that load from elsewhere hits both alike."""
    host = RemoteHost(host_config(server, remote_tool_dir=tool_dir))
    figures: dict[str, list[float]] = {}

    def record(key: str, seconds: float) -> None:
        figures.setdefault(key, []).append(seconds)

    remote_scp = f"{server.user}@127.0.0.1:{tool_dir}/scp.bin"
    try:
        await host.connect()
        for _ in range(repeat):
            cpu = children_cpu()
            record("scp_up", await asyncio.to_thread(scp, server, [str(local), remote_scp]))
            record("scp_up_cpu", children_cpu() - cpu)
            await host.run(["rm", "-rf", f"{tool_dir}/inputs"])
            host.files._hash_cache.clear()  # a fresh upload hashes the file
            started, cpu = time.perf_counter(), time.process_time()
            result = await host.upload_input(local)
            record("up", time.perf_counter() - started)
            record("up_cpu", time.process_time() - cpu)
            # As a run uploads: its prompt's recorded sha256 and size are passed along.
            await host.run(["rm", "-rf", f"{tool_dir}/inputs"])
            host.files._hash_cache.clear()
            started = time.perf_counter()
            await host.upload_input(local, expected_sha256=result.sha256, expected_size=result.size)
            record("up_recorded", time.perf_counter() - started)
            down_scp = local.parent / "scp-down.bin"
            record("scp_down", await asyncio.to_thread(scp, server, [remote_scp, str(down_scp)]))
            down_scp.unlink()
            remote_dir, name = result.remote_path.rsplit("/", 1)
            target = local.parent / "down-ours"
            shutil.rmtree(target, ignore_errors=True)
            started = time.perf_counter()
            await host.download(remote_dir, name, target, expected_size=result.size)
            record("down", time.perf_counter() - started)
            shutil.rmtree(target, ignore_errors=True)
            started = time.perf_counter()
            await host.download(remote_dir, name, target, verify_hash=True)
            record("down_verified", time.perf_counter() - started)
            shutil.rmtree(target, ignore_errors=True)
        host.files._hash_cache.clear()  # as a new process would: hash the file once
        started = time.perf_counter()
        again = await host.upload_input(local)
        record("reupload", time.perf_counter() - started)
        assert again.skipped
        started = time.perf_counter()
        await host.upload_input(local)
        record("reupload_cached_hash", time.perf_counter() - started)
        host.files._hash_cache.clear()  # a new process, as a run: the recorded sha is known
        started = time.perf_counter()
        recorded = await host.upload_input(
            local, expected_sha256=again.sha256, expected_size=again.size
        )
        record("reupload_recorded", time.perf_counter() - started)
        assert recorded.skipped
    finally:
        await host.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cosmos-bench-local-"))
    try:
        with ssh_server("transfer") as (server, root):
            user = pwd.getpwnam(TEST_USER)
            tool_dir = root / "tool"
            tool_dir.mkdir()
            os.chown(tool_dir, user.pw_uid, user.pw_gid)
            local = work / "payload.bin"
            make_file(local, args.mb)
            runs = asyncio.run(measure(server, local, str(tool_dir), args.repeat))
            report(runs, args.mb, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(runs: dict[str, list[float]], size: int, repeat: int) -> None:
    best = {key: min(values) for key, values in runs.items()}
    print(f"file: {size} MB, loopback, best of {repeat} interleaved rounds")
    print(load_average("at the end"))

    def line(label: str, key: str, versus: str | None = None) -> None:
        seconds = best[key]
        text = f"{label:28s} {seconds:6.2f} s  {size / seconds:7.1f} MB/s"
        if versus:
            paired = [theirs / ours for theirs, ours in zip(runs[versus], runs[key], strict=True)]
            text += (
                f"  ratio vs scp {best[versus] / seconds:.2f} (best/best),"
                f" {statistics.median(paired):.2f} (median of rounds)"
            )
        print(text + "   (all: " + " ".join(f"{v:.2f}" for v in runs[key]) + ")")

    line("scp upload", "scp_up")
    line("ours upload (host-verified)", "up", "scp_up")
    line("  as a run does (sha known)", "up_recorded", "scp_up")
    line("scp download", "scp_down")
    line("ours download (size-checked)", "down", "scp_down")
    line("ours download (+sha256)", "down_verified", "scp_down")
    print(
        f"client CPU per upload: scp {best['scp_up_cpu']:.2f} s, ours "
        f"{best['up_cpu']:.2f} s (with hashing): under CPU contention our share drops"
    )
    print(f"re-upload unchanged:         {best['reupload']:6.2f} s (local hash, no send)")
    print(f"re-upload, hash cached:      {best['reupload_cached_hash']:6.3f} s")
    print(
        f"re-upload, as a run:         {best['reupload_recorded']:6.3f} s (recorded sha, no read)"
    )


if __name__ == "__main__":
    main()
