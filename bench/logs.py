"""Log pipeline benchmark: container write -> local run.log -> subscriber.

A container writes BENCH_RATE lines/s (default 20,000) for BENCH_SECONDS (default 30)
in 50 ms bursts, each line stamped with the kernel's boot-time clock (/proc/uptime,
10 ms resolution, shared with this process) just before its burst is written; then it
runs the Cosmos stand-in so the run completes normally. The run is driven by the real
lifecycle (SSH-forwarded Docker API, LogFollower, LocalLog) in this process, and a
subscriber reads ``bench.runs.follow_log``. Printed: lines lost or duplicated,
end-to-end lag percentiles, throughput, and this process's RSS over time.

Usage (as root, like the tests): .venv/bin/python bench/logs.py [RATE] [SECONDS]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from array import array
from pathlib import Path
from typing import ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _lifecycle_host import test_host, with_env, write_mp4

from cosmos_tui.domain import RunState
from cosmos_tui.engine import logs as logs_module
from cosmos_tui.sandbox.standin import standin_script_path
from cosmos_tui.services import Workbench

WRITER = r"""#!/bin/sh
rate=${BENCH_RATE:-20000}
secs=${BENCH_SECONDS:-30}
burst=$((rate / 20))
total=$((rate * secs))
start=$(cut -d' ' -f1 /proc/uptime)
i=0
while [ "$i" -lt "$total" ]; do
    t=$(cut -d' ' -f1 /proc/uptime)
    awk -v s="$i" -v b="$burst" -v t="$t" 'BEGIN {
        for (k = 0; k < b; k++)
            printf "BENCH seq=%d t=%s pad=0123456789abcdef0123456789abcdef\n", s + k, t
    }'
    i=$((i + burst))
    now=$(cut -d' ' -f1 /proc/uptime)
    wait_us=$(awk -v st="$start" -v i="$i" -v r="$rate" -v now="$now" \
        'BEGIN { d = (st + i / r - now) * 1000000; if (d < 0) d = 0; printf "%d", d }')
    [ "$wait_us" -gt 0 ] && usleep "$wait_us"
done
exec /bin/standin "$@"
"""


class ArrivalProbe(logs_module.DockerLogDecoder):
    """Records, for one line in 1000, the lag from the container's write to its arrival
    in this process (before any of our processing): the upstream share of the lag."""

    lags: ClassVar[list[float]] = []

    def feed(self, frame: bytes | str) -> list[logs_module.RawLine]:
        lines = super().feed(frame)
        for line in lines:
            if line.data.startswith(b"BENCH seq=") and line.data.split(b" ", 2)[1].endswith(b"000"):
                stamp = float(line.data.split(b" ")[2][2:])
                self.lags.append(time.clock_gettime(time.CLOCK_BOOTTIME) - stamp)
        return lines


def rss_mib() -> float:
    """Resident memory of this process in MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


async def main(rate: int, seconds: int) -> None:
    logs_module.DockerLogDecoder = ArrivalProbe  # type: ignore[misc]
    files = {"/bin/torchrun": WRITER, "/bin/standin": standin_script_path().read_text()}
    with test_host(files, "cosmos-bench/logs:1") as (config, work):
        config = with_env(
            config, BENCH_RATE=str(rate), BENCH_SECONDS=str(seconds), COSMOS_STANDIN_SPEED="0"
        )
        async with Workbench.open(config) as bench:
            write_mp4(work / "videos" / "color.mp4", 64 * 1024)
            prompt = await bench.create_prompt("bench", work / "videos")
            run = await bench.create_run(prompt.id)
            expected = rate * seconds
            seen = bytearray(expected)
            lags = array("l", bytes(8 * 60_001))  # 1 ms histogram: constant memory
            duplicates = 0
            other_lines = 0
            memory: list[float] = [rss_mib()]

            async def sample_memory() -> None:
                while True:
                    await asyncio.sleep(1.0)
                    memory.append(rss_mib())

            sampler = asyncio.create_task(sample_memory())
            began = time.monotonic()
            cpu_began = sum(os.times()[:2])
            await bench.runs.start(run.id)
            first = last = None
            async for batch in bench.runs.follow_log(run.id, poll_seconds=0.05):
                now = time.clock_gettime(time.CLOCK_BOOTTIME)
                for line in batch.lines:
                    if not line.startswith("BENCH seq="):
                        other_lines += 1
                        continue
                    seq_text, stamp_text = line.split()[1:3]
                    seq = int(seq_text[4:])
                    if seen[seq]:
                        duplicates += 1
                    seen[seq] = 1
                    lag_ms = int((now - float(stamp_text[2:])) * 1000)
                    lags[max(0, min(lag_ms, 60_000))] += 1
                    first = first or time.monotonic()
                    last = time.monotonic()
            sampler.cancel()
            final = await bench.get_run(run.id)
            lost = expected - sum(seen)
            counted = sum(lags)

            def pct(p: float) -> float:
                wanted, running = p * counted, 0
                for lag_ms, count in enumerate(lags):
                    running += count
                    if running >= wanted:
                        return float(lag_ms)
                return 60_000.0

            span = (last or 0) - (first or 0)
            print(f"run {run.id}: {final.state.value} in {time.monotonic() - began:.1f} s")
            print(f"lines written {expected}, received {sum(seen)}, lost {lost}, "
                  f"duplicated {duplicates}, other log lines {other_lines}")  # fmt: skip
            print(f"throughput {sum(seen) / span if span else 0:,.0f} lines/s over {span:.1f} s")
            print(
                f"lag ms (write -> subscriber, +-10 ms clock resolution): p50 {pct(0.5):.0f}, "
                f"p90 {pct(0.9):.0f}, p99 {pct(0.99):.0f}, max {pct(1.0):.0f}"
            )
            upstream = sorted(ArrivalProbe.lags)
            if upstream:
                print(
                    "upstream share (write -> arrival in this process, 1 line in 1000): "
                    f"p50 {upstream[len(upstream) // 2] * 1000:.0f}, "
                    f"p99 {upstream[int(0.99 * (len(upstream) - 1))] * 1000:.0f} ms"
                )
            print(
                f"RSS MiB: start {memory[0]:.0f}, median {statistics.median(memory):.0f}, "
                f"max {max(memory):.0f}, end {memory[-1]:.0f}"
            )
            quarter = max(1, len(memory) // 4)
            early = statistics.mean(memory[quarter : 2 * quarter] or memory)
            late = statistics.mean(memory[-quarter:])
            print(f"RSS drift second quarter -> last quarter: {late - early:+.1f} MiB")
            log_size = bench.runs.log_path(run.id).stat().st_size
            print(f"run.log {log_size / 2**20:.1f} MiB; state {final.state.value}")
            cpu = sum(os.times()[:2]) - cpu_began
            wall = time.monotonic() - began
            print(
                f"this process (driver + subscriber) used {cpu:.1f} s CPU in {wall:.1f} s "
                f"({100 * cpu / wall:.0f}% of one core); load average {os.getloadavg()[0]:.1f} "
                f"on {os.cpu_count()} cores"
            )
            assert final.state == RunState.COMPLETED


if __name__ == "__main__":
    arguments = [int(a) for a in sys.argv[1:3]]
    asyncio.run(main(*(arguments + [20_000, 30][len(arguments) :])))
