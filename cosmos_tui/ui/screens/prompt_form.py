"""The new-prompt form: text, negative prompt, name, and a video folder with completion."""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Button, DirectoryTree, Input, Label, Static, TextArea

from cosmos_tui.domain import Prompt
from cosmos_tui.errors import CosmosError, ValidationError
from cosmos_tui.ui.format import plain
from cosmos_tui.ui.protocol import UIServices
from cosmos_tui.ui.report import reported
from cosmos_tui.ui.screens.form import FormScreen

ROLE_LABELS = (("color", "color.mp4"), ("depth", "depth"), ("seg", "segmentation"),
               ("edge", "edge"), ("vis", "vis"))  # fmt: skip


class PathSuggester(Suggester):
    """Completes a folder path from the directories that exist (case-sensitive)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        """Return the first existing folder that starts with ``value``."""
        if not value:
            return None
        typed = Path(value).expanduser()
        parent, stem = (typed, "") if value.endswith("/") else (typed.parent, typed.name)
        try:
            names = sorted(
                p.name for p in parent.iterdir() if p.is_dir() and p.name.startswith(stem)
            )
        except OSError:
            return None
        if not names:
            return None
        return value + names[0][len(stem) :] + "/"


class FolderPicker(ModalScreen[Path | None]):
    """Pick a folder from a directory tree."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel", id="picker.cancel")]

    def __init__(self, start: Path) -> None:
        super().__init__()
        self.start = start

    def compose(self) -> ComposeResult:
        """A directory tree and a hint."""
        with VerticalScroll(classes="dialog", id="picker"):
            yield Static("Enter opens a folder; s selects the highlighted one", classes="hint")
            yield DirectoryTree(self.start, id="tree")

    def on_mount(self) -> None:
        """Focus the tree."""
        self.query_one("#picker").border_title = "Choose the video folder"
        self.query_one(DirectoryTree).focus()

    def key_s(self) -> None:
        """Select the highlighted folder."""
        node = self.query_one(DirectoryTree).cursor_node
        if node is not None and node.data is not None:
            path = Path(node.data.path)
            self.dismiss(path if path.is_dir() else path.parent)

    def action_dismiss_none(self) -> None:
        """Close without choosing."""
        self.dismiss(None)


class PromptForm(FormScreen[Prompt]):
    """Create a prompt; errors are shown next to the field they concern."""

    FIELD_IDS = {"negative_prompt": "negative"}

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="form.save"),
        Binding("escape", "cancel", "Cancel", id="form.cancel"),
        Binding("ctrl+o", "pick_folder", "Browse", id="form.browse"),
    ]

    def __init__(self, services: UIServices, start_dir: Path | None = None) -> None:
        super().__init__()
        self.services = services
        self.start_dir = start_dir or Path.cwd()

    def compose(self) -> ComposeResult:
        """Fields, the list of videos found, and the buttons."""
        with VerticalScroll(id="prompt-form", classes="dialog form"):
            yield Label("Prompt text")
            yield TextArea(id="text", soft_wrap=True, show_line_numbers=False)
            yield Label("Name (optional)")
            yield Input(id="name", placeholder="a short name to find it by")
            yield Label("Negative prompt (optional; default from the config)")
            yield Input(id="negative")
            yield Label("Video folder (holds color.mp4; right arrow completes, ctrl+o browses)")
            with Horizontal(classes="row"):
                yield Input(id="video_dir", placeholder="path/to/folder", suggester=PathSuggester())
                yield Button("Browse", id="browse", compact=True)
            yield Static("", id="videos", markup=False)
            yield from self.form_footer()

    def on_mount(self) -> None:
        """Title and focus."""
        self.query_one("#prompt-form").border_title = "New prompt"
        self.query_one("#text", TextArea).focus()

    @on(Input.Changed, "#video_dir")
    def _folder_changed(self, event: Input.Changed) -> None:
        self._scan(event.value)

    @work(exclusive=True, group="scan", exit_on_error=False)
    async def _scan(self, value: str) -> None:
        videos = self.query_one("#videos", Static)
        error = self.query_one("#form-error", Static)
        if not value.strip():
            videos.update("")
            error.update("")
            return
        try:
            found = await self.services.find_inputs(Path(value.strip()))
        except CosmosError as exc:
            videos.update("")
            error.update(plain(exc.message))
            return
        error.update("")
        videos.update(
            "Found: "
            + "  ".join(
                f"[x] {label}" if role in found else f"[ ] {label}" for role, label in ROLE_LABELS
            )
        )

    @on(Button.Pressed, "#browse")
    def action_pick_folder(self) -> None:
        """Choose the folder from a tree."""

        def _chosen(path: Path | None) -> None:
            if path is not None:
                self.query_one("#video_dir", Input).value = str(path)

        self.app.push_screen(FolderPicker(self.start_dir), _chosen)

    def action_save(self) -> None:
        """Validate and save in a worker."""
        self.clear_errors()
        self._save()

    @work(exclusive=True, group="save", exit_on_error=False)
    @reported
    async def _save(self) -> None:
        text = self.query_one("#text", TextArea).text
        name = self.query_one("#name", Input).value.strip() or None
        negative = self.query_one("#negative", Input).value.strip() or None
        folder = self.query_one("#video_dir", Input).value.strip()
        try:
            if not folder:
                raise ValidationError("choose the folder that holds color.mp4", field="video_dir")
            prompt = await self.services.create_prompt(text, Path(folder), name, negative)
        except ValidationError as exc:
            self.show_error(exc)
            return
        self.dismiss(prompt)
