"""Pure text helpers for the UI: state symbols and colours, bars, durations, sparklines.

Everything here is a plain function of its arguments (the clock is passed in), so cells
are deterministic in snapshots.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from cosmos_tui.domain import Progress, RunState
from cosmos_tui.safe_text import one_line, printable

# The UI's looks, by meaning. A widget that draws them lists LOOK_CLASSES among its
# component classes and app.tcss gives each its theme colour (".look--ok { color:
# $success; }"), so ui.theme and Textual's own themes restyle every pane; ``Looks(widget)``
# reads them.
LOOKS = (
    "ok", "warn", "bad", "alert", "alarm", "muted", "faint", "stale", "accent", "active",
    "transfer", "memory", "empty", "star", "name", "key",
)  # fmt: skip
LOOK_CLASSES = frozenset(f"look--{name}" for name in LOOKS)
# A look by name: its rich style (colour and text style, no background).
Look = Callable[[str], Style]

STATE_STYLE: dict[RunState, tuple[str, str]] = {
    RunState.QUEUED: ("\u00b7", "muted"),
    RunState.UPLOADING: ("\u2191", "transfer"),
    RunState.STARTING: ("\u25b8", "transfer"),
    RunState.RUNNING: ("\u25cf", "active"),
    RunState.DOWNLOADING: ("\u2193", "transfer"),
    RunState.COMPLETED: ("\u2714", "ok"),
    RunState.FAILED: ("\u2716", "alarm"),
    RunState.CANCELLED: ("\u2013", "faint"),
    RunState.BLOCKED: ("\u26a0", "warn"),
}
SPARK_CHARS = "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"
BAR_FULL = "\u2588"
BAR_EMPTY = "\u2591"


class Looks:
    """The looks of one widget, as its theme colours them.

    The widget lists :data:`LOOK_CLASSES` in its ``COMPONENT_CLASSES``. A look keeps its
    colour and text style but not the widget's background, so it draws on a table's
    cursor row and zebra stripes as on the plain background. Each is derived once from
    the widget's own component style, and again whenever Textual recomputes that (a new
    theme, new classes on the widget).

    Args:
        widget: The widget whose component styles give the looks.

    """

    def __init__(self, widget: Widget) -> None:
        self.widget = widget
        # component class -> (Textual's style it was derived from, the look)
        self._looks: dict[str, tuple[Style, Style]] = {}

    def __call__(self, name: str) -> Style:
        """The rich style of look ``name`` in the app's current theme."""
        key = f"look--{name}"
        full = self.widget.get_component_rich_style(key)
        known = self._looks.get(key)
        if known is not None and known[0] is full:
            return known[1]
        look = Style(color=full.color, bold=full.bold, italic=full.italic)
        self._looks[key] = (full, look)
        return look

    def component(self, name: str) -> Style:
        """The whole style (background included) of the widget's component class ``name``."""
        return self.widget.get_component_rich_style(name)


def state_text(state: RunState | None, look: Look, with_name: bool = True) -> Text:
    """Return a run state as a coloured symbol (and name)."""
    if state is None:
        return Text("-", style=look("faint"))
    symbol, name = STATE_STYLE[state]
    return Text(f"{symbol} {state.value}" if with_name else symbol, style=look(name))


def bar(fraction: float | None, width: int, fill: Style, empty: Style) -> Text:
    """Return a horizontal bar ``width`` cells wide filled to ``fraction`` (0..1)."""
    if fraction is None:
        return Text(BAR_EMPTY * width, style=empty)
    filled = max(0, min(width, round(fraction * width)))
    text = Text(BAR_FULL * filled, style=fill)
    text.append(BAR_EMPTY * (width - filled), style=empty)
    return text


def duration(seconds: float | None) -> str:
    """Format seconds as ``45s``, ``3m05s``, ``2h04m`` or ``-``."""
    if seconds is None:
        return "-"
    total = int(max(0, seconds))
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    return f"{total // 3600}h{(total % 3600) // 60:02d}m"


def age(moment: datetime | None, now: datetime) -> str:
    """Format how long ago ``moment`` was, compactly (``5m``, ``3h``, ``2d``), or a date."""
    if moment is None:
        return "-"
    seconds = (now - moment).total_seconds()
    if seconds < 60:
        return "now"
    if seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h ago"
    if seconds < 7 * 86400:
        return f"{int(seconds // 86400)}d ago"
    return moment.strftime("%Y-%m-%d")


def progress_text(progress: Progress | None, state: RunState, look: Look, width: int = 10) -> Text:
    """Return ``[bar] 45% phase eta`` for an active run, or an empty text."""
    if progress is None or not state.is_active:
        if state == RunState.COMPLETED:
            return bar(1.0, width, look("ok"), look("empty"))
        return Text("")
    text = bar(progress.percent / 100.0, width, look("active"), look("empty"))
    text.append(f" {progress.percent:3.0f}% ", style="bold")
    text.append(one_line(progress.phase), style="italic")
    if progress.eta_seconds is not None:
        text.append(f" ~{duration(progress.eta_seconds)}", style=look("muted"))
    return text


def rating_text(rating: int | None, look: Look) -> Text:
    """Return a rating as filled and empty stars."""
    if not rating:
        return Text("\u00b7\u00b7\u00b7\u00b7\u00b7", style=look("empty"))
    text = Text("\u2605" * rating, style=look("star"))
    text.append("\u2606" * (5 - rating), style=look("empty"))
    return text


def sparkline(values: Sequence[float | None], width: int, style: Style, top: float = 100.0) -> Text:
    """Return the last ``width`` values as a block-character sparkline scaled to ``top``."""
    recent = list(values)[-width:]
    chars = []
    for value in recent:
        if value is None:
            chars.append(" ")
            continue
        level = max(0.0, min(1.0, value / top if top else 0.0))
        chars.append(SPARK_CHARS[min(len(SPARK_CHARS) - 1, int(level * len(SPARK_CHARS)))])
    return Text("".join(chars).rjust(width), style=style)


def clip(text: str | None, width: int) -> Text:
    """Return ``text`` flattened to one line and cut to ``width`` cells with an ellipsis.

    The result is plain Text (never parsed as markup) with control characters escaped.
    """
    flat = one_line(" ".join((text or "").split()))
    return Text(flat if len(flat) <= width else flat[: max(0, width - 1)] + "\u2026")


def plain(text: object, style: str | Style = "") -> Text:
    """Return untrusted one-line text (names, paths, host answers) safe to draw.

    Control and direction-override characters are escaped and the text is never
    parsed as markup, so ``[/]`` or ``[bold`` show as typed. Use this (or :func:`block`)
    for every user- or host-supplied string the UI shows.
    """
    return Text(one_line(text), style=style)


def block(text: object, style: str = "") -> Text:
    """Like :func:`plain` for multi-line text (a prompt): newlines and tabs stay."""
    return Text(printable(text), style=style)
