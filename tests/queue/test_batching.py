from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cosmos_tui.domain import InputFile, Prompt, Run, RunType
from cosmos_tui.engine.batch_outputs import DeadBatch, after_death, batch_size_in
from cosmos_tui.engine.batching import (
    BatchInput,
    BatchLine,
    Candidate,
    SampleFate,
    SampleOutput,
    build_batch_input,
    differences,
    map_outputs,
    plan_groups,
)
from cosmos_tui.engine.profiles.transfer1 import LaunchPaths, build_argv
from cosmos_tui.errors import BatchError
from cosmos_tui.store.repositories import Store

from .conftest import MakePrompt, MakeRun

STANDIN = Path(__file__).parents[2] / "cosmos_tui" / "sandbox" / "cosmos_standin.sh"


def container_path(item: InputFile) -> str:
    return f"inputs/{item.sha256}.mp4"


async def candidates(store: Store, *runs) -> list[Candidate]:
    result = []
    for run in runs:
        fresh = await store.get_run(run.id)
        prompt = await store.get_prompt(run.prompt_id) if run.prompt_id else None
        result.append(Candidate(fresh, prompt))
    return result


async def test_compatible_runs_share_a_container_in_queue_order(
    store: Store, make_run: MakeRun
) -> None:
    a = await make_run(vis_weight=0.1)
    b = await make_run(vis_weight=0.9, depth_weight=0.5)
    c = await make_run(seed=7)
    d = await make_run()
    groups = plan_groups(await candidates(store, a, b, c, d), enabled=True, max_size=8)
    assert [g.run_ids for g in groups] == [(a.id, b.id, d.id), (c.id,)]
    assert groups[0].is_batch and not groups[1].is_batch


async def test_max_size_and_switching_batching_off(store: Store, make_run: MakeRun) -> None:
    runs = [await make_run() for _ in range(5)]
    groups = plan_groups(await candidates(store, *runs), enabled=True, max_size=2)
    assert [len(g.runs) for g in groups] == [2, 2, 1]
    assert [r.id for g in groups for r in g.runs] == [r.id for r in runs]
    off = plan_groups(await candidates(store, *runs), enabled=False, max_size=8)
    assert [len(g.runs) for g in off] == [1] * 5


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_steps", 20),
        ("guidance", 7.0),
        ("seed", 2),
        ("sigma_max", 80.0),
        ("fps", 30),
        ("blur_strength", "high"),
        ("canny_threshold", "low"),
        ("num_gpus", 2),
        ("negative_prompt", "other negative"),
        ("seg_weight", 0.0),
    ],
)
async def test_runs_that_differ_in_a_shared_setting_are_never_batched(
    store: Store, make_run: MakeRun, field: str, value: object
) -> None:
    a = await make_run()
    b = await make_run(**{field: value})
    groups = plan_groups(await candidates(store, a, b))
    assert [g.run_ids for g in groups] == [(a.id,), (b.id,)]
    assert differences(a, b)
    with pytest.raises(BatchError, match="differ in"):
        pa, pb = await store.get_prompt(a.prompt_id), await store.get_prompt(b.prompt_id)
        build_batch_input([(a, pa), (b, pb)], container_path)


async def test_runs_pinned_to_different_places_are_never_batched(
    store: Store, make_run: MakeRun
) -> None:
    a, b, c, d = [await make_run() for _ in range(4)]
    await store.update_run(b.id, target="gpu-a")
    await store.update_run(c.id, target="gpu-b")
    await store.update_run(d.id, target="gpu-a")
    groups = plan_groups(await candidates(store, a, b, c, d), enabled=True, max_size=8)
    assert [g.run_ids for g in groups] == [(a.id,), (b.id, d.id), (c.id,)]
    assert groups[1].target == "gpu-a" and groups[0].target is None


async def test_priority_type_and_same_text_keep_runs_apart(
    store: Store, make_run: MakeRun, make_prompt: MakePrompt
) -> None:
    a = await make_run(priority=1)
    b = await make_run(priority=0)
    up = await make_run(run_type=RunType.UPSCALE)
    up2 = await make_run(run_type=RunType.UPSCALE)
    twin1 = await make_run(await make_prompt("same words"))
    twin2 = await make_run(await make_prompt("same words"))
    groups = plan_groups(await candidates(store, a, b, up, up2, twin1, twin2))
    ids = [g.run_ids for g in groups]
    assert (a.id,) in ids and (up.id,) in ids and (up2.id,) in ids
    together = next(g for g in ids if b.id in g)
    assert twin1.id in together or twin2.id in together
    assert not any(twin1.id in g and twin2.id in g for g in ids)
    p1 = await store.get_prompt(twin1.prompt_id)
    p2 = await store.get_prompt(twin2.prompt_id)
    with pytest.raises(BatchError, match="same prompt text"):
        build_batch_input([(twin1, p1), (twin2, p2)], container_path)


