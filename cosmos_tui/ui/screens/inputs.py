"""The Inputs screen: input folders with their checks, prepare with progress, frame previews.

Lists the folders under ``paths.inputs_dir`` (and any the user adds with ``a``): videos,
rendered sequences or both, with passes, frames, size, fps, the prompts made from each and
the problems the checks found. ``p`` prepares a sequence folder (a progress bar; encoding
runs in a thread), ``enter`` opens the new-prompt form on the folder, ``[`` and ``]`` step
through the frames shown side by side for every pass.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from PIL import Image as PILImage
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, ProgressBar, Static

from cosmos_tui.errors import CosmosError
from cosmos_tui.ui.messages import FileOpenRequested, PromptChanged, PromptShowRequested
from cosmos_tui.ui.report import reported
from cosmos_tui.ui.widgets.frames import FrameStrip, choose_protocol, detect_graphics

if TYPE_CHECKING:
    # the services (PyAV, SQLAlchemy) are imported when the screen is first used, so the
    # TUI's start-up does not wait for them
    from cosmos_tui.services.inputs import FrameCache, InputFolder
    from cosmos_tui.ui.app import CosmosApp

SORTS = ("name", "frames", "problems", "kind")
COLUMNS = ("folder", "kind", "passes", "frames", "size", "fps", "prompts", "problems")
PREVIEW_BOX = (480, 270)


class PrepareProgress(Message):
    """Frames encoded so far by a prepare (posted from the encoding threads)."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__()
        self.done, self.total = done, total


class FramesDecoded(Message):
    """The pictures of one frame of every pass of a folder."""

    def __init__(
        self, folder: Path, index: int, pictures: dict[str, PILImage.Image | None]
    ) -> None:
        super().__init__()
        self.folder, self.index, self.pictures = folder, index, pictures


