"""Bring a database file to the newest schema with Alembic, and refuse foreign files.

Alembic is imported only when a migration is actually needed, so opening an up-to-date
database (every command after the first) stays fast.
"""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from cosmos_tui.errors import StoreError
from cosmos_tui.private_files import create_private_file, open_private, private_dir

_MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# How long a process waits for another one's first upgrade of the same database.
MIGRATION_LOCK_SECONDS = 60.0


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


def ensure_schema(db_path: Path, lock_timeout: float = MIGRATION_LOCK_SECONDS) -> None:
    """Create or upgrade the schema of ``db_path`` to the newest known revision.

    The data directory is created 0700 and a new database file 0600 (SQLite gives its
    -wal and -shm files the database file's mode). Several processes may open a fresh
    database at once: the first to take the migration lock (an flock on
    ``<db>.lock``) upgrades it, the others wait and then find it current.

    Raises:
        StoreError: For a foreign file, a database written by a newer cosmos-tui, or
            a migration lock held longer than ``lock_timeout`` seconds.
    """
    try:
        private_dir(db_path.parent)
        create_private_file(db_path)
    except OSError as exc:
        raise StoreError(
            f"cannot create the database {db_path}: {exc.strerror or exc}; make "
            f"{db_path.parent} writable or set paths.data_dir (or COSMOS_DATA_DIR) to "
            "another directory"
        ) from exc
    if _check_revision(db_path):
        return
    with _migration_lock(db_path, lock_timeout):
        if _check_revision(db_path):  # another process migrated it while we waited
            return
        _upgrade(db_path)


def _check_revision(db_path: Path) -> bool:
    """Return whether ``db_path`` is current; refuse a database of a newer cosmos-tui."""
    revision = current_revision(db_path)
    known = known_revisions()
    if revision == known[-1]:
        return True
    if revision is not None and revision not in known:
        raise StoreError(
            f"{db_path} was written by a newer cosmos-tui (schema {revision}); "
            "upgrade cosmos-tui (pip install -U cosmos-tui) to use it"
        )
    return False


@contextlib.contextmanager
def _migration_lock(db_path: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive flock on ``<db>.lock`` (released when the process dies, too)."""
    lock_path = db_path.with_name(db_path.name + ".lock")
    try:
        handle = open_private(lock_path, "a")
    except OSError as exc:
        raise StoreError(f"cannot create the lock file {lock_path}: {exc.strerror}") from exc
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"another cosmos process has been upgrading {db_path} for over "
                        f"{timeout:.0f} s; wait for it to finish and retry"
                    ) from None
                time.sleep(0.02)
        yield
    finally:
        handle.close()  # closing releases the lock


def _upgrade(db_path: Path) -> None:
    # lazy: Alembic and SQLAlchemy (~500 ms) only to migrate; store/glance.py imports this
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
