"""The base of the four panes: a bordered container that can be zoomed and knows services."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Static

from cosmos_tui.domain import Page
from cosmos_tui.ui.format import LOOK_CLASSES, Looks
from cosmos_tui.ui.messages import FirstPageShown

if TYPE_CHECKING:
    from cosmos_tui.ui.protocol import AppContext, UIServices


FIRST_PAGE_MIN_ROWS = 40
FIRST_PAGE_SPARE_ROWS = 10


def first_page_rows(page_size: int, screen_rows: int) -> int:
    """Return how many rows a table pane loads first: enough to fill it even zoomed.

    Converting, measuring and adding rows costs time at launch, so the first page holds
    only what the screen can show (plus the rows that trigger the next page); the rest of
    a full page is loaded once the first frame is full (``fill_page``).
    """
    return min(page_size, max(FIRST_PAGE_MIN_ROWS, screen_rows + FIRST_PAGE_SPARE_ROWS))


class Pane(Vertical):
    """A titled pane of the main screen.

    The main screen hands it the services once they are open (``services`` stays None
    until then, and the pane shows "connecting..."). Attributes down, messages up: a pane
    never calls into its screen; it posts an intent (``ui.messages``, e.g.
    ``CancelRequested``) and the screen decides how to carry it out.
    """

    ALLOW_MAXIMIZE = True
    TITLE = ""
    # Actions that work before the services are open; the others show as disabled until
    # then (the panes may already show rows read at launch, see store/glance.py).
    OFFLINE_ACTIONS: frozenset[str] = frozenset()

    COMPONENT_CLASSES = set(LOOK_CLASSES)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.look = Looks(self)
        self.services: UIServices | None = None
        self.border_title = self.TITLE
        # Set once the launch's first full frame is done (the screen calls fill_page).
        self.launched = False

    @property
    def cosmos(self) -> AppContext:
        """The application's settings and clock."""
        return cast("AppContext", self.app)

    def now(self) -> datetime:
        """The current time from the app's injected clock."""
        return self.cosmos.clock()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Disable the actions that need the services until they are open."""
        if self.services is None and action not in self.OFFLINE_ACTIONS:
            return None
        return True

    def attach(self, services: UIServices) -> None:
        """Receive the open services and start loading (the screen refreshes the keys)."""
        self.services = services

    def fill_page(self) -> None:
        """Load what the first page left out (after the first full frame); a no-op here."""


class PagedPane(Pane):
    """A pane whose table is paged from SQL: a first page, then more near its end.

    Subclasses provide ``table`` and a ``_load(offset, append, generation, limit)``
    worker that posts the loaded page; ``_generation`` tells a stale page from the
    latest one.
    """

    NEAR_END_ROWS = 10
    # What an empty table shows: which key fills it, or how to clear the filter that hides
    # every row (the hint is a Static with the class "empty-hint" in the pane).
    EMPTY_HINT = ""
    FILTERED_HINT = "Nothing matches the filter: Escape clears it."

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.total = 0
        self._generation = 0
        self._loading_more = False
        self._first_page_in = False  # the services' first page (not the launch's glance)
        self._fill_waiting = False  # fill_page came before the first page: fill after it

    @property
    def table(self) -> DataTable[object]:
        """The paged table."""
        raise NotImplementedError

    @property
    def filtered(self) -> bool:
        """Whether a filter hides some rows (then an empty table says how to clear it)."""
        return False

    @staticmethod
    def empty_hint_widget() -> Static:
        """The hint under an empty table (hidden until the first page says it is empty)."""
        return Static("", classes="empty-hint -hidden", markup=False)

    def update_empty_hint(self) -> None:
        """Show the hint when the loaded table is empty, hide it otherwise."""
        hint = self.query_one(".empty-hint", Static)
        empty = self.table.row_count == 0 and not self.table.loading
        if empty:
            hint.update(self.FILTERED_HINT if self.filtered else self.EMPTY_HINT)
        hint.set_class(not empty, "-hidden")

    def _load(self, offset: int, append: bool, generation: int, limit: int) -> object:
        """Load ``limit`` rows from ``offset`` (a worker in subclasses)."""
        raise NotImplementedError

    def reload(self) -> None:
        """Load the first page again with the current filter and sort.

        At launch a screenful (the rest follows it); later every row the table holds, so
        the selected row keeps the cursor wherever it is.
        """
        self._generation += 1
        self._load(0, False, self._generation, self.reload_rows(self.table.row_count))

    def page_landed(self, append: bool) -> None:
        """Note a page shown: after the launch's first one, say so and do a waiting fill."""
        if append:
            return
        if not self.launched:
            # The main screen calls fill_page once the launch's frame is full.
            self.post_message(FirstPageShown(self.id or type(self).__name__))
        self._first_page_in = True
        if self._fill_waiting:
            self._fill_waiting = False
            self.fill_page()

    def fill_page(self) -> None:
        """Load the rest of the first page (the first load brought only a screenful).

        Before the first page has landed this waits for it: loading the rest then would
        replace (cancel) the first page's load in the pane's exclusive loader.
        """
        if not self._first_page_in:
            self._fill_waiting = True
            return
        self.launched = True
        missing = min(self.cosmos.config.ui.page_size, self.total) - self.table.row_count
        self._load_more(missing)

    def load_more_near(self, cursor_row: int) -> None:
        """Load the next page when ``cursor_row`` is near the end of the rows held."""
        if cursor_row >= self.table.row_count - self.NEAR_END_ROWS:
            self._load_more(self.cosmos.config.ui.page_size)

    def _load_more(self, rows: int) -> None:
        held = self.table.row_count
        if rows > 0 and held < self.total and not self._loading_more:
            self._loading_more = True
            self._load(held, True, self._generation, rows)

    def reload_rows(self, held: int) -> int:
        """Return how many rows a reload of the first page loads.

        At launch (until ``fill_page``) a screenful. Later at least a page and as many rows
        as the table holds, so that the row under the cursor comes back and keeps it.

        Args:
            held: The rows the table holds now.
        """
        page_size = self.cosmos.config.ui.page_size
        if not self.launched:
            return first_page_rows(page_size, self.app.size.height)
        return max(page_size, held)


