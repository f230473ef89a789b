"""A batch reproduces exactly what each of its runs asked for (COSMOS.md section 3).

Each member's effective spec is rebuilt the way Transfer1 reads a batch: the shared spec,
with the line's ``prompt`` and ``visual_input`` and each ``control_overrides`` hint merged
over the spec's hint (``"input_control": null`` means computed by the model). It must equal
the spec the run would get alone, and the shared command line must equal the run's own.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

from cosmos_tui.domain import CONTROL_HINTS, GenerationParams, InputFile, Prompt, Run
from cosmos_tui.engine.batching import BatchInput, Candidate, build_batch_input, plan_groups
from cosmos_tui.engine.profiles.transfer1 import LaunchPaths, build_argv, build_spec
from cosmos_tui.errors import BatchError
from cosmos_tui.store.repositories import Store

PATHS = LaunchPaths("spec.json", "out", batch_input_path="batch.jsonl")


def container_path(item: InputFile) -> str:
    return f"inputs/{item.sha256}.mp4"


def alone_spec(run: Run, prompt: Prompt) -> dict[str, Any]:
    """The spec the run gets when launched by itself."""
    video = prompt.input("color")
    controls = {
        h: container_path(item) for h in CONTROL_HINTS if (item := prompt.input(h)) is not None
    }
    return build_spec(prompt.text, run.params, container_path(video) if video else None, controls)


def as_transfer1_reads_it(spec: dict[str, Any], line: dict[str, Any]) -> dict[str, Any]:
    """Merge one JSONL line over the shared spec as Transfer1's batch mode does."""
    effective = copy.deepcopy(spec)
    assert set(line) <= {"prompt", "visual_input", "control_overrides"}, line
    effective["prompt"] = line["prompt"]
    if "visual_input" in line:
        effective["input_video_path"] = line["visual_input"]
    for hint, override in line.get("control_overrides", {}).items():
        # Overrides can only change hints that the spec already has.
        assert hint in spec, f"override of {hint}, which the shared spec does not have"
        merged = {**effective[hint], **override}
        if merged.get("input_control") is None:
            merged.pop("input_control", None)
        effective[hint] = merged
    return effective


def check_exact(batch: BatchInput, members: list[tuple[Run, Prompt]]) -> None:
    text = batch.jsonl()
    assert text.endswith("\n") and "\n\n" not in text and not text.startswith("\n")
    lines = [json.loads(raw) for raw in text.splitlines()]
    assert len(lines) == len(members)
    assert batch.run_ids == tuple(run.id for run, _ in members)
    shared_argv = build_argv(members[0][0].params, PATHS)
    for (run, prompt), line in zip(members, lines, strict=True):
        assert as_transfer1_reads_it(batch.spec, line) == alone_spec(run, prompt), run.id
        assert build_argv(run.params, PATHS) == shared_argv, run.id


VALUES: dict[str, list[Any]] = {
    "num_steps": [35, 12],
    "guidance": [5.0, 7.5],
    "seed": [1, 2],
    "sigma_max": [70.0, 80.0],
    "fps": [24, 16],
    "blur_strength": ["medium", "high"],
    "canny_threshold": ["medium", "low"],
    "num_gpus": [1, 2],
    "negative_prompt": [None, "blurry"],
}


async def random_members(store: Store, rng: random.Random, count: int) -> list[Candidate]:
    found = []
    for n in range(count):
        has_video = rng.random() < 0.8
        roles = [h for h in CONTROL_HINTS if rng.random() < 0.4] if has_video else CONTROL_HINTS
        inputs = [
            InputFile(role, Path(f"/v/{n}/{role}.mp4"), f"{n:060x}{role:>4}", 10)
            for role in (["color"] if has_video else []) + list(roles)
        ]
        prompt = await store.add_prompt(f"prompt {n}", inputs, video_dir=Path(f"/v/{n}"))
        # Few distinct values, so that many runs share a key and form batches.
        scalars = {name: rng.choice(options[:1] * 3 + options[1:]) for name, options in
                   VALUES.items()}  # fmt: skip
        if not has_video:
            scalars["sigma_max"] = 80.0
        weights = {f"{h}_weight": rng.choice([0.0, 0.1, 0.25, 0.5, 1.0]) for h in CONTROL_HINTS}
        if all(w == 0 for w in weights.values()):
            weights["vis_weight"] = 0.3
        params = GenerationParams(**scalars, **weights)
        run = await store.add_run(prompt.id, params)
        found.append(Candidate(await store.get_run(run.id), prompt))
    return found


@pytest.mark.parametrize("seed", range(6))
async def test_every_batch_line_reproduces_its_runs_own_spec(store: Store, seed: int) -> None:
    rng = random.Random(seed)
    candidates = await random_members(store, rng, 60)
    groups = plan_groups(candidates, enabled=True, max_size=8)
    by_id = {c.run.id: c for c in candidates}
    batches = [g for g in groups if g.is_batch]
    assert batches, "the workload must form batches"
    for group in batches:
        members = [(by_id[r.id].run, by_id[r.id].prompt) for r in group.runs]
        check_exact(build_batch_input(members, container_path), members)


async def test_runs_with_and_without_an_input_video_never_share_a_batch(
    store: Store,
) -> None:
    # Without an input video every active control needs its own video; with one they are
    # computed. A line without visual_input would otherwise inherit the first run's video.
    controls = [InputFile(h, Path(f"/c/{h}.mp4"), f"{h:>64}", 10) for h in CONTROL_HINTS]
    video = InputFile("color", Path("/c/color.mp4"), "c" * 64, 10)
    with_video = await store.add_prompt("with a video", [video, *controls], video_dir=Path("/c"))
    without = await store.add_prompt("controls only", controls, video_dir=Path("/c"))
    params = GenerationParams(sigma_max=80.0)
    a = await store.add_run(with_video.id, params)
    b = await store.add_run(without.id, params)
    groups = plan_groups([Candidate(a, with_video), Candidate(b, without)])
    assert [g.run_ids for g in groups] == [(a.id,), (b.id,)]
    for members in ([(a, with_video), (b, without)], [(b, without), (a, with_video)]):
        with pytest.raises(BatchError, match="input video"):
            build_batch_input(members, container_path)
