"""A batch whose container dies on a blocked prompt, on the real sshd and dockerd with the
Cosmos stand-in image (docs/cosmos.md, "Transfer1 batch outputs and blocked prompts").

The tool sends batch size 1, so the stand-in, like Transfer1, saves line 1, dies with
``TypeError: cannot unpack non-iterable NoneType object`` on the blocked line 2 and never
starts lines 3 and 4.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from cosmos_tui.domain import FailureKind, RunState
from cosmos_tui.store.queue_store import Claim
from tests.queue.test_queue_real import (
    drive,
    dying_queue_driver,
    queue_runs,
    videos,
    wait_for_states,
)


async def test_a_blocked_second_line_ends_only_its_run_and_the_lines_after_it_run_again(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("1gpu")
    config = make_config()
    config = dataclasses.replace(config, batching=dataclasses.replace(config.batching, max_size=8))
    bench = await bench_for(config)
    texts = ["a quiet harbour", "a crowded square [standin:guardrail]", "a snowy pass",
             "a misty lake at dawn"]  # fmt: skip
    runs = []
    for index, text in enumerate(texts):
        prompt = await bench.create_prompt(text, videos(tmp_path, f"v{index}"))
        runs.append(await bench.create_run(prompt.id, {"vis_weight": 0.1 * (index + 1)}))
    ids = [r.id for r in runs]
    launched: list[Claim] = []
    await drive(bench, launched)

    # One container for the four, then one for the two that never started: nobody twice.
    assert [c.run_ids for c in launched] == [tuple(ids), (ids[2], ids[3])]
    first, second = launched
    done = [await bench.get_run(run_id) for run_id in ids]
    assert [r.state for r in done] == [
        RunState.COMPLETED, RunState.BLOCKED, RunState.COMPLETED, RunState.COMPLETED
    ]  # fmt: skip

    # Line 1 finished before the container died: its output was collected.
    out = bench.output_dir(ids[0])
    assert (out / "output.mp4").read_bytes() == (tmp_path / "v0" / "color.mp4").read_bytes()
    assert (out / "prompt.txt").read_text() == texts[0]
    assert done[0].batch_id == first.batch_id

    # Line 2 is the one the guardrail blocked, with the guardrail's cause.
    blocked = done[1]
    assert blocked.failure_kind == FailureKind.GUARDRAIL and blocked.exit_code == 1
    assert blocked.batch_id == first.batch_id
    assert not (bench.output_dir(ids[1]) / "output.mp4").exists()
    log = (bench.output_dir(ids[1]) / "run.log").read_text()
    assert "TypeError: cannot unpack non-iterable NoneType object" in log

    # Lines 3 and 4 never started: back in the queue, then completed in the second batch
    # with their own videos, without any failure recorded against them.
    for index in (2, 3):
        run = done[index]
        assert run.batch_id == second.batch_id and run.failure_kind is None
        out = bench.output_dir(run.id)
        video = (tmp_path / f"v{index}" / "color.mp4").read_bytes()
        assert (out / "output.mp4").read_bytes() == video
        assert (out / "prompt.txt").read_text() == texts[index]
        assert "GUARDRAIL BLOCKED" not in (out / "run.log").read_text()
        moves = [(e.from_state, e.to_state) for e in run.events]
        assert moves.count((RunState.RUNNING, RunState.QUEUED)) == 1
        assert moves.count((RunState.STARTING, RunState.RUNNING)) == 2
        requeued = next(e for e in run.events if e.to_state == RunState.QUEUED and e.from_state)
        assert f"batch {first.batch_id} died on run {ids[1]}" in requeued.reason

    # The second container started only after the first had exited.
    host = bench.hosts.get("testhost")
    old = await host.docker.inspect(done[0].container_id or "")
    new = await host.docker.inspect(done[2].container_id or "")
    assert old.id != new.id and old.exit_code == 1
    assert old.finished_at is not None and new.started_at is not None
    assert old.finished_at <= new.started_at


async def test_a_batch_that_died_while_its_driver_was_dead_is_settled_the_same_way(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("1gpu")
    config = make_config(COSMOS_STANDIN_SPEED="0.05")
    bench = await bench_for(config)
    runs = await queue_runs(
        bench, tmp_path, "a field at {}", ("dawn", "noon [standin:guardrail]", "dusk", "night"),
        folder="{}",
    )  # fmt: skip
    with dying_queue_driver(config, tmp_path):
        await wait_for_states(bench, runs, {RunState.RUNNING})
    # The container dies on line 2 while nobody follows it; the next driver reattaches.
    await asyncio.wait_for(bench.queue.drive(until_idle=True), 120)
    done = [await bench.get_run(r.id) for r in runs]
    assert [r.state for r in done] == [
        RunState.COMPLETED, RunState.BLOCKED, RunState.COMPLETED, RunState.COMPLETED
    ], [(r.state, r.failure_message) for r in done]  # fmt: skip
    assert done[1].failure_kind == FailureKind.GUARDRAIL
    assert done[0].batch_id == done[1].batch_id != done[2].batch_id
    for index, name in ((0, "dawn"), (2, "dusk"), (3, "night")):
        video = (tmp_path / name / "color.mp4").read_bytes()
        assert (bench.output_dir(done[index].id) / "output.mp4").read_bytes() == video
