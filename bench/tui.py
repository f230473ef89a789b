"""TUI benchmark: launch to first full frame on a big database, latency and CPU while a
run streams 5,000 log lines/s, idle CPU, and memory after 1,000,000 log lines.

Prints figures; asserts nothing. Usage: python bench/tui.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]


def out(text: str) -> None:
    """Print a figure (to the real stdout: Textual captures print while an app runs)."""
    sys.__stdout__.write(text + "\n")
    sys.__stdout__.flush()


def status_mib(field: str) -> float | None:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return None


def rss_mib() -> float:
    rss = status_mib("VmRSS")
    return rss if rss is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakRss:
    """The highest RSS from now until stop().

    Sampled from a thread (a task on the event loop misses peaks while the loop is busy),
    and read from the kernel's high-water mark, reset now where Linux allows it.
    """

    EVERY = 0.005

    def __init__(self) -> None:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the RSS now
            self.kernel = True
        except OSError:
            self.kernel = False
        self.highest = rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self.EVERY):
            self.highest = max(self.highest, rss_mib())

    def stop(self) -> tuple[float, float | None]:
        """Return the highest sampled RSS and the kernel's high-water mark (or None)."""
        self._stop.set()
        self._thread.join()
        return self.highest, status_mib("VmHWM") if self.kernel else None


# -- launch to first full frame ------------------------------------------------------


def newest_ids(prompts: int, runs: int) -> tuple[str, str]:
    """The newest run's and newest prompt's ids in the DB that make_big_db makes."""
    return f"rs_{runs - 1:012x}", f"ps_{prompts - 1:012x}"


def make_big_db(folder: Path, prompts: int, runs: int) -> None:
    """A big DB whose newest rows show their ids at 120x40 (the ID columns do not fit).

    The newest prompt's text starts with its id; the newest run is running, its progress
    phase is its id (the Progress column shows it).
    """
    from store import rows  # bench/store.py

    from cosmos_tui.store.repositories import Store

    prompt_rows, run_rows = rows(prompts, runs)
    for index, row in enumerate(run_rows):
        if row["state"] not in ("completed", "failed", "cancelled", "blocked"):
            row["state"] = "completed" if index < runs - 3 else "queued"
    newest_run, newest_prompt = newest_ids(prompts, runs)
    prompt_rows[-1]["text"] = f"{newest_prompt} {prompt_rows[-1]['text']}"
    run_rows[-1].update(state="running", prompt_id=newest_prompt)

    async def fill() -> None:
        async with Store.open(folder / "cosmos.db") as store:
            await store.bulk_insert(prompt_rows, run_rows)
            # (one executemany: the columns are the first row's, so these come after it)
            started = run_rows[-1]["created_at"]
            await store.update_run(
                newest_run, started_at=started, progress_phase=newest_run, progress_percent=42.0
            )

    asyncio.run(fill())


class Screen:
    """The text a terminal shows after each frame: Textual's updates applied in order."""

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.lines = [[" "] * width for _ in range(height)]

    def put(self, x: int, y: int, text: str) -> None:
        if 0 <= y < len(self.lines):
            from rich.cells import cell_len

            cells = [cell for char in text for cell in (char, "")[: cell_len(char) or 1]]
            line = self.lines[y]
            line[x : x + len(cells)] = cells
            del line[self.width :]

    def apply(self, update: Any) -> None:
        """Apply a LayoutUpdate (whole lines) or a ChopsUpdate (pieces of lines)."""
        if hasattr(update, "chops"):
            for y, x1, x2 in update.spans:
                for end, (x, strip) in zip(
                    update.chop_ends[y], update.chops[y].items(), strict=False
                ):
                    if strip is None or x > x2 or end <= x1:
                        continue
                    if not (x2 > x >= x1 and end <= x2):
                        strip = strip.crop(0, min(end, x2) - x)
                    self.put(x, y, strip.text)
        elif hasattr(update, "strips") and hasattr(update, "region"):
            for y, line in enumerate(update.strips, update.region.y):
                x = update.region.x
                for strip in line:
                    self.put(x, y, strip.text)
                    x += strip.cell_length

    def shows(self, region: Any, text: str) -> bool:
        """Whether ``text`` is on one line of the screen within ``region``."""
        rows = self.lines[region.y : region.y + region.height]
        return any(text in "".join(row[region.x : region.x + region.width]) for row in rows)


