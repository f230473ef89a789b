"""What keeps the TUI fast: bounded log work and memory, and a launch that loads a screenful."""

from __future__ import annotations

from textual.app import App, ComposeResult

from cosmos_tui.domain import LogBatch
from cosmos_tui.ui.messages import FirstPageShown, PromptsLoaded, RunsLoaded
from cosmos_tui.ui.widgets import logview
from cosmos_tui.ui.widgets.logview import LogView
from cosmos_tui.ui.widgets.pane import FIRST_PAGE_MIN_ROWS, first_page_rows
from tests.ui.conftest import ready, settle
from tests.ui.fakes import LOG_LINES, make_many, scenario


class ViewApp(App[None]):
    """Just a LogView."""

    def __init__(self, max_lines: int) -> None:
        super().__init__()
        self.max_lines = max_lines

    def compose(self) -> ComposeResult:
        yield LogView(max_lines=self.max_lines)


def held_sizes(view: LogView) -> list[int]:
    """The lengths of everything the view keeps per line."""
    return [len(view.lines), len(view.ranks), len(view._rows), len(view._visible)]


async def test_log_work_per_batch_does_not_grow_with_the_lines_seen(monkeypatch):
    read: list[str] = []
    real_level = logview.log_level

    def counted(line: str) -> str:
        read.append(line)
        return real_level(line)

    monkeypatch.setattr(logview, "log_level", counted)
    app = ViewApp(max_lines=1000)
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.query_one(LogView)
        view.set_search("seed")
        seen = 0
        for round_ in range(200):
            batch = [f"{LOG_LINES[(seen + i) % len(LOG_LINES)]} #{seen + i}" for i in range(250)]
            read.clear()
            view.append(batch)
            seen += len(batch)
            assert len(read) == len(batch)  # only the new lines are read, never the old ones
            assert max(held_sizes(view)) <= 1250, round_
            assert len(view.matches) <= 1250
        await pilot.pause()
        assert view.dropped + len(view.lines) == seen
        assert view.lines[-1].endswith(f"#{seen - 1}")


async def test_a_burst_is_read_only_as_far_as_the_view_holds(monkeypatch):
    read: list[str] = []
    real_level = logview.log_level
    monkeypatch.setattr(logview, "log_level", lambda line: read.append(line) or real_level(line))
    app = ViewApp(max_lines=1000)
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.query_one(LogView)
        view.append([f"old {i}" for i in range(300)])
        read.clear()
        view.append([f"burst {i}" for i in range(50_000)])
        assert len(read) == 1000
        assert view.lines == [f"burst {i}" for i in range(49_000, 50_000)]
        assert view.dropped == 300 + 49_000
        # lines the caller skipped drop the older lines held too: the view stays one piece
        view.append(["after"], skipped=10)
        assert view.lines == ["after"] and view.dropped == 300 + 50_000 + 10
        await pilot.pause()


async def test_log_pane_memory_stays_bounded_under_a_flood(harness, tmp_path):
    h = harness(log_buffer_lines=1000)
    async with h.app.run_test(size=(120, 40)) as pilot:
        await ready(h, pilot)
        runs = await scenario(h.services, h.clock, tmp_path / "videos")
        h.app.main_screen.runs.reload()
        await settle(pilot)
        running = runs["running"].id
        logs = h.app.main_screen.logs
        stream = h.services.log_stream(running)
        total = 0
        for start in range(0, 60_000, 5000):
            stream.put(LogBatch(running, tuple(f"l{start + i}" for i in range(5000)), start))
            total = start + 5000
        await settle(pilot)
        assert len(logs.pending) <= 1000  # between flushes too
        logs.flush()
        await pilot.pause()
        assert len(logs.view.lines) <= 1250 and logs.view.lines[-1] == f"l{total - 1}"
        assert logs.view.dropped + len(logs.view.lines) == total
        assert f"{total} lines" in str(logs.border_subtitle)


def test_first_page_is_a_screenful_and_never_more_than_a_page():
    assert first_page_rows(200, 40) == 50
    assert first_page_rows(200, 10) == FIRST_PAGE_MIN_ROWS
    assert first_page_rows(200, 500) == 200
    assert first_page_rows(30, 40) == 30


async def test_launch_loads_a_screenful_first_then_the_rest_of_the_page(harness):
    h = harness(page_size=120)
    await make_many(h.config.db_path, prompts=130, runs=300)
    pages: list[tuple[str, bool, int]] = []
    seen: list[object] = []  # a message that bubbles passes the hook once per node

    def hook(message: object) -> None:
        if any(message is other for other in seen):
            return
        seen.append(message)
        if isinstance(message, RunsLoaded | PromptsLoaded):
            pages.append((type(message).__name__, message.append, len(message.page.items)))
        if isinstance(message, FirstPageShown):
            pages.append(("FirstPageShown", False, 0))

    async with h.app.run_test(size=(120, 40), message_hook=hook) as pilot:
        await ready(h, pilot)
        await settle(pilot)
        main = h.app.main_screen
        screenful = first_page_rows(120, 40)
        assert ("RunsLoaded", False, screenful) in pages
        assert ("PromptsLoaded", False, screenful) in pages
        # the rest of the first pages comes after both first pages were shown
        rest = [pages.index(("RunsLoaded", True, 120 - screenful))]
        rest.append(pages.index(("PromptsLoaded", True, 120 - screenful)))
        shown = [i for i, page in enumerate(pages) if page[0] == "FirstPageShown"]
        assert len(shown) == 2 and max(shown) < min(rest)
        assert len(main.runs.runs) == 120 and main.runs.total == 300
        assert len(main.prompts.prompts) == 120 and main.prompts.total == 130
        newest = main.runs.table.coordinate_to_cell_key((0, 0)).row_key.value
        assert newest == f"rs_{299:012x}"
        oldest_shown = main.runs.table.coordinate_to_cell_key((119, 0)).row_key.value
        assert oldest_shown == f"rs_{180:012x}"  # the rest of the page, in order
        assert main.startup.streams_started
        # the cursor near the end still loads the next page
        table = main.runs.table
        table.focus()
        table.move_cursor(row=115)
        await settle(pilot)
        assert len(main.runs.runs) == 240


