"""Transactions that end cleanly however their task ends, cancellation included.

A cancelled task must never leave the SQLite write lock held. Three things make sure:

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
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

T = TypeVar("T")

logger = logging.getLogger(__name__)


class RollbackOnClose(sqlite3.Connection):
    """An sqlite3 connection that ends its open transaction before it closes.

    Pass it as ``factory`` to ``sqlite3.connect`` (through SQLAlchemy's ``connect_args``).
    Every way a pooled connection is closed (invalidation, pool disposal, aiosqlite's
    ``stop()``, garbage collection of a lost connection) goes through this ``close()``,
    on the connection's own thread.
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
    invalidate the connection.
    """
    if context.is_disconnect and not isinstance(context.original_exception, Exception):
        context.is_disconnect = False


async def run_to_completion(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` in a task of its own and wait for it even if the caller is cancelled.

    For clean-up that must not stop half-way (COMMIT, ROLLBACK, returning a connection).
    A cancellation of the caller received meanwhile is re-raised once ``coro`` is done,
    so the caller never goes on while the clean-up is still running.
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

    The transaction begins at once (the engine's ``begin`` hook makes it BEGIN IMMEDIATE,
    which waits for the write lock), so a cancel while waiting for the lock, in the body
    or in the final flush rolls everything back. Once COMMIT is issued it runs to
    completion, as do the ROLLBACK and the return of the connection to the pool, even when
    the task is cancelled meanwhile.
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
