from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cosmos_tui.config import HostConfig
from cosmos_tui.domain import GpuProcess, GpuSample, HostState, HostStatus, RunState
from cosmos_tui.engine.batching import LaunchGroup, plan_groups
from cosmos_tui.engine.queue import Allocation, HostView, Placement, host_view, place
from cosmos_tui.errors import ClaimedElsewhere, InvalidTransition, ValidationError
from cosmos_tui.store.queue_store import QueueStore
from cosmos_tui.store.repositories import Store

from .conftest import BASE, MakeRun, StepClock

AT = datetime(2026, 1, 1, tzinfo=UTC)


def group(run_id: str, gpus: int = 1, target: str | None = None) -> LaunchGroup:
    from dataclasses import replace

    from cosmos_tui.domain import Run, RunType

    run = Run(
        id=run_id,
        prompt_id=None,
        type=RunType.TRANSFER,
        profile="transfer1",
        state=RunState.QUEUED,
        params=replace(BASE, num_gpus=gpus),
        created_at=AT,
        updated_at=AT,
        target=target,
    )
    return LaunchGroup(runs=(run,))


def host(name: str, gpus: int, busy: tuple[int, ...] = (), online: bool = True, **kw) -> HostView:
    return HostView(name, online, tuple(range(gpus)), frozenset(busy), **kw)


def where(plan) -> dict[str, tuple[str, tuple[int, ...]]]:
    return {p.group.head.id: (p.host, p.gpus) for p in plan.placements}


def test_single_gpu_runs_spread_over_hosts_and_share_an_eight_gpu_host() -> None:
    groups = [group(f"r{i}") for i in range(10)]
    plan = place(groups, [host("one", 1), host("two", 2), host("eight", 8)], [])
    placed = where(plan)
    assert len(placed) == 10 and not plan.waiting
    on_eight = [gpus for h, gpus in placed.values() if h == "eight"]
    assert len(on_eight) == 7 and len({g for gs in on_eight for g in gs}) == 7
    assert sum(1 for h, _ in placed.values() if h == "two") == 2
    assert sum(1 for h, _ in placed.values() if h == "one") == 1
    # The host with the most free GPUs is chosen first.
    assert placed["r0"] == ("eight", (0,))


def test_multi_gpu_runs_get_that_many_gpus_and_foreign_processes_are_avoided() -> None:
    hosts = [host("two", 2, busy=(0,)), host("eight", 8, busy=(1, 2))]
    plan = place([group("big", 4), group("pair", 2), group("solo")], hosts, [])
    placed = where(plan)
    assert placed["big"] == ("eight", (0, 3, 4, 5))
    assert placed["pair"] == ("eight", (6, 7))
    assert placed["solo"] == ("two", (1,))


def test_our_allocations_and_per_host_limits_are_respected() -> None:
    hosts = [host("a", 4, max_runs=2), host("b", 2)]
    held = [Allocation("a", (0,), "rs_x"), Allocation("a", (1, 2), "bs_y")]
    plan = place([group("r1"), group("r2"), group("r3")], hosts, held)
    placed = where(plan)
    assert placed == {"r1": ("b", (0,)), "r2": ("b", (1,))}
    assert plan.waiting[0].group.head.id == "r3"
    assert "max_runs" in plan.waiting[0].reason
    assert plan.free == {"a": (3,), "b": (0, 1)}


def test_fifo_blocks_behind_the_first_run_but_impossible_runs_do_not_block() -> None:
    hosts = [host("a", 4, busy=(0, 1, 2)), host("down", 8, online=False)]
    plan = place([group("huge", 8), group("wants2", 2), group("small")], hosts, [])
    assert where(plan) == {}
    reasons = {w.group.head.id: w.reason for w in plan.waiting}
    assert "largest online host offers 4" in reasons["huge"]
    assert "waiting for 2 free GPU(s)" in reasons["wants2"]
    assert "behind wants2" in reasons["small"]


def test_offline_hosts_get_nothing_and_a_paused_queue_plans_nothing() -> None:
    hosts = [host("down", 8, online=False), host("up", 1)]
    plan = place([group("r1"), group("r2")], hosts, [])
    assert where(plan) == {"r1": ("up", (0,))}
    paused = place([group("r1")], hosts, [], paused=True)
    assert paused.paused and not paused.placements
    assert "paused" in paused.waiting[0].reason
    assert (
        "no host is online"
        in place([group("r")], [host("x", 1, online=False)], []).waiting[0].reason
    )


