"""Per-run tool overhead on loopback: upload (inputs already there), create + start,
download of a 50 MB output, and what that is as a share of a 10-minute run.

The stand-in model (no delays) copies the 50 MB input video to output.mp4, so the
container itself takes well under a second; every other second is the tool's. The
first run uploads the input (cold); the next runs find it on the host (warm) and are
the figures that matter. Step times come from the run's timeline.

Usage (as root, like the tests): .venv/bin/python bench/overhead.py [RUNS] [MB]
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _lifecycle_host import test_host, with_env, write_mp4

from cosmos_tui.domain import Run, RunState
from cosmos_tui.sandbox.standin import standin_script_path
from cosmos_tui.services import Workbench

TEN_MINUTES = 600.0


def steps(run: Run) -> dict[str, float]:
    """Seconds spent in each state, from the timeline."""
    times = {e.to_state: e.at for e in run.events}
    order = [
        RunState.QUEUED,
        RunState.UPLOADING,
        RunState.STARTING,
        RunState.RUNNING,
        RunState.DOWNLOADING,
        RunState.COMPLETED,
    ]
    return {
        state.value: (times[after] - times[state]).total_seconds()
        for state, after in itertools.pairwise(order)
    }


async def main(runs: int, megabytes: int) -> None:
    files = {"/bin/torchrun": standin_script_path().read_text()}
    with test_host(files, "cosmos-bench/standin:1") as (config, work):
        config = with_env(config, COSMOS_STANDIN_SPEED="0")
        videos = work / "videos"
        write_mp4(videos / "color.mp4", megabytes * 2**20)
        write_mp4(videos / "depth.mp4", 64 * 1024)
        async with Workbench.open(config) as bench:
            prompt = await bench.create_prompt("overhead", videos)
            weights = {"vis_weight": 0, "edge_weight": 0, "depth_weight": 1.0, "seg_weight": 0}
            results = []
            for index in range(runs + 1):
                run = await bench.create_run(prompt.id, {**weights, "seed": index})
                began = time.monotonic()
                final = await bench.runs.drive(run.id)
                total = time.monotonic() - began
                assert final.state == RunState.COMPLETED, final.failure_message
                size = (bench.output_dir(run.id) / "output.mp4").stat().st_size
                assert size == megabytes * 2**20
                results.append((total, steps(final)))
            cold_total, cold = results[0]
            print(f"cold run (uploads {megabytes} MB): total {cold_total:.2f} s, "
                  f"upload step {cold['uploading']:.2f} s")  # fmt: skip
            warm = results[1:]

            def median(key: str) -> float:
                return statistics.median(s[key] for _, s in warm)

            upload, start = median("uploading"), median("starting")
            container, download = median("running"), median("downloading")
            claim = median("queued")
            total = statistics.median(t for t, _ in warm)
            overhead = total - container
            print(f"warm runs (median of {len(warm)}), seconds:")
            print(f"  claim (queued -> uploading)              {claim:.3f}")
            print(f"  upload, inputs already present + spec    {upload:.3f}")
            print(f"  create + start container                 {start:.3f}")
            print(f"  container running (model stand-in)       {container:.3f}")
            print(f"  download {megabytes} MB output, hash verified".ljust(43) + f"{download:.3f}")
            print(f"  total wall time                          {total:.3f}")
            print(
                f"tool overhead {overhead:.2f} s = {100 * overhead / TEN_MINUTES:.2f}% "
                "of a 10-minute run"
            )


if __name__ == "__main__":
    arguments = [int(a) for a in sys.argv[1:3]]
    asyncio.run(main(*(arguments + [3, 50][len(arguments) :])))
