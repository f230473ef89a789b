from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

from cosmos_tui.config import BatchingConfig
from cosmos_tui.domain import RunState
from cosmos_tui.engine.queue import HostView
from cosmos_tui.engine.scheduler import Scheduler, StaticCluster
from cosmos_tui.engine.simulated import SimulatedLauncher
from cosmos_tui.store.queue_store import Claim, QueueStore
from cosmos_tui.store.repositories import RunFilter, Store

from .conftest import MakeRun

WORKER = Path(__file__).with_name("scheduler_worker.py")
ROOT = Path(__file__).parents[2]


def scheduler(store: Store, hosts, launched: list[Claim], **kw) -> Scheduler:
    launcher = SimulatedLauncher(store, time_scale=0.0002, on_launch=launched.append)
    return Scheduler(QueueStore(store), StaticCluster(tuple(hosts)), launcher,
                     poll_interval=0.01, **kw)  # fmt: skip


async def all_runs(store: Store) -> list:
    return list((await store.list_runs(RunFilter(), 0, 10_000)).items)


async def test_the_queue_runs_to_the_end_with_batches_and_multi_gpu_runs(
    store: Store, make_run: MakeRun
) -> None:
    for i in range(6):
        await make_run(seed=i % 2)
    await make_run(num_gpus=2)
    await make_run(num_gpus=4, priority=3)
    launched: list[Claim] = []
    hosts = [HostView("a", True, (0, 1, 2, 3)), HostView("b", True, (0, 1, 2, 3))]
    sched = scheduler(
        store, hosts, launched, batching=BatchingConfig(max_size=2), split_batches=False
    )
    await asyncio.wait_for(sched.run(until_idle=True), 30)
    runs = await all_runs(store)
    assert {r.state for r in runs} == {RunState.COMPLETED}
    counts = Counter(run_id for claim in launched for run_id in claim.run_ids)
    assert set(counts.values()) == {1} and len(counts) == 8
    # The priority-3 four-GPU run went first and got four GPUs of one host.
    assert launched[0].runs[0].params.num_gpus == 4 and len(launched[0].gpus) == 4
    batches = [c for c in launched if c.batch_id]
    assert batches and all(len(c.runs) == 2 for c in batches)
    for claim in batches:
        assert len({r.params.seed for r in claim.runs}) == 1
        for run in claim.runs:
            fresh = await store.get_run(run.id)
            assert fresh.batch_id == claim.batch_id and fresh.host == claim.host
            assert "in batch" in fresh.events[1].reason


async def test_batching_off_means_one_container_per_run(store: Store, make_run: MakeRun) -> None:
    for _ in range(3):
        await make_run()
    launched: list[Claim] = []
    sched = scheduler(store, [HostView("a", True, (0,))], launched,
                      batching=BatchingConfig(enabled=False))  # fmt: skip
    await asyncio.wait_for(sched.run(until_idle=True), 30)
    assert [len(c.runs) for c in launched] == [1, 1, 1]
    assert all(c.batch_id is None for c in launched)


async def test_a_paused_queue_starts_nothing_until_resumed(store: Store, make_run: MakeRun) -> None:
    run = await make_run()
    launched: list[Claim] = []
    sched = scheduler(store, [HostView("a", True, (0,))], launched)
    await sched.queue.set_paused(True)
    assert await sched.step() == []
    plan = await sched.plan()
    assert plan.paused and plan.waiting[0].group.head.id == run.id
    await sched.queue.set_paused(False)
    claims = await sched.step()
    assert [c.run_ids for c in claims] == [(run.id,)]
    await asyncio.wait_for(sched.run(until_idle=True), 30)
    assert (await store.get_run(run.id)).state == RunState.COMPLETED


async def test_gpus_busy_with_foreign_processes_are_left_alone(
    store: Store, make_run: MakeRun
) -> None:
    for _ in range(4):
        await make_run()
    launched: list[Claim] = []
    host = HostView("a", True, (0, 1, 2), foreign_busy=frozenset({0, 2}))
    sched = scheduler(store, [host], launched, batching=BatchingConfig(enabled=False))
    await asyncio.wait_for(sched.run(until_idle=True), 30)
    assert {c.gpus for c in launched} == {(1,)}
    assert len(launched) == 4


async def test_a_freed_gpu_starts_the_next_run_without_waiting_for_a_poll(
    store: Store, make_run: MakeRun
) -> None:
    for _ in range(5):
        await make_run()
    launched: list[Claim] = []
    launcher = SimulatedLauncher(store, time_scale=0.0002, on_launch=launched.append)
    # A poll an hour apart: only the launch ending can wake the scheduler in time.
    sched = Scheduler(QueueStore(store), StaticCluster((HostView("a", True, (0,)),)), launcher,
                      batching=BatchingConfig(enabled=False), poll_interval=3600)  # fmt: skip
    await asyncio.wait_for(sched.run(until_idle=True), 60)
    assert len(launched) == 5 and len(sched.latencies) == 4, sched.latencies
    # Timings (under 1 s from GPU free to the next start) are measured by
    # bench/scheduler_latency.py, not asserted here: a loaded machine must not fail a test.


def run_two_schedulers(db: Path) -> list[list[str]]:
    barrier = db.with_suffix(".barrier")
    barrier.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(db), name, str(barrier)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("sched-a", "sched-b")
    ]
    launched: list[list[str]] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        launched.append(out.split())
    return launched


