"""Cosmos 3 batches on the real sshd and dockerd, with the Cosmos 3 double.

Queued Cosmos 3 runs that agree on the setup (checkpoint, parallelism preset, GPU count,
guardrails) start in one container: one sample file per run given to ``-i`` (upstream
loads the model once and runs the files' samples in path order, script.py:21-28,
common.py:1090-1098), each named by its run id, with ``--keep-going`` so a handled error
(a blocked prompt) ends only its own sample (common/inference.py:262-266). What the
process left decides each member's end (docs/cosmos.md, "Cosmos 3 batches"): a
``sample_outputs.json`` completes it with its own folder; ``Error generating sample
'<run id>'`` ends it blocked (the guardrail) or failed; an unhandled error (an OOM)
ends the process, so the sample with ``sample_args.json`` and no outputs fails with the
cause and samples never started go back in the queue; a failure before any sample
(the gated download) is every member's.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from cosmos_tui.config import Config
from cosmos_tui.domain import FailureKind, RunState
from cosmos_tui.engine.logs import read_log_lines
from cosmos_tui.store.queue_store import Claim
from tests.queue.test_queue_real import drive, dying_queue_driver, videos, wait_until_launched
from tests.queue.test_transfer25_batch_real import batched, slowed

TEXTS = ("a quiet harbour at dawn", "a crowded square at noon", "a snowy pass at dusk")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def queue_three(bench, tmp_path: Path, texts=TEXTS, video: tuple[bool, ...] = (True,) * 3):
    """Queue one Cosmos 3 run per text, each with its own mode, seed and sampling."""
    runs = []
    for index, text in enumerate(texts):
        folder = videos(tmp_path, f"v{index}") if video[index] else None
        prompt = await bench.create_prompt(text, folder)
        options = {"num_steps": 3 + index, "guidance": 2.5 + index}
        if folder is not None:
            options["hints"] = {"edge": {"weight": 0.3 + index / 10}}
        runs.append(await bench.create_run(
            prompt.id, {"profile": "cosmos3", "seed": 10 + index, "options": options},
        ))  # fmt: skip
    return runs


async def test_runs_share_one_container_and_each_keeps_its_outputs(
    cosmos3_config: Callable[..., Config], bench_for, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(batched(cosmos3_config()))
    # a text2video run batches with video2video ones: the model comes from the setup
    runs = await queue_three(bench, tmp_path, video=(True, False, True))
    ids = [r.id for r in runs]
    launched: list[Claim] = []
    await drive(bench, launched)
    assert [c.run_ids for c in launched] == [tuple(ids)]
    done = [await bench.get_run(run_id) for run_id in ids]
    assert [r.state for r in done] == [RunState.COMPLETED] * 3, [r.failure_message for r in done]
    assert len({r.container_id for r in done}) == 1 and done[0].batch_id == launched[0].batch_id
    for index, run in enumerate(done):
        out = bench.output_dir(run.id)
        assert run.spec["name"] == run.id and run.spec["seed"] == 10 + index
        assert (run.spec["num_steps"], run.spec["guidance"]) == (3 + index, 2.5 + index)
        assert f"{run.id}/vision.mp4" in run.outputs and "run.log" in run.outputs
        assert run.progress is not None and run.progress.percent == 100.0
        others = [i for i in ids if i != run.id]
        assert not any(o in name for o in others for name in run.outputs), run.outputs
        log = read_log_lines(out / "run.log")
        assert any(f"output/{run.id}/sample_outputs.json" in line for line in log)
        assert not any(f"output/{o}/" in line for o in others for line in log)
    assert done[1].spec["model_mode"] == "text2video"
    for index in (0, 2):
        own = tmp_path / f"v{index}" / "color.mp4"
        assert sha(bench.output_dir(ids[index]) / ids[index] / "vision.mp4") == sha(own)


async def test_runs_of_another_setup_get_their_own_container(
    cosmos3_config: Callable[..., Config], bench_for, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(batched(cosmos3_config()))
    first = await bench.create_prompt(TEXTS[0], videos(tmp_path, "a"))
    second = await bench.create_prompt(TEXTS[1], videos(tmp_path, "b"))
    nano = await bench.create_run(first.id, {"profile": "cosmos3", "options": {"num_steps": 3}})
    edge = await bench.create_run(
        second.id, {"profile": "cosmos3", "options": {"num_steps": 3, "checkpoint": "Cosmos3-Edge"}}
    )
    launched: list[Claim] = []
    await drive(bench, launched)
    assert sorted(c.run_ids for c in launched) == sorted([(nano.id,), (edge.id,)])
    assert all(c.batch_id is None for c in launched)
    for run in (nano, edge):
        done = await bench.get_run(run.id)
        assert done.state == RunState.COMPLETED, done.failure_message


async def test_a_blocked_prompt_ends_only_its_own_run(
    cosmos3_config: Callable[..., Config], bench_for, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(batched(cosmos3_config()))
    # text2video samples: the prompt guardrail runs when the video is saved (I:1758-1762)
    texts = (TEXTS[0], "a crowded square [standin:guardrail]", TEXTS[2])
    runs = await queue_three(bench, tmp_path, texts, video=(False, False, False))
    launched: list[Claim] = []
    await drive(bench, launched)
    assert len(launched) == 1  # --keep-going: the process went on past the blocked sample
    done = [await bench.get_run(r.id) for r in runs]
    assert [r.state for r in done] == [RunState.COMPLETED, RunState.BLOCKED, RunState.COMPLETED], [
        r.failure_message for r in done
    ]
    assert done[1].failure_kind == FailureKind.GUARDRAIL
    assert "Guardrail blocked prompt" in (done[1].failure_message or "")
    assert not (bench.output_dir(runs[1].id) / runs[1].id / "vision.mp4").exists()
    assert (bench.output_dir(runs[2].id) / runs[2].id / "vision.mp4").is_file()


async def test_the_sample_it_died_in_fails_and_the_rest_run_again(
    cosmos3_config: Callable[..., Config], bench_for, fake_gpu, tmp_path: Path
) -> None:
    # sample 1 completes, sample 2 dies of OOM (not a handled error: the process ends),
    # sample 3 never starts: it goes back in the queue and completes in a second container
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(batched(cosmos3_config()))
    texts = (TEXTS[0], "a crowded square [standin:oom]", TEXTS[2])
    runs = await queue_three(bench, tmp_path, texts)
    ids = [r.id for r in runs]
    launched: list[Claim] = []
    await drive(bench, launched)
    assert [c.run_ids for c in launched] == [tuple(ids), (ids[2],)]
    done = [await bench.get_run(run_id) for run_id in ids]
    assert [r.state for r in done] == [RunState.COMPLETED, RunState.FAILED, RunState.COMPLETED]
    assert done[1].failure_kind == FailureKind.GPU_OOM, done[1].failure_message
    requeued = [e for e in done[2].events if e.to_state == RunState.QUEUED and e.from_state]
    assert len(requeued) == 1 and f"died on run {ids[1]}" in requeued[0].reason
    assert done[2].failure_kind is None
    log = read_log_lines(bench.output_dir(ids[1]) / "run.log")
    assert any("CUDA out of memory" in line for line in log)


async def test_a_failure_before_any_sample_is_every_members(
    cosmos3_config: Callable[..., Config], bench_for, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(batched(cosmos3_config("gated")))
    runs = await queue_three(bench, tmp_path)
    launched: list[Claim] = []
    await drive(bench, launched)
    assert len(launched) == 1
    done = [await bench.get_run(r.id) for r in runs]
    assert [r.state for r in done] == [RunState.FAILED] * 3
    assert [r.failure_kind for r in done] == [FailureKind.DOWNLOAD] * 3


async def test_a_batch_whose_driver_died_is_settled_by_the_next_driver(
    cosmos3_config: Callable[..., Config], bench_for, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("1gpu")
    config = slowed(batched(cosmos3_config()), speed="2")
    bench = await bench_for(config)
    texts = (TEXTS[0], "a crowded square [standin:guardrail]", TEXTS[2])
    runs = await queue_three(bench, tmp_path, texts, video=(False, False, False))
    with dying_queue_driver(config, tmp_path):
        await wait_until_launched(bench, runs)
    # the container goes on with nobody following it; the next driver reattaches
    await asyncio.wait_for(bench.queue.drive(until_idle=True), 120)
    done = [await bench.get_run(r.id) for r in runs]
    assert [r.state for r in done] == [
        RunState.COMPLETED, RunState.BLOCKED, RunState.COMPLETED
    ], [(r.state, r.failure_message) for r in done]  # fmt: skip
    assert len({r.container_id for r in done}) == 1


async def test_a_prompt_file_a_member_does_not_send_cannot_sink_the_batch(
    cosmos3_config: Callable[..., Config], bench_for, fake_gpu, tmp_path: Path
) -> None:
    # an edge-only video2video member never sends its prompt's depth.mp4: one deleted
    # since is no matter, for it or for the batch
    from tests.conftest import write_video

    fake_gpu.set_variant("1gpu")
    bench = await bench_for(batched(cosmos3_config()))
    folder = videos(tmp_path, "v0")
    write_video(folder / "depth.mp4", b"a depth pass nobody uses ")
    prompt = await bench.create_prompt(TEXTS[0], folder)
    text = await bench.create_prompt(TEXTS[1], None)
    edge = {"num_steps": 3, "hints": {"edge": {"weight": 0.5}}}
    runs = [
        await bench.create_run(prompt.id, {"profile": "cosmos3", "options": edge}),
        await bench.create_run(text.id, {"profile": "cosmos3", "options": {"num_steps": 3}}),
    ]
    (folder / "depth.mp4").unlink()
    launched: list[Claim] = []
    await drive(bench, launched)
    assert [len(c.run_ids) for c in launched] == [2]
    for run in runs:
        done = await bench.get_run(run.id)
        assert done.state == RunState.COMPLETED, done.failure_message


async def test_an_input_that_cannot_be_read_fails_its_run_and_the_rest_run_again(
    cosmos3_config: Callable[..., Config], bench_for, fake_gpu, tmp_path: Path
) -> None:
    # the second sample's data cannot be prepared (it is prepared just before it runs,
    # I:1471-1479): the process dies with no sample mid-run; the first completed, the
    # second is the one it died on, the third goes back in the queue and completes
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(batched(cosmos3_config()))
    texts = (TEXTS[0], "a crowded square [standin:badinput]", TEXTS[2])
    runs = await queue_three(bench, tmp_path, texts)
    ids = [r.id for r in runs]
    launched: list[Claim] = []
    await drive(bench, launched)
    assert [c.run_ids for c in launched] == [tuple(ids), (ids[2],)]
    done = [await bench.get_run(run_id) for run_id in ids]
    assert [r.state for r in done] == [RunState.COMPLETED, RunState.FAILED, RunState.COMPLETED]
    assert "Invalid data found when processing input" in (done[1].failure_message or "")
    requeued = [e for e in done[2].events if e.to_state == RunState.QUEUED and e.from_state]
    assert len(requeued) == 1 and f"died on run {ids[1]}" in requeued[0].reason


async def test_a_sample_file_upstream_refuses_fails_only_its_run(
    cosmos3_config: Callable[..., Config], bench_for, fake_gpu, tmp_path: Path, monkeypatch
) -> None:
    # every file is validated before any sample runs (CA:1065-1070); the refusal names
    # the file, so only its run fails and the others run again without it
    from cosmos_tui.engine import batch_c3

    fake_gpu.set_variant("1gpu")
    bench = await bench_for(batched(cosmos3_config()))
    runs = await queue_three(bench, tmp_path)
    ids = [r.id for r in runs]
    build = batch_c3.build_samples

    def with_one_bad(members, container_path):  # a value our checks let through
        samples = build(members, container_path)
        if len(samples) == 3:
            bad = batch_c3.Sample(samples[1].run_id, samples[1].prompt,
                                  {**samples[1].sample, "colour": "red"})  # fmt: skip
            samples[1] = bad
        return samples

    monkeypatch.setattr(batch_c3, "build_samples", with_one_bad)
    launched: list[Claim] = []
    await drive(bench, launched)
    assert [c.run_ids for c in launched] == [tuple(ids), (ids[0], ids[2])]
    done = [await bench.get_run(run_id) for run_id in ids]
    assert [r.state for r in done] == [RunState.COMPLETED, RunState.FAILED, RunState.COMPLETED]
    assert "Extra inputs are not permitted" in (done[1].failure_message or "")


@pytest.mark.parametrize(
    ("first", "first_ends"),
    [
        ("a quiet harbour [standin:badinput]", None),  # the very first sample
        ("a quiet harbour [standin:guardrail]", RunState.BLOCKED),  # after a blocked one
    ],
)
async def test_an_unreadable_input_sinks_no_other_run_wherever_it_is(
    cosmos3_config: Callable[..., Config], bench_for, fake_gpu, tmp_path: Path, first, first_ends
) -> None:
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(batched(cosmos3_config()))
    if first_ends is None:
        texts = (first, TEXTS[1], TEXTS[2])
        bad = 0
    else:
        texts = (first, "a crowded square [standin:badinput]", TEXTS[2])
        bad = 1
    runs = await queue_three(bench, tmp_path, texts, video=(False, False, False))
    ids = [r.id for r in runs]
    launched: list[Claim] = []
    await drive(bench, launched)
    assert launched[0].run_ids == tuple(ids) and len(launched) == 2
    done = [await bench.get_run(run_id) for run_id in ids]
    assert done[bad].state == RunState.FAILED
    assert "Invalid data found when processing input" in (done[bad].failure_message or "")
    assert done[2].state == RunState.COMPLETED, done[2].failure_message
    if first_ends is not None:
        assert done[0].state == first_ends
    else:
        assert done[1].state == RunState.COMPLETED, done[1].failure_message


async def test_members_of_a_batch_whose_gpu_kernels_failed_complete_with_a_warning(
    cosmos3_config: Callable[..., Config], bench_for, fake_gpu, tmp_path: Path
) -> None:
    # cosmos-framework#42 (see tests/lifecycle/test_cosmos3_lifecycle.py): each member's
    # completion says what the shared log warned
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(batched(cosmos3_config("cutlass")))
    runs = await queue_three(bench, tmp_path)
    launched: list[Claim] = []
    await drive(bench, launched)
    assert [len(c.runs) for c in launched] == [3]
    for run in runs:
        done = await bench.get_run(run.id)
        assert done.state == RunState.COMPLETED, done.failure_message
        said = done.events[-1].reason
        assert "output file(s) from" in said and "CUTLASS kernel" in said, said
