"""The queue against the real test sshd and dockerd, with the Cosmos stand-in image and the
nvidia-smi stand-in reporting 1, 2 or 8 GPUs (and GPUs busy with foreign processes)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from cosmos_tui.config import Config
from cosmos_tui.domain import FailureKind, Run, RunState
from cosmos_tui.engine.batch_launch import BatchLauncher
from cosmos_tui.engine.batching import plan_groups
from cosmos_tui.engine.cluster import PoolCluster
from cosmos_tui.engine.queue import Placement
from cosmos_tui.services.queue import QueueService
from cosmos_tui.store.queue_store import Claim, QueueStore
from tests.conftest import write_video
from tests.lifecycle.conftest import write_config_file

UUID = "GPU-0000000{i}-1111-2222-3333-44444444444{i}"
QUEUE_RUN = [sys.executable, "-m", "cosmos_tui", "queue", "run"]


def videos(root: Path, name: str) -> Path:
    folder = root / name
    write_video(folder / "color.mp4", f"video of {name} ".encode() * 200)
    return folder


async def queue_runs(
    bench, tmp_path: Path, text: str, names: Iterable[object], folder: str = "{}"
) -> list[Run]:
    """Queue a run of a new prompt per name: ``text`` and ``folder`` with ``{}`` as the name."""
    runs = []
    for name in names:
        prompt = await bench.create_prompt(text.format(name), videos(tmp_path, folder.format(name)))
        runs.append(await bench.create_run(prompt.id))
    return runs


async def wait_for_states(bench, runs, wanted: set[RunState], seconds: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    states: set[RunState] = set()
    while loop.time() < deadline:
        states = {(await bench.get_run(r.id)).state for r in runs}
        if states == wanted:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"runs stayed {states}, not {wanted}")


async def wait_until_launched(bench, runs, seconds: float = 60.0) -> None:
    """Wait until the runs' container has started: each running, or already past it.

    (A batch's samples move on one by one: under load a poll can miss the moment all of
    them are ``running`` at once.)
    """
    before = {RunState.QUEUED, RunState.UPLOADING, RunState.STARTING}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    states: set[RunState] = set()
    while loop.time() < deadline:
        states = {(await bench.get_run(r.id)).state for r in runs}
        if RunState.RUNNING in states and not states & before:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"runs stayed {states}, none running")


async def completed(bench, runs: Iterable[Run]) -> list[Run]:
    """The runs as stored now, each asserted completed (its failure shown if not)."""
    done = [await bench.get_run(run.id) for run in runs]
    for run in done:
        assert run.state == RunState.COMPLETED, (run.state, run.failure_message)
    return done


async def first_on_gpu0(queue: QueueStore) -> Placement:
    """The first container the queue plans, placed on testhost's GPU 0."""
    return Placement(plan_groups(await queue.queued())[0], "testhost", (0,))


@contextlib.contextmanager
def dying_queue_driver(config: Config, tmp_path: Path) -> Iterator[None]:
    """`cosmos queue run` in a child process over ``config``, SIGKILLed on leaving.

    An assertion that fails inside gets the driver's stderr as a note.
    """
    path = write_config_file(config, tmp_path / "config.toml")
    env = dict(os.environ, COSMOS_CONFIG=str(path))
    proc = subprocess.Popen(QUEUE_RUN, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield
    except AssertionError as exc:
        os.kill(proc.pid, signal.SIGKILL)
        _, stderr = proc.communicate()
        exc.add_note(f"cosmos queue run said: {stderr.decode(errors='replace')}")
        raise
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)  # no queue driver is alive from here on
        proc.wait()


async def batching_bench(bench_for, make_config, fake_gpu):
    """An open Workbench on a one-GPU host whose queue batches up to eight runs."""
    fake_gpu.set_variant("1gpu")
    config = make_config()
    config = dataclasses.replace(config, batching=dataclasses.replace(config.batching, max_size=8))
    return await bench_for(config)


async def drive(bench, launched: list[Claim], timeout: float = 120.0):
    cluster = PoolCluster(bench.config, bench.hosts)
    await cluster.start()
    service = QueueService.of(bench)
    scheduler = service.scheduler(cluster, BatchLauncher(bench.runs.engine))
    original = scheduler.launcher

    class Recording:
        async def launch(self, claim: Claim) -> None:
            launched.append(claim)
            await original.launch(claim)

    scheduler.launcher = Recording()
    await asyncio.wait_for(scheduler.run(until_idle=True), timeout)
    return scheduler


