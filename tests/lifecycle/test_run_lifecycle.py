"""One run end to end against the real sshd + dockerd, with the stand-in as the model."""

from __future__ import annotations

import asyncio
import hashlib

from cosmos_tui.domain import FailureKind, Progress, RunState
from cosmos_tui.engine.logs import clean_lines, read_log_lines
from tests.conftest import write_video


def docker_log_lines(docker_daemon, container_id: str) -> list[str]:
    done = docker_daemon.cli("logs", container_id)
    # docker logs prints stdout then stderr separately; compare as multisets per stream
    return done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")


def split_clean(text: str) -> list[str]:
    lines: list[str] = []
    for raw in text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"):
        lines.extend(clean_lines(raw))
    return lines


async def test_complete_run_downloads_verified_outputs(make_config, bench_for, video_dir,
                                                       docker_daemon) -> None:  # fmt: skip
    bench = await bench_for(make_config())
    prompt = await bench.create_prompt("a robot arm stacks cubes", video_dir)
    run = await bench.create_run(prompt.id, {"num_steps": 7})
    final = await bench.runs.drive(run.id)
    assert final.state == RunState.COMPLETED, final.failure_message
    states = [e.to_state for e in final.events]
    assert states == [RunState.QUEUED, RunState.UPLOADING, RunState.STARTING, RunState.RUNNING,
                      RunState.DOWNLOADING, RunState.COMPLETED]  # fmt: skip
    out = bench.output_dir(run.id)
    video = (out / "output.mp4").read_bytes()
    color = (video_dir / "color.mp4").read_bytes()
    assert hashlib.sha256(video).hexdigest() == hashlib.sha256(color).hexdigest()
    assert (out / "output.txt").read_text().strip() == "a robot arm stacks cubes"
    assert set(final.outputs) >= {
        "output.mp4",
        "output.txt",
        "vis_input_control.mp4",
        "edge_input_control.mp4",
        "seg_input_control.mp4",
        "run.log",
    }
    assert "depth_input_control.mp4" not in final.outputs  # depth came precomputed
    assert final.progress is not None and final.progress.percent == 100.0
    assert final.exit_code == 0 and final.failure_kind is None
    log = read_log_lines(out / "run.log")
    assert any("Saved video to /cosmos-tui/run/output/output.mp4" in line for line in log)
    stdout, stderr = docker_log_lines(docker_daemon, final.container_id)
    assert sorted(log) == sorted(split_clean(stdout) + split_clean(stderr))
    # the spec points inside the container and the container carries our labels
    assert final.spec["input_video_path"].startswith("/cosmos-tui/inputs/")
    assert final.spec["depth"]["input_control"].startswith("/cosmos-tui/inputs/")
    labels = docker_daemon.cli("inspect", "-f", "{{json .Config.Labels}}", final.container_id)
    assert f'"cosmos.run_id":"{run.id}"' in labels.stdout.decode()


async def test_second_run_skips_uploads_and_keeps_the_first_runs_files(
    make_config, bench_for, video_dir
) -> None:
    bench = await bench_for(make_config())
    prompt = await bench.create_prompt("first", video_dir)
    first = await bench.runs.drive((await bench.create_run(prompt.id)).id)
    second = await bench.runs.drive((await bench.create_run(prompt.id, {"seed": 2})).id)
    assert first.state == second.state == RunState.COMPLETED
    assert (bench.output_dir(first.id) / "output.mp4").exists()
    assert (bench.output_dir(second.id) / "output.mp4").exists()
    assert bench.output_dir(first.id) != bench.output_dir(second.id)


async def test_failure_detail_has_kind_fix_and_context(make_config, bench_for, video_dir) -> None:
    bench = await bench_for(make_config("oom"))
    prompt = await bench.create_prompt("too big", video_dir)
    final = await bench.runs.drive((await bench.create_run(prompt.id)).id)
    assert final.state == RunState.FAILED
    assert final.failure_kind == FailureKind.GPU_OOM
    assert final.exit_code == 1
    failure = await bench.runs.failure(final.id)
    assert failure is not None and "--gpus" in failure.message
    assert any("CUDA out of memory" in line for line in failure.context)
    assert final.attempt == 1  # a user error is never retried


async def test_flood_of_100000_lines_arrives_whole(make_config, bench_for, video_dir,
                                                   docker_daemon) -> None:  # fmt: skip
    bench = await bench_for(make_config("flood"))
    prompt = await bench.create_prompt("a prompt", video_dir)
    run = await bench.create_run(prompt.id)
    batches: list[int] = []

    async def subscribe() -> None:
        async for batch in bench.runs.follow_log(run.id):
            assert batch.first_line == sum(batches)
            batches.append(len(batch.lines))

    subscriber = asyncio.create_task(subscribe())
    final = await bench.runs.drive(run.id)
    await asyncio.wait_for(subscriber, 30)
    assert final.state == RunState.COMPLETED
    local = read_log_lines(bench.runs.log_path(run.id))
    flood = [line for line in local if "flood line" in line]
    assert len(flood) == 100_000 == len(set(flood))
    stdout, stderr = docker_log_lines(docker_daemon, final.container_id)
    assert sorted(local) == sorted(split_clean(stdout) + split_clean(stderr))
    assert sum(batches) == len(local) and max(batches) <= 200


