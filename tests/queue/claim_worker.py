"""One claiming process for the forced-race test: claims the same placements as its twin.

Usage: python claim_worker.py DB_PATH NAME BARRIER_DIR

Both processes try to claim every queued run, run k on GPU k % 4 of host "h", in the same
order, after meeting at the barrier. Whatever the interleaving, each run may be claimed by
one of them only, and a GPU held by a claim is never given to another.
Prints the ids of the runs this process won.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from cosmos_tui.engine.batching import plan_groups
from cosmos_tui.engine.queue import Placement
from cosmos_tui.store.queue_store import QueueStore
from cosmos_tui.store.repositories import Store


async def main(db_path: Path, name: str, barrier: Path) -> None:
    async with Store.open(db_path) as store:
        queue = QueueStore(store)
        groups = plan_groups(await queue.queued(), enabled=False)
        (barrier / name).touch()
        deadline = time.monotonic() + 60
        while len(list(barrier.iterdir())) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        won = []
        for index, group in enumerate(groups):
            claim = await queue.claim(Placement(group, "h", (index % 4,)), name)
            if claim is not None:
                won.extend(claim.run_ids)
        print(" ".join(won))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])))