async def test_no_gpu_is_offered_before_the_processes_on_it_were_read(
    bench_for, make_config, fake_gpu
) -> None:
    """Placement right after start-up knows other users' processes (raced under load).

    The GPU samples stream in at once; the compute-process query is a command of its own
    that may answer later. Until it did, a GPU someone else uses looked free.
    """
    fake_gpu.set_variant("2gpu")
    fake_gpu.set_apps([f"4000, {UUID.format(i=0)}, 30000, someone_elses_training"])
    fake_gpu.set_apps_delay(2)
    bench = await bench_for(make_config())
    cluster = PoolCluster(bench.config, bench.hosts)
    await cluster.start(wait_seconds=0.2)  # gives up waiting before the processes come
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    offered: set[int] = set()
    while loop.time() < deadline:
        (view,) = cluster.host_views(())
        offered = set(view.gpus) - view.foreign_busy
        assert 0 not in offered, view
        if offered:
            break
        await asyncio.sleep(0.05)
    assert offered == {1}
    assert view.foreign_busy == {0}


async def test_a_batch_runs_in_one_container_and_outputs_map_back_by_name(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    bench = await batching_bench(bench_for, make_config, fake_gpu)
    texts = ["a quiet harbour", "a crowded square", "a snowy pass"]
    runs = []
    for index, text in enumerate(texts):
        prompt = await bench.create_prompt(text, videos(tmp_path, f"v{index}"))
        runs.append(await bench.create_run(prompt.id, {"vis_weight": 0.1 * (index + 1)}))
    other = await bench.create_prompt("a desert at noon", videos(tmp_path, "odd"))
    loner = await bench.create_run(other.id, {"num_steps": 12})
    launched: list[Claim] = []
    await drive(bench, launched)
    assert [len(c.runs) for c in launched] == [3, 1]
    batch = launched[0]
    assert batch.batch_id and batch.host == "testhost" and batch.gpus == (0,)
    done = {r.id: r for r in await completed(bench, [*runs, loner])}
    for index in range(3):
        run = done[runs[index].id]
        assert run.batch_id == batch.batch_id
        out = bench.output_dir(run.id)
        # The stand-in copies each line's own input video: the right output came back.
        assert (out / "output.mp4").read_bytes() == (
            tmp_path / f"v{index}" / "color.mp4"
        ).read_bytes()
        assert (out / "prompt.txt").read_text() == texts[index]
        log = (out / "run.log").read_text()
        own = f"video_{index}"
        assert log.startswith(f"[cosmos-tui] run {run.id}: line {index + 1} of 3 of batch")
        assert f"Saved video to /cosmos-tui/run/output/{own}/output.mp4" in log
        for other_index in {0, 1, 2} - {index}:
            assert f"video_{other_index}/" not in log
        assert "Running guardrail checks" in log
        assert run.spec is not None and run.spec["num_steps"] == 35
    assert len({done[r.id].container_id for r in runs}) == 1


async def test_runs_spread_over_free_gpus_and_avoid_foreign_processes(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("8gpu")
    busy = [f"{4000 + i}, {UUID.format(i=i)}, 30000, someone_elses_training" for i in (0, 2, 3)]
    fake_gpu.set_apps(busy)
    config = make_config()
    config = dataclasses.replace(
        config,
        hosts=[dataclasses.replace(config.hosts[0], gpu_limit=6)],
        batching=dataclasses.replace(config.batching, enabled=False),
    )
    bench = await bench_for(config)
    made = await queue_runs(bench, tmp_path, "scene {}", range(4), folder="s{}")
    pair_prompt = await bench.create_prompt("two gpus", videos(tmp_path, "pair"))
    pair = await bench.create_run(pair_prompt.id, {"num_gpus": 2}, priority=5)
    launched: list[Claim] = []
    await drive(bench, launched)
    assert launched[0].run_ids == (pair.id,) and len(launched[0].gpus) == 2
    used = {g for c in launched for g in c.gpus}
    # 0, 2, 3 are someone else's; gpu_limit caps how many we hold at once, not which.
    assert used <= {1, 4, 5, 6, 7}, used
    assert all(len(c.gpus) <= 6 for c in launched)
    for fresh in await completed(bench, [*made, pair]):
        assert len(fresh.gpus) == fresh.params.num_gpus


async def test_gpu_metrics_are_kept_with_the_run_and_alerts_raised_and_cleared(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    from cosmos_tui.config import AlertsConfig, UIConfig
    from cosmos_tui.domain import AlertKind

    fake_gpu.set_variant("2gpu")
    config = make_config(COSMOS_STANDIN_SPEED="0.15")
    config = dataclasses.replace(
        config,
        ui=UIConfig(gpu_interval_ms=100),
        # Every sample of the stand-in (40-69 C, about 20 GiB of 80 used) crosses these.
        alerts=AlertsConfig(temperature_c=30.0, memory_headroom_mib=70_000.0, idle_minutes=60),
    )
    bench = await bench_for(config)
    prompt = await bench.create_prompt("a slow sunrise", videos(tmp_path, "sun"))
    run = await bench.create_run(prompt.id, {"num_gpus": 2})
    service = bench.queue  # the facade's queue service
    await asyncio.wait_for(service.drive(until_idle=True), 120)
    done = await bench.get_run(run.id)
    assert done.state == RunState.COMPLETED, done.failure_message
    metrics = done.metrics
    assert metrics is not None and metrics.samples >= 4
    assert 40 <= metrics.temperature_peak_c <= 69
    assert 20_480 <= metrics.memory_peak_mib <= 81_559
    assert metrics.util_peak is not None and 0 <= metrics.util_mean <= metrics.util_peak
    assert metrics.energy_wh > 0 and metrics.gpu_seconds > 0
    alerts = await service.alerts(run.id)
    kinds = {a.kind for a in alerts}
    assert {AlertKind.TEMPERATURE, AlertKind.MEMORY_HEADROOM} <= kinds
    assert {a.gpu_index for a in alerts} == {0, 1}
    # The run let its GPUs go: its alerts are closed.
    assert all(a.cleared_at is not None for a in alerts)
    stats = await service.stats()
    assert stats.by_state == {"completed": 1} and stats.energy_wh == metrics.energy_wh


def test_cosmos_queue_run_drives_the_queue_from_the_command_line(
    make_config, fake_gpu, tmp_path: Path, monkeypatch
) -> None:
    import json

    from click.testing import CliRunner

    from cosmos_tui.cli import cli

    fake_gpu.set_variant("1gpu")
    path = write_config_file(make_config(), tmp_path / "config.toml")
    monkeypatch.setenv("COSMOS_CONFIG", str(path))
    runner = CliRunner()

    def ok(*args: str) -> str:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output + result.stderr
        return result.stdout.strip()

    ids = []
    for name in ("north", "south"):
        prompt = ok("create", "prompt", f"the {name} shore", str(videos(tmp_path, name)))
        ids.append(ok("create", "run", prompt))
    plan = json.loads(ok("queue", "--live", "--json"))
    assert plan["containers"][0]["run_ids"] == ids and plan["containers"][0]["host"] == "testhost"
    assert plan["containers"][0]["gpu_indices"] == [0]
    output = ok("queue", "run", "--until-idle")
    assert f"start {ids[0]}, {ids[1]} on testhost GPU 0 batch bs_" in output
    assert output.endswith("1 container(s) launched")
    states = {json.loads(ok("show", run_id, "--json"))["state"] for run_id in ids}
    assert states == {"completed"}


async def test_a_reconcile_elsewhere_leaves_a_running_batch_alone(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(make_config(COSMOS_STANDIN_SPEED="0.2"))
    runs = await queue_runs(bench, tmp_path, "the {} gate", ("east", "west"))
    driving = asyncio.create_task(QueueService.of(bench).drive(until_idle=True))
    await wait_for_states(bench, runs, {RunState.RUNNING})
    report = await bench.runs.reconcile()
    assert set(report.busy) == {r.id for r in runs}
    await asyncio.wait_for(driving, 120)
    await completed(bench, runs)


async def test_runs_spread_over_hosts_and_skip_a_host_that_is_down(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    import socket

    fake_gpu.set_variant("1gpu")
    config = make_config(COSMOS_STANDIN_SPEED="0.1")
    live = config.hosts[0]
    # A second name for the same test machine, and a host nobody answers on.
    twin = dataclasses.replace(live, name="twin")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    dead = dataclasses.replace(live, name="dead", port=dead_port)
    config = dataclasses.replace(
        config,
        hosts=[dead, live, twin],
        batching=dataclasses.replace(config.batching, enabled=False),
    )
    bench = await bench_for(config)
    made = await queue_runs(bench, tmp_path, "harbour {}", range(4), folder="h{}")
    launched: list[Claim] = []
    await drive(bench, launched)
    assert {c.host for c in launched} == {"testhost", "twin"}
    # The first two start side by side, one on each host.
    assert {launched[0].host, launched[1].host} == {"testhost", "twin"}
    for fresh in await completed(bench, made):
        assert fresh.host != "dead"


async def test_a_batch_whose_scheduler_was_killed_is_picked_up_by_the_next_one(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("1gpu")
    config = make_config(COSMOS_STANDIN_SPEED="0.3")
    bench = await bench_for(config)
    runs = await queue_runs(bench, tmp_path, "a field at {}", ("dawn", "dusk"))
    with dying_queue_driver(config, tmp_path):
        await wait_for_states(bench, runs, {RunState.RUNNING})
    # The container runs on; the next scheduler reattaches and maps the outputs back.
    await asyncio.wait_for(bench.queue.drive(until_idle=True), 120)
    for index, done in enumerate(await completed(bench, runs)):
        video = (tmp_path / ("dawn", "dusk")[index] / "color.mp4").read_bytes()
        assert (bench.output_dir(done.id) / "output.mp4").read_bytes() == video


async def test_a_batch_survives_a_dropped_ssh_link(
    bench_for, make_config, fake_gpu, ssh_server, tmp_path: Path
) -> None:
    from tests.lifecycle.conftest import cut_ssh

    fake_gpu.set_variant("1gpu")
    bench = await bench_for(make_config(COSMOS_STANDIN_SPEED="0.2"))
    runs = await queue_runs(bench, tmp_path, "a {} in fog", ("ridge", "valley"))
    driving = asyncio.create_task(bench.queue.drive(until_idle=True))
    await wait_for_states(bench, runs, {RunState.RUNNING})
    assert cut_ssh(ssh_server) > 0
    await asyncio.wait_for(driving, 120)
    for index, done in enumerate(await completed(bench, runs)):
        video = (tmp_path / ("ridge", "valley")[index] / "color.mp4").read_bytes()
        assert (bench.output_dir(done.id) / "output.mp4").read_bytes() == video


async def test_two_cosmos_queue_run_processes_share_one_database(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("8gpu")
    config = make_config()
    config = dataclasses.replace(
        config, batching=dataclasses.replace(config.batching, enabled=False)
    )
    path = write_config_file(config, tmp_path / "config.toml")
    bench = await bench_for(config)
    runs = await queue_runs(bench, tmp_path, "street {}", range(10), folder="st{}")
    env = dict(os.environ, COSMOS_CONFIG=str(path))
    argv = [*QUEUE_RUN, "--until-idle"]
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]  # fmt: skip
    outputs = []
    for proc in procs:
        # in a thread: this process's own store stays live while the drivers run (a
        # blocked event loop could leave one of its commits waiting, the lock held)
        out, err = await asyncio.to_thread(proc.communicate, None, 180)
        assert proc.returncode == 0, err
        outputs.append(out)
    started = [line for out in outputs for line in out.splitlines() if line.startswith("start ")]
    assert sorted(line.split()[1] for line in started) == sorted(r.id for r in runs)
    for done in await completed(bench, runs):
        assert done.attempt == 1
        assert [e.to_state for e in done.events].count(RunState.UPLOADING) == 1


async def test_a_host_that_goes_down_raises_an_alert_cleared_when_it_returns(
    bench_for, make_config, fake_gpu, ssh_server, tmp_path: Path
) -> None:
    from cosmos_tui.domain import AlertKind
    from tests.lifecycle.conftest import stop_ssh

    fake_gpu.set_variant("1gpu")
    bench = await bench_for(make_config(COSMOS_STANDIN_SPEED="0.4"))
    prompt = await bench.create_prompt("a long night", videos(tmp_path, "night"))
    run = await bench.create_run(prompt.id)
    driving = asyncio.create_task(bench.queue.drive(until_idle=True))
    try:
        for _ in range(600):
            if (await bench.get_run(run.id)).state == RunState.RUNNING:
                break
            await asyncio.sleep(0.05)
        await asyncio.to_thread(stop_ssh, ssh_server)
        raised = []
        for _ in range(400):
            raised = [a for a in await bench.queue.alerts(run.id) if a.kind == AlertKind.HOST_DOWN]
            if raised:
                break
            await asyncio.sleep(0.05)
        assert raised and raised[0].host == "testhost" and raised[0].cleared_at is None
    finally:
        if ssh_server.process is None:
            await asyncio.to_thread(ssh_server.start)
    await asyncio.wait_for(driving, 180)
    done = await bench.get_run(run.id)
    assert done.state == RunState.COMPLETED, (done.state, done.failure_message)
    alerts = [a for a in await bench.queue.alerts(run.id) if a.kind == AlertKind.HOST_DOWN]
    assert alerts and all(a.cleared_at is not None for a in alerts)


async def test_keep_moving_yields_news_and_stops_cleanly_when_closed(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(make_config())
    prompt = await bench.create_prompt("a busy port", videos(tmp_path, "port"))
    first = await bench.create_run(prompt.id)
    moving = bench.queue.keep_moving()
    news = await asyncio.wait_for(anext(moving), 60)
    assert news.startswith(f"started {first.id} on testhost GPU 0")
    await wait_for_states(bench, [first], {RunState.COMPLETED})
    # A run queued later is picked up by the same driver without being asked.
    second = await bench.create_run(prompt.id, {"seed": 9})
    news = await asyncio.wait_for(anext(moving), 60)
    assert news.startswith(f"started {second.id}")
    await moving.aclose()
    assert (await bench.get_run(first.id)).state == RunState.COMPLETED


async def test_cancelling_batch_runs_stops_the_container_only_when_none_is_left(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("1gpu")
    # The stand-in hangs in diffusion sampling, so only a stop ends the container.
    bench = await bench_for(make_config(scenario="hang", run_timeout=600.0))
    runs = await queue_runs(bench, tmp_path, "an {} in wind", ("oak", "elm", "ash"))
    driving = asyncio.create_task(bench.queue.drive(until_idle=True))
    await wait_for_states(bench, runs, {RunState.RUNNING})
    batch_id = (await bench.get_run(runs[0].id)).batch_id
    host = bench.hosts.get("testhost")
    # One run cancelled: only that run; the container goes on for the others.
    assert (await bench.runs.cancel(runs[0].id)).state == RunState.CANCELLED
    await asyncio.sleep(3)
    assert [c.running for c in await host.docker.list({"cosmos.batch_id": batch_id})] == [True]
    await wait_for_states(bench, runs[1:], {RunState.RUNNING})
    # The last ones cancelled: nothing needs the container, so its GPU is really freed.
    for run in runs[1:]:
        await bench.runs.cancel(run.id)
    await asyncio.wait_for(driving, 60)
    assert [c.running for c in await host.docker.list({"cosmos.batch_id": batch_id})] == [False]
    for run in runs:
        done = await bench.get_run(run.id)
        assert done.state == RunState.CANCELLED and done.outputs == ()


async def test_a_batch_that_runs_past_its_time_limit_is_stopped_and_fails(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("1gpu")
    # timeouts.run is per run: a batch of two may take twice as long.
    bench = await bench_for(make_config(scenario="hang", run_timeout=3.0))
    runs = await queue_runs(bench, tmp_path, "a {} at night", ("cliff", "cove"))
    await asyncio.wait_for(bench.queue.drive(until_idle=True), 120)
    first, second = [await bench.get_run(run.id) for run in runs]
    for done in (first, second):
        assert done.state == RunState.FAILED and done.failure_kind == FailureKind.TIMEOUT, (
            done.state,
            done.failure_message,
        )
    # The batch hung on its first line: that run timed out in the batch; the second line
    # never started there, so it went back in the queue and then timed out on its own.
    assert first.batch_id is not None and second.batch_id is None
    moves = [(e.from_state, e.to_state) for e in second.events]
    assert moves.count((RunState.RUNNING, RunState.QUEUED)) == 1


async def test_verify_fix_downloads_a_batch_runs_lost_output_from_its_own_sample(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    from cosmos_tui.engine.verify import FindingKind, verify

    fake_gpu.set_variant("1gpu")
    bench = await bench_for(make_config())
    runs = await queue_runs(bench, tmp_path, "a {} at noon", ("pier", "dune"))
    await asyncio.wait_for(bench.queue.drive(until_idle=True), 120)
    second = await bench.get_run(runs[1].id)
    assert second.state == RunState.COMPLETED and second.batch_id
    (bench.output_dir(second.id) / "output.mp4").unlink()
    report = await verify(bench, fix=True)
    [finding] = [f for f in report.findings if f.kind == FindingKind.MISSING_OUTPUTS]
    assert finding.subject == second.id and finding.fixed, finding.detail
    # Its own sample came back, not the other run's (the stand-in copies each input).
    restored = (bench.output_dir(second.id) / "output.mp4").read_bytes()
    assert restored == (tmp_path / "dune" / "color.mp4").read_bytes()


async def test_a_batch_whose_driver_died_while_starting_leaves_no_container_behind(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    from cosmos_tui.remote.docker import ContainerSpec

    fake_gpu.set_variant("1gpu")
    bench = await bench_for(make_config())
    runs = await queue_runs(bench, tmp_path, "a {} under rain", ("moor", "fen"))
    # A driver claimed the batch, started its runs, created and started the container,
    # and died before recording it (the runs say starting).
    queue = QueueStore(bench.store)
    claim = await queue.claim(await first_on_gpu0(queue), "dead-driver")
    assert claim is not None and claim.batch_id
    for run in runs:
        await queue.start(run.id, "dead-driver")
        await bench.store.transition(run.id, RunState.STARTING, "uploaded")
    host = bench.hosts.get("testhost")
    labels = {"cosmos.batch_id": claim.batch_id}
    spec = ContainerSpec(run_id=claim.batch_id, image=host.config.docker_image,
                         command=("sleep", "300"), labels=labels)  # fmt: skip
    await host.docker.start(await host.docker.create(spec))

    assert await BatchLauncher(bench.runs.engine).reattach_orphans() == [claim.batch_id]
    assert await host.docker.list(labels) == []
    assert {(await bench.get_run(r.id)).state for r in runs} == {RunState.QUEUED}
    await asyncio.wait_for(bench.queue.drive(until_idle=True), 120)
    await completed(bench, runs)


async def test_a_running_queue_driver_takes_over_a_batch_orphaned_meanwhile(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    from datetime import timedelta

    from cosmos_tui.engine.runlock import RunLock

    fake_gpu.set_variant("1gpu")
    bench = await bench_for(make_config())
    runs = await queue_runs(bench, tmp_path, "a {} at dawn", ("heath", "marsh"))
    # Another driver claimed both as a batch and started them; it still holds their locks.
    queue = QueueStore(bench.store)
    assert await queue.claim(await first_on_gpu0(queue), "other-driver")
    locks = [RunLock(bench.output_dir(r.id)) for r in runs]
    for run, lock in zip(runs, locks, strict=True):
        assert lock.try_acquire()
        await queue.start(run.id, "other-driver")
    stop = asyncio.Event()
    driving = asyncio.create_task(bench.queue.drive(stop=stop, orphan_sweep_s=0.5))
    try:
        # This driver is past its start-up look for orphans once its scheduler beats.
        while not await queue.live_schedulers(timedelta(seconds=60)):
            await asyncio.sleep(0.05)
        assert {(await bench.get_run(r.id)).state for r in runs} == {RunState.UPLOADING}
        for lock in locks:  # the other driver dies
            lock.release()
        await wait_for_states(bench, runs, {RunState.COMPLETED}, seconds=120)
    finally:
        stop.set()
        await asyncio.wait_for(driving, 60)


async def test_a_reconcile_after_a_killed_scheduler_leaves_the_batch_to_the_queue(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("1gpu")
    config = make_config(COSMOS_STANDIN_SPEED="0.3")
    bench = await bench_for(config)
    runs = await queue_runs(bench, tmp_path, "a tide at {}", ("ebb", "flow"))
    with dying_queue_driver(config, tmp_path):
        await wait_for_states(bench, runs, {RunState.RUNNING})
    batch_id = (await bench.get_run(runs[0].id)).batch_id
    assert batch_id
    # The app (or 'cosmos reconcile') starts before any queue driver does.
    report = await bench.runs.reconcile()
    assert report.failed == () and report.dispatched == ()
    assert set(report.batched) == {r.id for r in runs}
    assert not [o for o in report.orphans if o.run_id == batch_id], report.orphans
    for run in runs:
        assert (await bench.get_run(run.id)).state == RunState.RUNNING
    await asyncio.wait_for(bench.queue.drive(until_idle=True), 120)
    await completed(bench, runs)


async def test_a_running_batch_whose_container_is_gone_fails_on_reconcile(
    bench_for, make_config, fake_gpu, docker_daemon, tmp_path: Path
) -> None:
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(make_config(COSMOS_STANDIN_SPEED="0.3"))
    runs = await queue_runs(bench, tmp_path, "a forest of {}", ("moss", "fern"))
    driving = asyncio.create_task(bench.queue.drive(until_idle=True))
    try:
        await wait_for_states(bench, runs, {RunState.RUNNING})
    finally:
        driving.cancel()
        await asyncio.gather(driving, return_exceptions=True)
    batch_id = (await bench.get_run(runs[0].id)).batch_id
    listed = docker_daemon.cli("ps", "-aq", "--filter", f"label=cosmos.batch_id={batch_id}")
    (container,) = listed.stdout.decode().split()
    docker_daemon.cli("rm", "-f", container)  # removed behind our back
    report = await bench.runs.reconcile()
    assert set(report.failed) == {r.id for r in runs} and report.batched == ()
    for run in runs:
        done = await bench.get_run(run.id)
        assert done.state == RunState.FAILED and done.failure_kind == FailureKind.CONTAINER_GONE
        assert "disappeared" in (done.failure_message or "")


async def test_cancelling_the_runs_of_a_batch_whose_driver_died_stops_its_container(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("1gpu")
    # The stand-in hangs in diffusion sampling, so only a stop ends the container.
    config = make_config(scenario="hang", run_timeout=600.0)
    bench = await bench_for(config)
    runs = await queue_runs(bench, tmp_path, "a {} in snow", ("pine", "yew"))
    with dying_queue_driver(config, tmp_path):
        await wait_for_states(bench, runs, {RunState.RUNNING}, seconds=60)
    batch_id = (await bench.get_run(runs[0].id)).batch_id
    assert batch_id
    host = bench.hosts.get("testhost")
    # One run cancelled: the container goes on for the other one.
    assert (await bench.runs.cancel(runs[0].id)).state == RunState.CANCELLED
    await asyncio.sleep(1)
    assert [c.running for c in await host.docker.list({"cosmos.batch_id": batch_id})] == [True]
    assert (await bench.get_run(runs[1].id)).state == RunState.RUNNING
    # The last one cancelled: nothing needs the container, so the cancel stops it.
    assert (await bench.runs.cancel(runs[1].id)).state == RunState.CANCELLED
    assert [c.running for c in await host.docker.list({"cosmos.batch_id": batch_id})] == [False]
    for run in runs:
        done = await bench.get_run(run.id)
        assert done.state == RunState.CANCELLED and done.outputs == ()


async def test_a_stale_claim_cannot_start_a_run_another_scheduler_claimed_since(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    fake_gpu.set_variant("1gpu")
    bench = await bench_for(make_config())
    prompt = await bench.create_prompt("a gull over the pier", videos(tmp_path, "gull"))
    run = await bench.create_run(prompt.id)
    queue = QueueStore(bench.store)
    placement = await first_on_gpu0(queue)
    stale = await queue.claim(placement, "sched-stale")
    assert stale is not None
    # Released (its scheduler looked dead), then claimed by a live scheduler.
    assert await queue.release(stale.run_ids, "sched-stale") == 1
    live = await queue.claim(placement, "sched-live")
    assert live is not None
    launcher = BatchLauncher(bench.runs.engine)
    await launcher.launch(stale)  # the stale scheduler hands over its old claim
    left = await bench.get_run(run.id)
    assert left.state == RunState.QUEUED and left.attempt == 0
    assert await bench.hosts.get("testhost").docker.list({"cosmos.run_id": run.id}) == []
    await launcher.launch(live)  # the live one's claim still holds
    done = await bench.get_run(run.id)
    assert done.state == RunState.COMPLETED and done.attempt == 1, done.failure_message


async def test_an_input_edited_since_its_prompt_fails_only_its_own_run_of_a_batch(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    bench = await batching_bench(bench_for, make_config, fake_gpu)
    runs = await queue_runs(bench, tmp_path, "scene {}", ["kept", "edited", "also kept"])
    edited = tmp_path / "edited" / "color.mp4"
    write_video(edited, b"video of EDITED " * 200)  # same size, other content
    launched: list[Claim] = []
    await drive(bench, launched)
    assert [len(c.runs) for c in launched] == [3]
    await completed(bench, [runs[0], runs[2]])
    failed = await bench.get_run(runs[1].id)
    assert failed.state == RunState.FAILED
    assert str(edited) in failed.failure_message and "changed" in failed.failure_message
    assert "batch failed" not in failed.failure_message


@pytest.mark.parametrize("edited", [("first",), ("second",), ("first", "second")])
async def test_members_sharing_a_video_run_while_one_file_still_holds_it(
    bench_for, make_config, fake_gpu, tmp_path: Path, edited: tuple[str, ...]
) -> None:
    """Two prompts recorded the same video from two folders; some files were edited since.

    What a run sends is the content it recorded (a single run whose content the host
    already holds does not read its file again): while one member's file still holds it,
    both run; when none does, each fails for its own file.
    """
    bench = await batching_bench(bench_for, make_config, fake_gpu)
    runs = []
    for name in ("first", "second"):
        write_video(tmp_path / name / "color.mp4", b"the same frames " * 200)
        prompt = await bench.create_prompt(f"scene {name}", tmp_path / name)
        runs.append(await bench.create_run(prompt.id))
    for name in edited:
        write_video(tmp_path / name / "color.mp4", b"EDITED the frame " * 200)  # same size
    launched: list[Claim] = []
    await drive(bench, launched)
    assert [len(c.runs) for c in launched] == [2]
    if len(edited) == 1:
        await completed(bench, runs)
        return
    for run, name in zip(runs, ("first", "second"), strict=True):
        failed = await bench.get_run(run.id)
        assert failed.state == RunState.FAILED, failed.failure_message
        assert str(tmp_path / name / "color.mp4") in (failed.failure_message or "")


async def test_a_batchs_inputs_go_up_together(
    bench_for, make_config, fake_gpu, tmp_path: Path, upload_overlap: list[int]
) -> None:
    """On a distant host each upload costs round trips: the members' inputs overlap."""
    bench = await batching_bench(bench_for, make_config, fake_gpu)
    runs = await queue_runs(bench, tmp_path, "scene {}", ["a", "b", "c"])
    launched: list[Claim] = []
    await drive(bench, launched)
    assert [len(c.runs) for c in launched] == [3]
    await completed(bench, runs)
    assert upload_overlap == [0, 3]


async def test_a_cancelled_queue_driver_ends_within_one_clean_up_budget_when_the_db_is_locked(
    bench_for, make_config, monkeypatch
) -> None:
    import time
    from datetime import timedelta

    from cosmos_tui.engine import scheduler as scheduler_module
    from cosmos_tui.services import queue as queue_module
    from tests.store.test_store_lock_wait import lock_held_by_another_process

    budget = 0.5
    monkeypatch.setattr(scheduler_module, "CLEANUP_TIMEOUT_S", budget)
    monkeypatch.setattr(queue_module, "CLEANUP_TIMEOUT_S", budget)
    bench = await bench_for(make_config())
    service = QueueService.of(bench)
    driving = asyncio.create_task(service.drive())
    async with asyncio.timeout(30):
        while not await service.queue.live_schedulers(timedelta(seconds=60)):
            await asyncio.sleep(0.05)
    async with lock_held_by_another_process(bench.config.db_path):
        await asyncio.sleep(0.3)
        cancelled_at = time.monotonic()
        driving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await driving
        # Each clean-up step (scheduler, last metrics, recorder) shares the budget.
        assert time.monotonic() - cancelled_at < 3 * budget + 1.5
    assert driving.cancelled()