def test_batches_go_only_to_hosts_that_take_them_single_runs_anywhere() -> None:
    pair = LaunchGroup(group("b1").runs + group("b2").runs)
    # A cluster node (batches=False) has the most free GPUs, yet the batch goes to the
    # SSH host; the single run behind it takes the node.
    hosts = [host("ssh", 2), host("lab/node", 8, batches=False)]
    plan = place([pair, group("solo")], hosts, [])
    assert where(plan) == {"b1": ("ssh", (0,)), "solo": ("lab/node", (0,))}
    only_nodes = place([pair, group("solo")], [host("lab/node", 8, batches=False)], [])
    assert where(only_nodes) == {"solo": ("lab/node", (0,))}
    waiting = only_nodes.waiting[0]
    assert waiting.group is pair and not waiting.until_free
    assert waiting.reason == "a batch needs an SSH host (cluster nodes take single runs)"


def test_a_pinned_run_goes_only_to_its_cluster_or_host() -> None:
    hosts = [host("ssh", 8), host("lab/n1", 2, batches=False), host("lab/n2", 4, busy=(0, 1, 2, 3))]
    plan = place(
        [group("pinned", target="lab"), group("free"), group("to_ssh", target="ssh")], hosts, []
    )
    # The SSH host has the most free GPUs, yet the pinned run takes the cluster's free node.
    assert where(plan) == {
        "pinned": ("lab/n1", (0,)),
        "free": ("ssh", (0,)),
        "to_ssh": ("ssh", (1,)),
    }
    # A name that only starts like the cluster's is another target.
    assert place([group("r", target="la")], hosts, []).waiting[0].reason == (
        "pinned to la: no host or cluster node of that name is known now"
    )


def test_a_pinned_run_waiting_for_its_nodes_holds_only_those() -> None:
    hosts = [host("ssh", 2), host("lab/n1", 2, busy=(0, 1), batches=False)]
    plan = place([group("pinned", target="lab"), group("free"), group("free2")], hosts, [])
    # FIFO holds the cluster's nodes for the pinned run, not the SSH host it cannot use.
    assert where(plan) == {"free": ("ssh", (0,)), "free2": ("ssh", (1,))}
    waiting = plan.waiting[0]
    assert waiting.group.head.id == "pinned" and waiting.until_free
    assert waiting.reason.startswith("waiting for 1 free GPU(s) (lab/n1 0 free")
    # A run behind it that could use the nodes does not take them first.
    nodes = [
        host("lab/n1", 2, busy=(0, 1), batches=False),
        host("lab/n2", 2, busy=(1,), batches=False),
    ]
    plan = place([group("big", 2, target="lab"), group("small")], nodes, [])
    assert where(plan) == {}
    assert {w.group.head.id: w.reason for w in plan.waiting}[
        "small"
    ] == "behind big (first in line)"
    # ... but one that fits only where the first in line never could starts at once.
    nodes.append(host("lab/n3", 1, batches=False))
    plan = place([group("big", 2, target="lab"), group("small")], nodes, [])
    assert where(plan) == {"small": ("lab/n3", (0,))}


def test_a_run_pinned_to_a_cluster_whose_nodes_are_all_down_waits_saying_so() -> None:
    hosts = [host("ssh", 2), host("lab/n1", 2, online=False, batches=False)]
    plan = place([group("pinned", target="lab"), group("free")], hosts, [])
    assert where(plan) == {"free": ("ssh", (0,))}
    assert plan.waiting[0].reason == "pinned to lab: no host is online"
    assert not plan.waiting[0].until_free
    too_big = place([group("big", 4, target="lab")], [host("lab/n1", 2, batches=False)], [])
    assert (
        too_big.waiting[0].reason
        == "pinned to lab: needs 4 GPU(s); the largest online host offers 2"
    )


def sample(index: int, uuid: str) -> GpuSample:
    return GpuSample(host="h", index=index, uuid=uuid, name="H100", at=AT)