async def test_lines_carry_each_runs_own_controls_and_nothing_is_dropped(
    store: Store, make_run: MakeRun, make_prompt: MakePrompt
) -> None:
    # The first run has precomputed depth and seg; the second has none of them.
    first_prompt = await make_prompt("a street at night", controls=("depth", "seg"))
    second_prompt = await make_prompt("a forest in fog")
    params = {"num_steps": 12, "fps": 16, "sigma_max": 60.0, "guidance": 6.5, "seed": 99}
    a = await make_run(first_prompt, vis_weight=0.1, edge_weight=0.2, depth_weight=0.3, **params)
    b = await make_run(second_prompt, vis_weight=0.7, edge_weight=0.0, depth_weight=0.9, **params)
    # edge on for a, off for b: different active sets, not one batch.
    assert "active controls" in differences(a, b)
    b = await make_run(second_prompt, vis_weight=0.7, edge_weight=0.05, depth_weight=0.9, **params)
    batch = build_batch_input([(a, first_prompt), (b, second_prompt)], container_path)
    lines = [json.loads(text) for text in batch.jsonl().splitlines()]
    assert batch.jsonl().endswith("\n") and "" not in batch.jsonl().splitlines()
    assert [line["prompt"] for line in lines] == ["a street at night", "a forest in fog"]
    assert lines[0]["visual_input"] == container_path(first_prompt.input("color"))
    assert lines[1]["visual_input"] == container_path(second_prompt.input("color"))
    assert lines[0]["control_overrides"] == {
        "vis": {"control_weight": 0.1, "input_control": None},
        "edge": {"control_weight": 0.2, "input_control": None},
        "depth": {
            "control_weight": 0.3,
            "input_control": container_path(first_prompt.input("depth")),
        },
        "seg": {"control_weight": 0.25, "input_control": container_path(first_prompt.input("seg"))},
    }
    # The second run never inherits the first run's depth or seg videos.
    assert lines[1]["control_overrides"] == {
        "vis": {"control_weight": 0.7, "input_control": None},
        "edge": {"control_weight": 0.05, "input_control": None},
        "depth": {"control_weight": 0.9, "input_control": None},
        "seg": {"control_weight": 0.25, "input_control": None},
    }
    # Shared scalars and the negative prompt are in the spec and on the command line.
    spec = batch.spec
    assert {k: spec[k] for k in params} == params
    assert spec["negative_prompt"] == "ugly"
    argv = build_argv(a.params, LaunchPaths("spec.json", "out", batch_input_path="b.jsonl"))
    for flag, value in [("--num_steps", "12"), ("--fps", "16"), ("--sigma_max", "60.0"),
                        ("--seed", "99"), ("--batch_input_path", "b.jsonl")]:  # fmt: skip
        assert argv[argv.index(flag) + 1] == value
    assert "--negative_prompt=ugly" in argv  # one item: a text may start with "-"
    assert batch.run_ids == (a.id, b.id)
    assert batch.manifest()["lines"][1] == {"run_id": b.id, "prompt": "a forest in fog"}


async def test_only_transfer_runs_build_a_transfer_batch(store: Store, make_run: MakeRun) -> None:
    up = await make_run(run_type=RunType.UPSCALE)
    with pytest.raises(BatchError, match="not a transfer"):
        build_batch_input([(up, await store.get_prompt(up.prompt_id))], container_path)
    with pytest.raises(BatchError, match="at least one"):
        build_batch_input([], container_path)


def lines_of(*texts: str) -> list[BatchLine]:
    return [BatchLine(f"rs_{i}", t, f"in{i}.mp4") for i, t in enumerate(texts)]


def test_outputs_map_by_name_when_the_guardrail_drops_a_line() -> None:
    lines = lines_of("one", "two", "three", "four")
    samples = [SampleOutput("video_2", "four\n"), SampleOutput("video_0", "one"),
               SampleOutput("video_1", "three")]  # fmt: skip
    outcome = map_outputs(lines, samples)
    assert outcome.folders == {"rs_0": "video_0", "rs_2": "video_1", "rs_3": "video_2"}
    assert outcome.fates["rs_1"] == SampleFate.BLOCKED
    assert outcome.unmatched_folders == ()


