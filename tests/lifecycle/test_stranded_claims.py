"""A queued run whose driver died holding its claim is driven on by the next reconcile.

A driver (a ``cosmos worker``, the TUI) that puts its run back in the queue for a retry
keeps the run's claim through the back-off, so no scheduler takes it meanwhile. If that
process dies in the back-off (a reboot, a kill), the claim stays and nobody else may
start the run: ``cosmos retry`` leaves queued runs alone and a scheduler only takes
runs nobody claimed. The next reconcile (app start, ``cosmos reconcile``, the TUI's
minute) sees the claim's driver gone (its run lock free) and drives the run again. A
live scheduler's claim and a live driver's are left alone; a dead scheduler's claims go
back to the queue, undriven.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from sqlalchemy import update

from cosmos_tui.domain import RunState
from cosmos_tui.engine.batching import LaunchGroup
from cosmos_tui.engine.queue import Placement
from cosmos_tui.engine.runlock import RunLock
from cosmos_tui.services.runs import RunOptions
from cosmos_tui.store.queue_store import QueueStore
from cosmos_tui.store.tables import SchedulerRow
from tests.lifecycle.test_exit0_no_video import flaky_download_config
from tests.lifecycle.test_hand_over import wait_ended


async def test_a_run_whose_driver_died_in_its_retry_back_off_is_driven_again(
    make_config, bench_for, video_dir, build_image
) -> None:
    config = flaky_download_config(make_config, build_image)
    requeued = asyncio.Event()

    async def observer(run_id: str, step: str) -> None:
        if step == "requeued":
            requeued.set()

    async def sleep(seconds: float) -> None:  # the back-off outlasts the driver
        await asyncio.sleep(3600 if requeued.is_set() else seconds)

    first = await bench_for(config, RunOptions(observer=observer, sleep=sleep, worker_id="a:1"))
    prompt = await first.create_prompt("a prompt", video_dir)
    run = await first.create_run(prompt.id)
    driving = asyncio.create_task(first.runs.drive(run.id))
    await asyncio.wait_for(requeued.wait(), 90)
    driving.cancel()  # the driver's process dies in its back-off: its lock goes, its claim not
    with contextlib.suppress(asyncio.CancelledError):
        await driving
    stranded = await first.get_run(run.id)
    assert stranded.state == RunState.QUEUED and stranded.attempt == 1
    assert await QueueStore(first.store).claimer(run.id) == "a:1"

    second = await bench_for(config, RunOptions(worker_id="b:2"))  # the app opens again
    report = await second.runs.reconcile()
    assert run.id in report.dispatched
    final = await wait_ended(second, run.id)
    assert final.state == RunState.COMPLETED, final.failure_message
    assert final.attempt == 2


async def test_a_schedulers_claim_a_live_drivers_and_an_unclaimed_run_are_left_alone(
    make_config, bench_for, video_dir
) -> None:
    bench = await bench_for(make_config(), RunOptions(worker_id="here:1"))
    prompt = await bench.create_prompt("a prompt", video_dir)
    by_scheduler, by_driver, waiting = [
        await bench.create_run(prompt.id, {"seed": seed}) for seed in (1, 2, 3)
    ]
    queue = QueueStore(bench.store)
    await queue.heartbeat("sched-1", 1, "localhost")  # a live queue driver's claim
    host = bench.config.hosts[0].name
    placement = Placement(LaunchGroup((by_scheduler,)), host, (0,))
    assert await queue.claim(placement, "sched-1", 4) is not None
    driver = Placement(LaunchGroup((by_driver,)), host, (1,))
    assert await queue.claim(driver, "other:2", 4, ignore_pause=True) is not None
    lock = RunLock(bench.config.outputs_dir / by_driver.id)  # its driver lives: it holds this
    assert lock.try_acquire()
    try:
        report = await bench.runs.reconcile(scan_all_hosts=False)
    finally:
        lock.release()
    assert report.dispatched == ()
    assert by_driver.id in report.busy
    assert await queue.claimer(by_scheduler.id) == "sched-1"
    assert await queue.claimer(by_driver.id) == "other:2"
    for run in (by_scheduler, by_driver, waiting):
        assert (await bench.get_run(run.id)).state == RunState.QUEUED
    assert await queue.release_stale_claims(timedelta(hours=1)) == []


async def test_a_dead_schedulers_claims_go_back_to_the_queue_undriven(
    make_config, bench_for, video_dir
) -> None:
    """A scheduler that died between its claim and the start leaves claimed runs too.

    They go back in line for the queue (its pause, priorities and order), not to a worker.
    """
    bench = await bench_for(make_config(), RunOptions(worker_id="here:1"))
    prompt = await bench.create_prompt("a prompt", video_dir)
    single, first, second = [
        await bench.create_run(prompt.id, {"seed": seed}) for seed in (1, 2, 2)
    ]
    queue = QueueStore(bench.store)
    await queue.heartbeat("sched-gone", 1, "localhost")
    host = bench.config.hosts[0].name
    batch = Placement(LaunchGroup((first, second)), host, (1,))
    assert (claimed := await queue.claim(batch, "sched-gone", 4)) is not None
    assert claimed.batch_id is not None
    assert await queue.claim(Placement(LaunchGroup((single,)), host, (0,)), "sched-gone", 4)
    async with bench.store.session() as session:  # its last heartbeat, two hours ago
        await session.execute(
            update(SchedulerRow).values(heartbeat_at=bench.store.clock() - timedelta(hours=2))
        )
    report = await bench.runs.reconcile(scan_all_hosts=False)
    assert report.dispatched == ()
    for run in (single, first, second):
        assert await queue.claimer(run.id) is None
        assert (await bench.get_run(run.id)).state == RunState.QUEUED
    assert [c.run.id for c in await queue.queued()] == [single.id, first.id, second.id]
