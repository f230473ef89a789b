"""The new-prompt form opened from the Inputs screen, with the folder already filled in."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input

from cosmos_tui.ui.protocol import UIServices
from cosmos_tui.ui.screens.prompt_form import PromptForm


class PromptFromFolder(PromptForm):
    """:class:`PromptForm` with ``video_dir`` set to the chosen input folder."""

    def __init__(self, services: UIServices, folder: Path) -> None:
        super().__init__(services, folder.parent)
        self.folder = folder

    def on_mount(self) -> None:
        """Fill in the folder (PromptForm's own on_mount titles and focuses the form)."""
        self.query_one("#video_dir", Input).value = str(self.folder)