async def test_two_scheduler_processes_never_launch_a_run_twice(tmp_path: Path) -> None:
    shares: list[list[int]] = []
    for attempt in range(int(os.environ.get("COSMOS_RACE_ROUNDS", "4"))):
        db = tmp_path / f"shared{attempt}.db"
        async with Store.open(db) as store:
            from .conftest import BASE

            prompt_ids = []
            for i in range(24):
                prompt = await store.add_prompt(f"shared prompt {i}", [], video_dir=None)
                prompt_ids.append(prompt.id)
            from dataclasses import replace

            for i, prompt_id in enumerate(prompt_ids):
                params = replace(BASE, seed=i % 3, num_gpus=2 if i % 7 == 0 else 1)
                await store.add_run(prompt_id, params)
        by_worker = run_two_schedulers(db)
        shares.append([len(ids) for ids in by_worker])
        counts = Counter(run_id for ids in by_worker for run_id in ids)
        assert len(counts) == 24, counts
        assert set(counts.values()) == {1}
        async with Store.open(db) as store:
            runs = await all_runs(store)
            assert {r.state for r in runs} == {RunState.COMPLETED}
            # No GPU was held by two containers at once.
            spans = []
            for run in runs:
                full = await store.get_run(run.id)
                start = next(e.at for e in full.events if e.to_state == RunState.UPLOADING)
                end = full.finished_at
                for gpu in full.gpus:
                    spans.append((full.host, gpu, start, end, full.batch_id or full.id))
            for i, (host, gpu, start, end, key) in enumerate(spans):
                for host2, gpu2, start2, end2, key2 in spans[i + 1 :]:
                    if (host, gpu) == (host2, gpu2) and key != key2:
                        assert end <= start2 or end2 <= start, (host, gpu)
    # Whichever scheduler reacts first may take everything (on a loaded machine one often
    # does), which is correct; the race itself is forced in the test below.
    print("runs launched per scheduler, per round:", shares)


async def test_a_run_cancelled_after_its_claim_never_starts(
    store: Store, make_run: MakeRun
) -> None:
    from cosmos_tui.engine.batching import plan_groups
    from cosmos_tui.engine.queue import Placement

    run = await make_run()
    queue = QueueStore(store)
    claim = await queue.claim(Placement(plan_groups(await queue.queued())[0], "a", (0,)), "s")
    await queue.cancel_queued(run.id)
    launcher = SimulatedLauncher(store, time_scale=0.0)
    await launcher.launch(claim)
    assert launcher.containers == 0
    assert (await store.get_run(run.id)).state == RunState.CANCELLED
    assert await queue.allocations() == []


async def test_batches_are_split_while_gpus_would_stay_idle(
    store: Store, make_run: MakeRun
) -> None:
    for _ in range(6):
        await make_run()
    launched: list[Claim] = []
    sched = scheduler(store, [HostView("a", True, (0, 1, 2))], launched)
    plan = await sched.plan()
    assert sorted(len(p.group.runs) for p in plan.placements) == [1, 2, 3]
    await asyncio.wait_for(sched.run(until_idle=True), 30)
    assert sorted(len(c.runs) for c in launched) == [1, 2, 3]


async def test_two_processes_claiming_the_same_placements_win_each_run_once(
    tmp_path: Path,
) -> None:
    worker = WORKER.with_name("claim_worker.py")
    for attempt in range(int(os.environ.get("COSMOS_RACE_ROUNDS", "4"))):
        db = tmp_path / f"claims{attempt}.db"
        async with Store.open(db) as store:
            from .conftest import BASE

            for i in range(12):
                prompt = await store.add_prompt(f"claimed prompt {i}", [], video_dir=None)
                await store.add_run(prompt.id, BASE)
            queued = [c.run.id for c in await QueueStore(store).queued()]
        barrier = db.with_suffix(".barrier")
        barrier.mkdir()
        procs = [
            subprocess.Popen([sys.executable, str(worker), str(db), name, str(barrier)],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name in ("claimer-a", "claimer-b")
        ]  # fmt: skip
        won = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            won.append(out.split())
        # However the two interleaved: runs 0-3 took GPUs 0-3, once each; every later
        # run wanted a GPU already held, so nobody got it.
        assert sorted(won[0] + won[1]) == sorted(queued[:4]), won
        async with Store.open(db) as store:
            held = await QueueStore(store).allocations()
            assert sorted(a.gpus for a in held) == [(0,), (1,), (2,), (3,)]


class StuckLauncher:
    """Takes a claim and never starts it (a launch still waiting when the app quits)."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()

    async def launch(self, claim: Claim) -> None:
        self.entered.set()
        await asyncio.Event().wait()


async def test_a_scheduler_stopped_from_outside_gives_back_what_it_had_not_started(
    store: Store, make_run: MakeRun
) -> None:
    waiting, other = await make_run(), await make_run()
    launcher = StuckLauncher()
    queue = QueueStore(store)
    sched = Scheduler(queue, StaticCluster((HostView("a", True, (0,)),)), launcher,
                      poll_interval=0.01, batching=BatchingConfig(enabled=False))  # fmt: skip
    driving = asyncio.create_task(sched.run())
    await asyncio.wait_for(launcher.entered.wait(), 10)
    claimed = [run_id for claim in sched.launched for run_id in claim.run_ids]
    assert len(claimed) == 1 and await queue.claimer(claimed[0]) == sched.id
    driving.cancel()  # the app quits
    await asyncio.gather(driving, return_exceptions=True)
    for run in (waiting, other):  # in line again at once, not after the stale-claim delay
        assert await queue.claimer(run.id) is None
        assert (await store.get_run(run.id)).state == RunState.QUEUED
    assert await queue.live_schedulers(timedelta(hours=1)) == []
