"""Several processes: the CLI, detached workers, a killed app, reconcilers racing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cosmos_tui.config import load_config
from cosmos_tui.domain import FailureKind, RunState
from cosmos_tui.engine.logs import read_log_lines
from cosmos_tui.engine.runlock import RunLock
from tests.lifecycle.conftest import write_config_file
from tests.lifecycle.test_resilience import container_log, containers_of, wait_for_log


def cosmos(config_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cosmos_tui", "--config", str(config_path), *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def cosmos_async(config_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cosmos_tui", "--config", str(config_path), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def transitions(run) -> list[tuple[str | None, str]]:
    return [(e.from_state.value if e.from_state else None, e.to_state.value) for e in run.events]


async def test_cli_inference_waits_with_progress_then_show(
    make_config, tmp_path, video_dir
) -> None:
    path = write_config_file(make_config(COSMOS_STANDIN_SPEED="0.15"), tmp_path / "config.toml")
    created = cosmos(path, "create", "prompt", "a robot arm", str(video_dir))
    assert created.returncode == 0, created.stderr
    prompt_id = created.stdout.strip()
    done = cosmos(path, "inference", prompt_id, "--steps", "5", "--skip-checks")
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split()[0]
    assert run_id.startswith("rs_")
    assert "completed" in done.stdout and "%" in done.stdout
    shown = cosmos(path, "show", run_id)
    assert "[completed]" in shown.stdout and "output.mp4" in shown.stdout
    tail = cosmos(path, "logs", run_id, "--tail", "2")
    assert tail.stdout.splitlines()[-1].endswith(
        "Saved prompt to /cosmos-tui/run/output/output.txt"
    )


async def test_failed_inference_exits_1_and_show_explains(make_config, tmp_path, video_dir) -> None:
    path = write_config_file(make_config("missing_ckpt"), tmp_path / "config.toml")
    prompt_id = cosmos(path, "create", "prompt", "a robot arm", str(video_dir)).stdout.strip()
    done = cosmos(path, "inference", prompt_id, "--skip-checks")
    assert done.returncode == 1
    assert "missing_checkpoint" in done.stdout or "checkpoint" in done.stderr
    run_id = done.stdout.split()[0]
    shown = cosmos(path, "show", run_id).stdout
    assert "failure  missing_checkpoint" in shown
    assert "error context (from the log):" in shown and "FileNotFoundError" in shown


async def test_detach_then_follow_logs_to_the_end(make_config, tmp_path, video_dir,
                                                  docker_daemon) -> None:  # fmt: skip
    config = make_config(COSMOS_STANDIN_SPEED="0.1")
    path = write_config_file(config, tmp_path / "config.toml")
    prompt_id = cosmos(path, "create", "prompt", "a robot arm", str(video_dir)).stdout.strip()
    began = time.monotonic()
    started = cosmos(path, "inference", prompt_id, "--detach", "--skip-checks")
    assert started.returncode == 0 and "detached" in started.stdout
    run_id = started.stdout.split()[0]
    followed = cosmos(path, "logs", "-f", run_id)
    assert followed.returncode == 0
    assert time.monotonic() - began > 1.5  # -f waited for the run
    shown = cosmos(path, "show", run_id, "--json").stdout
    assert '"state": "completed"' in shown
    run_dir = config.outputs_dir / run_id
    assert followed.stdout.splitlines() == read_log_lines(run_dir / "run.log")
    assert "Saved video to" in followed.stdout


async def test_cancel_from_the_cli(make_config, tmp_path, video_dir) -> None:
    config = make_config("hang")
    path = write_config_file(config, tmp_path / "config.toml")
    prompt_id = cosmos(path, "create", "prompt", "a robot arm", str(video_dir)).stdout.strip()
    run_id = cosmos(path, "inference", prompt_id, "--detach", "--skip-checks").stdout.split()[0]
    log = config.outputs_dir / run_id / "run.log"
    deadline = time.monotonic() + 60
    while not any("Starting diffusion sampling" in x for x in read_log_lines(log)):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    done = cosmos(path, "cancel", run_id)
    assert done.returncode == 0 and "cancelled" in done.stdout
    shown = cosmos(path, "show", run_id).stdout
    assert "[cancelled]" in shown and "failure  cancelled" in shown


async def kill_worker_mid_run(config, path, video_dir, bench_for):
    """Start a detached worker, SIGKILL it while the model samples; return (bench, run id)."""
    bench = await bench_for(load_config(path))
    prompt = await bench.create_prompt("a robot arm", video_dir)
    run = await bench.create_run(prompt.id)
    await bench.runs.start(run.id, detach=True)
    await wait_for_log(bench, run.id, "Starting diffusion sampling", timeout=60)
    lock = RunLock(config.outputs_dir / run.id)
    pid = lock.holder_pid()
    assert pid and pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if lock.is_free():
            break
        await asyncio.sleep(0.05)
    assert (await bench.get_run(run.id)).state == RunState.RUNNING
    return bench, run.id


async def test_app_killed_mid_run_then_a_new_process_reattaches(
    make_config, tmp_path, video_dir, bench_for, docker_daemon
) -> None:
    config = make_config(COSMOS_STANDIN_SPEED="0.2")
    path = write_config_file(config, tmp_path / "config.toml")
    bench, run_id = await kill_worker_mid_run(config, path, video_dir, bench_for)
    report = await bench.runs.reconcile()  # the new app: drives it in this process
    assert report.dispatched == (run_id,)
    final = None
    while final is None or not final.state.is_terminal:
        await asyncio.sleep(0.1)
        final = await bench.get_run(run_id)
    assert final.state == RunState.COMPLETED, final.failure_message
    assert len(containers_of(docker_daemon, run_id)) == 1
    local = read_log_lines(bench.runs.log_path(run_id))
    assert sorted(local) == sorted(container_log(docker_daemon, final.container_id))
    assert ("running", "downloading") in transitions(final)


async def test_two_reconcilers_at_once_finish_a_run_once(
    make_config, tmp_path, video_dir, bench_for, docker_daemon
) -> None:
    config = make_config(COSMOS_STANDIN_SPEED="0.2")
    path = write_config_file(config, tmp_path / "config.toml")
    bench, run_id = await kill_worker_mid_run(config, path, video_dir, bench_for)
    container = (await bench.get_run(run_id)).container_id
    docker_daemon.cli("wait", container)  # it exits while nobody watches
    first, second = cosmos_async(path, "reconcile"), cosmos_async(path, "reconcile")
    # in threads: this process's own services stay live meanwhile
    outs = [await asyncio.to_thread(p.communicate, None, 60) for p in (first, second)]
    assert all(p.returncode == 0 for p in (first, second)), outs
    final = None
    for _ in range(300):
        final = await bench.get_run(run_id)
        if final.state.is_terminal and RunLock(config.outputs_dir / run_id).is_free():
            break
        await asyncio.sleep(0.1)
    assert final is not None and final.state == RunState.COMPLETED, final
    steps = transitions(final)
    assert steps.count(("running", "downloading")) == 1
    assert steps.count(("downloading", "completed")) == 1
    # The driving worker prints its last line after it let the run lock go: wait for it.
    worker_log = ""
    for _ in range(100):
        worker_log = (config.outputs_dir / run_id / "worker.log").read_text()
        if "completed" in worker_log:
            break
        await asyncio.sleep(0.1)
    assert "completed" in worker_log


async def test_closing_the_app_keeps_the_run_and_a_removed_container_is_reported(
    make_config, video_dir, bench_for, docker_daemon
) -> None:
    config = make_config("hang")
    first = await bench_for(config)
    prompt = await first.create_prompt("a robot arm", video_dir)
    run = await first.create_run(prompt.id)
    await first.runs.start(run.id)
    await wait_for_log(first, run.id, "Starting diffusion sampling", timeout=60)
    await first.runs.close()  # the app closes
    running = await first.get_run(run.id)
    assert running.state == RunState.RUNNING
    state = docker_daemon.cli("inspect", "-f", "{{.State.Running}}", running.container_id)
    assert state.stdout.decode().strip() == "true"
    docker_daemon.cli("rm", "-f", running.container_id)  # removed behind our back
    second = await bench_for(config)
    report = await second.runs.reconcile()
    assert report.failed == (run.id,)
    final = await second.get_run(run.id)
    assert final.state == RunState.FAILED
    assert final.failure_kind == FailureKind.CONTAINER_GONE
    assert "disappeared" in final.failure_message


async def test_container_removed_while_followed(make_config, video_dir, bench_for,
                                                docker_daemon) -> None:  # fmt: skip
    bench = await bench_for(make_config("hang"))
    prompt = await bench.create_prompt("a robot arm", video_dir)
    run = await bench.create_run(prompt.id)
    driver = asyncio.create_task(bench.runs.drive(run.id))
    await wait_for_log(bench, run.id, "Starting diffusion sampling", timeout=60)
    container = (await bench.get_run(run.id)).container_id
    docker_daemon.cli("rm", "-f", container)
    final = await asyncio.wait_for(driver, 60)
    assert final.state == RunState.FAILED
    assert final.failure_kind == FailureKind.CONTAINER_GONE


async def test_orphan_containers_are_reported_not_killed(make_config, bench_for, docker_daemon,
                                                         standin_image) -> None:  # fmt: skip
    from cosmos_tui.owner import installation_owner

    config = make_config()
    bench = await bench_for(config)
    owner = installation_owner(config.data_dir)
    started = docker_daemon.cli(
        "run", "-d", "--label", "cosmos.managed=true", "--label", "cosmos.run_id=rs_0123456789ab",
        "--label", f"cosmos.owner={owner}", standin_image, "sleep", "30",
    )  # fmt: skip
    container = started.stdout.decode().strip()
    # made before owner ids: no owner label, and a run this database does not know
    legacy = docker_daemon.cli(
        "run", "-d", "--label", "cosmos.managed=true", "--label", "cosmos.run_id=rs_0123456789cd",
        standin_image, "sleep", "30",
    ).stdout.decode().strip()  # fmt: skip
    try:
        report = await bench.runs.reconcile()
        orphans = [o for o in report.orphans if o.container_id == container]
        assert orphans and "not in this database" in orphans[0].reason
        assert legacy in {o.container_id for o in report.foreign}
        for each in (container, legacy):
            state = docker_daemon.cli("inspect", "-f", "{{.State.Running}}", each)
            assert state.stdout.decode().strip() == "true"
    finally:
        docker_daemon.cli("rm", "-f", container, legacy)


async def test_ctrl_c_on_a_waiting_inference_detaches_and_the_run_goes_on(
    make_config, tmp_path, video_dir
) -> None:
    config = make_config(COSMOS_STANDIN_SPEED="0.2")
    path = write_config_file(config, tmp_path / "config.toml")
    prompt_id = cosmos(path, "create", "prompt", "a robot arm", str(video_dir)).stdout.strip()
    waiting = cosmos_async(path, "inference", prompt_id, "--skip-checks")
    assert waiting.stdout is not None
    run_id = waiting.stdout.readline().split()[0]
    log = config.outputs_dir / run_id / "run.log"
    deadline = time.monotonic() + 60
    while not any("Start creating base model" in x for x in read_log_lines(log)):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    waiting.send_signal(signal.SIGINT)
    _, stderr = await asyncio.to_thread(waiting.communicate, None, 30)
    assert waiting.returncode == 130
    assert "detached" in stderr and f"cosmos logs -f {run_id}" in stderr
    followed = cosmos(path, "logs", "-f", run_id)  # the worker finishes it
    assert "Saved prompt to" in followed.stdout
    assert '"state": "completed"' in cosmos(path, "show", run_id, "--json").stdout


async def test_a_waiting_watch_notices_when_no_process_drives_the_run(
    make_config, tmp_path, video_dir, bench_for
) -> None:
    from cosmos_tui.errors import RunStalled

    config = make_config("hang")
    path = write_config_file(config, tmp_path / "config.toml")
    bench, run_id = await kill_worker_mid_run(config, path, video_dir, bench_for)
    seen = []
    try:
        async for run in bench.runs.watch(run_id, interval=0.1, stall_after=0.5):
            seen.append(run.state)
        raise AssertionError("the watch should have stopped")
    except RunStalled as exc:
        assert "no process drives it" in exc.message and "cosmos reconcile" in exc.message
    assert seen == [RunState.RUNNING]
    await bench.runs.cancel(run_id)


async def test_a_driver_waits_briefly_for_a_lock_held_by_a_looker(make_config, bench_for,
                                                                   video_dir) -> None:  # fmt: skip
    from cosmos_tui.errors import RunBusy

    bench = await bench_for(make_config())
    prompt = await bench.create_prompt("a prompt", video_dir)
    run = await bench.create_run(prompt.id)
    await bench.runs.cancel(run.id)  # ended: driving it only takes the lock and returns
    lock = RunLock(bench.output_dir(run.id))
    assert lock.try_acquire()
    asyncio.get_running_loop().call_later(0.3, lock.release)
    assert (await bench.runs.drive(run.id)).state == RunState.CANCELLED
    assert lock.try_acquire()
    try:
        try:
            await bench.runs.drive(run.id)
            raise AssertionError("expected RunBusy")
        except RunBusy as exc:
            assert "another process" in exc.message
    finally:
        lock.release()


async def test_a_cancel_that_missed_the_host_is_finished_by_reconcile(
    make_config, video_dir, bench_for, docker_daemon, ssh_server, standin_image
) -> None:
    from cosmos_tui.errors import CosmosError
    from tests.lifecycle.conftest import stop_ssh

    config = make_config("hang")
    first = await bench_for(config)
    prompt = await first.create_prompt("a robot arm", video_dir)
    run = await first.create_run(prompt.id)
    await first.runs.start(run.id)
    await wait_for_log(first, run.id, "Starting diffusion sampling", timeout=60)
    await first.runs.close()  # the driver is gone (a worker on a laptop that slept)
    container = (await first.get_run(run.id)).container_id
    await asyncio.to_thread(stop_ssh, ssh_server)
    try:
        cancelled = await first.runs.cancel(run.id)
    except CosmosError:
        cancelled = await first.get_run(run.id)
    assert cancelled.state == RunState.CANCELLED
    running = docker_daemon.cli("inspect", "-f", "{{.State.Running}}", container)
    assert running.stdout.decode().strip() == "true"  # the stop never reached the host
    await asyncio.to_thread(ssh_server.start)
    stranger = docker_daemon.cli(
        "run", "-d", "--label", "cosmos.managed=true", "--label", "cosmos.run_id=rs_0123456789ab",
        standin_image, "sleep", "60",
    ).stdout.decode().strip()  # fmt: skip
    try:
        report = await (await bench_for(config)).runs.reconcile()
        assert [o.container_id for o in report.stopped] == [container]
        assert "cancelled" in report.stopped[0].reason
        orphans = [o.container_id for o in report.orphans]
        # no owner label and a run unknown here: another installation's, listed as such
        assert stranger in [o.container_id for o in report.foreign]
        assert stranger not in orphans and container not in orphans
        running = docker_daemon.cli("inspect", "-f", "{{.State.Running}}", container)
        assert running.stdout.decode().strip() == "false"
        running = docker_daemon.cli("inspect", "-f", "{{.State.Running}}", stranger)
        assert running.stdout.decode().strip() == "true"  # not ours: only reported
        assert (await first.get_run(run.id)).state == RunState.CANCELLED
    finally:
        docker_daemon.cli("rm", "-f", stranger)
