"""After the launch: reloads keep the selection, the run watch misses nothing, quit wins."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from textual.widgets import DataTable

from cosmos_tui.domain import GenerationParams, RunState
from cosmos_tui.services import Workbench
from cosmos_tui.store.repositories import RunFilter, Store
from cosmos_tui.ui import app as app_module
from cosmos_tui.ui.facade import FacadeAdapter
from cosmos_tui.ui.messages import GlanceLoaded
from tests.ui.conftest import ready, settle
from tests.ui.fakes import FixedClock, TestServices, counting_ids, make_config, make_many

pytestmark = pytest.mark.timeout(60)

MANY = 10_000  # the first id of bulk-made records (the test services count from 1)


async def until(pilot: Any, condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Let the app run until ``condition`` holds (timers included), at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.01)


def focus_row(table: DataTable, row: int) -> DataTable:
    table.focus()
    table.move_cursor(row=row)
    return table


async def launched(h: Any, pilot: Any) -> None:
    """Wait for the services, the first pages and the rest of the page after them."""
    await ready(h, pilot)
    main = h.app.main_screen
    await until(pilot, lambda: main.startup.streams_started)
    await settle(pilot)


async def test_a_reload_keeps_the_selected_run_under_the_cursor(harness):
    h = harness()
    await make_many(h.config.db_path, prompts=30, runs=300, first_id=MANY)
    async with h.app.run_test(size=(120, 40)) as pilot:
        await launched(h, pilot)
        pane = h.app.main_screen.runs
        assert len(pane.runs) == 200
        table = focus_row(pane.table, 120)
        await settle(pilot)
        chosen = pane.selected.id
        assert chosen == f"rs_{MANY + 179:012x}"
        # a run new to the table (here from the run stream) reloads the pane
        h.clock.advance(3600)
        new = await h.services.store.add_run(f"ps_{MANY:012x}", GenerationParams())
        h.services.run_stream.put(new)
        await until(pilot, lambda: new.id in pane.runs)
        await settle(pilot)
        assert pane.selected.id == chosen and table.cursor_row == 121
        assert len(pane.runs) == 200 and pane.total == 301
        # so does a change of filter (this one keeps the chosen run)
        pane.set_filter(RunFilter(states=frozenset({RunState.COMPLETED})))
        await settle(pilot)
        assert new.id not in pane.runs
        assert pane.selected.id == chosen and table.cursor_row == 120
        # a run the reload does not bring back leaves the cursor at the top
        pane.set_filter(RunFilter(prompt_id=f"ps_{MANY + 1:012x}"))
        await settle(pilot)
        assert chosen not in pane.runs and table.cursor_row == 0


async def test_a_reload_keeps_the_selected_prompt_under_the_cursor(harness):
    h = harness()
    await make_many(h.config.db_path, prompts=300, runs=10, first_id=MANY)
    async with h.app.run_test(size=(120, 40)) as pilot:
        await launched(h, pilot)
        pane = h.app.main_screen.prompts
        assert len(pane.prompts) == 200
        table = focus_row(pane.table, 120)
        await settle(pilot)
        chosen = pane.selected.id
        assert chosen == f"ps_{MANY + 179:012x}"
        await pilot.press("S")  # oldest first
        await settle(pilot)
        assert not pane.descending
        assert pane.selected.id == chosen and table.cursor_row == 179
        # a prompt new to the table reloads the pane
        h.clock.advance(3600)
        new = await h.services.store.add_prompt("a new scene", [])
        pane.update_prompt(new)
        await settle(pilot)
        assert pane.selected.id == chosen and table.cursor_row == 179
        await pilot.press("S")  # newest first again: the new prompt on top
        await settle(pilot)
        assert new.id in pane.prompts
        assert pane.selected.id == chosen and table.cursor_row == 121


class PolledServices(TestServices):
    """Runs are watched by polling the store, as over the real Workbench.

    The first page of runs is read, then (once) a shown run completes: before the live
    watch starts, which waits for the launch's first full frame.
    """

    __test__ = False
    watch_runs = FacadeAdapter.watch_runs  # type: ignore[assignment]

    def __init__(self, bench: Workbench, completes: str, clock: Any) -> None:
        super().__init__(bench)
        self.poll_seconds = 0.05
        self.completes = completes
        self.clock = clock

    async def list_runs(self, where, offset, limit, sort, descending):  # type: ignore[no-untyped-def]
        page = await super().list_runs(where, offset, limit, sort, descending)
        if self.completes and not where.states:  # the pane's page, not the watch's poll
            run_id, self.completes = self.completes, ""
            self.clock.advance(5)
            await self.store.transition(run_id, RunState.DOWNLOADING, "test")
            await self.store.transition(run_id, RunState.COMPLETED, "test")
        return page


async def running_run(db_path: Any, clock: Any) -> str:
    async with Store.open(db_path, clock=clock) as store:
        run = await store.add_run(None, GenerationParams())
        await store.transition(run.id, RunState.UPLOADING, "test", host="gpu-a", gpus=(0,))
        await store.transition(run.id, RunState.STARTING, "test")
        await store.transition(run.id, RunState.RUNNING, "test")
        return run.id


async def test_a_run_that_changes_before_the_watch_starts_is_shown(harness):
    h = harness()
    await make_many(h.config.db_path, prompts=5, runs=20, first_id=MANY)
    run_id = await running_run(h.config.db_path, h.clock)

    @asynccontextmanager
    async def polled():
        async with Workbench.open(h.config, ids=counting_ids(), clock=h.clock) as bench:
            services = PolledServices(bench, run_id, h.clock)
            h.holder["services"] = services
            yield services

    h.app.services_factory = polled
    async with h.app.run_test(size=(120, 40)) as pilot:
        await launched(h, pilot)
        pane = h.app.main_screen.runs
        assert not h.services.completes  # it completed after the page was read
        await until(pilot, lambda: pane.runs[run_id].state == RunState.COMPLETED)


async def test_the_run_watch_measures_its_first_poll_against_the_runs_shown(tmp_path):
    clock = FixedClock()
    config = make_config(tmp_path / "data")
    async with Workbench.open(config, ids=counting_ids(), clock=clock) as bench:
        store = bench.store
        runs = []
        for _ in range(4):
            clock.advance(1)
            runs.append(await store.add_run(None, GenerationParams()))
        unchanged, completed, progressed, unshown = runs
        shown = [unchanged, completed, progressed]
        clock.advance(1)
        await store.transition(completed.id, RunState.CANCELLED, "test")
        await store.update_run(progressed.id, priority=3)
        adapter = FacadeAdapter(bench, poll_seconds=0.01)

        async def first_yields(watch: Any, count: int) -> list[str]:
            seen: list[str] = []
            async for run in watch:
                seen.append(run.id)
                if len(seen) == count:
                    break
            return seen

        first = await asyncio.wait_for(first_yields(adapter.watch_runs(shown), 3), 5)
        assert sorted(first) == sorted([completed.id, progressed.id, unshown.id])
        # without runs shown, the first poll is a silent baseline: only later changes come
        watch = adapter.watch_runs()
        task = asyncio.create_task(first_yields(watch, 1))
        await asyncio.sleep(0.05)
        clock.advance(1)
        await store.update_run(unchanged.id, priority=5)
        assert await asyncio.wait_for(task, 5) == [unchanged.id]


async def test_quit_while_the_glance_reads_never_opens_the_services(harness, monkeypatch):
    from cosmos_tui.store import glance

    reading = threading.Event()
    release = threading.Event()

    def slow_glance(*_args: object) -> None:
        reading.set()
        release.wait(5)

    monkeypatch.setattr(glance, "newest_pages", slow_glance)
    h = harness()
    opened: list[bool] = []
    real_factory = h.app.services_factory

    @asynccontextmanager
    async def factory():
        opened.append(True)
        async with real_factory() as services:
            yield services

    h.app.services_factory = factory
    try:
        async with h.app.run_test(size=(120, 40)) as pilot:
            await until(pilot, reading.is_set)
            await pilot.press("q")
            await pilot.pause()
            await settle(pilot)
    finally:
        release.set()
    assert h.app.return_code == 0
    assert not opened


async def test_quit_after_the_glance_never_opens_the_services(harness, monkeypatch):
    monkeypatch.setattr(app_module, "GLANCE_FALLBACK_SECONDS", 0.05)
    h = harness()
    await make_many(h.config.db_path, prompts=5, runs=5, first_id=MANY)
    opened: list[bool] = []
    real_factory = h.app.services_factory

    @asynccontextmanager
    async def factory():
        opened.append(True)
        async with real_factory() as services:
            yield services

    h.app.services_factory = factory
    closing: list[asyncio.Task[None]] = []

    def hook(message: object) -> None:
        # What q and SIGHUP do first, as the glanced rows reach the screen.
        if isinstance(message, GlanceLoaded) and not closing:
            closing.append(asyncio.get_running_loop().create_task(h.app.close_services()))

    async with h.app.run_test(size=(120, 40), message_hook=hook) as pilot:
        await until(pilot, lambda: bool(closing) and closing[0].done())
        await pilot.pause(0.2)  # past the fallback timer and a few refreshes
        main = h.app.main_screen
        assert len(main.runs.runs) == 5  # the glance was shown
    assert not opened
