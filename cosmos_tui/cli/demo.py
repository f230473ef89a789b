"""``cosmos demo``: the whole product against a SIMULATED GPU HOST on 127.0.0.1.

The sandbox (:mod:`cosmos_tui.sandbox`) runs in a child process that starts while this
one imports the TUI: a real SSH server, a Docker Engine API and simulated GPUs. The demo
writes a workspace whose config points at it like any other host, adds sample prompts,
and opens the TUI (or, with ``--headless``, runs a scenario and prints a summary).
Quitting stops the sandbox and every process it started.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cosmos_tui.cli.context import echo, fail, guard
from cosmos_tui.cli.terminal import exit_on_termination, run_tui
from cosmos_tui.config import load_config
from cosmos_tui.sandbox.options import SandboxOptions
from cosmos_tui.sandbox.process import SandboxProcess, SandboxProcessError
from cosmos_tui.sandbox.workspace import DemoWorkspace, add_sample_prompts

if TYPE_CHECKING:
    from cosmos_tui.config import Config
    from cosmos_tui.sandbox.options import SandboxHandle

# The stand-in's delays at --speed 1 (its own scale 1 is about 20 s a run): about 35 s.
BASE_TIME_SCALE = 1.75
BANNER = "SIMULATED GPU HOST"
WELCOME = (
    "No real GPU is used: the host on 127.0.0.1 replays Cosmos-Transfer1 and returns your "
    "input video.\n"
    "Enter on a prompt: new run (ctrl+s starts it). Tab: next pane; the Logs pane follows "
    "the selected run.\n"
    "o on a finished run: play its output. N: new prompt (sample videos in {inputs}). "
    "?: every key. q: quit."
)


@click.command("demo")
@click.option(
    "--workspace",
    type=click.Path(path_type=Path, file_okay=False),
    help="Keep the demo's config, database and outputs here (default: a throwaway "
    "folder removed on exit).",
)
@click.option(
    "--gpus",
    type=click.IntRange(1, 16),
    default=2,
    show_default=True,
    help="Number of simulated GPUs.",
)
@click.option(
    "--speed",
    type=click.FloatRange(0.1, 1000),
    default=1.0,
    show_default=True,
    help="Run faster (2 = twice as fast); a run takes about 35 s at 1.",
)
@click.option(
    "--flaky-ssh", is_flag=True, help="Drop the SSH connection now and then, to watch reconnects."
)
@click.option(
    "--oom-rate",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Share of runs that fail with CUDA out of memory.",
)
@click.option(
    "--smi-replay",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Make the simulated host's nvidia-smi replay this capture: a CSV whose first row "
    "names the --query-gpu fields, then one block of rows per tick (blank line between "
    "blocks); see docs/sandbox.md.",
)
@click.option(
    "--smi-tick",
    type=click.FloatRange(0.05, 3600),
    default=1.0,
    show_default=True,
    help="Seconds per block of --smi-replay.",
)
@click.option(
    "--headless",
    is_flag=True,
    help="No UI: run a scenario (runs, a batch, a cancel, an OOM), print a summary.",
)
@click.option(
    "--hostile",
    is_flag=True,
    help="A hostile host (lying names, planted links, greetings, a second installation's "
    "containers); with --headless, exit 0 only when everything was contained.",
)
@click.option(
    "--cluster",
    type=click.Choice(["ray"]),
    help="Also run a local Ray cluster (2 nodes, 2 simulated GPUs each) whose jobs run "
    "the simulated host's model; with --headless: its scenario, a node lost mid-run.",
)
@click.option(
    "--bench-first-frame",
    is_flag=True,
    hidden=True,
    help="Exit after the first frame and print the start-up time (bench/demo.py).",
)
def demo(
    workspace: Path | None,
    gpus: int,
    speed: float,
    flaky_ssh: bool,
    oom_rate: float,
    smi_replay: Path | None,
    smi_tick: float,
    headless: bool,
    hostile: bool,
    cluster: str | None,
    bench_first_frame: bool,
) -> None:
    """Try cosmos-tui on a SIMULATED GPU HOST: no server, no GPU, one command.

    Creates a workspace with sample prompts, starts the simulated host on 127.0.0.1
    (SSH, Docker Engine API, N GPUs) and opens the TUI. Everything goes through the same
    SSH and Docker code paths as a real host.
    """
    started = time.perf_counter()
    if smi_replay is not None:
        # lazy: only with --smi-replay; imports here delay the sandbox's start
        from cosmos_tui.sandbox.smi_replay import ReplayError, SmiReplay

        try:
            gpus = len(SmiReplay.load(smi_replay, smi_tick).gpus())
        except ReplayError as exc:
            fail(f"--smi-replay: {exc}")
    throwaway = workspace is None
    root = Path(tempfile.mkdtemp(prefix="cosmos-demo-")) if workspace is None else workspace
    space = DemoWorkspace(root.expanduser().resolve())
    options = SandboxOptions(
        gpus=gpus,
        time_scale=BASE_TIME_SCALE / speed,
        oom_rate=oom_rate,
        flaky_ssh=flaky_ssh,
        flaky_interval=max(30.0 / speed, 1.5),
        hostile=hostile,
        smi_replay=str(smi_replay.resolve()) if smi_replay is not None else None,
        smi_replay_tick_s=smi_tick,
    )
    space.root.mkdir(parents=True, exist_ok=True)
    log_path = space.root / "demo.log"
    _log_to_file(log_path)
    sandbox = SandboxProcess(options, space.ssh_dir, log_path)
    exit_on_termination()  # SystemExit unwinds to the ``finally`` that stops the sandbox
    try:
        sandbox.start()
        space.copy_samples()
        if not headless:
            _import_ui()  # while the sandbox starts in its own process
        try:
            sandbox.wait_ready()
        except SandboxProcessError as exc:
            fail(str(exc))
        config = prepare_workspace(space, sandbox)
        if cluster is not None:
            with_ray_cluster(config, space, sandbox, headless)
            return
        if headless:
            # lazy: the scenarios import the services (SQLAlchemy); headless only
            from cosmos_tui.sandbox.hostile_scenario import run_hostile_scenario
            from cosmos_tui.sandbox.scenario import run_scenario

            scenario = run_hostile_scenario if hostile else run_scenario
            code = guard(lambda: scenario(config, space, sandbox, echo=click.echo))
            if code:
                sys.exit(code)
            return
        app = build_demo_app(config, space, sandbox)
        first_frame: list[float] = []
        pilot = _first_frame_reporter(first_frame) if bench_first_frame else None
        run_tui(app, auto_pilot=pilot)
        if first_frame:
            echo(
                f"first frame: {first_frame[0] - started:.3f} s after the command started, "
                f"{first_frame[1] - _process_start():.3f} s after exec",
                err=True,
            )
    finally:
        sandbox.stop()
        if throwaway:
            shutil.rmtree(space.root, ignore_errors=True)
            if headless:
                echo("(a throwaway workspace: removed; --workspace DIR keeps it)", err=True)
        elif not bench_first_frame:
            echo(f"demo workspace kept in {space.root} (log: demo.log)", err=True)


def with_ray_cluster(
    config: Config, space: DemoWorkspace, sandbox: SandboxHandle, headless: bool
) -> None:
    """Start the local Ray cluster; run its scenario (headless) or the TUI with it."""
    # lazy: Ray (an optional extra) and the scenario load only with --cluster
    from cosmos_tui.remote.ray_jobs import require_ray
    from cosmos_tui.sandbox.ray_scenario import local_cluster, run_cluster_scenario, with_cluster

    guard(lambda: require_ray("the demo's"))  # without Ray: what to install, exit 1
    echo("starting a local Ray cluster (about 20 s)...", err=True)
    with local_cluster() as cluster:
        config = with_cluster(config, sandbox, cluster.address, hosts=not headless)
        if headless:
            code = run_cluster_scenario(config, space, sandbox, cluster, echo=click.echo)
            if code:
                sys.exit(code)
            return
        run_tui(build_demo_app(config, space, sandbox))


def _import_ui() -> None:
    """Import the TUI and the services now (the slow part of the start-up)."""
    # lazy: Textual and SQLAlchemy (~1 s) load here, while the sandbox starts
    import cosmos_tui.services
    import cosmos_tui.ui.app
    import cosmos_tui.ui.facade  # noqa: F401


def prepare_workspace(space: DemoWorkspace, sandbox: SandboxHandle) -> Config:
    """Copy the sample videos, write the config for the running sandbox and load it."""
    space.copy_samples()
    host = sandbox.host_config()
    path = space.write_config(host, sandbox.options.gpus)
    return guard(lambda: load_config(path, environ={}))


def build_demo_app(config: Config, space: DemoWorkspace, sandbox: SandboxHandle) -> Any:
    """Return the TUI wired to the sandbox's host, titled as a simulation."""
    # lazy: Textual and SQLAlchemy; _import_ui loads them while the sandbox starts
    from cosmos_tui.services import Workbench
    from cosmos_tui.ui.app import CosmosApp
    from cosmos_tui.ui.facade import FacadeAdapter

    @asynccontextmanager
    async def services() -> AsyncIterator[Any]:
        async with Workbench.open(config) as bench:
            await add_sample_prompts(bench, space)
            # the sample image sequence renders in the background (about a second)
            rendering = asyncio.create_task(asyncio.to_thread(space.render_sample_sequence))
            app.notify(WELCOME.format(inputs=space.inputs_dir), title=BANNER, timeout=30)
            yield FacadeAdapter(bench)
            await rendering

    app = CosmosApp(services, config)
    app.title = f"cosmos demo - {BANNER}"
    app.sub_title = (
        f"{sandbox.options.gpus} simulated GPUs on 127.0.0.1:{sandbox.port}; no real GPU is used"
    )
    return app


def _first_frame_reporter(times: list[float]) -> Any:
    """Return an auto-pilot that notes when the first frame is drawn, then quits.

    ``perf_counter()`` and ``time()`` at the first frame go into ``times``. A marker is
    also written straight to the terminal at that moment (Textual captures Python-level
    output while it runs), so that bench/demo.py can time it from outside.
    """

    async def report(pilot: Any) -> None:
        drawn = asyncio.Event()
        pilot.app.call_after_refresh(drawn.set)
        await drawn.wait()
        times.extend((time.perf_counter(), time.time()))
        assert sys.__stderr__ is not None  # the terminal the TUI draws on
        os.write(sys.__stderr__.fileno(), b"\x1b[0m[first-frame]")
        await pilot.app.action_quit()

    return report


def _log_to_file(path: Path) -> None:
    """Send log records to the workspace's demo.log, not to the terminal the TUI draws on."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(threadName)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("cosmos_tui").setLevel(logging.INFO)


def _process_start() -> float:
    """Wall time when this process started (Linux /proc; else now)."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return time.time()
    return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")
