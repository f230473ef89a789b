"""A run's output in pictures: its first, middle and last frame, and each frame beside its input.

Opened with ``f`` from the run detail. The top strip shows the output's first, middle and
last frame; the bottom strip shows one frame of the output next to the same frame of the
prompt's color input, stepped with ``[`` and ``]``. Frames are decoded in threads and
cached (:class:`~cosmos_tui.services.inputs.FrameCache`), so a 4K output never blocks a key.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, cast

from PIL import Image as PILImage
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from cosmos_tui.errors import CosmosError
from cosmos_tui.safe_text import one_line
from cosmos_tui.ui.messages import OutputOpenRequested
from cosmos_tui.ui.protocol import UIServices
from cosmos_tui.ui.report import reported
from cosmos_tui.ui.widgets.frames import FrameStrip, choose_protocol, detect_graphics

if TYPE_CHECKING:
    # PyAV comes with the services module: imported when the screen is first used, so the
    # TUI's start-up does not pay for it
    from cosmos_tui.domain import Run
    from cosmos_tui.services.inputs import FrameCache
    from cosmos_tui.ui.app import CosmosApp

BOX = (480, 270)


class RunFramesScreen(Screen[None]):
    """The output's first, middle and last frame; output and input frame side by side."""

    BINDINGS = [
        Binding("escape,q,f", "close", "Back", id="frames.close"),
        Binding("left_square_bracket", "step(-1)", "Frame -1", key_display="[",
                id="frames.prev"),
        Binding("right_square_bracket", "step(1)", "Frame +1", key_display="]",
                id="frames.next"),
        Binding("left_curly_bracket", "step(-10)", "-10", show=False, id="frames.back10"),
        Binding("right_curly_bracket", "step(10)", "+10", show=False, id="frames.ahead10"),
        Binding("o", "open_output", "Play", id="frames.open"),
    ]  # fmt: skip
    DEFAULT_CSS = """
    #frames-info { height: auto; padding: 0 1; }
    .frames-title { height: 1; padding: 0 1; text-style: bold; }
    #frames-span, #frames-compare { height: 1fr; }
    """

    def __init__(self, services: UIServices, run_id: str) -> None:
        super().__init__()
        self.services = services
        self.run_id = run_id
        self.run: Run | None = None
        self.output: Path | None = None
        self.source: Path | None = None
        self.output_frames = 0
        self.source_frames = 0
        self.index = 0
        self._cache: FrameCache | None = None

    @property
    def cache(self) -> FrameCache:
        """Decoded frames, kept while the screen is open."""
        if self._cache is None:
            # lazy: services.inputs loads PyAV, asyncssh and the services (~0.5 s), not at start-up
            from cosmos_tui.services.inputs import FrameCache

            self._cache = FrameCache()
        return self._cache

    def compose(self) -> ComposeResult:
        """Facts, the first/middle/last strip and the output-beside-input strip."""
        config = cast("CosmosApp", self.app).config
        protocol = choose_protocol(config.ui.image_protocol, detect_graphics())
        with Vertical(id="frames"):
            yield Static(f"loading {self.run_id}...", id="frames-info", markup=False)
            yield Static("Output: first, middle, last", classes="frames-title")
            yield FrameStrip(protocol, id="frames-span")
            yield Static("Output beside its color input", classes="frames-title")
            yield FrameStrip(protocol, id="frames-compare")
        yield Footer()

    def on_mount(self) -> None:
        """Find the videos and decode in a worker."""
        self.title = f"Frames of {self.run_id}"
        self._load()

    @work(exclusive=True, group="frames-load", exit_on_error=False)
    @reported
    async def _load(self) -> None:
        # lazy: services.inputs loads PyAV, asyncssh and the services (~0.5 s), not at start-up
        from cosmos_tui.services.inputs import frame_count

        info = self.query_one("#frames-info", Static)
        run = self.run = await self.services.get_run(self.run_id)
        self.output = self.services.output_path(run)
        if self.output is None or not await asyncio.to_thread(self.output.is_file):
            info.update(f"{run.id} has no output video yet ({run.state.value})")
            return
        if run.prompt_id is not None:
            color = (await self.services.get_prompt(run.prompt_id)).input("color")
            self.source = color.path if color is not None else None
        self.output_frames = await frame_count(self.output)
        facts = f"output {self.output.name}: {self.output_frames} frames"
        if self.source is not None:
            try:
                self.source_frames = await frame_count(self.source)
                facts += f"; input {self.source.name}: {self.source_frames} frames"
            except CosmosError as exc:  # the input changed or went since the prompt
                self.source = None
                facts += f"; input not shown: {one_line(exc.message)}"
        info.update(facts)
        pictures, caption = await first_middle_last(self.cache, self.output, self.output_frames)
        await self.query_one("#frames-span", FrameStrip).show(pictures, caption)
        await self._compare(self.index)

    async def _frame(self, video: Path, index: int) -> PILImage.Image | None:
        try:
            return await self.cache.frame(video, index, BOX)
        except CosmosError:
            return None

    async def _compare(self, index: int) -> None:
        if self.output is None:
            return
        pictures: dict[str, PILImage.Image | None] = {}
        caption: dict[str, str] = {}
        if self.source is not None and self.source_frames:
            at = min(index, self.source_frames - 1)
            pictures["input"] = await self._frame(self.source, at)
            caption["input"] = f"input  {at + 1}/{self.source_frames}" + _failed(pictures["input"])
        pictures["output"] = await self._frame(self.output, index)
        caption["output"] = f"output  {index + 1}/{self.output_frames}" + _failed(
            pictures["output"]
        )
        if index == self.index:  # still the frame wanted
            await self.query_one("#frames-compare", FrameStrip).show(pictures, caption)

    def action_step(self, delta: int) -> None:
        """Show another frame of the output beside its input."""
        if not self.output_frames:
            return
        self.index = max(0, min(self.output_frames - 1, self.index + delta))
        self._step(self.index)

    @work(exclusive=True, group="frames-step", exit_on_error=False)
    async def _step(self, index: int) -> None:
        await self._compare(index)

    def action_open_output(self) -> None:
        """Play the output in the system's player (as ``o`` does in the Runs pane)."""
        if self.run is not None:
            cast("CosmosApp", self.app).main_screen.post_message(OutputOpenRequested(self.run))

    def action_close(self) -> None:
        """Back to the run detail."""
        self.dismiss(None)


async def first_middle_last(
    cache: FrameCache, video: Path, frames: int
) -> tuple[dict[str, PILImage.Image | None], dict[str, str]]:
    """The first, middle and last frame of ``video``, and their captions.

    A frame that cannot be decoded is None (its caption says so), for :meth:`FrameStrip.show`.
    """
    last = max(0, frames - 1)
    picks = {"first": 0, "middle": last // 2, "last": last}
    pictures: dict[str, PILImage.Image | None] = {}
    for name, index in picks.items():
        try:
            pictures[name] = await cache.frame(video, index, BOX)
        except CosmosError:
            pictures[name] = None
    caption = {
        name: f"{name}  {i + 1}/{frames}" + _failed(pictures[name]) for name, i in picks.items()
    }
    return pictures, caption


def _failed(picture: PILImage.Image | None) -> str:
    return "" if picture is not None else "  (cannot decode)"
