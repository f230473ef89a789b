"""Retries, time limits, cancel, lost links, restarts and reconciling on the real host."""

from __future__ import annotations

import asyncio

from cosmos_tui.domain import FailureKind, HostState, RunState
from cosmos_tui.engine.logs import clean_lines, read_log_lines
from cosmos_tui.services.runs import RunOptions
from tests.lifecycle.conftest import cut_ssh, stop_ssh


def containers_of(docker_daemon, run_id: str) -> list[str]:
    done = docker_daemon.cli("ps", "-aq", "--filter", f"label=cosmos.run_id={run_id}")
    return done.stdout.decode().split()


def container_log(docker_daemon, container_id: str) -> list[str]:
    done = docker_daemon.cli("logs", container_id)
    lines: list[str] = []
    for text in (done.stdout, done.stderr):
        decoded = text.decode("utf-8", "replace")
        for raw in decoded.split("\n")[:-1]:
            lines.extend(clean_lines(raw))
    return lines


async def wait_for_state(bench, run_id: str, state: RunState, timeout: float = 30.0):
    async def _wait():
        while True:
            run = await bench.get_run(run_id)
            if run.state == state:
                return run
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(_wait(), timeout)


async def wait_for_log(bench, run_id: str, text: str, timeout: float = 30.0) -> None:
    async def _wait():
        while not any(text in line for line in read_log_lines(bench.runs.log_path(run_id))):
            await asyncio.sleep(0.05)

    await asyncio.wait_for(_wait(), timeout)


async def test_transient_failure_is_retried_without_a_second_container(
    make_config, bench_for, video_dir, ssh_server, docker_daemon
) -> None:
    cut: list[int] = []
    restarted = asyncio.Event()

    async def observer(run_id: str, step: str) -> None:
        # The host goes away right after the container is created, before it starts,
        # and comes back once the run was requeued: the retry adopts that container.
        if step == "created" and not cut:
            cut.append(len(containers_of(docker_daemon, run_id)))
            await asyncio.to_thread(stop_ssh, ssh_server)
            host = bench.hosts.get("testhost")
            for _ in range(100):  # until the client has noticed
                if host.status().state != HostState.CONNECTED:
                    break
                await asyncio.sleep(0.05)
        if step == "requeued" and not restarted.is_set():
            await asyncio.to_thread(ssh_server.start)
            restarted.set()

    bench = await bench_for(make_config(), RunOptions(observer=observer))
    prompt = await bench.create_prompt("a prompt", video_dir)
    run = await bench.create_run(prompt.id)
    final = await bench.runs.drive(run.id)
    assert cut and cut[0] == 1 and restarted.is_set()
    assert final.state == RunState.COMPLETED, final.failure_message
    assert final.attempt >= 2
    assert any("retry 2 of 3" in e.reason for e in final.events)
    assert any("adopted container" in e.reason for e in final.events)
    assert containers_of(docker_daemon, run.id) == [final.container_id[:12]]


async def test_time_limit_stops_the_container(make_config, bench_for, video_dir,
                                              docker_daemon) -> None:  # fmt: skip
    bench = await bench_for(make_config("hang", run_timeout=3.0))
    prompt = await bench.create_prompt("a prompt", video_dir)
    final = await bench.runs.drive((await bench.create_run(prompt.id)).id)
    assert final.state == RunState.FAILED
    assert final.failure_kind == FailureKind.TIMEOUT
    assert "timeouts.run" in final.failure_message
    state = docker_daemon.cli("inspect", "-f", "{{.State.Running}}", final.container_id)
    assert state.stdout.decode().strip() == "false"


async def test_cancel_terms_waits_then_kills_and_records(
    make_config, bench_for, video_dir, docker_daemon
) -> None:
    config = make_config("hang", COSMOS_STANDIN_IGNORE_TERM="1")
    bench = await bench_for(config)
    other = await bench_for(config)  # the CLI in another terminal
    prompt = await bench.create_prompt("a prompt", video_dir)
    run = await bench.create_run(prompt.id)
    driver = asyncio.create_task(bench.runs.drive(run.id))
    await wait_for_log(bench, run.id, "Starting diffusion sampling")
    loop = asyncio.get_running_loop()
    began = loop.time()
    cancelled = await other.runs.cancel(run.id)
    took = loop.time() - began
    assert cancelled.state == RunState.CANCELLED
    assert took >= config.timeouts.cancel_grace - 0.5  # TERM was ignored: killed after grace
    final = await asyncio.wait_for(driver, 30)
    assert final.state == RunState.CANCELLED
    assert final.failure_kind == FailureKind.CANCELLED
    code = docker_daemon.cli("inspect", "-f", "{{.State.ExitCode}}", final.container_id)
    assert code.stdout.decode().strip() == "137"
    assert [e.to_state for e in final.events][-1] == RunState.CANCELLED


