"""The run detail screen: parameters, spec, timeline, GPU metrics, outputs, failure, lineage.

Below them, the output video's first, middle and last frame (``f`` opens them large).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from cosmos_tui.domain import GpuSample, OutputFile, Run, RunMetrics
from cosmos_tui.errors import CosmosError
from cosmos_tui.safe_text import one_line
from cosmos_tui.ui.format import (
    LOOK_CLASSES,
    Look,
    Looks,
    block,
    duration,
    plain,
    rating_text,
    sparkline,
    state_text,
)
from cosmos_tui.ui.protocol import UIServices
from cosmos_tui.ui.report import reported
from cosmos_tui.ui.screens.run_frames import RunFramesScreen, first_middle_last
from cosmos_tui.ui.widgets.frames import FrameStrip, choose_protocol, detect_graphics

if TYPE_CHECKING:
    from cosmos_tui.ui.app import CosmosApp

History = Callable[[str, int], list[GpuSample]]


def _size(value: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024  # type: ignore[assignment]
    return str(value)


def section(title: str, body: RenderableType) -> Group:
    """A titled block."""
    return Group(Text(f"\n{title}", style="bold underline"), body)


CHART_WIDTH = 60


def _columns(values: list[float | None], width: int, peak: bool) -> list[float | None]:
    """``values`` squeezed into ``width`` columns: each the mean (or peak) of its share."""
    if len(values) <= width:
        return values
    out: list[float | None] = []
    for column in range(width):
        share = [
            v
            for v in values[column * len(values) // width : (column + 1) * len(values) // width]
            if v is not None
        ]
        out.append((max(share) if peak else sum(share) / len(share)) if share else None)
    return out


def lifetime_charts(metrics: RunMetrics, look: Look) -> Table:
    """GPU utilisation and memory over the run's lifetime, from its recorded timeline."""
    charts = Table.grid(padding=(0, 2))
    utils = [point[1] for point in metrics.timeline]
    memory = [point[2] for point in metrics.timeline]
    span = f"0 .. {duration(metrics.timeline[-1][0])}"
    charts.add_row(
        "util %", sparkline(_columns(utils, CHART_WIDTH, False), CHART_WIDTH, look("active")), span
    )
    top = max((m for m in memory if m is not None), default=0.0)
    charts.add_row(
        "memory",
        sparkline(_columns(memory, CHART_WIDTH, True), CHART_WIDTH, look("memory"), top=top),
        f"peak {top / 1024:.1f}G" if top else "not reported",
    )
    return charts


def gpu_metrics(run: Run, history: History, look: Look) -> RenderableType:
    """Summarise the samples of the run's GPUs taken while it ran."""
    table = Table.grid(padding=(0, 2))
    recorded = getattr(run, "metrics", None)
    if recorded is not None and recorded.samples:
        figures = [f"{recorded.samples} samples over {duration(recorded.seconds)}"]
        if recorded.util_mean is not None and recorded.util_peak is not None:
            figures.append(f"util mean {recorded.util_mean:.0f}% peak {recorded.util_peak:.0f}%")
        if recorded.memory_peak_mib is not None:
            figures.append(f"mem peak {recorded.memory_peak_mib / 1024:.1f}G")
        if recorded.temperature_peak_c is not None:
            figures.append(f"temp peak {recorded.temperature_peak_c:.0f}C")
        energy = getattr(recorded, "energy_wh", None)
        if energy is not None:
            figures.append(f"{energy:.1f} Wh")
        table.add_row("recorded", Text("  ".join(figures)))
        if recorded.timeline:
            table.add_row("over the run", lifetime_charts(recorded, look))
    if not run.host or not run.gpus:
        if recorded is None:
            return Text("no GPUs assigned", style=look("faint"))
        return table
    for gpu in run.gpus:
        samples = [
            s
            for s in history(run.host, gpu)
            if run.started_at is None or s.at >= run.started_at
            if run.finished_at is None or s.at <= run.finished_at
        ]
        utils = [s.utilization for s in samples if s.utilization is not None]
        memory = [s.memory_used_mib for s in samples if s.memory_used_mib is not None]
        temps = [s.temperature_c for s in samples if s.temperature_c is not None]
        if not samples:
            table.add_row(
                plain(f"{run.host} GPU {gpu}"),
                Text("no samples while this UI was open", style=look("faint")),
            )
            continue
        summary = (
            (f"util avg {sum(utils) / len(utils):.0f}% max {max(utils):.0f}%  " if utils else "")
            + (f"mem max {max(memory) / 1024:.1f}G  " if memory else "")
            + (f"temp max {max(temps):.0f}C" if temps else "")
        )
        table.add_row(
            plain(f"{run.host} GPU {gpu}"),
            Text(summary),
            sparkline([s.utilization for s in samples], 30, look("active")),
        )
    return table


