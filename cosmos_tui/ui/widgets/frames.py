"""Frames in the terminal: one picture per pass, side by side, drawn with textual-image.

textual-image asks the terminal what it can draw when it is imported (before Textual takes
the terminal over): Sixel, the Kitty graphics protocol, or neither. ``ui.image_protocol``
picks one by hand (``halfcell`` works everywhere, and is what the snapshot tests use).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from PIL import Image as PILImage
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static
from textual_image import _terminal
from textual_image import renderable as detected


def _cell_size() -> None:
    """Ask the terminal for its cell size once, surviving a terminal that reports 0 columns.

    textual-image divides by the column count (textual_image/_terminal.py get_cell_size)
    when its widgets are imported; a pseudo-terminal whose size was never set reports 0.
    Then the cell size of a VT340, textual-image's own fallback, is used.
    """
    try:
        _terminal.get_cell_size()
    except (ZeroDivisionError, _terminal.TerminalError):
        _terminal.get_cell_size._result = _terminal.CellSize(10, 20)  # type: ignore[attr-defined]


_cell_size()

from textual_image.widget import (  # noqa: E402 (after the cell size is known)
    HalfcellImage,
    SixelImage,
    TGPImage,
    UnicodeImage,
)
from textual_image.widget._base import Image as ImageWidget  # noqa: E402

PROTOCOL_WIDGETS: dict[str, type[ImageWidget]] = {
    "kitty": TGPImage,
    "sixel": SixelImage,
    "halfcell": HalfcellImage,
    "unicode": UnicodeImage,
}


@dataclass(frozen=True)
class TerminalGraphics:
    """What the terminal said it can draw.

    Attributes:
        sixel: Sixel graphics.
        kitty: The Kitty terminal graphics protocol.
    """

    sixel: bool = False
    kitty: bool = False


def detect_graphics() -> TerminalGraphics:
    """What textual-image found when it queried the terminal at import."""
    return TerminalGraphics(
        sixel=detected.Image is detected.SixelImage, kitty=detected.Image is detected.TGPImage
    )


def choose_protocol(setting: str, graphics: TerminalGraphics) -> str:
    """The drawing method: the configured one, else the best the terminal supports.

    Sixel is preferred where both are reported (textual-image's own order: terminals that
    report Kitty graphics besides Sixel draw Sixel correctly); half blocks elsewhere.
    """
    if setting != "auto":
        return setting
    if graphics.sixel:
        return "sixel"
    if graphics.kitty:
        return "kitty"
    return "halfcell"


class FrameStrip(Horizontal):
    """One labelled picture per pass; :meth:`show` swaps the pictures in."""

    DEFAULT_CSS = """
    FrameStrip { height: 1fr; }
    FrameStrip > Vertical { width: 1fr; height: 1fr; }
    FrameStrip .frame-label { height: 1; width: 1fr; content-align: center middle; }
    FrameStrip .frame-image { width: 1fr; height: auto; max-height: 100%; }
    """

    def __init__(self, protocol: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.protocol = protocol
        self.widget_class = PROTOCOL_WIDGETS[protocol]
        self.roles: tuple[str, ...] = ()

    def compose(self) -> ComposeResult:
        """Nothing until :meth:`show`."""
        yield from ()

    async def show(
        self, pictures: Mapping[str, PILImage.Image | None], caption: Mapping[str, str]
    ) -> None:
        """Show ``pictures`` (role -> image, None for one that failed) with captions."""
        roles = tuple(pictures)
        if roles != self.roles:
            await self.remove_children()
            columns = []
            for role in roles:
                column = Vertical(
                    Static("", classes="frame-label", id=f"label-{role}", markup=False),
                    self.widget_class(None, classes="frame-image", id=f"image-{role}"),
                )
                columns.append(column)
            await self.mount_all(columns)
            self.roles = roles
        for role, picture in pictures.items():
            self.query_one(f"#label-{role}", Static).update(caption.get(role, role))
            image = self.query_one(f"#image-{role}")
            image.image = picture  # type: ignore[attr-defined]
