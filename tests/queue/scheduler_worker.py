"""One scheduler process for the multi-process tests: drives a shared DB until idle.

Usage: python scheduler_worker.py DB_PATH NAME BARRIER_DIR

Each worker opens the store, leaves a file named NAME in BARRIER_DIR and waits until two
files are there, so that both really race however slowly either one started.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from cosmos_tui.config import BatchingConfig
from cosmos_tui.engine.queue import HostView
from cosmos_tui.engine.scheduler import Scheduler, StaticCluster
from cosmos_tui.engine.simulated import SimulatedLauncher
from cosmos_tui.store.queue_store import QueueStore
from cosmos_tui.store.repositories import Store

HOSTS = (
    HostView("one", True, (0,)),
    HostView("two", True, (0, 1)),
    HostView("eight", True, tuple(range(8)), frozenset({7})),
)


async def main(db_path: Path, name: str, barrier: Path) -> None:
    async with Store.open(db_path) as store:
        (barrier / name).touch()
        deadline = time.monotonic() + 60
        while len(list(barrier.iterdir())) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        launcher = SimulatedLauncher(store, time_scale=0.002)
        scheduler = Scheduler(
            QueueStore(store),
            StaticCluster(HOSTS),
            launcher,
            batching=BatchingConfig(enabled=True, max_size=3),
            scheduler_id=name,
            poll_interval=0.02,
        )
        await scheduler.run(until_idle=True)
        print(" ".join(run_id for claim in scheduler.launched for run_id in claim.run_ids))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])))