def launch_child(folder: str, spawned_at: float, newest_run: str, newest_prompt: str) -> None:
    """In a fresh process: `cosmos tui` on the big DB (headless); report when panes are full.

    The real entry point runs (click, the config file, the app and its services factory);
    only the terminal is headless, and Textual's updates are applied to a screen of text
    (what a terminal would show) to find the frame that draws the newest rows.
    """
    import functools

    from cosmos_tui.cli import terminal

    real_run_tui = terminal.run_tui
    marks: dict[str, float] = {}

    async def pilot_body(pilot: Any) -> None:
        app = pilot.app
        deadline = time.time() + 30
        while "full_frame" not in marks and time.time() < deadline:
            await asyncio.sleep(0.002)
        if "full_frame" not in marks:
            main = app.main_screen
            print(
                f"ERROR no full frame: runs={len(main.runs.runs)} "
                f"prompts={len(main.prompts.prompts)} "
                f"banner={main.query_one('#banner').content!r} "
                f"workers={[(w.name, w.state.name) for w in app.workers]}",
                flush=True,
            )
            os._exit(1)
        while "live" not in marks and time.time() < deadline:
            await asyncio.sleep(0.002)
        result = {k: v - spawned_at for k, v in marks.items() if k not in ("rows", "cpu")}
        result["cpu"] = marks["cpu"]
        result["rows"] = marks.get("rows", 0)
        print("RESULT " + json.dumps(result), flush=True)
        # Measured: quitting (closing the services, leaving the interpreter) is not part
        # of the launch, so the child leaves here rather than through app.exit().
        os._exit(0)

    def bench_run_tui(app: Any, **_options: Any) -> None:
        """What `cosmos tui` calls with its app: hooked, headless, then run as usual."""
        marks["imports"] = time.time()  # the entry point, the config and the UI modules
        screen = Screen(120, 40)
        original_display = app._display

        def display(shown: Any, renderable: Any) -> None:
            if renderable is not None:
                now = time.time()
                marks.setdefault("first_frame", now)
                main = app.main_screen
                if "full_frame" not in marks:
                    screen.apply(renderable)
                    runs, prompts = main.runs.table, main.prompts.table
                    if screen.shows(runs.region, newest_run) and screen.shows(
                        prompts.region, newest_prompt
                    ):
                        marks["full_frame"] = now  # the newest rows are drawn
                        marks["cpu"] = time.process_time()  # of this process, from its start
                        marks["rows"] = len(main.runs.runs) + len(main.prompts.prompts)
                if (
                    "live" not in marks
                    and main.services is not None
                    and not main.startup.awaited_panes
                ):
                    marks["live"] = now  # the services are open and their first pages shown
            original_display(shown, renderable)

        app._display = display
        app.run = functools.partial(app.run, headless=True, size=(120, 40))
        real_run_tui(app, auto_pilot=pilot_body)

    import faulthandler

    faulthandler.dump_traceback_later(40, exit=True)
    terminal.run_tui = bench_run_tui  # before `cosmos tui` imports it
    from cosmos_tui.cli import main

    main(["tui"])


def bench_launch(prompts: int, runs: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="cosmos-tui-bench-") as scratch:
        measure_launches(Path(scratch), prompts, runs, repeat)