class Record(Protocol):
    """What a record pane's rows are: anything with an id (a prompt, a run)."""

    @property
    def id(self) -> str:
        """The record's id (the row's key)."""
        ...


R = TypeVar("R", bound=Record)


class RecordPane(PagedPane, Generic[R]):
    """A paged table of records (prompts, runs): one row per record, keyed by its id.

    The one place rows are shown, replaced, kept under the cursor and redrawn.
    Subclasses give ``COLUMNS`` ((key, label, width) per column), ``TABLE_ID``,
    ``_cells(record, now)`` (a row's cells, in column order) and ``_highlight(record)``
    (the message that the cursor's record changed); their page loader posts pages of
    their own message type to :meth:`show_page`.
    """

    COLUMNS: tuple[tuple[str, str, int], ...] = ()
    TABLE_ID = ""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.records: dict[str, R] = {}

    def compose_table(self) -> ComposeResult:
        """The empty-table hint and the table ("connecting..." until rows come)."""
        table: DataTable[object] = DataTable(
            id=self.TABLE_ID, cursor_type="row", zebra_stripes=True
        )
        table.loading = True
        yield self.empty_hint_widget()
        yield table

    def on_mount(self) -> None:
        """Set up the columns; the rows come with the first page."""
        table = self.table
        for key, label, width in self.COLUMNS:
            table.add_column(label, key=key, width=width)
        self.border_subtitle = "connecting..."

    @property
    def table(self) -> DataTable[object]:
        """The table of records."""
        return self.query_one(f"#{self.TABLE_ID}", DataTable)

    @property
    def selected(self) -> R | None:
        """The record under the cursor."""
        table = self.table
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        return self.records.get(str(key))

    def attach(self, services: UIServices) -> None:
        """Receive the services and load the first page."""
        super().attach(services)
        self.reload()

    def show_glance(self, page: Page[R]) -> None:
        """Show the newest records read before the services opened (their page replaces them)."""
        if self.services is None:
            self._show_rows(page, append=False)
            self.border_subtitle = f"{self.border_subtitle}  connecting..."

    def show_page(self, page: Page[R], append: bool, generation: int) -> None:
        """Show a loaded page (a stale one, from before the latest reload, is dropped)."""
        if generation != self._generation:
            return
        self._show_rows(page, append)
        self.page_landed(append)

    def _show_rows(self, page: Page[R], append: bool) -> None:
        table = self.table
        table.loading = False
        self._loading_more = False
        self._before_rows()
        if not append and tuple(self.records.values()) == page.items:
            # The rows shown already (read at launch, or an unchanged reload): no redraw.
            self.total = page.total
            self._update_subtitle()
            return
        selected = self.selected
        keep = selected.id if selected is not None and not append else None
        if not append:
            table.clear()
            self.records.clear()
        now = self.now()
        for record in page.items:
            if record.id in self.records:
                continue
            self.records[record.id] = record
            table.add_row(*self._cells(record, now), key=record.id)
        self.total = page.total
        if keep and keep in self.records:
            table.move_cursor(row=table.get_row_index(keep))
        self._update_subtitle()
        if not append and self.selected is not None:
            self._highlight(self.selected)

    def redraw(self, record: R) -> None:
        """Show a changed record that the table holds: its row's cells again."""
        self.records[record.id] = record
        cells = self._cells(record, self.now())
        for (key, _label, _width), value in zip(self.COLUMNS, cells, strict=True):
            self.table.update_cell(record.id, key, value)

    def restyle(self) -> None:
        """Draw every held row again (the theme changed: cells hold resolved colours)."""
        for record in list(self.records.values()):
            self.redraw(record)

    def _before_rows(self) -> None:
        """Called before a page's rows are shown (nothing by default)."""

    def _update_subtitle(self) -> None:
        """Show the counts (and filter) in the border (subclasses; the hint by default)."""
        self.update_empty_hint()

    def _cells(self, record: R, now: datetime) -> tuple[object, ...]:
        raise NotImplementedError

    def _highlight(self, record: R) -> None:
        raise NotImplementedError
