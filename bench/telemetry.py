"""GPU telemetry cost: one streaming nvidia-smi channel vs a process per sample.

Uses the test host's nvidia-smi stand-in with 8 GPUs (so remote figures describe the
stand-in; the client-side CPU is what this measures). Reports our process's CPU time as a
share of one core while streaming at 1 Hz (target < 2%) and at 10 Hz, and the same for
polling with one `nvidia-smi` process per sample.

Usage: .venv/bin/python bench/telemetry.py [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _ssh_host import host_config, load_average, ssh_server

from cosmos_tui.remote import RemoteHost
from cosmos_tui.remote.gpu import GpuTelemetry, gpu_query_argv, parse_gpu_line


async def streaming(host: RemoteHost, interval_ms: int, seconds: float) -> tuple[float, int]:
    telemetry = GpuTelemetry(host.ssh, None, interval_ms=interval_ms, apps_interval_s=0)
    batches = 0
    telemetry.start()

    async def count() -> None:
        nonlocal batches
        async for _ in telemetry.samples():
            batches += 1

    counter = asyncio.create_task(count())
    async for _ in telemetry.samples():
        break  # channel is up
    cpu_before, started = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu = time.process_time() - cpu_before
    wall = time.perf_counter() - started
    await telemetry.stop()
    await counter
    return cpu / wall, batches


async def polling(host: RemoteHost, interval_ms: int, seconds: float) -> tuple[float, float]:
    cpu_before, started = time.process_time(), time.perf_counter()
    latencies = []
    while time.perf_counter() - started < seconds:
        begun = time.perf_counter()
        result = await host.run(gpu_query_argv())
        at = datetime.now(UTC)
        samples = [parse_gpu_line(x, "bench", at) for x in result.stdout.splitlines()]
        assert len([s for s in samples if s]) == 8
        latencies.append(time.perf_counter() - begun)
        await asyncio.sleep(max(0.0, interval_ms / 1000 - (time.perf_counter() - begun)))
    cpu = time.process_time() - cpu_before
    wall = time.perf_counter() - started
    return cpu / wall, sum(latencies) / len(latencies)


async def measure(server, seconds: float) -> None:
    host = RemoteHost(host_config(server))
    try:
        await host.connect()
        for interval in (1000, 100):
            share, batches = await streaming(host, interval, seconds)
            calls = len([c for c in server.gpu.calls() if "-lms" in c])
            print(
                f"streaming 8 GPUs every {interval:4d} ms: our CPU {share * 100:5.2f}% of a core, "
                f"{batches} sample sets, {calls} nvidia-smi process(es) started so far"
            )
        for interval in (1000, 100):
            share, latency = await polling(host, interval, seconds)
            print(
                f"process per sample every {interval:4d} ms: our CPU {share * 100:5.2f}% of a "
                f"core, {latency * 1000:.1f} ms per sample (one process each)"
            )
    finally:
        await host.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    with ssh_server("telemetry") as (server, _root):
        server.gpu.set_variant("8gpu")
        print(load_average())
        asyncio.run(measure(server, args.seconds))


if __name__ == "__main__":
    main()
