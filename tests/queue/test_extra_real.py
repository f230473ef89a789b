"""Upscale and prompt enhancement end to end on the real test sshd and dockerd."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from cosmos_tui.domain import RunState, RunType
from cosmos_tui.errors import ValidationError
from cosmos_tui.sandbox.standin import standin_script_path
from cosmos_tui.services.extra import ExtrasService
from cosmos_tui.services.queue import QueueService
from cosmos_tui.store.queue_store import Claim
from tests.conftest import write_video

ENHANCE_TAG = "cosmos-test/standin-enhance:latest"


@pytest.fixture(scope="session")
def enhance_image(build_image: Callable[..., str]) -> str:
    """The stand-in image, with a stand-in Pixtral behind cosmos-tui's upsampler script."""
    files = {
        "/bin/transfer-standin": standin_script_path().read_text(),
        "/bin/torchrun": Path(__file__).with_name("upsampler_standin.sh").read_text(),
    }
    return build_image(ENHANCE_TAG, files, cmd=["torchrun"])


def videos(root: Path, name: str) -> Path:
    folder = root / name
    write_video(folder / "color.mp4", f"frames of {name} ".encode() * 300)
    return folder


async def drain(bench) -> list[Claim]:
    launched: list[Claim] = []
    await asyncio.wait_for(
        QueueService.of(bench).drive(until_idle=True, on_claim=launched.append), 120
    )
    return launched


async def test_upscale_of_a_run_and_of_a_file(bench_for, make_config, fake_gpu, tmp_path) -> None:
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(make_config())
    prompt = await bench.create_prompt("a harbour at dusk", videos(tmp_path, "harbour"))
    source = await bench.create_run(prompt.id)
    extras = ExtrasService.of(bench)
    with pytest.raises(ValidationError, match="only a completed run"):
        await extras.create_upscale(source.id)
    await drain(bench)
    assert (await bench.get_run(source.id)).state == RunState.COMPLETED
    upscale = await extras.create_upscale(source.id, weight=0.7)
    guided = await extras.create_upscale(source.id, use_source_prompt=True)
    loose = tmp_path / "loose.mp4"
    write_video(loose, b"a file from elsewhere " * 50)
    from_file = await extras.create_upscale(str(loose), prompt_text="sharper please")
    assert upscale.type == RunType.UPSCALE and upscale.source_run_id == source.id
    assert from_file.source_run_id is None
    launched = await drain(bench)
    assert all(len(c.runs) == 1 for c in launched)  # upscales are never batched
    done = await bench.get_run(upscale.id)
    assert done.state == RunState.COMPLETED, done.failure_message
    assert done.spec == {
        "input_video_path": done.spec["input_video_path"],
        "upscale": {"control_weight": 0.7},
    }
    source_video = bench.output_dir(source.id) / "output.mp4"
    assert (bench.output_dir(upscale.id) / "output.mp4").read_bytes() == source_video.read_bytes()
    assert (await bench.get_run(guided.id)).spec["prompt"] == "a harbour at dusk"
    loose_done = await bench.get_run(from_file.id)
    assert loose_done.state == RunState.COMPLETED and loose_done.spec["prompt"] == "sharper please"
    output = (bench.output_dir(from_file.id) / "output.mp4").read_bytes()
    assert output == loose.read_bytes()
    with pytest.raises(ValidationError, match="neither a run id nor a video"):
        await extras.create_upscale(str(tmp_path / "missing.mp4"))