async def test_launch_shows_the_newest_rows_before_the_services_open(harness):
    import asyncio
    from contextlib import asynccontextmanager

    h = harness()
    await make_many(h.config.db_path, prompts=30, runs=80)
    gate = asyncio.Event()
    real_factory = h.app.services_factory

    @asynccontextmanager
    async def slow_factory():
        await gate.wait()
        async with real_factory() as services:
            yield services

    h.app.services_factory = slow_factory
    async with h.app.run_test(size=(120, 40)) as pilot:
        main = h.app.main_screen
        for _ in range(100):
            if main.runs.runs and main.prompts.prompts:
                break
            await pilot.pause()
        await pilot.pause()
        screenful = first_page_rows(h.config.ui.page_size, 40)
        assert len(main.runs.runs) == screenful and len(main.prompts.prompts) == 30
        assert main.runs.border_subtitle == f"{screenful}/80  connecting..."
        assert main.prompts.border_subtitle.endswith("connecting...")
        assert main.logs.run is not None  # the log of a shown run, followed once connected
        # actions that need the services are disabled until they are open
        main.runs.table.focus()
        assert main.runs.check_action("rate", (3,)) is None
        assert main.runs.check_action("filter", ()) is True
        await pilot.press("3")
        await pilot.pause()
        assert h.app.screen is main
        assert not [w for w in h.app.workers if w.group == "actions"]
        gate.set()
        await ready(h, pilot)
        await settle(pilot)
        assert main.runs.border_subtitle == "80/80"
        assert main.runs.check_action("rate", (3,)) is True
        newest = main.runs.table.coordinate_to_cell_key((0, 0)).row_key.value
        assert newest == f"rs_{79:012x}"


async def test_a_slow_first_page_is_never_cancelled_by_the_streams_fallback(harness, monkeypatch):
    # Under load the streams' fallback timer can fire before the first pages arrive: the
    # rest of the page must wait for the first page, never replace (cancel) its load.
    import asyncio
    from contextlib import asynccontextmanager

    from cosmos_tui.services import Workbench
    from cosmos_tui.ui.screens import main as main_module
    from tests.ui.fakes import TestServices, counting_ids

    monkeypatch.setattr(main_module, "STREAMS_FALLBACK_SECONDS", 0.05)
    h = harness(page_size=120)
    await make_many(h.config.db_path, prompts=130, runs=300)
    calls: list[tuple[str, int, int]] = []

    class SlowFirstPages(TestServices):
        __test__ = False

        async def list_runs(self, where, offset, limit, sort, descending):  # type: ignore[no-untyped-def]
            calls.append(("runs", offset, limit))
            if offset == 0 and not where.states:
                await asyncio.sleep(0.6)  # the first page is slow; the timer fires first
            return await super().list_runs(where, offset, limit, sort, descending)

        async def list_prompts(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            page = await super().list_prompts(*args, **kwargs)
            if not calls or calls[-1][0] != "prompts-slow":
                calls.append(("prompts-slow", 0, 0))
                await asyncio.sleep(0.6)
            return page

    @asynccontextmanager
    async def slow():
        async with Workbench.open(h.config, ids=counting_ids(), clock=h.clock) as bench:
            services = SlowFirstPages(bench, tuple(x.name for x in h.config.hosts))
            h.holder["services"] = services
            yield services

    h.app.services_factory = slow
    pages: list[tuple[str, bool, int]] = []
    seen: list[object] = []

    def hook(message: object) -> None:
        if any(message is other for other in seen):
            return
        seen.append(message)
        if isinstance(message, RunsLoaded | PromptsLoaded):
            pages.append((type(message).__name__, message.append, len(message.page.items)))

    async with h.app.run_test(size=(120, 40), message_hook=hook) as pilot:
        await ready(h, pilot)
        await asyncio.sleep(1.5)
        await settle(pilot)
        main = h.app.main_screen
        screenful = first_page_rows(120, 40)
        assert ("RunsLoaded", False, screenful) in pages, pages
        assert ("PromptsLoaded", False, screenful) in pages, pages
        assert len(main.runs.runs) == 120 and len(main.prompts.prompts) == 120
        oldest_shown = main.runs.table.coordinate_to_cell_key((119, 0)).row_key.value
        assert oldest_shown == f"rs_{180:012x}"
