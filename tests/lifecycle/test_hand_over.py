"""Quitting the app hands the runs it drove to detached processes, which finish them.

On the real sshd and dockerd: a run driven by the app (as the TUI's run form starts one),
and runs the app's in-process queue drove (as the TUI's enhancements are), keep moving
to their outputs after the app closed, with no other command run.
"""

from __future__ import annotations

import asyncio

from cosmos_tui.config import load_config
from cosmos_tui.domain import RunState
from cosmos_tui.engine.runlock import RunLock
from tests.lifecycle.conftest import write_config_file
from tests.lifecycle.test_resilience import wait_for_log


async def wait_ended(bench, run_id: str, timeout: float = 90.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        run = await bench.get_run(run_id)
        if run.state.is_terminal:
            return run
        await asyncio.sleep(0.2)
    raise AssertionError(f"run {run_id} still {run.state.value} after {timeout:g} s")


async def test_a_run_driven_by_the_app_is_finished_by_a_worker_after_it_closes(
    make_config, tmp_path, video_dir, bench_for
) -> None:
    config = make_config(COSMOS_STANDIN_SPEED="0.3")
    config = load_config(write_config_file(config, tmp_path / "config.toml"))
    app = await bench_for(config)
    prompt = await app.create_prompt("a robot arm", video_dir)
    run = await app.create_run(prompt.id)
    await app.runs.start(run.id)  # driven by this process, like the TUI's run form
    await wait_for_log(app, run.id, "Starting diffusion sampling", timeout=60)
    await app.runs.close(hand_over=True)  # the app quits
    final = await wait_ended(app, run.id)
    assert final.state == RunState.COMPLETED, final.failure_message
    assert (config.outputs_dir / run.id / "output.mp4").stat().st_size > 0
    worker_log = config.outputs_dir / run.id / "worker.log"
    assert worker_log.exists()  # a detached worker took it over


async def test_closing_without_hand_over_leaves_the_run_to_the_next_reconcile(
    make_config, tmp_path, video_dir, bench_for
) -> None:
    """``cosmos demo`` closes this way: its simulated host ends with it."""
    config = make_config("hang")
    config = load_config(write_config_file(config, tmp_path / "config.toml"))
    app = await bench_for(config)
    prompt = await app.create_prompt("a robot arm", video_dir)
    run = await app.create_run(prompt.id)
    await app.runs.start(run.id)
    await wait_for_log(app, run.id, "Starting diffusion sampling", timeout=60)
    await app.runs.close()
    await asyncio.sleep(2)
    assert (await app.get_run(run.id)).state == RunState.RUNNING
    assert RunLock(config.outputs_dir / run.id).is_free()
    assert not (config.outputs_dir / run.id / "worker.log").exists()


async def test_the_queue_the_app_drove_is_driven_on_after_it_closes(
    make_config, tmp_path, video_dir, bench_for, fake_gpu
) -> None:
    """Two runs on a one-GPU host: the app's queue starts one; it quits; both finish."""
    fake_gpu.set_variant("1gpu")
    config = make_config(COSMOS_STANDIN_SPEED="0.3")
    config = load_config(write_config_file(config, tmp_path / "config.toml"))
    app = await bench_for(config)
    prompt = await app.create_prompt("a robot arm", video_dir)
    first = await app.create_run(prompt.id, {"seed": 1})
    second = await app.create_run(prompt.id, {"seed": 2})
    app.runs.drive_queue_here()  # what the TUI does for enhancements and cluster runs
    assert app.runs.drives_queue
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while RunState.RUNNING not in [(await app.get_run(r.id)).state for r in (first, second)]:
        assert loop.time() < deadline, "the app's queue started nothing"
        await asyncio.sleep(0.1)
    await app.runs.close(hand_over=True)
    assert not app.runs.drives_queue
    for run in (first, second):
        final = await wait_ended(app, run.id, timeout=120)
        assert final.state == RunState.COMPLETED, final.failure_message
    assert (config.data_dir / "queue-driver.log").exists()


async def test_a_run_the_app_held_waiting_for_a_gpu_is_handed_over_too(
    make_config, tmp_path, video_dir, bench_for, fake_gpu
) -> None:
    """Two runs started by the app on a one-GPU host: one runs, one waits (still queued,
    claimed by nobody or by the app). Both finish after the app closed."""
    fake_gpu.set_variant("1gpu")
    config = make_config(COSMOS_STANDIN_SPEED="0.3")
    config = load_config(write_config_file(config, tmp_path / "config.toml"))
    app = await bench_for(config)
    prompt = await app.create_prompt("a robot arm", video_dir)
    runs = [await app.create_run(prompt.id, {"seed": seed}) for seed in (1, 2)]
    for run in runs:
        await app.runs.start(run.id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        states = [(await app.get_run(r.id)).state for r in runs]
        if RunState.RUNNING in states and RunState.QUEUED in states:
            break
        assert loop.time() < deadline, states
        await asyncio.sleep(0.1)
    await app.runs.close(hand_over=True)
    for run in runs:
        final = await wait_ended(app, run.id, timeout=120)
        assert final.state == RunState.COMPLETED, final.failure_message
        assert (config.outputs_dir / run.id / "worker.log").exists()
