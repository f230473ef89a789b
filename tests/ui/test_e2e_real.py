"""End to end: the TUI drives one complete run on the real test host (sshd + dockerd).

The model is the Cosmos stand-in image; the services are the real Workbench behind the
FacadeAdapter, exactly as ``cosmos tui`` builds them.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import pytest
from textual.widgets import Input, TextArea

from cosmos_tui.domain import RunState
from cosmos_tui.services import Workbench
from cosmos_tui.ui.app import CosmosApp
from cosmos_tui.ui.facade import FacadeAdapter
from cosmos_tui.ui.screens.prompt_form import PromptForm
from cosmos_tui.ui.screens.run_form import RunForm
from tests.lifecycle.conftest import make_config, standin_image, video_dir  # noqa: F401
from tests.ui.conftest import settle

pytestmark = pytest.mark.timeout(180)


async def test_tui_runs_a_prompt_to_completion_on_the_real_host(make_config, video_dir) -> None:  # noqa: F811
    config = make_config()
    opened: dict[str, Workbench] = {}

    @asynccontextmanager
    async def services():
        async with Workbench.open(config) as bench:
            opened["bench"] = bench
            yield FacadeAdapter(bench, poll_seconds=0.2)

    app = CosmosApp(services, config)

    async with app.run_test(size=(120, 40)) as pilot:
        while app.services is None:
            await pilot.pause()
        await settle(pilot)
        await pilot.press("N")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, PromptForm)
        form.query_one("#text", TextArea).text = "a robot arm stacks cubes"
        form.query_one("#video_dir", Input).value = str(video_dir)
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        main = app.main_screen
        assert len(main.prompts.prompts) == 1
        main.prompts.table.focus()
        await pilot.press("enter")
        await settle(pilot)
        run_form = app.screen
        assert isinstance(run_form, RunForm)
        run_form.query_one("#num_steps", Input).value = "7"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await settle(pilot)
        bench = opened["bench"]
        page = await bench.list_runs()
        assert page.total == 1
        run_id = page.items[0].id

        async def until_ended() -> None:
            async for run in bench.runs.watch(run_id, interval=0.2):
                if run.state.is_terminal:
                    return

        await asyncio.wait_for(until_ended(), 120)
        final = await bench.get_run(run_id)
        assert final.state == RunState.COMPLETED, final.failure_message
        for _ in range(100):
            shown = main.runs.runs.get(run_id)
            if shown is not None and shown.state == RunState.COMPLETED:
                break
            await pilot.pause(0.1)
        assert main.runs.runs[run_id].state == RunState.COMPLETED
        main.logs.flush()
        assert main.logs.run is not None and main.logs.run.id == run_id
        assert any("Saved video to" in line for line in main.logs.view.lines)
        await pilot.press("q")
        await pilot.pause()


async def test_quitting_the_tui_hands_its_running_run_to_a_worker(
    make_config, video_dir, tmp_path  # noqa: F811
) -> None:  # fmt: skip
    """``cosmos tui``'s services: a run its form started finishes after the app quits."""
    from cosmos_tui.cli.tui_cmd import tui_services
    from cosmos_tui.config import load_config
    from tests.lifecycle.conftest import write_config_file

    config = make_config(COSMOS_STANDIN_SPEED="0.3")
    config = load_config(write_config_file(config, tmp_path / "config.toml"))
    app = CosmosApp(lambda: tui_services(config), config)
    async with app.run_test(size=(120, 40)) as pilot:
        while app.services is None:
            await pilot.pause()
        services = app.services
        prompt = await services.create_prompt("a robot arm", video_dir, None, None)
        run = await services.create_run(prompt.id, {}, 0)
        await services.start_run(run.id, None)  # what the run form does
        for _ in range(600):
            if (await services.get_run(run.id)).state == RunState.RUNNING:
                break
            await pilot.pause(0.1)
        assert (await services.get_run(run.id)).state == RunState.RUNNING
        await pilot.press("q")
    async with Workbench.open(config) as bench:

        async def until_ended() -> None:
            async for seen in bench.runs.watch(run.id, interval=0.2):
                if seen.state.is_terminal:
                    return

        await asyncio.wait_for(until_ended(), 120)
        final = await bench.get_run(run.id)
    assert final.state == RunState.COMPLETED, final.failure_message
    assert (config.outputs_dir / run.id / "worker.log").exists()
