"""Store benchmark: 10,000 prompts and 100,000 runs; list and search query times.

Prints figures; it asserts nothing. Usage: python bench/store.py [--runs N] [--prompts N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cosmos_tui.domain import GenerationParams, RunState
from cosmos_tui.store.repositories import PromptFilter, RunFilter, Store

WORDS = [
    "robot",
    "arm",
    "kitchen",
    "street",
    "night",
    "rain",
    "car",
    "truck",
    "forest",
    "snow",
    "desert",
    "city",
    "warehouse",
    "drone",
    "camera",
    "pan",
    "tilt",
    "sunset",
    "fog",
    "neon",
    "market",
    "harbor",
    "bridge",
    "tunnel",
    "field",
    "river",
    "mountain",
]


def rows(prompts: int, runs: int) -> tuple[list[dict], list[dict]]:
    rng = random.Random(7)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    params = json.dumps(GenerationParams().to_dict())
    states = [s.value for s in RunState]
    prompt_rows = [
        {
            "id": f"ps_{i:012x}",
            "name": f"p{i}",
            "text": " ".join(rng.choice(WORDS) for _ in range(30)) + f" scene{i}",
            "created_at": start + timedelta(minutes=i),
        }
        for i in range(prompts)
    ]
    run_rows = [
        {
            "id": f"rs_{i:012x}",
            "prompt_id": f"ps_{rng.randrange(prompts):012x}",
            "type": "transfer",
            "profile": "transfer1",
            "state": rng.choice(states),
            "priority": 0,
            "queue_seq": i,
            "params": params,
            "attempt": 0,
            "created_at": start + timedelta(seconds=30 * i),
            "updated_at": start + timedelta(seconds=30 * i),
            "rating": rng.choice([None, 1, 2, 3, 4, 5]),
        }
        for i in range(runs)
    ]
    return prompt_rows, run_rows


async def timed(label: str, call, repeat: int = 20) -> None:
    times = []
    for _ in range(repeat):
        begin = time.perf_counter()
        await call()
        times.append((time.perf_counter() - begin) * 1000)
    print(f"{label:<44} median {statistics.median(times):7.2f} ms   max {max(times):7.2f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=100_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="cosmos-bench-"))
    db = folder / "cosmos.db"
    prompt_rows, run_rows = rows(args.prompts, args.runs)
    async with Store.open(db) as store:
        begin = time.perf_counter()
        await store.bulk_insert(prompt_rows, run_rows)
        print(
            f"bulk insert (Core) of {args.prompts} prompts + {args.runs} runs: "
            f"{time.perf_counter() - begin:.2f} s"
        )
        queued = RunFilter(states=frozenset({RunState.QUEUED}))
        await timed("first page of runs, state=queued (50)", lambda: store.list_runs(queued, 0, 50))
        await timed(
            "first page of runs, no filter (50)", lambda: store.list_runs(RunFilter(), 0, 50)
        )
        await timed(
            "runs text search 'warehouse drone'",
            lambda: store.list_runs(RunFilter(text="warehouse drone"), 0, 50),
        )
        await timed(
            "prompt text search 'scene4242'",
            lambda: store.list_prompts(PromptFilter(text="scene4242"), 0, 50),
        )
        await timed(
            "first page of prompts (200) with run stats",
            lambda: store.list_prompts(PromptFilter(), 0, 200),
        )
    env = dict(os.environ, COSMOS_DATA_DIR=str(folder), COSMOS_CONFIG=str(folder / "c.toml"))
    (folder / "c.toml").write_text("")
    cosmos = str(Path(sys.executable).parent / "cosmos")
    for argv in (
        [cosmos, "--help"],
        [cosmos, "list", "runs"],
        [cosmos, "list", "runs", "--state", "queued"],
    ):
        times = []
        for _ in range(5):
            begin = time.perf_counter()
            subprocess.run(argv, env=env, capture_output=True, check=True)
            times.append(time.perf_counter() - begin)
        label = " ".join(["cosmos", *argv[1:]])
        print(f"{label:<44} median {statistics.median(times):.3f} s (whole process)")
    print(f"database: {db} ({db.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    asyncio.run(main())