def test_unreadable_prompts_use_position_only_when_nothing_was_dropped() -> None:
    lines = lines_of("one", "two", "three")
    full = [SampleOutput("video_0", "one"), SampleOutput("video_1", None),
            SampleOutput("video_2", "three")]  # fmt: skip
    outcome = map_outputs(lines, full)
    assert outcome.folders == {"rs_0": "video_0", "rs_1": "video_1", "rs_2": "video_2"}
    dropped = [SampleOutput("video_0", "one"), SampleOutput("video_1", None)]
    outcome = map_outputs(lines, dropped)
    assert outcome.folders == {"rs_0": "video_0"}
    assert outcome.fates["rs_1"] == SampleFate.UNKNOWN
    assert outcome.fates["rs_2"] == SampleFate.UNKNOWN
    assert outcome.unmatched_folders == ("video_1",)


def test_folders_that_match_no_line_are_never_given_to_a_run() -> None:
    lines = lines_of("one", "two")
    samples = [SampleOutput("video_0", "one"), SampleOutput("video_1", "someone else"),
               SampleOutput("notes", "two"), SampleOutput("video_10", "two")]  # fmt: skip
    outcome = map_outputs(lines, samples)
    assert outcome.folders == {"rs_0": "video_0", "rs_1": "video_10"}
    assert outcome.unmatched_folders == ("video_1",)


FOUR = ("a calm lake", "a busy market [standin:guardrail]", "a desert road", "snow")
Members = list[tuple[Run, Prompt]]