class InputsScreen(Screen[None]):
    """Input folders, their checks, prepare and frame previews."""

    AUTO_FOCUS = "#inputs-table"

    BINDINGS = [
        Binding("escape,i", "close", "Back", id="inputs.close"),
        Binding("slash", "filter", "Filter", key_display="/", id="inputs.filter"),
        Binding("s", "sort", "Sort", id="inputs.sort"),
        Binding("p", "prepare", "Prepare", id="inputs.prepare"),
        Binding("enter", "create_prompt", "New prompt", id="inputs.prompt", priority=True),
        Binding("left_square_bracket", "step(-1)", "Frame -1", key_display="[",
                id="inputs.prev_frame"),
        Binding("right_square_bracket", "step(1)", "Frame +1", key_display="]",
                id="inputs.next_frame"),
        Binding("left_curly_bracket", "step(-10)", "-10", show=False, id="inputs.back10"),
        Binding("right_curly_bracket", "step(10)", "+10", show=False, id="inputs.ahead10"),
        Binding("o", "open_video", "Play", id="inputs.open"),
        Binding("a", "add_folder", "Add folder", id="inputs.add"),
        Binding("u", "prompts", "Its prompts", show=False, id="inputs.prompts"),
        Binding("r", "reload", "Reload", id="inputs.reload"),
    ]  # fmt: skip
    DEFAULT_CSS = """
    #inputs-table { height: auto; max-height: 40%; min-height: 4; }
    #inputs-filter { display: none; }
    #inputs-filter.-shown { display: block; }
    #inputs-detail { height: auto; max-height: 4; padding: 0 1; }
    #inputs-progress { display: none; padding: 0 1; }
    #inputs-progress.-busy { display: block; }
    #inputs-frames { height: 2fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.folders: list[InputFolder] = []
        self.shown: list[InputFolder] = []
        self.extra_folders: list[Path] = []
        self.sort_key = "name"
        self.frame_index = 0
        self._cache: FrameCache | None = None
        self.preparing: Path | None = None
        self.wanted: Path | None = None  # a folder to put the cursor on once listed

    @property
    def cache(self) -> FrameCache:
        """Decoded frames, kept while the screen is installed."""
        if self._cache is None:
            # lazy: services.inputs loads PyAV, asyncssh and the services (~0.5 s), not at start-up
            from cosmos_tui.services.inputs import FrameCache

            self._cache = FrameCache()
        return self._cache

    @property
    def cosmos(self) -> CosmosApp:
        """The application, typed."""
        return cast("CosmosApp", self.app)

    def compose(self) -> ComposeResult:
        """Filter, table, details, progress and the frame strip."""
        protocol = choose_protocol(self.cosmos.config.ui.image_protocol, detect_graphics())
        yield Header(show_clock=False, icon="\u25c6")
        with Vertical(id="inputs"):
            yield Input(id="inputs-filter", placeholder="filter: folder, pass or problem")
            yield DataTable(id="inputs-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="inputs-detail", markup=False)
            yield ProgressBar(id="inputs-progress", show_eta=False)
            yield FrameStrip(protocol, id="inputs-frames")
        yield Footer()

    def on_mount(self) -> None:
        """Columns, then the first scan."""
        table = self.query_one("#inputs-table", DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column)
        self.title = "Inputs"
        self.action_reload()

    # listing ---------------------------------------------------------------------------

    @property
    def roots(self) -> list[Path]:
        """The folders whose children are listed."""
        return [self.cosmos.config.inputs_dir]

    def action_reload(self) -> None:
        """Scan the folders again (in a worker)."""
        self._load()

    @work(exclusive=True, group="inputs-scan", exit_on_error=False)
    @reported
    async def _load(self) -> None:
        # lazy: services.inputs (PyAV, asyncssh: ~0.5 s) and store.repositories (SQLAlchemy,
        # ~0.3 s) load when the screen is first used, not at start-up
        from cosmos_tui.services.inputs import list_input_folders
        from cosmos_tui.store.repositories import PromptFilter

        used: dict[Path, tuple[str, ...]] = {}
        services = self.cosmos.services
        if services is not None:
            page = await services.list_prompts(PromptFilter(), 0, 1000, "created", True)
            for prompt in page.items:
                if prompt.video_dir is not None:
                    key = Path(prompt.video_dir).resolve()
                    used[key] = (*used.get(key, ()), prompt.id)
        folders = await list_input_folders(self.roots, used)
        extra = await asyncio.gather(
            *(list_input_folders([p.parent], used) for p in self.extra_folders)
        )
        for path, found in zip(self.extra_folders, extra, strict=True):
            folders.extend(f for f in found if f.path == path and f not in folders)
        self.folders = folders
        self._fill()

    def _matches(self, folder: InputFolder, text: str) -> bool:
        haystack = " ".join((folder.name, folder.kind, *folder.passes, *folder.problems))
        return text.lower() in haystack.lower()

    def _fill(self) -> None:
        table = self.query_one("#inputs-table", DataTable)
        text = self.query_one("#inputs-filter", Input).value.strip()
        chosen = [f for f in self.folders if not text or self._matches(f, text)]
        order = {
            "name": lambda f: f.name.lower(),
            "frames": lambda f: -(f.frames or 0),
            "problems": lambda f: (-len(f.problems), f.name.lower()),
            "kind": lambda f: (f.kind, f.name.lower()),
        }[self.sort_key]
        self.shown = sorted(chosen, key=order)
        selected = self.selected
        table.clear()
        for folder in self.shown:
            size = f"{folder.width}x{folder.height}" if folder.width else "-"
            table.add_row(
                folder.name,
                folder.kind,
                " ".join(folder.passes) or "-",
                str(folder.frames) if folder.frames is not None else "-",
                size,
                f"{folder.fps:g}" if folder.fps else "-",
                ", ".join(folder.used_by) or "-",
                str(len(folder.problems)) if folder.problems else "ok",
                key=str(folder.path),
            )
        self.sub_title = (
            f"{len(self.shown)} of {len(self.folders)} folders in {self.roots[0].name}/"
            f"  sorted by {self.sort_key}"
        )
        paths = [f.path.resolve() for f in self.shown]
        if self.wanted is not None and self.wanted in paths:
            table.move_cursor(row=paths.index(self.wanted))
            self.wanted = None
        elif selected is not None and selected in self.shown:
            table.move_cursor(row=self.shown.index(selected))
        self._selection_changed()

    @property
    def selected(self) -> InputFolder | None:
        """The highlighted folder."""
        table = self.query_one("#inputs-table", DataTable)
        if not self.shown or table.cursor_row is None:
            return None
        return self.shown[min(table.cursor_row, len(self.shown) - 1)]

    @on(DataTable.RowHighlighted, "#inputs-table")
    def _highlighted(self) -> None:
        self.frame_index = 0
        self._selection_changed()

    def _selection_changed(self) -> None:
        folder = self.selected
        detail = self.query_one("#inputs-detail", Static)
        if folder is None:
            detail.update(
                f"no input folders in {self.roots[0]} (paths.inputs_dir): copy or render "
                "some there, or press a to add a folder"
            )
            return
        lines = list(folder.problems) or ["checks passed"]
        if folder.kind == "sequence":
            lines.append("a rendered sequence: p prepares its videos")
        detail.update("\n".join(lines))
        self._show_frames(folder, self.frame_index)

    # filter and sort -------------------------------------------------------------------

    def action_filter(self) -> None:
        """Show and focus the filter."""
        field = self.query_one("#inputs-filter", Input)
        field.add_class("-shown")
        field.focus()

    @on(Input.Changed, "#inputs-filter")
    def _filter_changed(self) -> None:
        self._fill()

    @on(Input.Submitted, "#inputs-filter")
    def _filter_done(self) -> None:
        self.query_one("#inputs-table", DataTable).focus()

    def action_sort(self) -> None:
        """Sort by the next key: name, frames, problems, kind."""
        self.sort_key = SORTS[(SORTS.index(self.sort_key) + 1) % len(SORTS)]
        self._fill()

    # frames ----------------------------------------------------------------------------

    def action_step(self, delta: int) -> None:
        """Show another frame of the highlighted folder."""
        folder = self.selected
        if folder is None or not folder.frames:
            return
        self.frame_index = max(0, min(folder.frames - 1, self.frame_index + delta))
        self._show_frames(folder, self.frame_index)

    @work(exclusive=True, group="inputs-frames", exit_on_error=False)
    async def _show_frames(self, folder: InputFolder, index: int) -> None:
        # lazy: services.inputs loads PyAV, asyncssh and the services (~0.5 s), not at start-up
        from cosmos_tui.services.inputs import frame_sources, sequence_frame

        pictures: dict[str, PILImage.Image | None] = {}
        for role, (source, _) in frame_sources(folder).items():
            path: Path | None = source
            if source.is_dir():
                path = await asyncio.to_thread(sequence_frame, source, role, index)
            try:
                pictures[role] = (
                    None
                    if path is None
                    else await self.cache.frame(
                        path, index, PREVIEW_BOX, depth=role == "depth" and source.is_dir()
                    )
                )
            except CosmosError:
                pictures[role] = None
        self.post_message(FramesDecoded(folder.path, index, pictures))

    async def on_frames_decoded(self, message: FramesDecoded) -> None:
        """Show decoded frames if they are still the ones wanted."""
        folder = self.selected
        if folder is None or folder.path != message.folder or message.index != self.frame_index:
            return
        total = folder.frames or 0
        caption = {
            role: f"{role}  {message.index + 1}/{total}"
            + ("" if picture is not None else "  (cannot decode)")
            for role, picture in message.pictures.items()
        }
        await self.query_one(FrameStrip).show(message.pictures, caption)

    # prepare, prompt, play -------------------------------------------------------------

    def action_prepare(self) -> None:
        """Prepare the highlighted sequence folder's videos, with a progress bar."""
        folder = self.selected
        if folder is None or not folder.sequence:
            self.notify("choose a folder of rendered frames (color.0001.png ...)")
            return
        if self.preparing is not None:
            self.notify(f"already preparing {self.preparing.name}")
            return
        self.preparing = folder.path
        bar = self.query_one("#inputs-progress", ProgressBar)
        bar.update(total=None, progress=0)
        bar.add_class("-busy")
        self._prepare(folder)

    def _progress(self, done: int, total: int) -> None:
        self.post_message(PrepareProgress(done, total))

    @work(group="inputs-prepare", exit_on_error=False)
    @reported
    async def _prepare(self, folder: InputFolder) -> None:
        # lazy: services.inputs loads PyAV, asyncssh and the services (~0.5 s), not at start-up
        from cosmos_tui.services.inputs import prepare_folder

        try:
            result = await prepare_folder(
                folder.path, lambda done, total: self._progress(done, total)
            )
        finally:
            self.preparing = None
            self.query_one("#inputs-progress", ProgressBar).remove_class("-busy")
        done = ", ".join(result.encoded) if result.encoded else "nothing changed"
        self.notify(
            f"{folder.name}: {result.frames} frames, {result.width}x{result.height} ({done})",
            title="Prepared",
        )
        self.action_reload()

    def on_prepare_progress(self, message: PrepareProgress) -> None:
        """Move the progress bar."""
        self.query_one("#inputs-progress", ProgressBar).update(
            total=message.total, progress=message.done
        )

    def action_create_prompt(self) -> None:
        """Open the new-prompt form on the highlighted folder (enter)."""
        if isinstance(self.focused, Input):
            self._filter_done()
            return
        folder = self.selected
        services = self.cosmos.services
        if folder is None:
            return
        if services is None:
            self.notify("still connecting to the database", severity="warning")
            return
        # lazy: the forms and Textual's TextArea (~20 ms) load when a form first opens
        from cosmos_tui.ui.screens.prompt_from_folder import PromptFromFolder

        def _created(prompt: Any) -> None:
            if prompt is not None:
                self.notify(f"{prompt.id} created from {folder.name}", title="Prompt created")
                self.cosmos.main_screen.post_message(PromptChanged(prompt))
                self.action_reload()

        self.app.push_screen(PromptFromFolder(services, folder.path), _created)

    def action_open_video(self) -> None:
        """Play the highlighted folder's color.mp4 in the system's player."""
        folder = self.selected
        video = folder.path / "color.mp4" if folder is not None else None
        if video is None or not video.is_file():
            self.notify("this folder has no color.mp4 yet (p prepares a sequence)")
            return
        self.cosmos.main_screen.post_message(FileOpenRequested(video))

    def action_add_folder(self) -> None:
        """Add a folder from a directory tree to the list."""
        # lazy: the forms and Textual's TextArea (~20 ms) load when a form first opens
        from cosmos_tui.ui.screens.prompt_form import FolderPicker

        def _chosen(path: Path | None) -> None:
            if path is not None and path not in self.extra_folders:
                self.extra_folders.append(path)
                self.action_reload()

        self.app.push_screen(FolderPicker(self.roots[0]), _chosen)

    def reveal(self, folder: Path) -> None:
        """List ``folder`` (added when outside the inputs folder) with the cursor on it."""
        self.wanted = folder.resolve()
        outside = self.wanted.parent not in [root.resolve() for root in self.roots]
        if outside and self.wanted not in self.extra_folders:
            self.extra_folders.append(self.wanted)
        if self.is_mounted:
            self.action_reload()

    def action_prompts(self) -> None:
        """Back to the main screen with the cursor on the first prompt made from the folder."""
        folder = self.selected
        if folder is None or not folder.used_by:
            self.notify("no prompt uses this folder yet (enter creates one)")
            return
        self.cosmos.main_screen.post_message(PromptShowRequested(folder.used_by[0]))

    def action_close(self) -> None:
        """Back to the main screen (the filter first, if it has focus)."""
        field = self.query_one("#inputs-filter", Input)
        if field.has_focus:
            field.value = ""
            field.remove_class("-shown")
            self.query_one("#inputs-table", DataTable).focus()
            return
        self.app.pop_screen()
