"""Bring a database file to the newest schema with Alembic, and refuse foreign files.

Alembic is imported only when a migration is actually needed, so opening an up-to-date
database (every command after the first) stays fast.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cosmos_tui.errors import StoreError

_MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def known_revisions() -> tuple[str, ...]:
    """Return every revision this code knows, oldest first.

    Migration files are named ``NNNN_description.py`` and their revision id is ``NNNN``,
    so the list comes from the file names without importing Alembic.
    """
    return tuple(
        sorted(
            path.name.split("_", 1)[0]
            for path in (_MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py")
        )
    )


def stored_revision(connection: sqlite3.Connection, db_path: Path) -> str | None:
    """Return the Alembic revision stored in an open database (None for an empty one).

    Args:
        connection: A connection to ``db_path``.
        db_path: The file, for the message.

    Raises:
        StoreError: When the file holds tables but is not a cosmos-tui database.
    """
    tables = {
        row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
    }
    if "alembic_version" not in tables:
        if tables:
            raise StoreError(
                f"{db_path} is an SQLite database but not one of cosmos-tui's; "
                "point paths.data_dir (or COSMOS_DATA_DIR) at another directory"
            )
        return None
    row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None


def current_revision(db_path: Path) -> str | None:
    """Return the Alembic revision stored in ``db_path`` (None for an empty file).

    Raises:
        StoreError: When the file is not an SQLite database.
    """
    try:
        connection = sqlite3.connect(db_path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            return stored_revision(connection, db_path)
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB:
            raise StoreError(
                f"{db_path} is not an SQLite database; move it away or set "
                "paths.data_dir (or COSMOS_DATA_DIR) to another directory"
            ) from exc
        raise StoreError(describe_sqlite_error(exc, db_path)) from exc


def describe_sqlite_error(exc: BaseException, db_path: Path) -> str:
    """Say in one line what an SQLite failure means for the user and what to do.

    Args:
        exc: The sqlite3 error, or an SQLAlchemy error wrapping one (``orig``).
        db_path: The database file.
    """
    original = getattr(exc, "orig", None) or exc
    text = " ".join(str(original).split())
    code = getattr(original, "sqlite_errorcode", None)
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in text:
        return (
            f"the database {db_path} is busy: another cosmos process holds it; "
            "wait a moment and retry"
        )
    if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM) or (
        "readonly" in text or "unable to open" in text
    ):
        return (
            f"cannot write the database {db_path} ({text}); make {db_path.parent} writable "
            "or set paths.data_dir (or COSMOS_DATA_DIR) to another directory"
        )
    if code == sqlite3.SQLITE_FULL or "disk is full" in text:
        return f"the disk holding {db_path} is full; free some space and retry"
    return f"database error on {db_path}: {text}"


def ensure_schema(db_path: Path) -> None:
    """Create or upgrade the schema of ``db_path`` to the newest known revision.

    Raises:
        StoreError: For a foreign file, or a database written by a newer cosmos-tui.
    """
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the data directory {db_path.parent}: {exc}") from exc
    revision = current_revision(db_path) if db_path.exists() else None
    known = known_revisions()
    if revision == known[-1]:
        return
    if revision is not None and revision not in known:
        raise StoreError(
            f"{db_path} was written by a newer cosmos-tui (schema {revision}); "
            "upgrade cosmos-tui (pip install -U cosmos-tui) to use it"
        )
    _upgrade(db_path)


def _upgrade(db_path: Path) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from alembic.util import CommandError
    from sqlalchemy import URL, create_engine, event
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_engine(URL.create("sqlite", database=str(db_path)))

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    settings = AlembicConfig()
    settings.set_main_option("script_location", str(_MIGRATIONS_DIR))
    try:
        with engine.begin() as connection:
            settings.attributes["connection"] = connection
            command.upgrade(settings, "head")
    except (SQLAlchemyError, sqlite3.Error, OSError) as exc:
        raise StoreError(describe_sqlite_error(exc, db_path)) from exc
    except CommandError as exc:
        raise StoreError(f"cannot migrate {db_path}: {' '.join(str(exc).split())}") from exc
    finally:
        engine.dispose()
