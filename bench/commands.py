"""Per-command latency over one managed connection: sequential, and 30 at once.

Also shows what we avoid: a login shell per command (`sh -lc`), and a new SSH connection
per command (the `ssh` client). Starts a throwaway sshd (root needed, as in the tests).

Usage: .venv/bin/python bench/commands.py [--count 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _ssh_host import host_config, load_average, openssh_options, ssh_server

from cosmos_tui.remote import RemoteHost


def summary(label: str, seconds: list[float]) -> None:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[int(len(ms) * 0.95) - 1] if len(ms) >= 20 else ms[-1]
    print(
        f"{label:42s} n={len(ms):4d}  mean {statistics.mean(ms):6.1f} ms  "
        f"p50 {statistics.median(ms):6.1f} ms  p95 {p95:6.1f} ms"
    )


async def measure(server, count: int) -> None:
    host = RemoteHost(host_config(server))
    try:
        started = time.perf_counter()
        await host.connect()
        print(f"connect + auth: {(time.perf_counter() - started) * 1000:.1f} ms")
        for _ in range(5):
            await host.run(["true"])
        sequential = []
        for _ in range(count):
            started = time.perf_counter()
            await host.run(["true"])
            sequential.append(time.perf_counter() - started)
        summary("sequential `true` (our run)", sequential)
        login = []
        for _ in range(max(20, count // 5)):
            started = time.perf_counter()
            await host.run(["sh", "-lc", "true"])
            login.append(time.perf_counter() - started)
        summary("sequential `sh -lc true` (login shell)", login)
        for rounds in range(3):
            each: list[float] = []

            async def one(i: int, each: list[float] = each) -> None:
                begun = time.perf_counter()
                result = await host.run(["echo", str(i)])
                each.append(time.perf_counter() - begun)
                assert result.stdout == f"{i}\n"

            started = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(30)))
            wall = time.perf_counter() - started
            print(
                f"30 concurrent `echo` (round {rounds + 1}): all succeeded, wall "
                f"{wall * 1000:.0f} ms, {wall * 1000 / 30:.1f} ms per command, "
                f"slowest waited {max(each) * 1000:.0f} ms"
            )
    finally:
        await host.close()


def fresh_connections(server, count: int) -> None:
    base = ["ssh", *openssh_options(server), f"{server.user}@127.0.0.1", "true"]
    times = []
    for _ in range(count):
        started = time.perf_counter()
        subprocess.run(base, check=True)
        times.append(time.perf_counter() - started)
    summary("`ssh host true` (new connection each)", times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    with ssh_server("commands") as (server, _root):
        print(load_average())
        asyncio.run(measure(server, args.count))
        fresh_connections(server, 20)


if __name__ == "__main__":
    main()
