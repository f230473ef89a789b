"""Snapshots of the main states at 120x40 and 80x24 (fixed clock, fixed ids, fake streams)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from cosmos_tui.domain import HostState, HostStatus, LogBatch
from tests.ui.conftest import Harness, ready, settle
from tests.ui.conftest import populated as _populate
from tests.ui.fakes import FAIL_LINES, LOG_LINES, sample

SIZES = [(120, 40), (80, 24)]


async def _hosts_and_gpus(h: Harness, pilot: Any, down: str | None = None) -> None:
    services = h.services
    for host in h.services.hosts:
        if host == down:
            status = HostStatus(host, HostState.DOWN, reason="ssh: connection refused (port 22)")
        else:
            status = HostStatus(host, HostState.CONNECTED, latency_ms=11.0)
        services.host_stream.put(status)
    for tick in range(60):
        for gpu in (0, 1):
            utilization = 15 + (tick * 7 + gpu * 40) % 80 if gpu == 1 else 3.0
            services.gpu_stream.put(
                sample("gpu-a", gpu, h.clock.now, utilization, 12000 + gpu * 40000, 55 + gpu * 12)
            )
    await settle(pilot)
    h.app.main_screen.gpus.redraw_dirty()
    await pilot.pause()


async def empty(h: Harness, pilot: Any, tmp_path: Path) -> None:
    await ready(h, pilot)
    await _hosts_and_gpus(h, pilot)


async def populated(h: Harness, pilot: Any, tmp_path: Path) -> None:
    await _populate(h, pilot, tmp_path)
    await _hosts_and_gpus(h, pilot)


async def running_with_logs(h: Harness, pilot: Any, tmp_path: Path) -> None:
    runs = await _populate(h, pilot, tmp_path)
    await _hosts_and_gpus(h, pilot)
    run_id = runs["running"].id
    lines = tuple(f"{LOG_LINES[i % len(LOG_LINES)]}" for i in range(40))
    h.services.log_stream(run_id).put(LogBatch(run_id, lines, 0))
    await settle(pilot)
    # the log follower is a long-running worker that settle does not wait for: wait
    # until it has handed the pane every line (under load it can be a moment late)
    logs = h.app.main_screen.logs
    deadline = time.monotonic() + 20
    while logs.next_line < len(lines):
        assert time.monotonic() < deadline, logs.next_line
        await pilot.pause(0.02)
    logs.flush()
    await pilot.pause()


async def failed_run(h: Harness, pilot: Any, tmp_path: Path) -> None:
    runs = await _populate(h, pilot, tmp_path)
    await _hosts_and_gpus(h, pilot)
    run_id = runs["failed"].id
    h.services.log_history[run_id] = [*LOG_LINES, *FAIL_LINES]
    table = h.app.main_screen.runs.table
    table.focus()
    await pilot.press("down", "down")
    await settle(pilot)
    h.app.main_screen.logs.flush()
    await pilot.pause()


async def host_down(h: Harness, pilot: Any, tmp_path: Path) -> None:
    await _populate(h, pilot, tmp_path)
    await _hosts_and_gpus(h, pilot, down="gpu-b")


async def help_screen(h: Harness, pilot: Any, tmp_path: Path) -> None:
    await ready(h, pilot)
    await pilot.press("question_mark")
    await settle(pilot)


async def prompt_form(h: Harness, pilot: Any, tmp_path: Path) -> None:
    await ready(h, pilot)
    await pilot.press("N")
    await settle(pilot)


async def run_form(h: Harness, pilot: Any, tmp_path: Path) -> None:
    await _populate(h, pilot, tmp_path)
    h.app.main_screen.prompts.table.focus()
    await pilot.press("enter")
    await settle(pilot)


async def hosts_screen(h: Harness, pilot: Any, tmp_path: Path) -> None:
    """The Hosts screen with the doctor's report of a host that has a problem."""
    import dataclasses

    from cosmos_tui.doctor.model import CheckResult, DoctorReport, Outcome
    from cosmos_tui.services.hosts import HostAdmin

    class Probe:
        async def doctor(self, config: Any, names: Any, profile: str, only: Any) -> list:
            if only is not None:
                return []  # the quick checks at start: none, so the frame does not race them
            fix = "ssh gpu-b.example docker pull nvcr.io/nvidia/cosmos/cosmos-transfer1:latest"
            results = (
                CheckResult("ssh", "SSH login and host key", Outcome.PASS, "me@gpu-b.example"),
                CheckResult("image", "Model image present", Outcome.FAIL, "not pulled", fix),
                CheckResult("disk", "Free disk in the tool dir", Outcome.PASS, "812 GiB free"),
            )
            return [DoctorReport(name, profile, results) for name in names]

    path = tmp_path / "config.toml"
    path.write_text(
        '[[hosts]]\nname = "gpu-a"\nhostname = "gpu-a.example"\n\n'
        '[[hosts]]\nname = "gpu-b"\nhostname = "gpu-b.example"\nuser = "me"\n'
        "docker_sudo = true\n"
    )
    await ready(h, pilot)
    h.services.host_admin = HostAdmin(dataclasses.replace(h.config, source=path), Probe())
    await pilot.press("H")
    await settle(pilot)
    await pilot.press("down", "D")
    await settle(pilot)


STATES: dict[str, Callable[[Harness, Any, Path], Awaitable[None]]] = {
    "empty": empty,
    "populated": populated,
    "running_with_logs": running_with_logs,
    "failed_run": failed_run,
    "host_down": host_down,
    "help": help_screen,
    "prompt_form": prompt_form,
    "run_form": run_form,
    "hosts": hosts_screen,
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("state", list(STATES))
def test_snapshot(snap_compare: Any, tmp_path: Path, state: str, size: tuple[int, int]) -> None:
    h = Harness(tmp_path, hosts=("gpu-a", "gpu-b"))

    async def run_before(pilot: Any) -> None:
        await STATES[state](h, pilot, tmp_path)
        h.app.main_screen.logs.flush()
        for field in h.app.screen.query("Input, TextArea"):
            field.cursor_blink = False  # a blinking cursor makes frames time-dependent
        await settle(pilot)
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()

    assert snap_compare(h.app, terminal_size=size, run_before=run_before)


async def stalled_and_down(h: Harness, pilot: Any, tmp_path: Path) -> None:
    """Runs and GPUs, one host down, the other's readings stopped (stalled)."""
    await _populate(h, pilot, tmp_path)
    await _hosts_and_gpus(h, pilot, down="gpu-b")
    h.clock.advance(30)
    main = h.app.main_screen
    main.runs._tick()  # the running run's time, as the pane's 1 s tick would show it
    for card in main.gpus.query("HostCard"):
        card.redraw(h.clock.now)
    await pilot.pause()


# ui.theme restyles everything (app.tcss uses only theme variables): the main screen in
# the default theme, a light one and two others.
THEMES = ["textual-dark", "textual-light", "nord", "gruvbox"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("theme", THEMES)
def test_main_screen_per_theme(snap_compare: Any, tmp_path: Path, theme: str) -> None:
    h = Harness(tmp_path, hosts=("gpu-a", "gpu-b"), theme=theme)

    async def run_before(pilot: Any) -> None:
        await stalled_and_down(h, pilot, tmp_path)
        await settle(pilot)
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()

    assert snap_compare(h.app, terminal_size=(120, 40), run_before=run_before)
