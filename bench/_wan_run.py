"""A run over the shaped path, for bench/wan.py: overhead and log lag, each beside its anchor.

- **Run overhead**: a run of the Cosmos stand-in (no delays, inputs already on the host
  after a warm-up run) driven by the real lifecycle through the shaped link. Measured from
  its timeline and the container's own start and finish times: claim (uploading) to the
  container started, and the container's exit to outputs verified (completed). Anchor: a
  plain ``ssh host docker run --rm IMAGE true`` by hand over the same link (connect, create,
  start, wait, remove), and the same in round trips.
- **Log lag at 5,000 lines/s**: a container writes stamped lines (bench/logs.py's writer,
  then the stand-in); the lag is from the write to the line arriving from
  ``bench.runs.follow_log`` (what the TUI's Logs pane reads). Anchor: the same container's
  lines read at the same time by ``ssh host docker logs --follow`` by hand. Only lines
  written after both readers started count, for both. Then, in a second run with its own
  anchor, the same to the frame that shows each line in the real TUI's Logs pane.

Not a test module; needs root like the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import pwd
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from _ssh_host import host_config, openssh_options
from logs import WRITER

from cosmos_tui.config import Config, PathsConfig, RetryConfig, TimeoutsConfig
from cosmos_tui.domain import RunState
from cosmos_tui.sandbox.standin import standin_script_path
from cosmos_tui.services import Workbench
from tests.fixtures.hosts import TEST_USER, SshServer, make_image_builder

LOG_RATE = 5000
LOG_SECONDS = 6
WATCHDOG_S = 180.0
TAG = "cosmos-bench/wan-run:1"


def build_image(docker: Any) -> str:
    """The stand-in image with bench/logs.py's stamped-line writer in front of it."""
    files = {"/bin/torchrun": WRITER, "/bin/standin": standin_script_path().read_text()}
    return make_image_builder(docker)(TAG, files, cmd=["torchrun"])


def _checkout() -> None:
    """The test user's cosmos-transfer1 checkout (the stand-in checks PYTHONPATH names it)."""
    script = Path(pwd.getpwnam(TEST_USER).pw_dir) / "cosmos-transfer1/cosmos_transfer1"
    script = script / "diffusion/inference/transfer.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    if not script.exists():
        script.write_text("# stand-in checkout\n")


def _config(
    server: SshServer, port: int, docker: Any, image: str, work: Path, **env: str
) -> Config:
    host = host_config(server, port=port, remote_tool_dir=str(work / "tool-run"),
                       docker_image=image, docker_socket=str(docker.socket_path),
                       gpu_request=False, hf_cache_dir=None)  # fmt: skip
    host = dataclasses.replace(host, env={"COSMOS_STANDIN_SPEED": "0", **env})
    return Config(
        hosts=[host],
        timeouts=TimeoutsConfig(run=600.0, cancel_grace=2.0, command=60.0, connect=30.0),
        retry=RetryConfig(max_attempts=3, backoff_base=0.2, backoff_max=1.0),
        paths=PathsConfig(data_dir=str(work / "data-run")),
    )


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


class HandFollower(threading.Thread):
    """``ssh host docker logs --follow CONTAINER`` by hand; records each stamped line's lag."""

    def __init__(self, argv: list[str]) -> None:
        super().__init__(daemon=True)
        self.argv = argv
        self.lags: list[tuple[float, float]] = []  # (stamp, lag)
        self.process: subprocess.Popen[bytes] | None = None

    def run(self) -> None:
        self.process = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            if raw.startswith(b"BENCH seq="):
                stamp = float(raw.split(b" ")[2][2:])
                self.lags.append((stamp, time.clock_gettime(time.CLOCK_BOOTTIME) - stamp))