async def test_eta_comes_from_earlier_runs_with_the_same_parameters(
    make_config, bench_for, video_dir, monkeypatch
) -> None:
    from cosmos_tui.engine import watch

    expected: list[float | None] = []  # the typical duration each run's tracker was given

    class Recording(watch.ProgressTracker):
        def __init__(self, parser, started_at: float, expected_total: float | None) -> None:
            expected.append(expected_total)
            super().__init__(parser, started_at, expected_total)

    monkeypatch.setattr(watch, "ProgressTracker", Recording)
    bench = await bench_for(make_config(COSMOS_STANDIN_SPEED="0.3"))
    prompt = await bench.create_prompt("a prompt", video_dir)
    stored: list[tuple[str, dict]] = []  # every progress the driver stores, in order
    update_run = bench.store.update_run

    async def recording(run_id: str, **fields):
        if "progress_percent" in fields:
            stored.append((run_id, fields))
        await update_run(run_id, **fields)

    bench.store.update_run = recording  # a poll could miss the first seconds under load

    async def drive(run_id: str) -> tuple[float | None, list[Progress]]:
        """Drive the run; return its tracker's typical duration and its stored progress."""
        final = await bench.runs.drive(run_id)
        assert final.state == RunState.COMPLETED
        running = [
            Progress(f["progress_phase"], f["progress_percent"], f["eta_seconds"])
            for r, f in stored
            if r == run_id and "eta_seconds" in f and f["progress_phase"] != "done"
        ]
        assert running, "no progress was stored while it ran"
        return expected[-1], running

    first = (await bench.create_run(prompt.id)).id
    typical, blind = await drive(first)
    assert typical is None  # no history yet: the ETA waits for 5 percent
    assert all(p.eta_seconds is None for p in blind if p.percent < 5)
    took = (await bench.get_run(first)).duration_seconds
    typical, informed = await drive((await bench.create_run(prompt.id, {"seed": 5})).id)
    assert typical is not None and took is not None and abs(typical - took) < 1.0
    assert all(p.eta_seconds is not None for p in informed)  # from the first store on
    assert 0.0 <= informed[0].eta_seconds <= typical


async def test_a_run_refuses_an_input_edited_after_the_prompt_was_recorded(
    make_config, bench_for, video_dir
) -> None:
    bench = await bench_for(make_config())
    prompt = await bench.create_prompt("edited later", video_dir)
    color = video_dir / "color.mp4"
    write_video(color, b"A REAL ENOUGH VIDEO " * 500)  # same size, other content
    final = await bench.runs.drive((await bench.create_run(prompt.id)).id)
    assert final.state == RunState.FAILED
    assert str(color) in final.failure_message and "changed" in final.failure_message
    assert final.attempt == 1  # not retried: the user has to act


def _plant_root_output(remote_tool_dir: str, run_id: str, *, as_file: bool) -> None:
    """Make the run's folder root's (sticky, writable by all) with a root-owned ``output``
    the ssh user cannot remove: a file (cannot become a folder) or a folder with a file."""
    import os
    from pathlib import Path

    run_dir = Path(remote_tool_dir) / "runs" / run_id
    run_dir.mkdir(parents=True)
    os.chmod(run_dir, 0o1777)
    if as_file:
        (run_dir / "output").write_text("root's\n")
    else:
        (run_dir / "output" / "stale").mkdir(parents=True)
        (run_dir / "output" / "stale" / "left.txt").write_text("root's\n")


async def test_an_output_folder_that_cannot_be_made_fails_the_run_clearly(
    make_config, bench_for, video_dir, remote_tool_dir, docker_daemon
) -> None:
    bench = await bench_for(make_config())
    prompt = await bench.create_prompt("no room", video_dir)
    run = await bench.create_run(prompt.id)
    _plant_root_output(remote_tool_dir, run.id, as_file=True)
    final = await bench.runs.drive(run.id)
    assert final.state == RunState.FAILED
    assert final.container_id is None  # nothing was started
    message = final.failure_message or ""
    assert f"could not make {remote_tool_dir}/runs/{run.id}/output" in message
    assert "File exists" in message and "tool folder" in message
    assert run.id not in docker_daemon.cli("ps", "-a", "--format", "{{.Labels}}").stdout.decode()


async def test_files_an_earlier_container_left_as_root_do_not_stop_the_run(
    make_config, bench_for, video_dir, remote_tool_dir, caplog
) -> None:
    import logging

    bench = await bench_for(make_config())
    prompt = await bench.create_prompt("left behind", video_dir)
    run = await bench.create_run(prompt.id)
    _plant_root_output(remote_tool_dir, run.id, as_file=False)
    with caplog.at_level(logging.WARNING, logger="cosmos_tui.engine.lifecycle"):
        final = await bench.runs.drive(run.id)
    assert final.state == RunState.COMPLETED, final.failure_message
    assert f"could not clear {remote_tool_dir}/runs/{run.id}/output" in caplog.text
    assert "output.mp4" in final.outputs
