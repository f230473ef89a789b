"""Every run goes through the one claim and ends measured, however it was started.

On the real test dockerd with a one-GPU host: several ``cosmos inference`` runs started
at once (each in its own detached worker) never hold GPU 0 together, and a run started
the way the TUI's run form starts one ends with its GPU metrics in ``cosmos show`` and
``cosmos stats``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import datetime

from cosmos_tui.domain import RunState
from tests.lifecycle.conftest import write_config_file
from tests.lifecycle.test_processes import cosmos
from tests.lifecycle.test_resilience import containers_of


def docker_time(text: str) -> datetime:
    """Parse Docker's RFC 3339 time with nanoseconds (Python keeps microseconds)."""
    head, _, rest = text.strip().partition(".")
    fraction = rest.rstrip("Z")[:6].ljust(6, "0")
    return datetime.fromisoformat(f"{head}.{fraction}+00:00")


def container_span(docker_daemon, container_id: str) -> tuple[datetime, datetime]:
    done = docker_daemon.cli(
        "inspect", "-f", "{{.State.StartedAt}} {{.State.FinishedAt}}", container_id
    )
    started, finished = done.stdout.decode().split()
    return docker_time(started), docker_time(finished)


async def test_three_inferences_on_a_one_gpu_host_never_share_gpu_0(
    make_config, tmp_path, video_dir, docker_daemon, fake_gpu
) -> None:
    fake_gpu.set_variant("1gpu")
    config = make_config(COSMOS_STANDIN_SPEED="0.03")
    path = write_config_file(config, tmp_path / "config.toml")
    prompts = []
    for n in range(3):
        created = cosmos(path, "create", "prompt", f"a robot arm {n}", str(video_dir))
        assert created.returncode == 0, created.stderr
        prompts.append(created.stdout.strip())
    done = cosmos(path, "inference", *prompts, "--skip-checks", timeout=240)
    assert done.returncode == 0, done.stderr
    run_ids = [line.split()[0] for line in done.stdout.splitlines() if " started " in line]
    assert len(run_ids) == 3
    spans = []
    for run_id in run_ids:
        shown = json.loads(cosmos(path, "show", run_id, "--json").stdout)
        assert shown["state"] == "completed"
        assert shown["gpus"] == [0]
        (container_id,) = containers_of(docker_daemon, run_id)
        spans.append(container_span(docker_daemon, container_id))
    spans.sort()
    for (_, first_end), (second_start, _) in itertools.pairwise(spans):
        assert first_end <= second_start, f"two containers held GPU 0 at once: {spans}"


async def test_a_run_started_like_the_run_form_ends_with_its_gpu_metrics(
    make_config, tmp_path, video_dir, bench_for, fake_gpu
) -> None:
    fake_gpu.set_variant("1gpu")
    config = make_config(COSMOS_STANDIN_SPEED="0.1")
    path = write_config_file(config, tmp_path / "config.toml")
    bench = await bench_for(config)
    prompt = await bench.create_prompt("a robot arm", video_dir)
    run = await bench.create_run(prompt.id)
    await bench.runs.start(run.id)  # what the run form does: driven by this process
    async for seen in bench.runs.watch(run.id, interval=0.1):
        run = seen
    assert run.state == RunState.COMPLETED, run.failure_message
    run = await bench.get_run(run.id)
    assert run.metrics is not None and run.metrics.samples >= 1
    assert run.metrics.util_peak is not None
    # in a thread: this process's services stay live (their writes hold the lock briefly;
    # a blocked event loop would hold it until the CLI gave up)
    shown = await asyncio.to_thread(cosmos, path, "show", run.id)
    assert "gpu      util" in shown.stdout, shown.stderr
    stats = json.loads((await asyncio.to_thread(cosmos, path, "stats", "--json")).stdout)
    assert stats["energy_wh"] > 0


async def test_a_single_run_leaves_a_gpu_someone_else_uses_alone(
    make_config, video_dir, bench_for, fake_gpu
) -> None:
    """As the queue does: a run started by itself (``cosmos inference``, the run form)
    never gets a GPU another user's process is on, and waits while all of them are."""
    fake_gpu.set_variant("2gpu")
    uuid = "GPU-0000000{i}-1111-2222-3333-44444444444{i}"
    fake_gpu.set_apps([f"4000, {uuid.format(i=0)}, 30000, someone_elses_training"])
    bench = await bench_for(make_config())
    prompt = await bench.create_prompt("a robot arm", video_dir)
    final = await bench.runs.drive((await bench.create_run(prompt.id)).id)
    assert final.state == RunState.COMPLETED, final.failure_message
    assert final.gpus == (1,)
    fake_gpu.set_apps([f"{4000 + i}, {uuid.format(i=i)}, 30000, training" for i in (0, 1)])
    run = await bench.create_run(prompt.id)
    driving = asyncio.create_task(bench.runs.drive(run.id))
    for _ in range(100):
        waiting = await bench.get_run(run.id)
        if waiting.progress is not None and waiting.progress.phase == "waiting for a free GPU":
            break
        await asyncio.sleep(0.1)
    assert waiting.state == RunState.QUEUED and waiting.gpus in (None, ())
    fake_gpu.set_apps([])  # their jobs ended
    final = await asyncio.wait_for(driving, 90)
    assert final.state == RunState.COMPLETED, final.failure_message