async def stand_in_batch(
    tmp_path: Path, make_run: MakeRun, make_prompt: MakePrompt, *extra: str,
    texts: tuple[str, ...] = FOUR,
) -> tuple[Members, BatchInput, subprocess.CompletedProcess, list[SampleOutput]]:  # fmt: skip
    """Run the stand-in on a batch (by default of four whose second prompt is blocked)."""
    members = []
    for text in texts:
        prompt = await make_prompt(text)
        run = await make_run(prompt)
        members.append((run, prompt))
    workdir = tmp_path / "work"
    (workdir / "inputs").mkdir(parents=True)
    for _run, prompt in members:
        item = prompt.input("color")
        (workdir / container_path(item)).write_bytes(
            b"\x00\x00\x00\x18ftypmp42" + item.sha256.encode()
        )
    batch = build_batch_input(members, container_path)
    (workdir / "spec.json").write_text(json.dumps(batch.spec))
    (workdir / "batch.jsonl").write_text(batch.jsonl())
    argv = build_argv(
        members[0][0].params, LaunchPaths("spec.json", "out", batch_input_path="batch.jsonl")
    )
    script = workdir / "cosmos_transfer1" / "diffusion" / "inference" / "transfer.py"
    script.parent.mkdir(parents=True)  # the checkout the container runs in
    script.write_text("# upstream's transfer.py\n")
    env = dict(os.environ, COSMOS_STANDIN_SPEED="0", PYTHONPATH=str(workdir))
    done = subprocess.run(["sh", str(STANDIN), *argv, *extra], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    samples = []
    for d in (workdir / "out").iterdir():
        saved = d / "prompt.txt"
        finished = saved.exists() and (d / "output.mp4").exists()
        samples.append(SampleOutput(d.name, saved.read_text() if finished else None, finished))
    for run, prompt in members:  # each finished folder holds a copy of its own input video
        for sample in samples:
            if sample.prompt_text == prompt.text:
                video = (workdir / "out" / sample.folder / "output.mp4").read_bytes()
                assert video.endswith(prompt.input("color").sha256.encode()), run.id
    return members, batch, done, samples


async def test_with_a_larger_batch_size_a_blocked_line_shifts_and_names_still_map(
    tmp_path: Path, make_run: MakeRun, make_prompt: MakePrompt
) -> None:
    members, batch, done, samples = await stand_in_batch(
        tmp_path, make_run, make_prompt, "--batch_size", "4"
    )
    assert done.returncode == 0, done.stderr
    assert "GUARDRAIL BLOCKED" in done.stdout
    assert sorted(s.folder for s in samples) == ["video_0", "video_1", "video_2", "video_3"]
    outcome = map_outputs(batch.lines, samples)
    ids = [run.id for run, _ in members]
    assert outcome.fates[ids[1]] == SampleFate.BLOCKED
    assert outcome.folders == {ids[0]: "video_0", ids[2]: "video_1", ids[3]: "video_2"}
    assert outcome.unfinished_folders == ("video_3",)


async def test_with_batch_size_1_the_model_dies_on_the_blocked_line(
    tmp_path: Path, make_run: MakeRun, make_prompt: MakePrompt
) -> None:
    members, batch, done, samples = await stand_in_batch(tmp_path, make_run, make_prompt)
    assert done.returncode == 1 and "GUARDRAIL BLOCKED" in done.stdout
    ids = [run.id for run, _ in members]
    outcome = map_outputs(batch.lines, samples)
    assert outcome.folders == {ids[0]: "video_0"}
    dead = after_death(batch.lines, samples, outcome)
    assert dead == DeadBatch(started=True, culprits=(ids[1],), not_started=(ids[2], ids[3]))


async def test_with_a_larger_batch_size_the_dying_chunk_shares_the_cause(
    tmp_path: Path, make_run: MakeRun, make_prompt: MakePrompt
) -> None:
    texts = ("a calm lake", "a busy market [standin:guardrail]", "a desert road [standin:oom]",
             "snow", "a quiet pier")  # fmt: skip
    extra = ("--batch_size", "2")
    members, batch, done, samples = await stand_in_batch(
        tmp_path, make_run, make_prompt, *extra, texts=texts
    )
    assert done.returncode == 1 and "CUDA out of memory" in done.stderr
    ids = [run.id for run, _ in members]
    outcome = map_outputs(batch.lines, samples)
    assert outcome.folders == {ids[0]: "video_0"}
    dead = after_death(batch.lines, samples, outcome, batch_size_in(extra))
    assert dead == DeadBatch(started=True, culprits=(ids[2], ids[3]), not_started=(ids[4],),
                             dropped=(ids[1],))  # fmt: skip


async def test_batches_split_in_halves_to_keep_free_gpus_busy(
    store: Store, make_run: MakeRun
) -> None:
    runs = [await make_run() for _ in range(6)]
    found = await candidates(store, *runs)
    assert [len(g.runs) for g in plan_groups(found, max_size=8)] == [6]
    split = plan_groups(found, max_size=8, free_gpus=3)
    assert sorted(len(g.runs) for g in split) == [1, 2, 3]
    assert [r.id for g in split for r in g.runs] == [r.id for r in runs]
    assert [len(g.runs) for g in plan_groups(found, max_size=8, free_gpus=100)] == [1] * 6
    assert [len(g.runs) for g in plan_groups(found, max_size=8, free_gpus=1)] == [6]


def test_a_log_slice_keeps_shared_lines_and_drops_other_samples() -> None:
    from cosmos_tui.engine.batching import slice_log

    log = [
        "[x|INFO|t.py:1:demo] Running guardrail checks on all prompts",
        "[x|INFO|t.py:2:demo] Saved video to /out/video_0/output.mp4",
        "[x|INFO|t.py:3:demo] Saved video to /out/video_1/output.mp4",
        "[x|INFO|t.py:4:demo] Saved video to /out/video_10/output.mp4",
    ]
    folders = ["video_0", "video_1", "video_10"]
    mine = slice_log(log, "rs_a", "bs_1", 1, 3, "video_1", folders)
    assert mine[0] == "[cosmos-tui] run rs_a: line 2 of 3 of batch bs_1, output video_1"
    assert mine[1:] == [log[0], log[2]]
    dropped = slice_log(log, "rs_b", "bs_1", 2, 3, None, folders)
    assert dropped[0].endswith("no output") and dropped[1:] == [log[0]]


async def test_batches_of_one_key_are_evened_out(store: Store, make_run: MakeRun) -> None:
    runs = [await make_run() for _ in range(12)]
    found = await candidates(store, *runs)
    # Only when every container can start now (two GPUs free for two batches).
    assert [len(g.runs) for g in plan_groups(found, max_size=8)] == [8, 4]
    groups = plan_groups(found, max_size=8, free_gpus=2)
    assert [len(g.runs) for g in groups] == [6, 6]
    assert [r.id for g in groups for r in g.runs] == [r.id for r in runs]
    odd = plan_groups(found[:10], max_size=4, free_gpus=3)
    assert [len(g.runs) for g in odd] == [4, 3, 3]
    assert [len(g.runs) for g in plan_groups(found, max_size=8, free_gpus=1)] == [8, 4]