async def measure_run(
    server: SshServer, port: int, docker: Any, image: str, work: Path, rtt_ms: float
) -> dict[str, Any]:
    """Run overhead and log lag over the link at ``port``; each with its anchor."""
    _checkout()
    (work / "tool-run").mkdir(exist_ok=True)
    user = pwd.getpwnam(TEST_USER)
    import os

    os.chown(work / "tool-run", user.pw_uid, user.pw_gid)
    videos = work / "run-videos"
    videos.mkdir(exist_ok=True)
    # a real video: create_prompt checks every input (frames, fps, resolution)
    import shutil

    import cosmos_tui.sandbox

    assets = Path(cosmos_tui.sandbox.__file__).parent / "assets"
    shutil.copy(assets / "street.mp4", videos / "color.mp4")
    ssh = ["ssh", *openssh_options(server, port), f"{server.user}@127.0.0.1"]
    docker_cli = ["docker", "-H", f"unix://{docker.socket_path}"]
    rtt = rtt_ms / 1000 if rtt_ms else None

    # Run overhead: a warm-up run (inputs uploaded), then measured runs.
    quiet = _config(server, port, docker, image, work, BENCH_RATE="20", BENCH_SECONDS="0")
    starts, ends, totals, noticed = [], [], [], []
    async with _watchdog("the overhead runs"), Workbench.open(quiet) as bench:
        prompt = await bench.create_prompt("wan overhead", videos)
        host = bench.hosts.get(quiet.hosts[0].name)
        for index in range(3):
            run = await bench.create_run(prompt.id, {"seed": index})
            final = await bench.runs.drive(run.id)
            assert final.state == RunState.COMPLETED, final.failure_message
            if index == 0:
                continue
            times = {e.to_state: e.at for e in final.events}
            info = await host.docker.inspect(final.container_id or "")
            assert info.started_at is not None and info.finished_at is not None
            starts.append((info.started_at - times[RunState.UPLOADING]).total_seconds())
            ends.append((times[RunState.COMPLETED] - info.finished_at).total_seconds())
            noticed.append((times[RunState.DOWNLOADING] - info.finished_at).total_seconds())
            totals.append(starts[-1] + ends[-1])
    hand = []
    for _ in range(3):
        began = time.perf_counter()
        subprocess.run([*ssh, *docker_cli, "run", "--rm", image, "true"], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        hand.append(time.perf_counter() - began)

    # Log lag at LOG_RATE lines/s, beside `ssh host docker logs --follow` by hand: to
    # what bench.runs.follow_log yields, then (another run) to the TUI's Logs pane.
    loud = _config(server, port, docker, image, work, BENCH_RATE=str(LOG_RATE),
                   BENCH_SECONDS=str(LOG_SECONDS))  # fmt: skip
    ours, hand_lags = await _log_lags(loud, videos, [*ssh, *docker_cli], rtt, _follow_log)
    pane, pane_hand_lags = await _log_lags(loud, videos, [*ssh, *docker_cli], rtt, _pane)
    return {
        "run_start_overhead_s": round(statistics.median(starts), 3),
        "run_end_overhead_s": round(statistics.median(ends), 3),
        "run_exit_noticed_s": round(statistics.median(noticed), 3),
        "run_overhead_s": round(statistics.median(totals), 3),
        "run_overhead_round_trips": None
        if rtt is None
        else round(statistics.median(totals) / rtt, 1),
        "hand_docker_run_s": round(min(hand), 3),
        "hand_docker_run_round_trips": None if rtt is None else round(min(hand) / rtt, 1),
        "log_rate_lines_s": LOG_RATE,
        "log_lines_counted": len(ours),
        "log_lag_p50_ms": round(_percentile(ours, 0.5)),
        "log_lag_p99_ms": round(_percentile(ours, 0.99)),
        "hand_log_lines_counted": len(hand_lags),
        "hand_log_lag_p50_ms": round(_percentile(hand_lags, 0.5)),
        "hand_log_lag_p99_ms": round(_percentile(hand_lags, 0.99)),
        "pane_log_lines_counted": len(pane),
        "pane_log_lag_p50_ms": round(_percentile(pane, 0.5)),
        "pane_log_lag_p99_ms": round(_percentile(pane, 0.99)),
        "pane_hand_log_lag_p50_ms": round(_percentile(pane_hand_lags, 0.5)),
        "pane_hand_log_lag_p99_ms": round(_percentile(pane_hand_lags, 0.99)),
    }


Reader = Callable[[Workbench, Config, str, list[tuple[float, float]]], Awaitable[None]]


async def _log_lags(
    config: Config, videos: Path, docker_over_ssh: list[str], rtt: float | None, read: Reader
) -> tuple[list[float], list[float]]:
    """One loud run: each stamped line's lag in ms as ``read`` sees it, and by hand.

    ``read(bench, config, run_id, lags)`` appends (stamp, lag) until the run ends. Only
    lines written after both readers started count, for both.
    """
    ours: list[tuple[float, float]] = []
    async with _watchdog("a log lag run"), Workbench.open(config) as bench:
        prompt = await bench.create_prompt("wan log lag", videos)
        run = await bench.create_run(prompt.id)
        await bench.runs.start(run.id)
        while (current := await bench.get_run(run.id)).container_id is None:
            await asyncio.sleep(0.05)
        follower = HandFollower([*docker_over_ssh, "logs", "--follow", current.container_id])
        follower.start()
        both_from = time.clock_gettime(time.CLOCK_BOOTTIME) + 1.0 + 2 * (rtt or 0)
        await read(bench, config, run.id, ours)
        final = await bench.get_run(run.id)
        follower.join(30)
        if follower.process is not None and follower.process.poll() is None:
            follower.process.kill()
    assert final.state == RunState.COMPLETED, final.failure_message
    return (
        [lag * 1000 for stamp, lag in ours if stamp >= both_from],
        [lag * 1000 for stamp, lag in follower.lags if stamp >= both_from],
    )


@contextlib.asynccontextmanager
async def _watchdog(what: str, after_s: float = WATCHDOG_S) -> AsyncIterator[None]:
    """Print every asyncio task's stack to stderr if ``what`` takes over ``after_s``.

    A bench run once hung after its runs had ended, in the event loop, deaf to Ctrl+C
    (2026-12-07, not reproduced since): this says where, should it happen again.
    """

    async def bark() -> None:
        await asyncio.sleep(after_s)
        print(f"[watchdog] {what} has taken over {after_s:g} s; tasks:", file=sys.stderr)
        for task in asyncio.all_tasks():
            print(f"--- {task!r}"[:400], file=sys.stderr)
            task.print_stack(limit=30, file=sys.stderr)
        sys.stderr.flush()

    dog = asyncio.create_task(bark())
    try:
        yield
    finally:
        dog.cancel()


def _stamp(line: str) -> float | None:
    """The write time a stamped line carries (bench/logs.py's writer), None for others."""
    return float(line.split()[2][2:]) if line.startswith("BENCH seq=") else None


async def _follow_log(
    bench: Workbench, config: Config, run_id: str, lags: list[tuple[float, float]]
) -> None:
    """Lag to what ``bench.runs.follow_log`` yields (what the Logs pane reads)."""
    async for batch in bench.runs.follow_log(run_id, poll_seconds=0.05):
        now = time.clock_gettime(time.CLOCK_BOOTTIME)
        lags.extend((stamp, now - stamp) for line in batch.lines if (stamp := _stamp(line)))


async def _pane(
    bench: Workbench, config: Config, run_id: str, lags: list[tuple[float, float]]
) -> None:
    """Lag to the frame that shows each line in the real TUI's Logs pane.

    The app (as ``cosmos tui`` builds it, its own services on the same database) follows
    the run as when it is picked in the Runs pane; a line counts once the pane has
    written it to its view and the screen has refreshed after that.
    """
    from cosmos_tui.ui.widgets.logs import LogsPane
    from tests.wan.keys import app_for

    original = LogsPane.flush

    def flush(pane: LogsPane) -> None:
        stamps = [stamp for line in pane.pending if (stamp := _stamp(line))]
        original(pane)
        if stamps:

            def drawn() -> None:
                now = time.clock_gettime(time.CLOCK_BOOTTIME)
                lags.extend((stamp, now - stamp) for stamp in stamps)

            pane.app.call_after_refresh(drawn)

    LogsPane.flush = flush  # type: ignore[method-assign]
    try:
        app = app_for(config)
        async with app.run_test(size=(120, 40)) as pilot:
            while app.services is None:
                await pilot.pause(0.05)
            app.main_screen.logs.show_run(await bench.get_run(run_id))
            while not (await bench.get_run(run_id)).state.is_terminal:
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # the last lines reach the pane
            await pilot.press("q")
    finally:
        LogsPane.flush = original  # type: ignore[method-assign]


def print_run(figures: dict[str, Any]) -> None:
    """The run figures of one link, each beside its anchor."""
    print(
        f"run overhead: {figures['run_overhead_s']:.2f} s = {figures['run_overhead_round_trips']}"
        f" RTT (claim -> container started {figures['run_start_overhead_s']:.2f} s, exit -> "
        f"outputs verified {figures['run_end_overhead_s']:.2f} s, of which exit noticed "
        f"{figures['run_exit_noticed_s']:.2f} s) | ssh host docker run --rm "
        f"by hand: {figures['hand_docker_run_s']:.2f} s = "
        f"{figures['hand_docker_run_round_trips']} RTT"
    )
    print(
        f"log lag at {figures['log_rate_lines_s']} lines/s: ours p50 "
        f"{figures['log_lag_p50_ms']} ms, p99 {figures['log_lag_p99_ms']} ms "
        f"({figures['log_lines_counted']} lines) | ssh host docker logs -f by hand: p50 "
        f"{figures['hand_log_lag_p50_ms']} ms, p99 {figures['hand_log_lag_p99_ms']} ms "
        f"({figures['hand_log_lines_counted']} lines)"
    )
    print(
        f"log lag to the TUI's Logs pane (drawn): p50 {figures['pane_log_lag_p50_ms']} ms, "
        f"p99 {figures['pane_log_lag_p99_ms']} ms ({figures['pane_log_lines_counted']} lines) "
        f"| docker logs -f by hand, same run: p50 {figures['pane_hand_log_lag_p50_ms']} ms, "
        f"p99 {figures['pane_hand_log_lag_p99_ms']} ms"
    )
