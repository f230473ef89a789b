"""The newest prompts and runs read with the sqlite3 module alone, before the ORM loads.

Importing SQLAlchemy and the services takes a few hundred milliseconds; the TUI shows these
pages in its first full frame meanwhile, and the services' own pages replace them. The
pages are what :meth:`Store.list_runs` and :meth:`Store.list_prompts` return with their
defaults (newest first, no filter), converted by the same functions. Reads are read-only
and only from a database at the newest schema: for anything else (no file yet, a
migration pending, a locked or damaged file) the answer is None at once (a lock is waited
for only briefly) and the panes wait for the services, which say what is wrong.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from cosmos_tui.domain import Page, Prompt, Run
from cosmos_tui.errors import StoreError
from cosmos_tui.store.convert import prompt_from_row, run_from_row
from cosmos_tui.store.migrate import known_revisions, stored_revision

if TYPE_CHECKING:  # the plain rows read here stand in for these (the converters read attributes)
    from cosmos_tui.store.tables import PromptInputRow, PromptRow, RunRow

logger = logging.getLogger(__name__)

# How long a read waits for a lock (a writer outside WAL mode, a recovery): the glance is
# worth a few milliseconds at launch, never the services' opening.
LOCK_WAIT_SECONDS = 0.05

# Columns the converters read as datetimes (UTCDateTime in store/tables.py).
RUN_TIMES = ("created_at", "updated_at", "started_at", "finished_at")
PROMPT_TIMES = ("created_at",)


def newest_pages(db_path: Path, runs: int, prompts: int) -> tuple[Page[Run], Page[Prompt]] | None:
    """Return the first page of runs and of prompts, newest first, or None.

    Args:
        db_path: The database file (never created here).
        runs: How many runs.
        prompts: How many prompts.
    """
    try:
        if not db_path.is_file():
            return None
        uri = db_path.resolve().as_uri() + "?mode=ro"
        connection = sqlite3.connect(uri, uri=True, timeout=LOCK_WAIT_SECONDS)
        try:
            if stored_revision(connection, db_path) != known_revisions()[-1]:
                return None
            return _read_runs(connection, runs), _read_prompts(connection, prompts)
        finally:
            connection.close()
    except (sqlite3.Error, OSError, StoreError) as exc:
        # Locked, damaged, unreadable, not ours: the services open the database next and report it.
        logger.debug("no glance at %s: %s", db_path, exc)
        return None


def _rows(cursor: sqlite3.Cursor, times: tuple[str, ...]) -> list[SimpleNamespace]:
    names = [column[0] for column in cursor.description]
    rows = []
    for values in cursor:
        row = dict(zip(names, values, strict=True))
        for name in times:
            row[name] = _utc(row[name])
        rows.append(SimpleNamespace(**row))
    return rows


def _utc(value: Any) -> datetime | None:
    """Read a stored UTCDateTime (naive UTC text) as an aware datetime."""
    if value is None:
        return None
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _read_runs(connection: sqlite3.Connection, limit: int) -> Page[Run]:
    total = connection.execute("SELECT count(*) FROM runs").fetchone()[0]
    cursor = connection.execute(
        "SELECT runs.*, prompts.text AS prompt_text_of_run FROM runs "
        "LEFT OUTER JOIN prompts ON prompts.id = runs.prompt_id "
        "ORDER BY runs.created_at DESC, runs.id DESC LIMIT ?",
        (limit,),
    )
    items = tuple(
        run_from_row(cast("RunRow", row), (), row.prompt_text_of_run)
        for row in _rows(cursor, RUN_TIMES)
    )
    return Page(items=items, total=total, offset=0, limit=limit)


def _read_prompts(connection: sqlite3.Connection, limit: int) -> Page[Prompt]:
    total = connection.execute("SELECT count(*) FROM prompts").fetchone()[0]
    cursor = connection.execute(
        "SELECT * FROM prompts ORDER BY created_at DESC, id LIMIT ?", (limit,)
    )
    rows = _rows(cursor, PROMPT_TIMES)
    ids = (json.dumps([row.id for row in rows]),)  # bound as one JSON array: json_each
    inputs: dict[str, list[SimpleNamespace]] = {}
    cursor = connection.execute(
        "SELECT * FROM prompt_inputs WHERE prompt_id IN (SELECT value FROM json_each(?))", ids
    )
    for item in _rows(cursor, ()):
        inputs.setdefault(item.prompt_id, []).append(item)
    counts = dict(
        connection.execute(
            "SELECT prompt_id, count(*) FROM runs "
            "WHERE prompt_id IN (SELECT value FROM json_each(?)) GROUP BY prompt_id",
            ids,
        ).fetchall()
    )
    latest = dict(
        connection.execute(
            "SELECT prompt_id, state FROM (SELECT prompt_id, state, row_number() OVER "
            "(PARTITION BY prompt_id ORDER BY created_at DESC, id DESC) AS n FROM runs "
            "WHERE prompt_id IN (SELECT value FROM json_each(?))) WHERE n = 1",
            ids,
        ).fetchall()
    )
    items = tuple(
        prompt_from_row(
            cast("PromptRow", row),
            cast("list[PromptInputRow]", inputs.get(row.id, [])),
            counts.get(row.id, 0),
            latest.get(row.id),
        )
        for row in rows
    )
    return Page(items=items, total=total, offset=0, limit=limit)
