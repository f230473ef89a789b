"""The demo's TUI, driven with Pilot: a newcomer's first run on the SIMULATED GPU HOST."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cosmos_tui.cli.demo import build_demo_app, prepare_workspace
from cosmos_tui.domain import RunState
from cosmos_tui.sandbox import SandboxOptions
from cosmos_tui.sandbox.scenario import mp4_is_valid
from cosmos_tui.sandbox.thread import SandboxThread
from cosmos_tui.sandbox.workspace import DemoWorkspace
from cosmos_tui.ui.screens.run_form import RunForm


async def wait_until(pilot: Any, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


async def test_a_prompt_runs_to_completion_in_the_demo_tui(tmp_path: Path):
    space = DemoWorkspace(tmp_path / "ws")
    with SandboxThread(SandboxOptions(gpus=2, time_scale=0.2), space.ssh_dir) as sandbox:
        config = prepare_workspace(space, sandbox)
        app = build_demo_app(config, space, sandbox)
        assert "SIMULATED GPU HOST" in app.title
        async with app.run_test(size=(120, 40)) as pilot:
            screen = app.main_screen
            await wait_until(pilot, lambda: len(screen.prompts.prompts) == 3)
            # a newcomer's first key: the focus is already where Enter starts a run
            await wait_until(pilot, lambda: screen.focused is screen.prompts.table, timeout=5)
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, RunForm))
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: len(screen.runs.runs) == 1)
            (run_id,) = screen.runs.runs
            # the GPU pane follows the simulated GPUs while the run loads one of them
            host = "simulated-gpu-host"
            await wait_until(
                pilot,
                lambda: any(
                    (s.memory_used_mib or 0) > 0
                    for gpu in (0, 1)
                    for s in screen.gpus.history(host, gpu)
                ),
            )
            card = screen.gpus.card(host)
            assert card is not None and card.status.state.value == "connected"
            await wait_until(pilot, lambda: screen.runs.runs[run_id].state == RunState.COMPLETED)
            output = config.outputs_dir / run_id / "output.mp4"
            assert mp4_is_valid(output)
            await pilot.press("q")
