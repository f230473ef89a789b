"""A bounded, filterable, searchable, wrappable log view built on the line API.

It keeps at most about ``max_lines`` lines (older ones are dropped in chunks; the whole
log stays in the run's local file), renders only the rows on screen, and follows the end
until the user scrolls up.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from cosmos_tui.engine.logtext import level_rank, log_level
from cosmos_tui.safe_text import printable
from cosmos_tui.ui.format import LOOK_CLASSES, Looks

# a line's level rank -> its look (ui.format.LOOKS)
LEVEL_LOOKS = {0: "faint", 2: "warn", 3: "alarm"}


class LogView(ScrollView, can_focus=True):
    """Shows log lines; ``follow`` keeps the end in view until the user scrolls up."""

    class FollowChanged(Message):
        """Follow mode was switched on or off."""

        def __init__(self, follow: bool) -> None:
            super().__init__()
            self.follow = follow

    COMPONENT_CLASSES = {*LOOK_CLASSES, "logview--match", "logview--current"}

    def __init__(self, max_lines: int = 5000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.look = Looks(self)
        self.max_lines = max_lines
        self.lines: list[str] = []
        self.ranks: list[int] = []
        self.dropped = 0
        self.min_rank = 0
        self.wrap = False
        self.follow = True
        self.new_while_paused = 0
        self.search = ""
        self._pattern: re.Pattern[str] | None = None
        self.matches: list[int] = []
        self.current_match = -1
        self._visible: list[int] = []
        self._rows: list[tuple[int, int]] = []
        self._row_width = 0
        self._moving = False

    # content ------------------------------------------------------------------------

    def clear(self) -> None:
        """Forget every line (switching runs)."""
        self.lines.clear()
        self.ranks.clear()
        self.dropped = 0
        self.new_while_paused = 0
        self.matches.clear()
        self.current_match = -1
        self._rebuild()
        self.set_follow(True)

    def append(self, new_lines: Sequence[str], skipped: int = 0) -> None:
        """Add lines at the end, dropping the oldest beyond the bound.

        The work is bounded by ``max_lines`` however many lines come at once: of a burst
        only the newest ``max_lines`` are kept (and read for their level).

        Args:
            new_lines: The lines that follow the ones held, oldest first.
            skipped: Lines between the ones held and ``new_lines`` that the caller did
                not keep; they count as dropped, and so do the lines held (older still),
                so that what is shown stays one piece of the log.
        """
        overflow = len(new_lines) - self.max_lines
        if overflow > 0:
            skipped += overflow
            new_lines = new_lines[overflow:]
        # Host output: C1 controls and direction overrides shown visibly (the log
        # follower already dropped escape sequences); searches see what is shown.
        new_lines = [printable(line) for line in new_lines]
        if not new_lines and not skipped:
            return
        if not self.follow:
            self.new_while_paused += len(new_lines) + skipped
        start = len(self.lines)
        if skipped:
            cut = start
        elif start + len(new_lines) > self.max_lines + self.max_lines // 4:
            cut = start + len(new_lines) - self.max_lines
        else:
            cut = 0
        if cut or skipped:
            top = int(self.scroll_y)
            top_line = self._rows[top][0] if top < len(self._rows) else 0
            del self.lines[:cut]
            del self.ranks[:cut]
            self.dropped += cut + skipped
            self.lines.extend(new_lines)
            self.ranks.extend(level_rank(log_level(line)) for line in new_lines)
            self._rebuild()
            if not self.follow:
                self._jump_to(self._row_of(top_line - cut))
        else:
            self.lines.extend(new_lines)
            self.ranks.extend(level_rank(log_level(line)) for line in new_lines)
            self._extend_rows(start)
        self._update_virtual()
        if self.follow:
            self._jump_to(self.max_scroll_y)
            self.call_after_refresh(self._stick_to_end)
        self.refresh()

    def _stick_to_end(self) -> None:
        if self.follow:
            self._jump_to(self.max_scroll_y)

    def _row_of(self, index: int) -> int:
        for row, (line_index, _offset) in enumerate(self._rows):
            if line_index >= index:
                return row
        return max(0, len(self._rows) - 1)

    def _passes(self, index: int) -> bool:
        return self.ranks[index] >= self.min_rank

    def _extend_rows(self, start: int) -> None:
        width = max(10, self.scrollable_content_region.width or 80)
        pattern = self._pattern
        for index in range(start, len(self.lines)):
            line = self.lines[index]
            if pattern is not None and pattern.search(line):
                self.matches.append(index)
            if not self._passes(index):
                continue
            self._visible.append(index)
            if self.wrap and len(line) > width:
                self._rows.extend((index, offset) for offset in range(0, len(line), width))
            else:
                self._rows.append((index, 0))
                self._row_width = max(self._row_width, len(line))

    def _rebuild(self) -> None:
        self._visible = []
        self._rows = []
        self._row_width = 0
        self.matches = []
        self._extend_rows(0)
        self._update_virtual()
        if self.current_match >= len(self.matches):
            self.current_match = len(self.matches) - 1
        self.refresh()

    def _update_virtual(self) -> None:
        self.virtual_size = Size(0 if self.wrap else self._row_width, len(self._rows))

    # modes --------------------------------------------------------------------------

    def set_follow(self, follow: bool) -> None:
        """Follow the end (and forget the count of new lines), or stop following."""
        if follow:
            self.new_while_paused = 0
            self._jump_to(self.max_scroll_y)
        if follow != self.follow:
            self.follow = follow
            self.post_message(self.FollowChanged(follow))

    def set_min_rank(self, rank: int) -> None:
        """Show only lines at or above a level rank."""
        self.min_rank = rank
        self._rebuild()
        if self.follow:
            self._jump_to(self.max_scroll_y)

    def set_wrap(self, wrap: bool) -> None:
        """Wrap long lines, or scroll sideways."""
        self.wrap = wrap
        self._rebuild()
        if self.follow:
            self._jump_to(self.max_scroll_y)

    def set_search(self, text: str) -> None:
        """Highlight ``text`` (case-insensitive); an empty text clears the search."""
        self.search = text
        self._pattern = re.compile(re.escape(text), re.IGNORECASE) if text else None
        self.current_match = -1
        self._rebuild()

    def jump_match(self, step: int) -> bool:
        """Go to the next (1) or previous (-1) match; return False when there is none."""
        if not self.matches:
            return False
        self.current_match = (self.current_match + step) % len(self.matches)
        self.show_line(self.matches[self.current_match])
        return True

    def show_line(self, index: int) -> None:
        """Scroll so that line ``index`` of the buffer is in view; pauses follow."""
        self.set_follow(False)
        row = self._row_of(index)
        self._jump_to(max(0, row - self.scrollable_content_region.height // 3))
        self.refresh()

    def _jump_to(self, y: float) -> None:
        self._moving = True
        try:
            self.scroll_to(y=y, animate=False, immediate=True, force=True)
        finally:
            self._moving = False

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        """Pause follow when the user scrolls up."""
        super().watch_scroll_y(old_value, new_value)
        if not self._moving and self.follow and new_value < old_value:
            self.set_follow(False)

    def on_resize(self) -> None:
        """Re-wrap to the new width; a following view stays at the end."""
        if self.wrap:
            self._rebuild()
        if self.follow:
            self.call_after_refresh(self._stick_to_end)

    def watch_show_horizontal_scrollbar(self, shown: bool) -> None:
        """A long line's scrollbar takes a row: a following view stays at the end."""
        if self.follow:
            self.call_after_refresh(self._stick_to_end)

    # rendering ----------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        """Render one row of the view."""
        scroll_x, scroll_y = self.scroll_offset
        row = scroll_y + y
        width = self.scrollable_content_region.width
        if row >= len(self._rows):
            return Strip.blank(width, self.rich_style)
        index, offset = self._rows[row]
        line = self.lines[index]
        segment_text = line[offset : offset + width] if self.wrap else line
        text = Text(segment_text, no_wrap=True)
        text.stylize(self.rich_style)
        level = LEVEL_LOOKS.get(self.ranks[index])
        if level is not None:
            text.stylize(self.look(level))
        if (
            0 <= self.current_match < len(self.matches)
            and self.matches[self.current_match] == index
        ):
            # the line's background only: its level colour and the matches stay
            text.stylize(Style(bgcolor=self.look.component("logview--current").bgcolor))
        if self._pattern is not None:
            match_style = self.look.component("logview--match")
            for match in self._pattern.finditer(segment_text):
                text.stylize(match_style, match.start(), match.end())
        strip = Strip(list(text.render(self.app.console)), text.cell_len)
        crop_from = 0 if self.wrap else scroll_x
        return strip.crop_extend(crop_from, crop_from + width, self.rich_style)