def test_host_view_counts_only_foreign_processes_and_applies_gpu_limit() -> None:
    config = HostConfig(name="h", hostname="localhost", gpu_limit=3, max_runs=5)
    samples = [sample(i, f"GPU-{i}") for i in range(4)]
    processes = [
        GpuProcess("h", "GPU-0", 10, 100.0, "python", container_id="abcdef123456789", run_id=None),
        GpuProcess("h", "GPU-1", 11, 100.0, "python", run_id="rs_mine"),
        GpuProcess("h", "GPU-2", 12, 100.0, "someone-elses-job"),
        GpuProcess("h", "GPU-9", 13, 100.0, "unknown-gpu"),
        # A container of ours that just finished (its run ended a moment ago).
        GpuProcess("h", "GPU-1", 14, 100.0, "python", container_id="f" * 64, run_id="rs_old"),
    ]
    connected = HostStatus("h", HostState.CONNECTED)
    ours = {"rs_mine", "abcdef123456", "rs_old"}
    view = host_view(config, connected, samples, processes, ours=ours)
    assert view.gpus == (0, 1, 2, 3) and view.max_gpus == 3 and view.capacity == 3
    assert view.foreign_busy == frozenset({2})
    # Our labels on a container this database does not know (another user's cosmos-tui,
    # or one of ours still running long after its run ended): its GPU is busy.
    labelled = GpuProcess("h", "GPU-0", 15, 100.0, "python", container_id="e" * 64,
                          run_id="rs_theirs")  # fmt: skip
    view = host_view(config, connected, samples, [labelled], ours=ours)
    assert view.foreign_busy == frozenset({0})
    assert view.online and view.max_runs == 5
    assert not host_view(config, HostStatus("h", HostState.DOWN), samples).online
    assert not host_view(config, None, samples).online


# -- the persistent side --------------------------------------------------------------


async def test_queue_order_is_priority_then_first_in_first_out(
    store: Store, make_run: MakeRun
) -> None:
    low1 = await make_run(priority=0)
    high = await make_run(priority=5)
    low2 = await make_run(priority=0)
    mid = await make_run(priority=2)
    queue = QueueStore(store)
    assert [c.run.id for c in await queue.queued()] == [high.id, mid.id, low1.id, low2.id]


async def test_a_run_is_claimed_once_and_gpus_are_never_given_twice(
    store: Store, make_run: MakeRun
) -> None:
    queue = QueueStore(store)
    a, b, c = await make_run(), await make_run(), await make_run()
    candidates = await queue.queued()
    groups = plan_groups(candidates[:2], enabled=True)
    assert groups[0].is_batch
    claim = await queue.claim(Placement(groups[0], "h", (0, 1)), "sched-1", max_runs=4)
    assert claim is not None and claim.batch_id and claim.batch_id.startswith("bs_")
    assert claim.run_ids == (a.id, b.id)
    for run in claim.runs:
        assert run.host == "h" and run.gpus == (0, 1) and run.batch_id == claim.batch_id
    assert await queue.batch_manifest(claim.batch_id) == {"run_ids": [a.id, b.id]}
    # The same runs again, by another scheduler: lost.
    assert await queue.claim(Placement(groups[0], "h", (2,)), "sched-2") is None
    # Another run on a GPU that the batch holds: lost; on a free one: won.
    single = plan_groups([candidates[2]])[0]
    assert await queue.claim(Placement(single, "h", (1,)), "sched-2") is None
    assert await queue.claim(Placement(single, "h", (2,)), "sched-2", max_runs=1) is None
    won = await queue.claim(Placement(single, "h", (2,)), "sched-2", max_runs=2)
    assert won is not None and won.batch_id is None and won.runs[0].id == c.id
    assert await queue.queued() == []
    assert sorted(a.gpus for a in await queue.allocations()) == [(0, 1), (0, 1), (2,)]


async def test_start_needs_the_claim_and_release_puts_runs_back(
    store: Store, make_run: MakeRun
) -> None:
    queue = QueueStore(store)
    run = await make_run()
    claim = await queue.claim(Placement(plan_groups(await queue.queued())[0], "h", (0,)), "s1")
    assert claim is not None
    with pytest.raises(InvalidTransition):
        await queue.start(run.id, "s2")
    assert await queue.release([run.id], "s2") == 0
    assert await queue.release([run.id], "s1") == 1
    assert [c.run.id for c in await queue.queued()] == [run.id]
    assert await queue.allocations() == []
    claim = await queue.claim(Placement(plan_groups(await queue.queued())[0], "h", (3,)), "s2")
    started = await queue.start(run.id, "s2")
    assert started.state == RunState.UPLOADING and started.gpus == (3,)
    assert started.events[-1].reason == "launching"
    # Back in the queue (a retry) the claim is gone, so it can be placed again.
    await store.transition(run.id, RunState.QUEUED, "retry")
    assert [c.run.id for c in await queue.queued()] == [run.id]


async def test_claims_of_a_dead_scheduler_are_released_and_cannot_start_later(
    store: Store, make_run: MakeRun, clock: StepClock
) -> None:
    queue = QueueStore(store)
    run = await make_run()
    await queue.heartbeat("dead", 1, "here")
    await queue.heartbeat("alive", 2, "here")
    claim = await queue.claim(Placement(plan_groups(await queue.queued())[0], "h", (0,)), "dead")
    assert claim is not None
    assert await queue.release_stale_claims(timedelta(seconds=60)) == []
    clock.advance(120)
    await queue.heartbeat("alive", 2, "here")
    assert await queue.live_schedulers(timedelta(seconds=60)) == ["alive"]
    assert await queue.release_stale_claims(timedelta(seconds=60)) == [run.id]
    with pytest.raises(InvalidTransition):
        await queue.start(run.id, "dead")
    assert [c.run.id for c in await queue.queued()] == [run.id]


