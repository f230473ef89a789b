"""Log pipeline benchmark: container write -> local run.log -> subscriber.

A container writes BENCH_RATE lines/s (default 20,000) for BENCH_SECONDS (default 30)
in 50 ms bursts, each line stamped with the kernel's boot-time clock (/proc/uptime,
10 ms resolution, shared with this process) just before its burst is written; then it
runs the Cosmos stand-in so the run completes normally. The run is driven by the real
lifecycle (SSH-forwarded Docker API, LogFollower, LocalLog) in this process, and a
subscriber reads ``Workbench.follow_log``. Printed: lines lost or duplicated,
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _lifecycle_host import test_host, with_env, write_mp4

from cosmos_tui.domain import RunState
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


def rss_mib() -> float:
    """Resident memory of this process in MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


async def main(rate: int, seconds: int) -> None:
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
            lags = array("d")  # 8 bytes a line: the bench's own memory stays small
            duplicates = 0
            other_lines = 0
            memory: list[float] = [rss_mib()]

            async def sample_memory() -> None:
                while True:
                    await asyncio.sleep(1.0)
                    memory.append(rss_mib())

            sampler = asyncio.create_task(sample_memory())
            began = time.monotonic()
            await bench.start_run(run.id)
            first = last = None
            async for batch in bench.follow_log(run.id, poll_seconds=0.05):
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
                    lags.append(now - float(stamp_text[2:]))
                    first = first or time.monotonic()
                    last = time.monotonic()
            sampler.cancel()
            final = await bench.get_run(run.id)
            lost = expected - sum(seen)
            lags = array("d", sorted(lags))

            def pct(p: float) -> float:
                return lags[min(len(lags) - 1, int(p * len(lags)))] * 1000

            span = (last or 0) - (first or 0)
            print(f"run {run.id}: {final.state.value} in {time.monotonic() - began:.1f} s")
            print(f"lines written {expected}, received {sum(seen)}, lost {lost}, "
                  f"duplicated {duplicates}, other log lines {other_lines}")  # fmt: skip
            print(f"throughput {sum(seen) / span if span else 0:,.0f} lines/s over {span:.1f} s")
            print(
                f"lag ms (write -> subscriber, +-10 ms clock resolution): p50 {pct(0.5):.0f}, "
                f"p90 {pct(0.9):.0f}, p99 {pct(0.99):.0f}, max {lags[-1] * 1000:.0f}"
            )
            print(
                f"RSS MiB: start {memory[0]:.0f}, median {statistics.median(memory):.0f}, "
                f"max {max(memory):.0f}, end {memory[-1]:.0f}"
            )
            quarter = max(1, len(memory) // 4)
            early = statistics.mean(memory[quarter : 2 * quarter] or memory)
            late = statistics.mean(memory[-quarter:])
            print(f"RSS drift second quarter -> last quarter: {late - early:+.1f} MiB")
            log_size = bench.log_path(run.id).stat().st_size
            print(f"run.log {log_size / 2**20:.1f} MiB; state {final.state.value}")
            assert final.state == RunState.COMPLETED


if __name__ == "__main__":
    arguments = [int(a) for a in sys.argv[1:3]]
    asyncio.run(main(*(arguments + [20_000, 30][len(arguments) :])))