def measure_launches(scratch: Path, prompts: int, runs: int, repeat: int) -> None:
    folder = scratch / "data"
    folder.mkdir()
    begin = time.perf_counter()
    make_big_db(folder, prompts, runs)
    out(f"DB with {prompts} prompts and {runs} runs made in {time.perf_counter() - begin:.1f} s")
    # An installed package has its bytecode compiled (pip does it at install time); a
    # checkout run with PYTHONDONTWRITEBYTECODE=1 (as some sandboxes set) compiles every
    # module of the project at each launch. Both are measured; the cached one is the
    # figure a user sees.
    pycache = scratch / "pycache"
    config_file = scratch / "config.toml"
    config_file.write_text(f"[paths]\ndata_dir = {json.dumps(str(folder))}\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith("COSMOS_")}
    base["COSMOS_CONFIG"] = str(config_file)
    cached = {k: v for k, v in base.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cached["PYTHONPYCACHEPREFIX"] = str(pycache)
    uncached = {**base, "PYTHONDONTWRITEBYTECODE": "1"}
    newest = newest_ids(prompts, runs)
    out(
        "launches run `cosmos tui` (its entry point, config file and services) in a fresh "
        "process, headless at 120x40; the full frame is the first whose output shows the "
        "newest run and prompt"
    )
    launch_once(folder, cached, newest)  # fills the bytecode cache; not measured
    kinds = {"bytecode cached": cached, "no bytecode cache": uncached}
    results: dict[str, list[dict[str, float]]] = {label: [] for label in kinds}
    for index in range(repeat):  # interleaved, so that other load hits both alike
        for label in sorted(kinds, reverse=bool(index % 2)):
            result = launch_once(folder, kinds[label], newest)
            if result:
                results[label].append(result)
    for label, measured in results.items():
        report_launches(label, measured, repeat)
    out(f"load average after the launches: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def launch_once(
    folder: Path, env: dict[str, str], newest: tuple[str, str]
) -> dict[str, float] | None:
    """Run one launch child; return its figures (None when it failed or hung)."""
    spawned = time.time()
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--launch-child", str(folder), str(spawned), *newest],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stderr or b"")[-3000:]
        out("launch child hung: " + (tail.decode() if isinstance(tail, bytes) else tail))
        return None
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        out("launch child failed: " + (done.stdout + done.stderr)[-2000:])
        return None
    result: dict[str, float] = json.loads(line[7:])
    return result


def report_launches(label: str, results: list[dict[str, float]], repeat: int) -> None:
    """Print median, p95 and max of each launch figure."""
    if not results:
        return
    out(f"launch ({label}), {len(results)}/{repeat} launches, process start included:")
    for key in ("imports", "first_frame", "full_frame", "cpu", "live"):
        # imports: the interpreter, `cosmos tui` (click, the config file) and the UI modules
        # (the DB layers load after frame 1);
        # full_frame: the first frame that draws the newest run and prompt (rows read at
        # launch, before the services);
        # cpu: the launch's own CPU time up to the full frame (less sensitive to other load);
        # live: the services are open and their first pages are on screen
        values = sorted(r.get(key, float("nan")) for r in results)
        p95 = values[max(0, round(len(values) * 0.95) - 1)]
        out(
            f"  launch -> {key:<12} median {statistics.median(values) * 1000:6.0f} ms   "
            f"p95 {p95 * 1000:6.0f} ms   max {values[-1] * 1000:6.0f} ms"
        )


# -- streaming, latency, CPU, memory ----------------------------------------------------


async def streaming(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="cosmos-tui-stream-") as scratch:
        await stream_through(args, Path(scratch))


async def stream_through(args: argparse.Namespace, folder: Path) -> None:
    from textual import events

    from cosmos_tui.domain import LogBatch, RunState
    from tests.ui.conftest import Harness, ready, settle
    from tests.ui.fakes import LOG_LINES, scenario

    h = Harness(folder, log_buffer_lines=5000)
    app = h.app
    frames: list[float] = []
    original_display = app._display

    def display(screen: Any, renderable: Any) -> None:
        if renderable is not None:
            frames.append(time.perf_counter())
        original_display(screen, renderable)

    app._display = display  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(h, pilot)
        runs = await scenario(h.services, h.clock, folder / "videos")
        main = app.main_screen
        main.prompts.reload()
        main.runs.reload()
        await settle(pilot)
        run_id = runs["running"].id
        assert main.logs.run is not None and main.logs.run.id == run_id
        stream = h.services.log_stream(run_id)
        line_count = 0

        async def produce(rate: int, seconds: float | None, total: int | None) -> None:
            nonlocal line_count
            batch = 250
            interval = batch / rate if rate else 0
            start = time.perf_counter()
            sent = 0
            while True:
                if seconds is not None and time.perf_counter() - start >= seconds:
                    return
                if total is not None and sent >= total:
                    return
                lines = tuple(
                    f"{LOG_LINES[(line_count + i) % len(LOG_LINES)]} n={line_count + i}"
                    for i in range(batch)
                )
                stream.put(LogBatch(run_id, lines, line_count))
                line_count += batch
                sent += batch
                if interval:
                    next_at = start + sent / rate
                    await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                else:
                    # As fast as the pane takes them, like a flow-controlled channel: at
                    # most a few batches are on their way, so RSS measures the pane.
                    await asyncio.sleep(0)
                    while line_count - main.logs.next_line > 8 * batch:
                        await asyncio.sleep(0.001)

        # idle CPU: nothing streams
        await settle(pilot)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(args.idle_seconds)
        idle = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        out(f"idle CPU (no streams, 1 s tick timers): {idle * 100:.1f}% of one core")

        # 5,000 lines/s with keypresses. They move the Prompts cursor: moving the Runs
        # cursor would make the Logs pane follow another run (and stop rendering the stream).
        table = main.prompts.table
        table.focus()
        latencies: list[float] = []
        producer = asyncio.create_task(produce(5000, args.stream_seconds, None))
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(0.5)
        while not producer.done():
            target = 0 if table.cursor_row else 1
            key = "down" if target else "up"
            pressed = time.perf_counter()
            frames.clear()
            app.post_message(events.Key(key, None))
            deadline = pressed + 2.0
            while time.perf_counter() < deadline:
                await asyncio.sleep(0.001)
                if table.cursor_row == target and frames and frames[-1] > pressed:
                    seen = frames[-1]
                    # the first frame after the cursor moved
                    latencies.append(seen - pressed)
                    break
            await asyncio.sleep(0.15)
        cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        await settle(pilot)
        main.logs.flush()
        latencies.sort()
        p95 = latencies[int(len(latencies) * 0.95) - 1] if latencies else float("nan")
        out(
            f"5,000 lines/s for {args.stream_seconds:.0f} s: {line_count} lines; keypress->frame "
            f"p50 {statistics.median(latencies) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
            f"max {max(latencies) * 1000:.1f} ms ({len(latencies)} presses); "
            f"CPU {cpu * 100:.0f}% of one core (fake producer included)"
        )

        # 1,000,000 lines as fast as they go
        assert main.logs.run is not None and main.logs.run.id == run_id, main.logs.run
        view = main.logs.view
        read_by_view = 0  # lines the view appended (read for their level, held)
        trimmed = 0  # lines dropped from a burst before the view read them
        real_append = view.append

        def counted_append(new_lines: Any, skipped: int = 0) -> None:
            nonlocal read_by_view, trimmed
            kept = min(len(new_lines), view.max_lines)
            read_by_view += kept
            trimmed += skipped + len(new_lines) - kept
            real_append(new_lines, skipped)

        view.append = counted_append  # type: ignore[method-assign]
        before = rss_mib()
        peak = PeakRss()
        begin = time.perf_counter()
        start_count = line_count
        await produce(0, None, args.million)
        deadline = time.perf_counter() + 120
        while main.logs.next_line < line_count and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        main.logs.flush()
        await pilot.pause()
        took = time.perf_counter() - begin
        highest_sampled, high_water = peak.stop()
        del view.append  # the view's own method again
        received = main.logs.next_line - start_count
        kernel = f"{high_water:.0f} MiB" if high_water is not None else "not available"
        out(
            f"{received:,} of {line_count - start_count:,} lines received by the Logs pane in "
            f"{took:.1f} s ({received / took:,.0f} lines/s): {read_by_view:,} appended to the "
            f"view ({read_by_view / took:,.0f} lines/s), {trimmed:,} trimmed from bursts "
            f"before the view read them; lines held {len(view.lines)}; shown total "
            f"{main.logs.border_subtitle}"
        )
        out(
            f"  RSS {before:.0f} MiB -> {rss_mib():.0f} MiB; highest during the step: "
            f"{highest_sampled:.0f} MiB sampled every {PeakRss.EVERY * 1000:.0f} ms from a "
            f"thread, kernel high-water mark (reset at the start) {kernel}"
        )
        assert main.runs.runs[run_id].state == RunState.RUNNING


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--launch-child", nargs=4, metavar=("DIR", "SPAWNED_AT", "NEWEST_RUN", "NEWEST_PROMPT")
    )
    parser.add_argument("--prompts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--launches", type=int, default=9, help="0 skips the launch step")
    parser.add_argument("--stream-seconds", type=float, default=15.0)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--million", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="smaller figures, for a smoke run")
    args = parser.parse_args()
    if args.launch_child:
        folder, spawned, newest_run, newest_prompt = args.launch_child
        launch_child(folder, float(spawned), newest_run, newest_prompt)
        return
    if args.quick:
        args.prompts, args.runs, args.launches = 1000, 10_000, 1
        args.stream_seconds, args.idle_seconds, args.million = 3.0, 2.0, 50_000
    out(f"cosmos-tui TUI benchmark; python {sys.version.split()[0]}, {os.cpu_count()} cores")
    if args.launches:
        bench_launch(args.prompts, args.runs, args.launches)
    try:
        asyncio.run(streaming(args))
    except BaseException:
        import traceback

        sys.__stderr__.write(traceback.format_exc())
        raise


if __name__ == "__main__":
    main()
