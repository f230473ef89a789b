"""Transactions that end cleanly however their task ends, cancellation included.

A cancelled task must never leave the SQLite write lock held, nor wait long to end. Four
things make sure:

- :func:`begin_immediate` takes the write lock in short attempts (SQLite waits at most
  :data:`LOCK_ATTEMPT_MS` in each) with cancellable pauses between them, until the
  connection's busy timeout has passed. A single ``BEGIN IMMEDIATE`` would wait out the
  whole busy timeout on the connection's thread, where no cancel reaches it (nor
  ``interrupt()``: SQLite's busy handler does not check it), and every clean-up queued
  behind it would wait as long.
- :func:`transaction` ends every transaction with COMMIT or ROLLBACK and returns the
  connection to the pool in tasks of their own that run to completion; a cancellation that
  arrives meanwhile is re-raised once they are done.
- :func:`keep_connection_on_exit_exception` stops SQLAlchemy from treating a cancellation
  as a lost connection. By default it closes ("invalidates") a connection whose operation
  was interrupted, without a ROLLBACK. aiosqlite finishes every queued operation on its
  thread anyway, so the connection is intact and a ROLLBACK queued after it is reliable.
- :class:`RollbackOnClose` rolls back before closing. Python 3.11's ``close()`` leaves that
  to ``sqlite3_close_v2``, which defers the real close, and with it the end of the
  transaction, while any cursor still holds an unfinished statement (an interrupted
  query's cursor lives on in the traceback): the connection looks closed but keeps the
  write lock, and every other writer waits out its busy timeout.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

import aiosqlite
from sqlalchemy.engine import AdaptedConnection, Connection, CursorResult, ExceptionContext, Result
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

T = TypeVar("T")

logger = logging.getLogger(__name__)

# SQLite's own wait for the write lock in one attempt of :func:`begin_immediate`: the
# longest a cancelled task waits for its connection's thread while another process holds
# the lock.
LOCK_ATTEMPT_MS = 50
# Pause between two attempts; a cancel of the waiting task lands here at once.
LOCK_RETRY_PAUSE_S = 0.01


class RollbackOnClose(sqlite3.Connection):
    """An sqlite3 connection that ends its open transaction before it closes.

    Pass it as ``factory`` to ``sqlite3.connect`` (through SQLAlchemy's ``connect_args``).
    Every explicit close of a pooled connection (invalidation, pool disposal, aiosqlite's
    ``close()`` and ``stop()``) calls this ``close()``, on the connection's own thread.

    Garbage collection does not: CPython's deallocator closes the connection in C,
    bypassing any override. Nothing here relies on it, and it needs no rollback: a
    connection is only collected once every cursor of it is (each holds a reference to
    it), so no statement is left unfinished and ``sqlite3_close_v2`` closes at once,
    which ends the transaction and frees the lock.
    """

    def close(self) -> None:
        """Roll back an open transaction, then close."""
        try:
            if self.in_transaction:
                self.rollback()
        except sqlite3.Error as exc:
            # Closing anyway: SQLite ends the transaction when the close completes.
            logger.warning("rollback before closing an SQLite connection failed: %s", exc)
        finally:
            super().close()


def keep_connection_on_exit_exception(context: ExceptionContext) -> None:
    """``handle_error`` hook: a cancellation (or exit) is no reason to drop a connection.

    Only exceptions outside ``Exception`` (``CancelledError``, ``KeyboardInterrupt``,
    ``SystemExit``) are affected; real disconnects (an ``sqlite3.Error`` saying so) still
    invalidate the connection. Register it with
    ``event.listen(engine.sync_engine, "handle_error", keep_connection_on_exit_exception)``.

    Args:
        context: What SQLAlchemy knows about the failed operation; its ``is_disconnect``
            is cleared for exit exceptions.
    """
    if context.is_disconnect and not isinstance(context.original_exception, Exception):
        context.is_disconnect = False


def begin_immediate_hook(busy_timeout_ms: int) -> Callable[[Connection], None]:
    """Return a ``begin`` hook that starts every transaction with :func:`begin_immediate`.

    Register it with ``event.listen(engine.sync_engine, "begin", hook)`` on an engine
    whose connections have pysqlite's own transaction handling off
    (``isolation_level = None``), so that the hook's ``BEGIN IMMEDIATE`` is the only one.

    Args:
        busy_timeout_ms: How long to wait for the write lock in all, in milliseconds;
            also the busy timeout of the statements inside the transaction.

    Returns:
        The hook, called by SQLAlchemy with the connection that begins a transaction.
    """

    def begin(connection: Connection) -> None:
        adapted = connection.connection.dbapi_connection
        assert isinstance(adapted, AdaptedConnection)  # an asyncio driver's connection
        adapted.run_async(lambda driver: begin_immediate(driver, busy_timeout_ms))

    return begin


async def begin_immediate(driver: aiosqlite.Connection, busy_timeout_ms: int) -> None:
    """Begin a write transaction on ``driver``, waiting at most ``busy_timeout_ms`` for the lock.

    Each attempt lets SQLite wait for the lock at most :data:`LOCK_ATTEMPT_MS`, and one
    thread hop runs it: ``PRAGMA busy_timeout`` short, ``BEGIN IMMEDIATE``, then
    ``PRAGMA busy_timeout`` back to ``busy_timeout_ms`` for the statements inside the
    transaction (under WAL, with the write lock held, they wait for no other connection;
    in any other journal mode the restored timeout applies, as before). Between attempts
    the task sleeps, cancellably, for
    :data:`LOCK_RETRY_PAUSE_S`. A cancel therefore ends the wait within about
    ``LOCK_ATTEMPT_MS``: the attempt on the thread finishes, and the ROLLBACK queued
    behind it ends the transaction should the attempt have won the lock.

    Args:
        driver: The aiosqlite connection, not in a transaction.
        busy_timeout_ms: How long to keep trying, in milliseconds (0: a single attempt
            that does not wait).

    Raises:
        sqlalchemy.exc.OperationalError: ``database is locked`` (``SQLITE_BUSY``) when
            another connection still holds the write lock after ``busy_timeout_ms``.
        sqlalchemy.exc.DBAPIError: Any other failure of the BEGIN, wrapping the sqlite3
            error as SQLAlchemy wraps a failed statement.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + busy_timeout_ms / 1000
    restore = f"PRAGMA busy_timeout={int(busy_timeout_ms)}"
    while True:
        remaining_ms = max(0, int((deadline - loop.time()) * 1000))
        attempt_ms = min(LOCK_ATTEMPT_MS, remaining_ms)
        try:
            await driver.executescript(
                f"PRAGMA busy_timeout={attempt_ms}; BEGIN IMMEDIATE; {restore};"
            )
            return
        except sqlite3.Error as exc:
            if not _is_busy(exc) or loop.time() >= deadline:
                raise DBAPIError.instance("BEGIN IMMEDIATE", None, exc, sqlite3.Error) from exc
        await asyncio.sleep(min(LOCK_RETRY_PAUSE_S, max(0.0, deadline - loop.time())))


def _is_busy(exc: sqlite3.Error) -> bool:
    """Return whether ``exc`` is SQLITE_BUSY (any extended code): another writer holds on."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


async def run_to_completion(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` in a task of its own and wait for it even if the caller is cancelled.

    For clean-up that must not stop half-way (COMMIT, ROLLBACK, returning a connection).
    A cancellation of the caller received meanwhile is re-raised once ``coro`` is done,
    so the caller never goes on while the clean-up is still running. The wait cannot be
    cut short, so ``coro`` must be bounded by itself. The store's clean-up is: under WAL a
    COMMIT or ROLLBACK waits for no other connection (the transaction holds the write
    lock, or never got it), and on the connection's thread it waits at most for the
    operation in progress there, one lock attempt of :func:`begin_immediate` included.

    Args:
        coro: The clean-up; it is scheduled at once.

    Returns:
        What ``coro`` returns, when the caller was not cancelled meanwhile.

    Raises:
        asyncio.CancelledError: When the caller was cancelled while waiting; raised once
            ``coro`` is done, whatever its outcome (a failure of it is logged).
        BaseException: Whatever ``coro`` raises, when the caller was not cancelled.
    """
    task = asyncio.ensure_future(coro)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait((task,))
        except asyncio.CancelledError as exc:
            cancelled = exc
    if cancelled is not None:
        if not task.cancelled() and task.exception() is not None:
            logger.warning("clean-up after a cancel failed: %r", task.exception())
        raise cancelled
    return task.result()


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Yield a session inside one transaction: committed if the body succeeds, else rolled back.

    The transaction begins at once (the engine's ``begin`` hook, see
    :func:`begin_immediate_hook`, takes the write lock), so a cancel while waiting for the
    lock, in the body or in the final flush rolls everything back. Once COMMIT is issued
    it runs to completion, as do the ROLLBACK and the return of the connection to the
    pool, even when the task is cancelled meanwhile: a cancel that arrives after COMMIT
    was issued is re-raised once it is done, so a caller that sees ``CancelledError`` may
    find the transaction committed.

    Args:
        sessions: Makes the session; its engine must begin transactions with
            :func:`begin_immediate_hook` and handle errors with
            :func:`keep_connection_on_exit_exception`.

    Yields:
        The session, inside its transaction.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: When the database fails (the lock not free within
            the busy timeout included); the transaction is rolled back.
        asyncio.CancelledError: When the task is cancelled, once the transaction has
            ended (rolled back, or committed if COMMIT was already issued).
    """
    session = sessions()
    try:
        await session.connection()
        yield session
        await session.flush()
        await run_to_completion(session.commit())
    except BaseException:
        await run_to_completion(_rollback(session))
        raise
    finally:
        await run_to_completion(_close(session))


async def _rollback(session: AsyncSession) -> None:
    """Roll back; if that fails the connection's state is unknown, so it is dropped."""
    try:
        await session.rollback()
    except SQLAlchemyError as exc:
        logger.warning("rollback failed, dropping the connection: %s", exc)
        await _invalidate(session)


async def _close(session: AsyncSession) -> None:
    """Return the connection to the pool; drop it if that fails."""
    try:
        await session.close()
    except SQLAlchemyError as exc:
        logger.warning("returning a connection failed, dropping it: %s", exc)
        await _invalidate(session)


async def _invalidate(session: AsyncSession) -> None:
    """Close the session's connection for good (:class:`RollbackOnClose` ends its transaction)."""
    try:
        await session.invalidate()
    except SQLAlchemyError as exc:
        logger.error("could not drop a database connection: %s", exc)


def rowcount(result: Result[Any]) -> int:
    """Return how many rows an UPDATE or DELETE matched.

    ``AsyncSession.execute`` is typed to return a plain ``Result`` whatever the statement;
    for an UPDATE or DELETE it is a ``CursorResult``, the class that has ``rowcount``.

    Args:
        result: What ``session.execute`` returned for an UPDATE or DELETE.

    Returns:
        The number of rows the statement matched.
    """
    return cast("CursorResult[Any]", result).rowcount
