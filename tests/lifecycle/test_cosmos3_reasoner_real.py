"""Prompt enhancement with Cosmos 3's reasoner, end to end on the real sshd and dockerd.

A prompt's video (or image, or its text alone) goes to ``model_mode=reasoner``
(cosmos_framework/inference/inference.py:1899-1986); the text it writes
(``<run id>/reasoner_text.txt``) becomes a child prompt, or the prompt's own text with
overwrite, like Transfer1's Pixtral enhancement. The stand-in answers with the user's
text and a sentence naming what it was conditioned on.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from cosmos_tui.domain import FailureKind, RunState, RunType
from cosmos_tui.errors import ValidationError
from cosmos_tui.services.queue import QueueService
from cosmos_tui.store.queue_store import Claim
from tests.engine.upstream_cosmos3 import build_check
from tests.lifecycle.test_resilience import wait_for_state

DETAIL = ": soft light, a slow camera, fine detail."


async def drain(bench) -> list[Claim]:
    launched: list[Claim] = []
    await asyncio.wait_for(
        QueueService.of(bench).drive(until_idle=True, on_claim=launched.append), 120
    )
    return launched


def image_folder(root: Path) -> Path:
    folder = root / "still"
    folder.mkdir()
    (folder / "image.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"jpeg body" * 20)
    return folder


async def test_the_reasoner_enhances_video_image_and_text_prompts_into_children(
    cosmos3_config, bench_for, fake_gpu, video_dir, tmp_path
) -> None:
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(cosmos3_config())
    street = await bench.create_prompt("a wet street at night", video_dir, name="street")
    still = await bench.create_prompt("the kite lifts off", image_folder(tmp_path))
    words = await bench.create_prompt("a cat surfing a wave", None)
    runs = await bench.extras.create_enhance(
        [street.id, still.id, words.id], profile="cosmos3", checkpoint="edge"
    )
    assert all(r.type == RunType.ENHANCE and r.profile == "cosmos3" for r in runs)
    launched = await drain(bench)
    assert sorted(len(c.runs) for c in launched) == [1, 1, 1]
    seen = {street.id: "Seen in the video", still.id: "Seen in the image",
            words.id: "From the text alone"}  # fmt: skip
    for run, parent in zip(runs, (street, still, words), strict=True):
        done = await bench.get_run(run.id)
        assert done.state == RunState.COMPLETED, done.failure_message
        child = await bench.get_prompt(done.result_prompt_id)
        assert child.parent_id == parent.id and child.name == parent.name
        assert child.text == f"{parent.text} {seen[parent.id]}{DETAIL}"
        assert [i.sha256 for i in child.inputs] == [i.sha256 for i in parent.inputs]
        sample = build_check(done.spec)
        assert sample.model_mode == "reasoner" and sample.name == run.id
        assert sample.prompt.endswith(f"User prompt: {parent.text}")
        assert sample.resolution is None and sample.num_frames is None
        log = (bench.output_dir(run.id) / "run.log").read_text()
        assert "Saved reasoner outputs to" in log
        assert f"{run.id}/reasoner_text.txt" in done.outputs
    assert build_check((await bench.get_run(runs[0].id)).spec).vision_path.endswith(".mp4")
    assert build_check((await bench.get_run(runs[1].id)).spec).vision_path.endswith(".jpg")
    assert build_check((await bench.get_run(runs[2].id)).spec).vision_path is None
    assert (await bench.get_prompt(street.id)).text == "a wet street at night"


async def test_the_reasoner_overwrites_in_place_and_a_blocked_prompt_makes_no_child(
    cosmos3_config, bench_for, fake_gpu, video_dir
) -> None:
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(cosmos3_config())
    kept = await bench.create_prompt("a harbour at dusk", video_dir)
    riot = await bench.create_prompt("a riot [standin:guardrail]", video_dir)
    [in_place] = await bench.extras.create_enhance([kept.id], overwrite=True, profile="cosmos3")
    [blocked] = await bench.extras.create_enhance([riot.id], profile="cosmos3")
    await drain(bench)
    done = await bench.get_run(in_place.id)
    assert done.state == RunState.COMPLETED and done.result_prompt_id == kept.id
    assert (await bench.get_prompt(kept.id)).text == f"a harbour at dusk Seen in the video{DETAIL}"
    stopped = await bench.get_run(blocked.id)
    assert stopped.failure_kind == FailureKind.GUARDRAIL, stopped.failure_message
    assert stopped.result_prompt_id is None
    assert [p.id for p in (await bench.list_prompts()).items if p.parent_id == riot.id] == []


async def test_bad_reasoner_requests_are_refused_before_anything_is_queued(
    cosmos3_config, bench_for, video_dir
) -> None:
    bench = await bench_for(cosmos3_config())
    prompt = await bench.create_prompt("a street", video_dir)
    extras = bench.extras
    with pytest.raises(ValidationError, match=r"Super.*4"):
        await extras.create_enhance([prompt.id], profile="cosmos3", checkpoint="super")
    with pytest.raises(ValidationError, match="not a Cosmos 3 size"):
        await extras.create_enhance([prompt.id], profile="cosmos3", checkpoint="huge")
    with pytest.raises(ValidationError, match="guardrails"):
        await extras.create_enhance([prompt.id], profile="cosmos3", guardrails="sometimes")
    with pytest.raises(ValidationError, match="--profile cosmos3"):
        await extras.create_enhance([prompt.id], checkpoint="edge")
    with pytest.raises(ValidationError, match=r"transfer1 .*or cosmos3"):
        await extras.create_enhance([prompt.id], profile="transfer2.5")
    with pytest.raises(ValidationError, match="writes text, not video"):
        await bench.create_run(prompt.id, {"profile": "cosmos3", "options": {"mode": "reasoner"}})
    reasoner = {"mode": "reasoner", "enhance": "child"}  # an enhancement's own options
    with pytest.raises(ValidationError, match="writes text, not video"):
        await bench.create_run(prompt.id, {"profile": "cosmos3", "options": reasoner})
    assert (await bench.list_runs()).total == 0


async def test_a_reasoner_run_without_a_token_is_refused_before_the_upload(
    cosmos3_config, bench_for, fake_gpu, video_dir, monkeypatch
) -> None:
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(cosmos3_config())
    monkeypatch.delenv("TEST_COSMOS3_TOKEN")
    prompt = await bench.create_prompt("a street", video_dir)
    [run] = await bench.extras.create_enhance([prompt.id], profile="cosmos3")
    await drain(bench)
    done = await bench.get_run(run.id)
    assert done.state == RunState.FAILED and "TEST_COSMOS3_TOKEN" in done.failure_message
    assert done.container_id is None
    # The token is set: a retry (as the TUI's r or 'cosmos retry' does) enhances it.
    monkeypatch.setenv("TEST_COSMOS3_TOKEN", "hf_test_token")
    await bench.runs.retry(run.id)
    again = await wait_for_state(bench, run.id, RunState.COMPLETED, 60)
    child = await bench.get_prompt(again.result_prompt_id)
    assert child.parent_id == prompt.id and child.text.endswith(DETAIL)


@pytest.mark.parametrize(
    ("scenario", "says"),
    [("empty", "returned no new text"), ("echo", "returned no new text")],
)
async def test_a_reasoner_that_answers_nothing_new_fails_and_makes_no_prompt(
    cosmos3_config, bench_for, fake_gpu, video_dir, scenario: str, says: str
) -> None:
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(cosmos3_config(scenario))
    prompt = await bench.create_prompt("a street", video_dir)
    [run] = await bench.extras.create_enhance([prompt.id], profile="cosmos3", overwrite=True)
    await drain(bench)
    done = await bench.get_run(run.id)
    assert done.state == RunState.FAILED and says in done.failure_message
    assert done.result_prompt_id is None
    assert (await bench.get_prompt(prompt.id)).text == "a street"
    assert (await bench.list_prompts()).total == 1


async def test_a_prompt_edited_while_the_reasoner_runs_keeps_its_new_text(
    cosmos3_config, bench_for, fake_gpu, video_dir
) -> None:
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(cosmos3_config("slow"))
    prompt = await bench.create_prompt("a street", video_dir)
    [run] = await bench.extras.create_enhance([prompt.id], profile="cosmos3", overwrite=True)
    driving = asyncio.create_task(drain(bench))
    await wait_for_state(bench, run.id, RunState.RUNNING, 60)
    await bench.store.set_prompt_text(prompt.id, "a street, edited")
    await driving
    done = await bench.get_run(run.id)
    assert done.state == RunState.COMPLETED, done.failure_message
    assert (await bench.get_prompt(prompt.id)).text == "a street, edited"
    child = await bench.get_prompt(done.result_prompt_id)
    assert child.parent_id == prompt.id and child.text == f"a street Seen in the video{DETAIL}"
    assert "text changed while the reasoner ran" in done.events[-1].reason


async def test_enhancements_of_one_kind_share_one_reasoner_container(
    cosmos3_config, bench_for, fake_gpu, make_video_dir, tmp_path
) -> None:
    """One model load for several prompts: upstream runs every -i file's sample in turn
    (script.py:21-28), one sample per model batch with the default max_num_seqs=1 (common/
    args.py:919), so a blocked prompt ends only its own sample (--keep-going). Samples of
    another conditioning (an image) get a container of their own: a model batch of mixed
    kinds is refused (inference.py:1915-1928) once max_num_seqs is raised."""
    fake_gpu.set_variant("1gpu")
    config = cosmos3_config()
    bench = await bench_for(
        dataclasses.replace(config, batching=dataclasses.replace(config.batching, max_size=8))
    )
    harbour = await bench.create_prompt("a harbour at dusk", make_video_dir(name="a"))
    square = await bench.create_prompt("a square at noon", make_video_dir(name="b"))
    riot = await bench.create_prompt("a riot [standin:guardrail]", make_video_dir(name="c"))
    still = await bench.create_prompt("the kite lifts off", image_folder(tmp_path))
    runs = await bench.extras.create_enhance(
        [harbour.id, riot.id, still.id], profile="cosmos3", checkpoint="edge"
    )
    [in_place] = await bench.extras.create_enhance(
        [square.id], overwrite=True, profile="cosmos3", checkpoint="edge"
    )
    launched = await drain(bench)
    video_runs = {runs[0].id, runs[1].id, in_place.id}
    assert sorted(len(c.runs) for c in launched) == [1, 3]
    assert {r for c in launched for r in c.run_ids if len(c.runs) == 3} == video_runs
    done = {run_id: await bench.get_run(run_id) for run_id in [*video_runs, runs[2].id]}
    assert len({done[r].container_id for r in video_runs}) == 1
    assert done[runs[0].id].state == RunState.COMPLETED, done[runs[0].id].failure_message
    child = await bench.get_prompt(done[runs[0].id].result_prompt_id)
    assert child.parent_id == harbour.id
    assert child.text == f"a harbour at dusk Seen in the video{DETAIL}"
    assert done[in_place.id].result_prompt_id == square.id
    assert (await bench.get_prompt(square.id)).text == f"a square at noon Seen in the video{DETAIL}"
    blocked = done[runs[1].id]
    assert blocked.state == RunState.BLOCKED and blocked.result_prompt_id is None
    assert blocked.failure_kind == FailureKind.GUARDRAIL, blocked.failure_message
    assert [p.id for p in (await bench.list_prompts()).items if p.parent_id == riot.id] == []
    image_child = await bench.get_prompt(done[runs[2].id].result_prompt_id)
    assert image_child.text == f"the kite lifts off Seen in the image{DETAIL}"
    for run_id in video_runs - {runs[1].id}:
        run = done[run_id]
        assert run.state == RunState.COMPLETED, run.failure_message
        assert f"{run_id}/reasoner_text.txt" in run.outputs
        assert not any(o in name for o in video_runs - {run_id} for name in run.outputs)
        log = (bench.output_dir(run_id) / "run.log").read_text()
        assert f"output/{run_id}'" in log  # its own "Saved reasoner outputs to" line
        assert not any(f"output/{o}'" in log for o in video_runs - {run_id})
        # upstream says it once for the whole input (script.py:47-49)
        assert log.count("Reasoner-only inputs detected") == 1


async def test_a_reasoner_batch_that_dies_fails_the_sample_it_died_in_with_its_cause(
    cosmos3_config, bench_for, fake_gpu, make_video_dir
) -> None:
    # The reasoner's text generation is outside any handler (inference.py:1945-1947): an
    # OOM in the second sample ends the process. Its samples log nothing before their end
    # (I:1941), so the traceback comes before any line names the sample it is of: the
    # sample after the last one that ended.
    fake_gpu.set_variant("1gpu")
    config = cosmos3_config()
    bench = await bench_for(
        dataclasses.replace(config, batching=dataclasses.replace(config.batching, max_size=8))
    )
    texts = ("a harbour at dusk", "a square at noon [standin:oom]", "a snowy pass")
    prompts = [await bench.create_prompt(t, make_video_dir(name=f"v{i}")) for i, t in
               enumerate(texts)]  # fmt: skip
    runs = await bench.extras.create_enhance([p.id for p in prompts], profile="cosmos3")
    launched = await drain(bench)
    assert len(launched[0].runs) == 3
    first, dead, last = [await bench.get_run(r.id) for r in runs]
    assert first.state == RunState.COMPLETED, first.failure_message
    assert dead.state == RunState.FAILED and dead.failure_kind == FailureKind.GPU_OOM, (
        dead.failure_message
    )
    assert dead.result_prompt_id is None
    # never started in the dead container: queued again, and it ran in the next one
    assert last.state == RunState.COMPLETED and last.result_prompt_id is not None
    first_log = (bench.output_dir(first.id) / "run.log").read_text()
    assert "CUDA out of memory" not in first_log
    assert "CUDA out of memory" in (bench.output_dir(dead.id) / "run.log").read_text()