async def test_prompts_are_enhanced_in_one_container_into_child_prompts_or_in_place(
    bench_for, make_config, fake_gpu, enhance_image, tmp_path, upload_overlap
) -> None:
    fake_gpu.set_variant("1gpu")
    config = make_config()
    config = dataclasses.replace(
        config, hosts=[dataclasses.replace(config.hosts[0], docker_image=enhance_image)]
    )
    bench = await bench_for(config)
    first = await bench.create_prompt("a red kite", videos(tmp_path, "kite"), name="kite")
    second = await bench.create_prompt("a tram in rain", videos(tmp_path, "tram"))
    lonely = await bench.create_prompt("a lighthouse", videos(tmp_path, "light"))
    extras = bench.extras
    runs = await extras.create_enhance([first.id, second.id])
    launched = await drain(bench)
    assert [len(c.runs) for c in launched] == [2] and launched[0].batch_id
    assert upload_overlap == [0, 2]  # the two videos went up together
    for run, parent in zip(runs, (first, second), strict=True):
        done = await bench.get_run(run.id)
        assert done.state == RunState.COMPLETED, done.failure_message
        child = await bench.get_prompt(done.result_prompt_id)
        assert child.parent_id == parent.id
        assert child.text == f"{parent.text} Enhanced: soft golden light, fine detail."
        assert [i.sha256 for i in child.inputs] == [i.sha256 for i in parent.inputs]
        assert "Upsampled prompt for" in (bench.output_dir(run.id) / "run.log").read_text()
    assert (await bench.get_prompt(first.id)).text == "a red kite"
    assert (await bench.get_prompt(first.id)).name == "kite"

    # In place: refused once the prompt has runs, unless forced.
    await bench.create_run(lonely.id)
    with pytest.raises(ValidationError, match="--force"):
        await extras.create_enhance([lonely.id], overwrite=True)
    await QueueService.of(bench).cancel([(await bench.list_runs()).items[0].id])
    [in_place] = await extras.create_enhance([lonely.id], overwrite=True, force=True)
    await drain(bench)
    done = await bench.get_run(in_place.id)
    assert done.state == RunState.COMPLETED and done.result_prompt_id == lonely.id
    assert (await bench.get_prompt(lonely.id)).text.endswith("fine detail.")


@pytest.mark.parametrize("names", [("heron", "otter"), ("wren",)])
async def test_an_enhancement_whose_driver_died_is_finished_by_the_next_queue_driver(
    bench_for, make_config, fake_gpu, enhance_image, tmp_path, names
) -> None:
    """The upsampler container outlives its driver: the next driver collects its prompts.

    One enhancement alone runs in a batch container too, and is picked up the same way.
    """
    fake_gpu.set_variant("1gpu")
    config = make_config()
    config = dataclasses.replace(
        config, hosts=[dataclasses.replace(config.hosts[0], docker_image=enhance_image)]
    )
    bench = await bench_for(config)
    prompts = [
        await bench.create_prompt(f"a {name} [standin:slow]", videos(tmp_path, name))
        for name in names
    ]
    runs = await bench.extras.create_enhance([p.id for p in prompts])
    driving = asyncio.create_task(QueueService.of(bench).drive(until_idle=True))
    try:
        for _ in range(600):
            states = {(await bench.get_run(r.id)).state for r in runs}
            if states == {RunState.RUNNING}:
                break
            assert not any(s.is_terminal for s in states), states
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"the enhancement never ran: {states}")
    finally:
        driving.cancel()  # the driver dies; its container goes on
        await asyncio.gather(driving, return_exceptions=True)
    assert {(await bench.get_run(r.id)).state for r in runs} == {RunState.RUNNING}
    await drain(bench)
    for run, parent in zip(runs, prompts, strict=True):
        done = await bench.get_run(run.id)
        assert done.state == RunState.COMPLETED, done.failure_message
        child = await bench.get_prompt(done.result_prompt_id)
        assert child.parent_id == parent.id
        assert child.text == f"{parent.text} Enhanced: soft golden light, fine detail."
        assert (
            f"Upsampled prompt for {run.id}" in (bench.output_dir(run.id) / "run.log").read_text()
        )


async def test_an_enhancement_whose_video_changed_fails_alone(
    bench_for, make_config, fake_gpu, enhance_image, tmp_path
) -> None:
    fake_gpu.set_variant("1gpu")
    config = make_config()
    config = dataclasses.replace(
        config, hosts=[dataclasses.replace(config.hosts[0], docker_image=enhance_image)]
    )
    bench = await bench_for(config)
    kept = await bench.create_prompt("a red kite", videos(tmp_path, "kite"))
    edited = await bench.create_prompt("a tram in rain", videos(tmp_path, "tram"))
    runs = await bench.extras.create_enhance([kept.id, edited.id])
    write_video(tmp_path / "tram" / "color.mp4", b"another tram altogether ")
    await drain(bench)
    done, failed = [await bench.get_run(r.id) for r in runs]
    assert done.state == RunState.COMPLETED, done.failure_message
    assert failed.state == RunState.FAILED
    assert str(tmp_path / "tram" / "color.mp4") in (failed.failure_message or "")