async def test_a_driver_takes_a_run_only_unclaimed_or_claimed_by_itself(
    tmp_path: Path, store: Store, make_run: MakeRun
) -> None:
    queue = QueueStore(store)
    run = await make_run()
    claim = await queue.claim(Placement(plan_groups(await queue.queued())[0], "h", (0,)), "live")
    assert claim is not None
    async with Store.open(tmp_path / "q.db") as other:  # a stale claimer in another process
        with pytest.raises(ClaimedElsewhere):
            await other.transition(run.id, RunState.UPLOADING, "stale", claimer="stale")
        assert (await other.get_run(run.id)).state == RunState.QUEUED
        moved = await other.transition(run.id, RunState.UPLOADING, "its own", claimer="live")
    assert moved.state == RunState.UPLOADING
    unclaimed = await make_run()
    taken = await store.transition(unclaimed.id, RunState.UPLOADING, "free", claimer="worker")
    assert taken.state == RunState.UPLOADING


async def test_pause_is_seen_by_another_process(tmp_path: Path, store: Store) -> None:
    queue = QueueStore(store)
    assert not await queue.is_paused()
    await queue.set_paused(True)
    async with Store.open(tmp_path / "q.db") as other:
        assert await QueueStore(other).is_paused()
        await QueueStore(other).set_paused(False)
    assert not await queue.is_paused()


async def test_moving_runs_up_and_down_even_across_priorities(
    store: Store, make_run: MakeRun
) -> None:
    queue = QueueStore(store)
    high = await make_run(priority=1)
    a, b, c = await make_run(), await make_run(), await make_run()
    ids = lambda: [x.run.id for x in queue_list]  # noqa: E731
    queue_list = await queue.queued()
    assert ids() == [high.id, a.id, b.id, c.id]
    assert await queue.move(c.id, -1) == [high.id, a.id, c.id, b.id]
    assert await queue.move(a.id, +5) == [high.id, c.id, b.id, a.id]
    assert await queue.move(b.id, -2) == [b.id, high.id, c.id, a.id]
    queue_list = await queue.queued()
    assert ids() == [b.id, high.id, c.id, a.id]
    assert (await store.get_run(b.id)).priority == 1
    assert await queue.move(b.id, -1) == [b.id, high.id, c.id, a.id]
    await queue.cancel_queued(c.id)
    with pytest.raises(ValidationError, match="not waiting"):
        await queue.move(c.id, 1)
    with pytest.raises(ValidationError, match="not queued"):
        await queue.cancel_queued(c.id)
    assert (await store.get_run(c.id)).state == RunState.CANCELLED
    queue_list = await queue.queued()
    assert ids() == [b.id, high.id, a.id]


async def test_a_pause_after_the_plan_stops_the_claim(
    tmp_path: Path, store: Store, make_run: MakeRun
) -> None:
    queue = QueueStore(store)
    run = await make_run()
    placement = Placement(plan_groups(await queue.queued())[0], "h", (0,))
    # Another process pauses between this scheduler's plan and its claim.
    async with Store.open(tmp_path / "q.db") as other:
        await QueueStore(other).set_paused(True)
    assert await queue.claim(placement, "s1") is None
    assert [c.run.id for c in await queue.queued()] == [run.id]
    assert await queue.allocations() == []
    await queue.set_paused(False)
    assert await queue.claim(placement, "s1") is not None


async def test_our_ids_are_runs_holding_gpus_their_batches_and_runs_just_ended(
    store: Store, make_run: MakeRun, clock: StepClock
) -> None:
    queue = QueueStore(store)
    old, batched, other, waiting = [await make_run() for _ in range(4)]
    await store.transition(old.id, RunState.CANCELLED, "long ago")
    clock.advance(600)
    groups = plan_groups(await queue.queued())
    claim = await queue.claim(Placement(groups[0], "h", (0,)), "s1")
    assert (
        claim is not None
        and claim.batch_id
        and set(claim.run_ids) == {batched.id, other.id, waiting.id}
    )
    await queue.start(other.id, "s1")
    await store.transition(other.id, RunState.FAILED, "ended now")
    ours = await queue.our_ids()
    assert {batched.id, other.id, waiting.id, claim.batch_id} <= ours
    assert old.id not in ours
