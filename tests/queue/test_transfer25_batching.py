"""Which Transfer2.5 runs share one container, and the JSONL they share it through.

Upstream reads a ``.jsonl`` given to ``-i`` as one sample per line, each validated on its
own (config.py:353-378 at 2ff49d07) and named by its ``name`` (outputs ``<name>.mp4``,
inference.py:185-343); only the setup arguments are one command line for all samples
(config.py:213-305). So runs batch whenever those agree, whatever their per-sample
settings, and even with the same prompt text (outputs are told apart by name).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cosmos_tui.config import Config
from cosmos_tui.domain import GenerationParams, Prompt, Run
from cosmos_tui.engine.batch_launch import batch_command
from cosmos_tui.engine.batching import build_batch_input, differences, plan_groups
from cosmos_tui.engine.profiles.transfer25_profile import Transfer25Profile
from cosmos_tui.errors import BatchError
from cosmos_tui.store.repositories import Store

from .conftest import MakePrompt
from .test_batching import candidates, container_path

EDGE = [{"hint": "edge", "weight": 0.5}]
DEPTH_EDGE = [{"hint": "depth", "weight": 0.9}, {"hint": "edge", "weight": 0.2}]


async def t25_run(
    store: Store, prompt: Prompt, seed: int = 1, num_gpus: int = 1, num_steps: int = 35,
    **options: Any,
) -> Run:  # fmt: skip
    """A queued Transfer2.5 run, checked by the profile as `cosmos create run` does."""
    options.setdefault("hints", EDGE)
    params = GenerationParams(seed=seed, num_gpus=num_gpus, num_steps=num_steps, options=options)  # type: ignore[call-arg]
    checked = Transfer25Profile().check(params, prompt)
    return await store.add_run(prompt.id, checked, profile="transfer2.5")


async def test_runs_with_different_sample_settings_share_one_container(
    store: Store, make_prompt: MakePrompt
) -> None:
    a = await t25_run(store, await make_prompt("a wet street"), seed=1, hints=DEPTH_EDGE)
    b = await t25_run(
        store, await make_prompt("a dry street"), seed=7, guidance=5, negative_prompt="dull",
        hints=[{"hint": "edge", "weight": 0.1}, {"hint": "depth", "weight": 0.3}],
    )  # fmt: skip
    c = await t25_run(store, await make_prompt("a snowy street"), seed=9, resolution="480",
                      num_steps=20, hints=DEPTH_EDGE)  # fmt: skip
    groups = plan_groups(await candidates(store, a, b, c))
    assert [g.run_ids for g in groups] == [(a.id, b.id, c.id)]
    assert differences(a, b) == [] and differences(a, c) == []


async def test_the_batch_file_holds_each_runs_own_sample(
    store: Store, make_prompt: MakePrompt
) -> None:
    pa, pb = await make_prompt("a wet street"), await make_prompt("a dry street", ("depth",))
    a_hints = [{"hint": "edge", "weight": 0.5}, {"hint": "depth", "weight": 0.4}]
    a = await t25_run(store, pa, seed=1, hints=a_hints)
    b = await t25_run(store, pb, seed=7, guidance=5, negative_prompt="blurry", hints=DEPTH_EDGE)
    batch = build_batch_input([(a, pa), (b, pb)], container_path)
    lines = [json.loads(text) for text in batch.jsonl().splitlines()]
    assert [line["name"] for line in lines] == [a.id, b.id]
    assert [line["prompt"] for line in lines] == ["a wet street", "a dry street"]
    assert [line["seed"] for line in lines] == [1, 7]
    assert [line["guidance"] for line in lines] == [3, 5]
    assert lines[0]["video_path"] == container_path(pa.input("color"))
    assert lines[1]["video_path"] == container_path(pb.input("color"))
    # each line names only its own controls, with its own weights and control videos
    assert lines[0]["edge"]["control_weight"] == 0.5 and "control_path" not in lines[0]["edge"]
    # a's prompt has no depth video: the model computes it; b's own video is never a's
    assert lines[0]["depth"]["control_weight"] == 0.4
    assert "control_path" not in lines[0]["depth"]
    assert lines[1]["depth"]["control_weight"] == 0.9
    assert lines[1]["depth"]["control_path"] == container_path(pb.input("depth"))
    assert lines[1]["edge"]["control_weight"] == 0.2 and "control_path" not in lines[1]["edge"]
    assert lines[1]["negative_prompt"] == "blurry" and "negative_prompt" not in lines[0]
    # every member records its own sample as its spec
    assert batch.spec_for(a.id) == lines[0] and batch.spec_for(b.id) == lines[1]
    assert batch.manifest()["lines"][1] == {"run_id": b.id, "prompt": "a dry street"}


async def test_the_same_prompt_text_batches_because_outputs_go_by_name(
    store: Store, make_prompt: MakePrompt
) -> None:
    # a seed sweep of one prompt: Transfer1 keeps these apart, Transfer2.5 need not
    prompt = await make_prompt("one street, three seeds")
    runs = [await t25_run(store, prompt, seed=s) for s in (1, 2, 3)]
    groups = plan_groups(await candidates(store, *runs))
    assert [g.run_ids for g in groups] == [tuple(r.id for r in runs)]
    batch = build_batch_input([(r, prompt) for r in runs], container_path)
    assert [json.loads(t)["seed"] for t in batch.jsonl().splitlines()] == [1, 2, 3]


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("controls", {"hints": DEPTH_EDGE}),
        ("controls", {"hints": [{"hint": "vis", "weight": 0.5}]}),
        ("num_gpus", {"num_gpus": 2}),
        ("distilled", {"distilled": True, "num_steps": 4}),
        ("disable_guardrails", {"disable_guardrails": True}),
        ("offload_guardrail_models", {"offload_guardrail_models": True}),
    ],
)
async def test_runs_with_different_setup_arguments_are_never_batched(
    store: Store, make_prompt: MakePrompt, field: str, change: dict[str, Any]
) -> None:
    a = await t25_run(store, await make_prompt())
    gpus = change.pop("num_gpus", 1)
    b = await t25_run(store, await make_prompt(), num_gpus=gpus, **change)
    groups = plan_groups(await candidates(store, a, b))
    assert [g.run_ids for g in groups] == [(a.id,), (b.id,)]
    assert field in differences(a, b)
    pa, pb = await store.get_prompt(a.prompt_id), await store.get_prompt(b.prompt_id)
    with pytest.raises(BatchError, match=f"differ in {field}"):
        build_batch_input([(a, pa), (b, pb)], container_path)


async def test_families_never_share_a_container(store: Store, make_prompt: MakePrompt) -> None:
    t25 = await t25_run(store, await make_prompt())
    t1 = await store.add_run((await make_prompt()).id, GenerationParams(), profile="transfer1")
    c3_prompt = await make_prompt()
    c3 = await store.add_run(c3_prompt.id, GenerationParams(), profile="cosmos3")
    c3b = await store.add_run(c3_prompt.id, GenerationParams(seed=5), profile="cosmos3")
    groups = plan_groups(await candidates(store, t25, t1, c3, c3b))
    # each family alone; Cosmos 3's seed sweep of one prompt shares its own container
    assert [g.run_ids for g in groups] == [(t25.id,), (t1.id,), (c3.id, c3b.id)]
    assert "profile" in differences(t25, t1) and "profile" in differences(c3, t25)


async def test_the_batch_command_takes_the_jsonl_and_the_shared_setup(
    store: Store, make_prompt: MakePrompt
) -> None:
    prompt = await make_prompt()
    run = await t25_run(store, prompt, num_gpus=2, offload_guardrail_models=True)
    argv = batch_command(run, Config())
    assert argv[:3] == ["torchrun", "--nproc_per_node=2", "--master_port=12341"]
    assert argv[argv.index("-i") + 1] == "/cosmos-tui/run/batch.jsonl"
    assert argv[argv.index("-o") + 1] == "/cosmos-tui/run/output"
    assert "--offload-guardrail-models" in argv
    assert argv[3] == "examples/inference.py"


async def test_multi_gpu_runs_with_the_prompt_guardrail_never_share_a_container(
    store: Store, make_prompt: MakePrompt
) -> None:
    # upstream checks the prompt on rank 0 only (inference.py:205-221): after a block rank 0
    # would go on to the next member's sample while the other ranks generate the blocked one
    guarded = [await t25_run(store, await make_prompt(), num_gpus=2) for _ in range(2)]
    groups = plan_groups(await candidates(store, *guarded))
    assert [g.run_ids for g in groups] == [(guarded[0].id,), (guarded[1].id,)]
    free = [
        await t25_run(store, await make_prompt(), num_gpus=2, disable_guardrails=True)
        for _ in range(2)
    ]
    groups = plan_groups(await candidates(store, *free))
    assert [g.run_ids for g in groups] == [(free[0].id, free[1].id)]
