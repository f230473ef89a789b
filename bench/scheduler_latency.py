"""Scheduler latency on loopback: from a GPU coming free to the next container starting.

A real sshd and dockerd on 127.0.0.1 (the test fixtures' helpers; needs root), the
Cosmos stand-in image and the nvidia-smi stand-in reporting one GPU. Eight queued runs
share that GPU, so each one starts when the previous one ends. For each hand-over:

- free -> claimed: the previous run's completion to the next run's claim and start
  (queued -> uploading), i.e. the scheduler's own reaction;
- free -> container started: to the next run's container running (upload of its
  inputs, spec, container create and start included).

    .venv/bin/python bench/scheduler_latency.py [--runs 8]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _lifecycle_host import test_host, with_env, write_mp4

from cosmos_tui.domain import RunState
from cosmos_tui.sandbox.standin import standin_script_path
from cosmos_tui.services import Workbench
from cosmos_tui.services.queue import QueueService


def event_at(run, state: RunState):
    return next(e.at for e in run.events if e.to_state == state)


async def main(config, work: Path, count: int) -> None:
    config = dataclasses.replace(
        config, batching=dataclasses.replace(config.batching, enabled=False)
    )
    async with Workbench.open(config) as bench:
        ids = []
        for index in range(count):
            folder = work / "videos" / f"v{index}"
            write_mp4(folder / "color.mp4", 200_000)
            prompt = await bench.create_prompt(f"scene {index}", folder)
            ids.append((await bench.create_run(prompt.id)).id)
        scheduler = await QueueService.of(bench).drive(until_idle=True)
        runs = [await bench.get_run(run_id) for run_id in ids]
    assert all(r.state == RunState.COMPLETED for r in runs), [r.state for r in runs]
    runs.sort(key=lambda r: event_at(r, RunState.UPLOADING))
    claimed, started = [], []
    for previous, following in itertools.pairwise(runs):
        free = previous.finished_at
        claimed.append((event_at(following, RunState.UPLOADING) - free).total_seconds())
        started.append((event_at(following, RunState.RUNNING) - free).total_seconds())

    def show(label: str, values: list[float]) -> None:
        ms = [v * 1000 for v in values]
        print(f"{label:<28} median {statistics.median(ms):7.1f} ms   max {max(ms):7.1f} ms")

    print(f"{count} runs on one GPU over ssh+docker on 127.0.0.1 ({len(claimed)} hand-overs)")
    show("free -> claimed (uploading)", claimed)
    show("free -> container started", started)
    show("launch end -> next claim", scheduler.latencies)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    args = parser.parse_args()
    files = {"/bin/torchrun": standin_script_path().read_text()}
    with test_host(files, "cosmos-bench/standin:latest") as (config, work):
        asyncio.run(main(with_env(config, COSMOS_STANDIN_SPEED="0.01"), work, args.runs))
