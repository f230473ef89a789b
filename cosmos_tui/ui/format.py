"""Pure text helpers for the UI: state symbols and colours, bars, durations, sparklines.

Everything here is a plain function of its arguments (the clock is passed in), so cells
are deterministic in snapshots.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.text import Text

from cosmos_tui.domain import Progress, RunState
from cosmos_tui.safe_text import one_line, printable

STATE_STYLE: dict[RunState, tuple[str, str]] = {
    RunState.QUEUED: ("\u00b7", "grey62"),
    RunState.UPLOADING: ("\u2191", "cyan"),
    RunState.STARTING: ("\u25b8", "cyan"),
    RunState.RUNNING: ("\u25cf", "bold dodger_blue1"),
    RunState.DOWNLOADING: ("\u2193", "cyan"),
    RunState.COMPLETED: ("\u2714", "green"),
    RunState.FAILED: ("\u2716", "bold red"),
    RunState.CANCELLED: ("\u2013", "grey50"),
    RunState.BLOCKED: ("\u26a0", "yellow"),
}
SPARK_CHARS = "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"
BAR_FULL = "\u2588"
BAR_EMPTY = "\u2591"


def state_text(state: RunState | None, with_name: bool = True) -> Text:
    """Return a run state as a coloured symbol (and name)."""
    if state is None:
        return Text("-", style="grey50")
    symbol, style = STATE_STYLE[state]
    return Text(f"{symbol} {state.value}" if with_name else symbol, style=style)


def bar(fraction: float | None, width: int, style: str = "dodger_blue1") -> Text:
    """Return a horizontal bar ``width`` cells wide filled to ``fraction`` (0..1)."""
    if fraction is None:
        return Text(BAR_EMPTY * width, style="grey30")
    filled = max(0, min(width, round(fraction * width)))
    text = Text(BAR_FULL * filled, style=style)
    text.append(BAR_EMPTY * (width - filled), style="grey30")
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


def progress_text(progress: Progress | None, state: RunState, width: int = 10) -> Text:
    """Return ``[bar] 45% phase eta`` for an active run, or an empty text."""
    if progress is None or not state.is_active:
        if state == RunState.COMPLETED:
            return bar(1.0, width, style="green")
        return Text("")
    text = bar(progress.percent / 100.0, width)
    text.append(f" {progress.percent:3.0f}% ", style="bold")
    text.append(one_line(progress.phase), style="italic")
    if progress.eta_seconds is not None:
        text.append(f" ~{duration(progress.eta_seconds)}", style="grey62")
    return text


def rating_text(rating: int | None) -> Text:
    """Return a rating as filled and empty stars."""
    if not rating:
        return Text("\u00b7\u00b7\u00b7\u00b7\u00b7", style="grey30")
    text = Text("\u2605" * rating, style="gold1")
    text.append("\u2606" * (5 - rating), style="grey30")
    return text


def sparkline(values: Sequence[float | None], width: int, top: float = 100.0) -> Text:
    """Return the last ``width`` values as a block-character sparkline scaled to ``top``."""
    recent = list(values)[-width:]
    chars = []
    for value in recent:
        if value is None:
            chars.append(" ")
            continue
        level = max(0.0, min(1.0, value / top if top else 0.0))
        chars.append(SPARK_CHARS[min(len(SPARK_CHARS) - 1, int(level * len(SPARK_CHARS)))])
    return Text("".join(chars).rjust(width), style="dodger_blue1")


def clip(text: str | None, width: int) -> Text:
    """Return ``text`` flattened to one line and cut to ``width`` cells with an ellipsis.

    The result is plain Text (never parsed as markup) with control characters escaped.
    """
    flat = one_line(" ".join((text or "").split()))
    return Text(flat if len(flat) <= width else flat[: max(0, width - 1)] + "\u2026")


def plain(text: object, style: str = "") -> Text:
    """Return untrusted one-line text (names, paths, host answers) safe to draw.

    Control and direction-override characters are escaped and the text is never
    parsed as markup, so ``[/]`` or ``[bold`` show as typed. Use this (or :func:`block`)
    for every user- or host-supplied string the UI shows.
    """
    return Text(one_line(text), style=style)


def block(text: object, style: str = "") -> Text:
    """Like :func:`plain` for multi-line text (a prompt): newlines and tabs stay."""
    return Text(printable(text), style=style)