async def test_cancel_of_a_cooperative_container_is_quick(
    make_config, bench_for, video_dir, docker_daemon
) -> None:
    bench = await bench_for(make_config("hang"))
    prompt = await bench.create_prompt("a prompt", video_dir)
    run = await bench.create_run(prompt.id)
    await bench.runs.start(run.id)  # driven by a task of this process
    await wait_for_log(bench, run.id, "Starting diffusion sampling")
    await bench.runs.cancel(run.id)
    final = await wait_for_state(bench, run.id, RunState.CANCELLED)
    code = docker_daemon.cli("inspect", "-f", "{{.State.ExitCode}}", final.container_id)
    assert code.stdout.decode().strip() == "143"


async def test_ssh_cut_mid_run_loses_no_log_line(
    make_config, bench_for, video_dir, ssh_server, docker_daemon
) -> None:
    bench = await bench_for(
        make_config("flood", COSMOS_STANDIN_FLOOD_LINES="30000", COSMOS_STANDIN_SPEED="0.05")
    )
    prompt = await bench.create_prompt("a prompt", video_dir)
    run = await bench.create_run(prompt.id)
    driver = asyncio.create_task(bench.runs.drive(run.id))
    await wait_for_log(bench, run.id, "flood line 1000 ")
    assert cut_ssh(ssh_server) > 0
    await asyncio.sleep(0.3)
    cut_ssh(ssh_server)
    final = await asyncio.wait_for(driver, 120)
    assert final.state == RunState.COMPLETED, final.failure_message
    local = read_log_lines(bench.runs.log_path(run.id))
    remote = container_log(docker_daemon, final.container_id)
    assert len(local) == len(remote)
    assert sorted(local) == sorted(remote)
    flood = [line for line in local if "flood line" in line]
    assert len(flood) == 30000 and len(set(flood)) == 30000


async def test_a_run_waits_for_a_free_gpu_on_a_busy_host(
    make_config, bench_for, video_dir, fake_gpu
) -> None:
    fake_gpu.set_variant("1gpu")

    async def quick_sleep(seconds: float) -> None:
        await asyncio.sleep(min(seconds, 0.1))

    bench = await bench_for(make_config(COSMOS_STANDIN_SPEED="0.05"), RunOptions(sleep=quick_sleep))
    prompt = await bench.create_prompt("a prompt", video_dir)
    first = await bench.create_run(prompt.id)
    second = await bench.create_run(prompt.id, {"seed": 2})
    await bench.runs.start(first.id)
    await wait_for_state(bench, first.id, RunState.RUNNING)
    await bench.runs.start(second.id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10  # the second driver's first look at the GPUs, under load
    while (waiting := await bench.get_run(second.id)).progress is None:
        assert loop.time() < deadline, waiting
        await asyncio.sleep(0.1)
    assert waiting.state == RunState.QUEUED
    assert waiting.progress is not None and waiting.progress.phase == "waiting for a free GPU"
    done_first = await wait_for_state(bench, first.id, RunState.COMPLETED, timeout=60)
    done_second = await wait_for_state(bench, second.id, RunState.COMPLETED, timeout=60)
    assert done_first.gpus == done_second.gpus == (0,)
    assert done_second.started_at >= done_first.finished_at


async def test_quick_reconcile_touches_no_host_when_nothing_is_stranded(
    make_config, bench_for
) -> None:
    import dataclasses

    config = make_config()
    down = dataclasses.replace(config.hosts[0], port=1)  # nothing listens there
    bench = await bench_for(dataclasses.replace(config, hosts=[down]))
    quick = await asyncio.wait_for(bench.runs.reconcile(scan_all_hosts=False), 5)
    assert quick.unreachable == () and quick.dispatched == ()
    full = await bench.runs.reconcile()
    assert [host for host, _ in full.unreachable] == ["testhost"]
    reports = bench.runs.keep_moving(interval=0.01)
    first = await anext(reports)
    assert first.unreachable
    await reports.aclose()


async def test_user_retry_of_a_failed_run_replaces_its_container_and_keeps_the_old_log(
    make_config, bench_for, video_dir, docker_daemon
) -> None:
    crashing = await bench_for(make_config("crash"))
    prompt = await crashing.create_prompt("a prompt", video_dir)
    run = await crashing.create_run(prompt.id)
    failed = await crashing.runs.drive(run.id)
    assert failed.state == RunState.FAILED
    fixed = await bench_for(make_config("ok"))  # the same database and outputs
    await fixed.runs.start(run.id)
    final = await wait_for_state(fixed, run.id, RunState.COMPLETED, timeout=60)
    assert final.attempt == 2 and final.failure_kind is None
    assert final.container_id != failed.container_id
    assert containers_of(docker_daemon, run.id) == [final.container_id[:12]]
    old_log = fixed.runs.log_path(run.id).with_name("run.attempt1.log")
    assert "crashed on purpose" in old_log.read_text()
    assert "crashed on purpose" not in fixed.runs.log_path(run.id).read_text()
