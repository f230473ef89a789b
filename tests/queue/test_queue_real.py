"""The queue against the real test sshd and dockerd, with the Cosmos stand-in image and the
nvidia-smi stand-in reporting 1, 2 or 8 GPUs (and GPUs busy with foreign processes)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from cosmos_tui.domain import FailureKind, RunState
from cosmos_tui.engine.batch_launch import BatchLauncher
from cosmos_tui.engine.cluster import PoolCluster
from cosmos_tui.services.queue import QueueService
from cosmos_tui.store.queue_store import Claim
from tests.conftest import write_video

UUID = "GPU-0000000{i}-1111-2222-3333-44444444444{i}"


def videos(root: Path, name: str) -> Path:
    folder = root / name
    write_video(folder / "color.mp4", f"video of {name} ".encode() * 200)
    return folder


async def drive(bench, launched: list[Claim], timeout: float = 120.0):
    cluster = PoolCluster(bench.config, bench.hosts)
    await cluster.start()
    service = QueueService.of(bench)
    scheduler = service.scheduler(cluster, BatchLauncher(bench.run_engine))
    original = scheduler.launcher

    class Recording:
        async def launch(self, claim: Claim) -> None:
            launched.append(claim)
            await original.launch(claim)

    scheduler.launcher = Recording()
    await asyncio.wait_for(scheduler.run(until_idle=True), timeout)
    return scheduler


async def test_a_batch_runs_in_one_container_and_outputs_map_back_by_name(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("1gpu")
    config = make_config()
    config = dataclasses.replace(config, batching=dataclasses.replace(config.batching, max_size=8))
    bench = await bench_for(config)
    texts = ["a quiet harbour", "a crowded square [standin:guardrail]", "a snowy pass"]
    runs = []
    for index, text in enumerate(texts):
        prompt = await bench.create_prompt(text, videos(tmp_path, f"v{index}"))
        runs.append(await bench.create_run(prompt.id, {"vis_weight": 0.1 * (index + 1)}))
    other = await bench.create_prompt("a desert at noon", videos(tmp_path, "odd"))
    loner = await bench.create_run(other.id, {"num_steps": 12})
    launched: list[Claim] = []
    await drive(bench, launched)
    assert [len(c.runs) for c in launched] == [3, 1]
    batch = launched[0]
    assert batch.batch_id and batch.host == "testhost" and batch.gpus == (0,)
    done = {r.id: await bench.get_run(r.id) for r in [*runs, loner]}
    assert done[runs[0].id].state == RunState.COMPLETED
    assert done[runs[2].id].state == RunState.COMPLETED
    assert done[loner.id].state == RunState.COMPLETED
    blocked = done[runs[1].id]
    assert blocked.state == RunState.BLOCKED and blocked.failure_kind == FailureKind.GUARDRAIL
    for index in (0, 2):
        run = done[runs[index].id]
        assert run.batch_id == batch.batch_id
        out = bench.output_dir(run.id)
        # The stand-in copies each line's own input video: the right output came back.
        assert (out / "output.mp4").read_bytes() == (
            tmp_path / f"v{index}" / "color.mp4"
        ).read_bytes()
        assert (out / "output.txt").read_text().strip() == texts[index]
        assert "Saved video to" in (out / "run.log").read_text()
        assert run.spec is not None and run.spec["num_steps"] == 35
    assert done[runs[0].id].container_id == done[runs[2].id].container_id


async def test_runs_spread_over_free_gpus_and_avoid_foreign_processes(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("8gpu")
    busy = [f"{4000 + i}, {UUID.format(i=i)}, 30000, someone_elses_training" for i in (0, 2, 3)]
    fake_gpu.set_apps(busy)
    config = make_config()
    config = dataclasses.replace(
        config,
        hosts=[dataclasses.replace(config.hosts[0], gpu_limit=6)],
        batching=dataclasses.replace(config.batching, enabled=False),
    )
    bench = await bench_for(config)
    made = []
    for index in range(4):
        prompt = await bench.create_prompt(f"scene {index}", videos(tmp_path, f"s{index}"))
        made.append(await bench.create_run(prompt.id))
    pair_prompt = await bench.create_prompt("two gpus", videos(tmp_path, "pair"))
    pair = await bench.create_run(pair_prompt.id, {"num_gpus": 2}, priority=5)
    launched: list[Claim] = []
    await drive(bench, launched)
    assert launched[0].run_ids == (pair.id,) and len(launched[0].gpus) == 2
    used = {g for c in launched for g in c.gpus}
    assert used <= {1, 4, 5}, used  # 0, 2, 3 are someone else's; 6, 7 beyond gpu_limit
    for run in [*made, pair]:
        fresh = await bench.get_run(run.id)
        assert fresh.state == RunState.COMPLETED, (fresh.state, fresh.failure_message)
        assert len(fresh.gpus) == fresh.params.num_gpus
