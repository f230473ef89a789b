"""The stall watchdog over a batch container, on the real sshd and dockerd with the Cosmos
stand-in image: a line that freezes in diffusion sampling (``[standin:hang]``) while the
GPU idles is marked stalled on every member the container holds; with
``timeouts.stall_action = "cancel"`` the container is stopped, the frozen line fails as
``stalled``, finished lines keep their outputs and lines that never started run again.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from cosmos_tui.domain import AlertKind, FailureKind, RunState
from cosmos_tui.store.metrics_store import MetricsStore
from cosmos_tui.store.queue_store import Claim
from tests.queue.test_queue_real import drive, videos


def batch_stall_config(make_config, action: str):
    config = make_config(run_timeout=120.0)
    timeouts = dataclasses.replace(config.timeouts, stall=1.0, stall_action=action)
    batching = dataclasses.replace(config.batching, max_size=8)
    return dataclasses.replace(config, timeouts=timeouts, batching=batching)


async def make_runs(bench, tmp_path: Path, texts: list[str]) -> list[str]:
    ids = []
    for index, text in enumerate(texts):
        prompt = await bench.create_prompt(text, videos(tmp_path, f"v{index}"))
        run = await bench.create_run(prompt.id, {"vis_weight": 0.1 * (index + 1)})
        ids.append(run.id)
    return ids


async def stalled_alerts(bench, run_id: str) -> list:
    alerts = await MetricsStore(bench.store).alerts(run_id)
    return [a for a in alerts if a.kind == AlertKind.STALLED]


async def test_a_stalled_batch_is_marked_on_every_member_and_left_running(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(batch_stall_config(make_config, "alert"))
    ids = await make_runs(bench, tmp_path, ["a frozen square [standin:hang]", "a quiet harbour"])
    launched: list[Claim] = []
    driving = asyncio.create_task(drive(bench, launched))
    alerts: dict[str, list] = {}
    for _ in range(300):
        alerts = {run_id: await stalled_alerts(bench, run_id) for run_id in ids}
        if all(alerts.values()):
            break
        await asyncio.sleep(0.1)
    assert all(alerts.values()), f"no stalled alert on every member: {alerts}"
    assert [c.run_ids for c in launched] == [tuple(ids)]
    for run_id in ids:
        message = alerts[run_id][0].message
        assert "NCCL" in message and f"cosmos cancel {run_id}" in message
        # One container holds both: the message names the other member too.
        assert all(other in message for other in ids)
        assert 'stall_action = "alert"' in message
    await asyncio.sleep(1.5)
    for run_id in ids:
        current = await bench.get_run(run_id)
        assert current.state == RunState.RUNNING  # the policy is "alert": nothing stopped
        assert current.progress is not None and current.progress.phase.startswith("stalled")
    for run_id in ids:
        await bench.runs.cancel(run_id)
    await asyncio.wait_for(driving, 60)
    final = [await bench.get_run(run_id) for run_id in ids]
    assert [r.state for r in final] == [RunState.CANCELLED, RunState.CANCELLED]
    host = bench.hosts.get("testhost")
    info = await host.docker.inspect(final[0].container_id or "")
    assert not info.running


async def test_stall_action_cancel_stops_the_batch_and_fails_only_the_frozen_line(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(batch_stall_config(make_config, "cancel"))
    texts = ["a quiet harbour", "a frozen square [standin:hang]", "a snowy pass"]
    ids = await make_runs(bench, tmp_path, texts)
    launched: list[Claim] = []
    await drive(bench, launched)
    assert [c.run_ids for c in launched] == [tuple(ids), (ids[2],)]
    done = [await bench.get_run(run_id) for run_id in ids]
    assert [r.state for r in done] == [RunState.COMPLETED, RunState.FAILED, RunState.COMPLETED], [
        (r.state, r.failure_message) for r in done
    ]
    frozen = done[1]
    assert frozen.failure_kind == FailureKind.STALLED
    assert frozen.failure_message and "NCCL" in frozen.failure_message
    assert await stalled_alerts(bench, frozen.id)
    # Line 1 finished before the stall: its output was collected; line 3 ran again.
    for index in (0, 2):
        video = (tmp_path / f"v{index}" / "color.mp4").read_bytes()
        assert (bench.output_dir(ids[index]) / "output.mp4").read_bytes() == video
    assert done[2].failure_kind is None
