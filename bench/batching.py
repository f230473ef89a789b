"""Batching benchmark: makespan and GPU-hours of one mixed workload, with and without batching.

The workload (24 runs on 2 hosts x 4 GPUs) is driven by the real queue, scheduler and
store over a throwaway SQLite file; only the containers are simulated: a model load of
60 s per container and 30 s per sample, scaled down in time (``--scale``). Runs:

- 12 with the default parameters (different prompts and control weights): batchable
- 6 with 20 steps: batchable among themselves
- 3 asking for 2 GPUs: batchable among themselves
- 3 with a seed of their own: never batched

Figures are in simulated (unscaled) seconds. Makespan is measured on the wall clock;
GPU-hours are each container's measured wall time times its GPUs. Also printed: the
scheduler's latency from a container ending (its GPUs free) to the next one starting.

    .venv/bin/python bench/batching.py [--scale 0.005]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

from cosmos_tui.config import BatchingConfig
from cosmos_tui.domain import GenerationParams, InputFile, RunState
from cosmos_tui.engine.queue import HostView
from cosmos_tui.engine.scheduler import Scheduler, StaticCluster
from cosmos_tui.engine.simulated import SimulatedLauncher
from cosmos_tui.store.queue_store import Claim, QueueStore
from cosmos_tui.store.repositories import RunFilter, Store

HOSTS = (HostView("gpu-a", True, (0, 1, 2, 3)), HostView("gpu-b", True, (0, 1, 2, 3)))
BASE = GenerationParams(negative_prompt="blurry")


def workload() -> list[GenerationParams]:
    runs = []
    for i in range(12):
        runs.append(dataclasses.replace(BASE, vis_weight=0.1 + 0.05 * (i % 5)))
    runs += [dataclasses.replace(BASE, num_steps=20) for _ in range(6)]
    runs += [dataclasses.replace(BASE, num_gpus=2) for _ in range(3)]
    runs += [dataclasses.replace(BASE, seed=100 + i) for i in range(3)]
    # Interleave so that compatible runs are not adjacent in the queue.
    return [runs[i] for i in sorted(range(len(runs)), key=lambda i: (i % 5, i))]


class TimedLauncher(SimulatedLauncher):
    """The simulated launcher, also measuring each container's wall time x GPUs."""

    measured_gpu_seconds: float = 0.0

    async def launch(self, claim: Claim) -> None:
        started = time.monotonic()
        await super().launch(claim)
        self.measured_gpu_seconds += (time.monotonic() - started) * len(claim.gpus)


async def one(label: str, batching: BatchingConfig, scale: float, folder: Path) -> dict:
    async with Store.open(folder / f"{label}.db") as store:
        for index, params in enumerate(workload()):
            video = InputFile("color", Path(f"/in/{index}.mp4"), f"{index:064x}", 1000)
            prompt = await store.add_prompt(f"scene number {index}", [video])
            await store.add_run(prompt.id, params)
        launcher = TimedLauncher(store, load_seconds=60.0, sample_seconds=30.0, time_scale=scale)
        scheduler = Scheduler(QueueStore(store), StaticCluster(HOSTS), launcher,
                              batching=batching, poll_interval=0.05)  # fmt: skip
        started = time.monotonic()
        await scheduler.run(until_idle=True)
        makespan = (time.monotonic() - started) / scale
        runs = (await store.list_runs(RunFilter(), 0, 100)).items
        assert all(r.state == RunState.COMPLETED for r in runs), [r.state for r in runs]
        return {
            "label": label,
            "containers": launcher.containers,
            "makespan_s": makespan,
            "gpu_hours": launcher.measured_gpu_seconds / scale / 3600.0,
            "model_gpu_hours": launcher.gpu_seconds / 3600.0,
            "latency_ms": [x * 1000 for x in scheduler.latencies],
        }


async def main(scale: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = [
            await one("no batching", BatchingConfig(enabled=False), scale, folder),
            await one("batching, max 8", BatchingConfig(enabled=True, max_size=8), scale, folder),
            await one("batching, max 4", BatchingConfig(enabled=True, max_size=4), scale, folder),
        ]
    base = results[0]
    print(f"24 runs, 2 hosts x 4 GPUs, load 60 s + 30 s/sample, time scale {scale}")
    header = f"{'':<16} {'containers':>10} {'makespan':>10} {'GPU-hours':>10} {'vs none':>16}"
    print(header)
    for r in results:
        saved_t = 1 - r["makespan_s"] / base["makespan_s"]
        saved_g = 1 - r["gpu_hours"] / base["gpu_hours"]
        versus = f"-{saved_t:.0%} t, -{saved_g:.0%} GPU" if r is not base else "-"
        print(f"{r['label']:<16} {r['containers']:>10} {r['makespan_s']:>9.0f}s "
              f"{r['gpu_hours']:>10.3f} {versus:>16}")  # fmt: skip
    print("model (no scheduling overhead): " + ", ".join(
        f"{r['label']} {r['model_gpu_hours']:.3f} GPU-h" for r in results))  # fmt: skip
    latencies = [x for r in results for x in r["latency_ms"]]
    print(f"scheduler latency, GPU free -> next container start: median "
          f"{statistics.median(latencies):.1f} ms, max {max(latencies):.1f} ms "
          f"({len(latencies)} starts)")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.005, help="simulated s -> real s")
    asyncio.run(main(parser.parse_args().scale))
