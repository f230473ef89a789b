"""Transfer2.5 batches on the real sshd and dockerd, with the Transfer2.5 double.

Queued Transfer2.5 runs that agree on the setup arguments and controls start in one container whose
``-i`` is a JSONL of their samples (one per run, named by run id). What upstream leaves
behind decides each member's end (inference.py:166-343 at 2ff49d07): a sample with its
``<name>.mp4`` completes with its own files; a guardrail block skips to the next sample
(keep_going); an error ends the process, so the sample it died in fails with the cause
and samples that never started go back in the queue; a failure before any sample (the
gated download) is every member's.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from cosmos_tui.config import Config
from cosmos_tui.domain import FailureKind, RunState
from cosmos_tui.engine.logs import read_log_lines
from cosmos_tui.store.queue_store import Claim
from tests.queue.test_queue_real import (
    drive,
    dying_queue_driver,
    videos,
    wait_until_launched,
)

TEXTS = ("a quiet harbour at dawn", "a crowded square at noon", "a snowy pass at dusk")


def batched(config: Config) -> Config:
    return dataclasses.replace(config, batching=dataclasses.replace(config.batching, max_size=8))


def slowed(config: Config, speed: str = "0.05") -> Config:
    """The double slowed down, so a driver can be killed while its batch runs."""
    host = config.hosts[0]
    env = {**host.env, "COSMOS_STANDIN_SPEED": speed}
    return dataclasses.replace(config, hosts=[dataclasses.replace(host, env=env)])


async def queue_three(bench, tmp_path: Path, texts=TEXTS) -> list:
    """Queue one Transfer2.5 run per text, each with its own video, seed and controls."""
    # the same controls (they pick the model for the whole batch), each with its weights
    hints = ([{"hint": "edge", "weight": 0.5}, {"hint": "depth", "weight": 0.1}],
             [{"hint": "depth", "weight": 0.9}, {"hint": "edge", "weight": 0.2}],
             [{"hint": "edge", "weight": 1.0}, {"hint": "depth", "weight": 0.3}])  # fmt: skip
    runs = []
    for index, text in enumerate(texts):
        prompt = await bench.create_prompt(text, videos(tmp_path, f"v{index}"))
        options = {"hints": hints[index], "guidance": 3 + index}
        runs.append(await bench.create_run(
            prompt.id, {"profile": "transfer2.5", "num_steps": 3, "seed": 10 + index,
                        "options": options},
        ))  # fmt: skip
    return runs


async def test_runs_share_one_container_and_each_keeps_its_outputs(
    t25_config: Callable[..., Config], bench_for, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(batched(t25_config()))
    runs = await queue_three(bench, tmp_path)
    ids = [r.id for r in runs]
    launched: list[Claim] = []
    await drive(bench, launched)
    assert [c.run_ids for c in launched] == [tuple(ids)]
    done = [await bench.get_run(run_id) for run_id in ids]
    assert [r.state for r in done] == [RunState.COMPLETED] * 3, [r.failure_message for r in done]
    assert len({r.container_id for r in done}) == 1 and done[0].batch_id == launched[0].batch_id
    for index, run in enumerate(done):
        out = bench.output_dir(run.id)
        video = (tmp_path / f"v{index}" / "color.mp4").read_bytes()
        assert (out / f"{run.id}.mp4").read_bytes() == video
        assert (out / f"{run.id}.txt").read_text() == TEXTS[index]
        # only its own files: no other member's, none of the batch's shared ones
        others = [i for i in ids if i != run.id]
        names = {Path(n).name for n in run.outputs}
        assert not any(o in name for o in others for name in names), names
        assert f"{run.id}.mp4" in names and "config.yaml" not in names
        # its own sample, seed and controls
        assert run.spec["name"] == run.id and run.spec["seed"] == 10 + index
        assert run.spec["guidance"] == 3 + index
        log = read_log_lines(out / "run.log")
        assert any(f"Processing sample {run.id}" in line for line in log)
        assert not any(f"Processing sample {o}" in line for o in others for line in log)
    weights = [(r.spec["edge"]["control_weight"], r.spec["depth"]["control_weight"]) for r in done]
    assert weights == [(0.5, 0.1), (0.2, 0.9), (1.0, 0.3)]


async def test_a_blocked_sample_ends_only_its_own_run(
    t25_config: Callable[..., Config], bench_for, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(batched(t25_config()))
    texts = (TEXTS[0], "a crowded square [standin:guardrail]", TEXTS[2])
    runs = await queue_three(bench, tmp_path, texts)
    launched: list[Claim] = []
    await drive(bench, launched)
    assert len(launched) == 1  # keep_going: the process went on past the blocked sample
    done = [await bench.get_run(r.id) for r in runs]
    assert [r.state for r in done] == [RunState.COMPLETED, RunState.BLOCKED, RunState.COMPLETED]
    assert done[1].failure_kind == FailureKind.GUARDRAIL
    assert "Guardrail blocked generation" in (done[1].failure_message or "")
    assert not (bench.output_dir(runs[1].id) / f"{runs[1].id}.mp4").exists()
    video = (tmp_path / "v2" / "color.mp4").read_bytes()
    assert (bench.output_dir(runs[2].id) / f"{runs[2].id}.mp4").read_bytes() == video


async def test_the_sample_it_died_in_fails_and_the_rest_run_again(
    t25_config: Callable[..., Config], bench_for, fake_gpu, tmp_path: Path
) -> None:
    # every container dies of OOM in its first sample: one run fails per container,
    # and the runs that never started go back in the queue without a failure of theirs
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(batched(t25_config("oom")))
    runs = await queue_three(bench, tmp_path)
    ids = [r.id for r in runs]
    launched: list[Claim] = []
    await drive(bench, launched)
    assert [c.run_ids for c in launched] == [tuple(ids), tuple(ids[1:]), (ids[2],)]
    done = [await bench.get_run(run_id) for run_id in ids]
    assert [r.state for r in done] == [RunState.FAILED] * 3
    assert [r.failure_kind for r in done] == [FailureKind.GPU_OOM] * 3
    assert len({r.container_id for r in done}) == 3
    requeued = [e for e in done[1].events if e.to_state == RunState.QUEUED and e.from_state]
    assert len(requeued) == 1 and f"died on run {ids[0]}" in requeued[0].reason


async def test_a_failure_before_any_sample_is_every_members(
    t25_config: Callable[..., Config], bench_for, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(batched(t25_config("gated")))
    runs = await queue_three(bench, tmp_path)
    launched: list[Claim] = []
    await drive(bench, launched)
    assert len(launched) == 1
    done = [await bench.get_run(r.id) for r in runs]
    assert [r.state for r in done] == [RunState.FAILED] * 3
    assert [r.failure_kind for r in done] == [FailureKind.DOWNLOAD] * 3
    # Transfer2.5's own remedy: the gated guardrail checkpoint and the token
    assert all("Cosmos-Guardrail1" in (r.failure_message or "") for r in done), done[0]


async def test_a_batch_whose_driver_died_is_settled_by_the_next_driver(
    t25_config: Callable[..., Config], bench_for, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("1gpu")
    config = slowed(batched(t25_config()))
    bench = await bench_for(config)
    texts = (TEXTS[0], "a crowded square [standin:guardrail]", TEXTS[2])
    runs = await queue_three(bench, tmp_path, texts)
    with dying_queue_driver(config, tmp_path):
        await wait_until_launched(bench, runs)
    # the container goes on with nobody following it; the next driver reattaches
    await asyncio.wait_for(bench.queue.drive(until_idle=True), 120)
    done = [await bench.get_run(r.id) for r in runs]
    assert [r.state for r in done] == [
        RunState.COMPLETED, RunState.BLOCKED, RunState.COMPLETED
    ], [(r.state, r.failure_message) for r in done]  # fmt: skip
    assert len({r.container_id for r in done}) == 1
    for index in (0, 2):
        video = (tmp_path / f"v{index}" / "color.mp4").read_bytes()
        assert (bench.output_dir(runs[index].id) / f"{runs[index].id}.mp4").read_bytes() == video
    log = read_log_lines(bench.output_dir(runs[2].id) / "run.log")
    assert any(f"Processing sample {runs[2].id}" in line for line in log)
    assert not any(f"Processing sample {runs[0].id}" in line for line in log)


async def test_a_sample_that_dies_mid_batch_fails_alone_and_the_rest_run_again(
    t25_config: Callable[..., Config], bench_for, fake_gpu, tmp_path: Path
) -> None:
    # sample 1 blocked, sample 2 dies of OOM, sample 3 never starts: blocked, failed with
    # its own cause (not sample 1's guardrail), requeued and completed in a second container
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(batched(t25_config()))
    texts = ("a quiet harbour [standin:guardrail]", "a crowded square [standin:oom]", TEXTS[2])
    runs = await queue_three(bench, tmp_path, texts)
    ids = [r.id for r in runs]
    launched: list[Claim] = []
    await drive(bench, launched)
    assert [c.run_ids for c in launched] == [tuple(ids), (ids[2],)]
    done = [await bench.get_run(run_id) for run_id in ids]
    assert [r.state for r in done] == [RunState.BLOCKED, RunState.FAILED, RunState.COMPLETED]
    assert done[1].failure_kind == FailureKind.GPU_OOM, done[1].failure_message
    requeued = [e for e in done[2].events if e.to_state == RunState.QUEUED and e.from_state]
    assert len(requeued) == 1 and f"died on run {ids[1]}" in requeued[0].reason
    assert done[2].failure_kind is None
    video = (tmp_path / "v2" / "color.mp4").read_bytes()
    assert (bench.output_dir(ids[2]) / f"{ids[2]}.mp4").read_bytes() == video
    # the failed run's log is its own sample's, with the batch's shared start
    log = read_log_lines(bench.output_dir(ids[1]) / "run.log")
    assert any("CUDA out of memory" in line for line in log)
    assert not any("Guardrail blocked generation" in line for line in log)


async def test_a_driver_that_died_while_collecting_leaves_the_whole_log_for_the_next(
    t25_config: Callable[..., Config], bench_for, fake_gpu, tmp_path: Path, monkeypatch
) -> None:
    # the members' logs are already cut into their samples when the first download fails
    # (as if the process died there): the next driver still tells blocked from done
    from cosmos_tui.engine import batch_t25
    from cosmos_tui.engine.batch_launch import BatchLauncher

    fake_gpu.set_variant("1gpu")
    config = slowed(batched(t25_config()))
    bench = await bench_for(config)
    texts = (TEXTS[0], "a crowded square [standin:guardrail]", TEXTS[2])
    runs = await queue_three(bench, tmp_path, texts)
    with dying_queue_driver(config, tmp_path):
        await wait_until_launched(bench, runs)
    container = (await bench.get_run(runs[0].id)).container_id or ""
    assert await bench.hosts.get("testhost").docker.wait(container) == 0

    class Died(Exception):
        pass

    real_download = batch_t25._download

    async def dies(*args, **kwargs):
        raise Died

    monkeypatch.setattr(batch_t25, "_download", dies)
    launcher = BatchLauncher(bench.runs.engine)
    with pytest.raises(Died):
        await launcher.reattach_orphans()
    sliced = read_log_lines(bench.output_dir(runs[2].id) / "run.log")
    assert not any(f"Processing sample {runs[0].id}" in line for line in sliced)

    monkeypatch.setattr(batch_t25, "_download", real_download)
    await launcher.reattach_orphans()
    done = [await bench.get_run(r.id) for r in runs]
    assert [r.state for r in done] == [
        RunState.COMPLETED, RunState.BLOCKED, RunState.COMPLETED
    ], [(r.state, r.failure_message) for r in done]  # fmt: skip
    for index in (0, 2):
        video = (tmp_path / f"v{index}" / "color.mp4").read_bytes()
        assert (bench.output_dir(runs[index].id) / f"{runs[index].id}.mp4").read_bytes() == video
    log = read_log_lines(bench.output_dir(runs[2].id) / "run.log")
    assert sum(f"Processing sample {runs[2].id}" in line for line in log) == 1


async def test_each_member_of_a_batch_sends_its_own_mask_video(
    t25_config: Callable[..., Config], bench_for, fake_gpu, tmp_path: Path
) -> None:
    """Local mask videos go up once each and every sample names its own."""
    import hashlib

    from tests.conftest import write_video

    fake_gpu.set_variant("1gpu")
    bench = await bench_for(batched(t25_config()))
    masks = [write_video(tmp_path / "masks" / f"m{i}.mp4", f"mask {i} ".encode()) for i in (0, 1)]
    runs = []
    for index, mask in enumerate(masks):
        prompt = await bench.create_prompt(TEXTS[index], videos(tmp_path, f"v{index}"))
        hints = [{"hint": "edge", "weight": 0.5, "mask_path": str(mask)}]
        runs.append(await bench.create_run(
            prompt.id, {"profile": "transfer2.5", "num_steps": 3, "options": {"hints": hints}}
        ))  # fmt: skip
    launched: list[Claim] = []
    await drive(bench, launched)
    assert [len(c.run_ids) for c in launched] == [2]
    for run, mask in zip(runs, masks, strict=True):
        done = await bench.get_run(run.id)
        assert done.state == RunState.COMPLETED, done.failure_message
        digest = hashlib.sha256(mask.read_bytes()).hexdigest()
        assert done.spec["edge"]["mask_path"] == f"/cosmos-tui/inputs/{digest}.mp4"


async def test_a_member_whose_own_file_is_gone_fails_alone(
    t25_config: Callable[..., Config], bench_for, fake_gpu, tmp_path: Path
) -> None:
    from tests.conftest import write_video

    fake_gpu.set_variant("1gpu")
    bench = await bench_for(batched(t25_config()))
    masks = [write_video(tmp_path / "masks" / f"m{i}.mp4", f"mask {i} ".encode()) for i in (0, 1)]
    runs = []
    for index, mask in enumerate(masks):
        prompt = await bench.create_prompt(TEXTS[index], videos(tmp_path, f"v{index}"))
        hints = [{"hint": "edge", "weight": 0.5, "mask_path": str(mask)}]
        runs.append(await bench.create_run(
            prompt.id, {"profile": "transfer2.5", "num_steps": 3, "options": {"hints": hints}}
        ))  # fmt: skip
    masks[1].unlink()  # gone from this machine after the run was made
    launched: list[Claim] = []
    await drive(bench, launched)
    first, second = [await bench.get_run(r.id) for r in runs]
    assert first.state == RunState.COMPLETED, first.failure_message
    assert second.state == RunState.FAILED and str(masks[1]) in (second.failure_message or "")