def render_detail(
    run: Run,
    outputs: tuple[OutputFile, ...],
    context: tuple[str, ...],
    history: History,
    look: Look,
) -> Group:
    """Build the whole detail view of a run."""
    head = Text()
    head.append(f"{run.id}  ", style="bold")
    head.append_text(state_text(run.state, look))
    head.append(f"   {run.type.value} / {one_line(run.profile)}   attempt {run.attempt}   ")
    head.append_text(rating_text(run.rating, look))
    head.append_text(block(f"\n{run.prompt_text or ''}", style="italic"))
    summary = Table.grid(padding=(0, 2))
    summary.add_row("host", plain(f"{run.host or '-'}  GPUs {','.join(map(str, run.gpus)) or '-'}"))
    summary.add_row("created", run.created_at.strftime("%Y-%m-%d %H:%M:%S"))
    summary.add_row("duration", duration(run.duration_seconds))
    summary.add_row("container", plain(run.container_id or "-"))
    params = Table.grid(padding=(0, 2))
    for name, value in run.params.to_dict().items():
        params.add_row(name, plain(value, style=look("accent")))
    spec = Text(
        json.dumps(run.spec, indent=2, sort_keys=True) if run.spec else "not sent yet",
        style=look("muted"),
    )
    timeline = Table.grid(padding=(0, 2))
    for event in run.events:
        timeline.add_row(
            event.at.strftime("%H:%M:%S"),
            state_text(event.to_state, look),
            plain(event.reason, style=look("muted")),
        )
    files = Table.grid(padding=(0, 2))
    for item in outputs:
        files.add_row(plain(item.name), _size(item.size), plain(item.path, style=look("faint")))
    parts: list[RenderableType] = [head, summary]
    if run.failure_kind or run.failure_message:
        failure = Text(
            f"{run.failure_kind.value if run.failure_kind else 'failed'}: ",
            style=look("alarm"),
        )
        failure.append(one_line(run.failure_message or ""), style=look("bad"))
        if run.exit_code is not None:
            failure.append(f"  (exit code {run.exit_code})", style=look("muted"))
        body: list[RenderableType] = [failure]
        if context:
            body.append(Text("\n".join(one_line(line) for line in context), style=look("muted")))
        parts.append(section("Failure", Group(*body)))
    parts.append(section("Timeline", timeline))
    parts.append(section("Parameters", params))
    parts.append(section("Spec sent", spec))
    parts.append(section("GPU metrics during the run", gpu_metrics(run, history, look)))
    parts.append(section("Outputs", files if outputs else Text("none yet", style=look("faint"))))
    lineage = Table.grid(padding=(0, 2))
    lineage.add_row("prompt", plain(run.prompt_id or "-"))
    lineage.add_row("batch", plain(run.batch_id or "-"))
    lineage.add_row("from run", plain(run.source_run_id or "-"))
    parts.append(section("Batch and lineage", lineage))
    return Group(*parts)


class RunDetailScreen(Screen[None]):
    """Everything recorded about one run."""

    BINDINGS = [
        Binding("escape,q", "close", "Back", id="detail.close"),
        Binding("f", "frames", "Frames", id="detail.frames"),
    ]
    DEFAULT_CSS = """
    #detail-frames-title { height: auto; padding: 0 1; text-style: bold underline; }
    #detail-frames { height: 14; display: none; }
    #detail-frames.-shown { display: block; }
    """

    COMPONENT_CLASSES = set(LOOK_CLASSES)

    def __init__(self, services: UIServices, run_id: str, history: History) -> None:
        super().__init__()
        self.look = Looks(self)
        self.services = services
        self.run_id = run_id
        self.history = history

    def compose(self) -> ComposeResult:
        """A scrolling body (the output's frames after the summary) and the footer."""
        config = cast("CosmosApp", self.app).config
        protocol = choose_protocol(config.ui.image_protocol, detect_graphics())
        with VerticalScroll(id="detail"):
            yield Static(plain(f"loading {self.run_id}..."), id="detail-body")
            yield Static("", id="detail-frames-title", markup=False)
            yield FrameStrip(protocol, id="detail-frames")
        yield Footer()

    def on_mount(self) -> None:
        """Load the run in a worker."""
        self.query_one("#detail").border_title = plain(f"Run {self.run_id}")
        self._load()

    @work(exclusive=True, exit_on_error=False)
    @reported
    async def _load(self) -> None:
        run = await self.services.get_run(self.run_id)
        outputs = await self.services.output_files(self.run_id)
        context: tuple[str, ...] = ()
        if run.state.is_terminal and run.failure_kind is not None:
            context = await self.services.log_context(self.run_id, 5)
        self.query_one("#detail-body", Static).update(
            render_detail(run, outputs, context, self.history, self.look)
        )
        self._frames(run)

    @work(exclusive=True, group="detail-frames", exit_on_error=False)
    @reported
    async def _frames(self, run: Run) -> None:
        """Decode the output's first, middle and last frame in threads, then show them."""
        # lazy: services.inputs loads PyAV, asyncssh and the services (~0.5 s), not at start-up
        from cosmos_tui.services.inputs import FrameCache, frame_count

        title = self.query_one("#detail-frames-title", Static)
        output = self.services.output_path(run)
        if output is None or not await asyncio.to_thread(output.is_file):
            title.update("Output frames: no output video yet")
            return
        try:
            frames = await frame_count(output)
        except CosmosError as exc:
            title.update(f"Output frames: not shown ({one_line(exc.message)})")
            return
        pictures, caption = await first_middle_last(FrameCache(), output, frames)
        strip = self.query_one("#detail-frames", FrameStrip)
        await strip.show(pictures, caption)
        strip.add_class("-shown")
        title.update(f"Output frames: first, middle, last of {frames} (f: larger, step)")

    def action_frames(self) -> None:
        """The output's first, middle and last frame, and the output beside its input."""
        self.app.push_screen(RunFramesScreen(self.services, self.run_id))

    def action_close(self) -> None:
        """Back to the main screen."""
        self.dismiss(None)
