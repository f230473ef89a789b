"""A task cancelled inside a Store transaction never leaves the database locked.

Each test pins the cancellation to one point of a transaction: while a statement runs on
the connection's thread (held there by a gate, an SQL function that blocks until the test
opens it), while the body awaits something else, while COMMIT is queued, while BEGIN
IMMEDIATE waits for another writer, and a second cancel while the clean-up runs. Afterwards
another writer on the same Store, and one on a second Store over the same file, must write
at once (the busy timeout is far longer than the deadline), and the cancelled
transaction must have left all of its rows or none.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from cosmos_tui.domain import InputFile
from cosmos_tui.store.repositories import Store
from cosmos_tui.store.tables import AppStateRow

BUSY_TIMEOUT_MS = 5_000
PROMPTLY_S = 2.0  # well under the busy timeout: a held lock fails the deadline, not a retry
VICTIM_KEYS = ("victim-a", "victim-b")


class Gate:
    """An SQL function ``gate()`` that holds the connection's thread until opened."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.entered = asyncio.Event()
        self._open = threading.Event()

    def __call__(self) -> int:
        self._loop.call_soon_threadsafe(self.entered.set)
        self._open.wait(30)
        return 1

    def open(self) -> None:
        self._open.set()

    async def install(self, session: AsyncSession) -> aiosqlite.Connection:
        """Register ``gate()`` on the session's connection; return the aiosqlite connection."""
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert isinstance(driver, aiosqlite.Connection)
        await driver.create_function("gate", 0, self)
        return driver


def inputs() -> list[InputFile]:
    return [InputFile("color", Path("/v/color.mp4"), "a" * 64, 10)]


def write_victim_rows(session: AsyncSession) -> None:
    now = datetime.now(UTC)
    session.add_all(AppStateRow(key=key, value="half", updated_at=now) for key in VICTIM_KEYS)


async def cancel_and_wait(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def victim_rows(db: Path) -> int:
    keys = select(AppStateRow.key).where(AppStateRow.key.in_(VICTIM_KEYS))
    async with (
        Store.open(db, busy_timeout_ms=BUSY_TIMEOUT_MS) as other,
        asyncio.timeout(PROMPTLY_S),
        other.session() as session,
    ):
        return len((await session.scalars(keys)).all())


async def assert_others_write_promptly(store: Store, db: Path) -> None:
    async with asyncio.timeout(PROMPTLY_S):
        await store.add_prompt("same store, after the cancel", inputs())
    async with Store.open(db, busy_timeout_ms=BUSY_TIMEOUT_MS) as other:
        async with asyncio.timeout(PROMPTLY_S):
            await other.add_prompt("second store, same file", inputs())


async def test_cancel_while_a_statement_runs_rolls_back_and_frees_the_lock(
    tmp_path: Path,
) -> None:
    db = tmp_path / "c.db"
    async with Store.open(db, busy_timeout_ms=BUSY_TIMEOUT_MS) as store:
        gate = Gate()

        async def victim() -> None:
            async with store.session() as session:
                write_victim_rows(session)
                await session.flush()
                await gate.install(session)
                # A statement with rows left to read: the cancel leaves its cursor open.
                await session.execute(text("SELECT gate() UNION ALL SELECT 2"))

        task = asyncio.create_task(victim())
        await gate.entered.wait()
        task.cancel()
        gate.open()
        with pytest.raises(asyncio.CancelledError) as cancelled:
            await task
        # The error (and with it the interrupted cursor) stays alive, as it does while
        # callers unwind: it must not matter.
        assert cancelled.value is not None

        await assert_others_write_promptly(store, db)
        assert await victim_rows(db) == 0


async def test_cancel_while_the_body_awaits_rolls_back(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    async with Store.open(db, busy_timeout_ms=BUSY_TIMEOUT_MS) as store:
        inside = asyncio.Event()

        async def victim() -> None:
            async with store.session() as session:
                write_victim_rows(session)
                await session.flush()
                inside.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(victim())
        await inside.wait()
        await cancel_and_wait(task)

        await assert_others_write_promptly(store, db)
        assert await victim_rows(db) == 0


async def test_cancel_while_commit_is_queued_ends_the_transaction_whole(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    async with Store.open(db, busy_timeout_ms=BUSY_TIMEOUT_MS) as store:
        gate = Gate()
        committing = asyncio.Event()
        holding: list[asyncio.Future[object]] = []

        async def victim() -> None:
            async with store.session() as session:
                event.listen(session.sync_session, "before_commit", lambda _s: committing.set())
                write_victim_rows(session)
                await session.flush()
                driver = await gate.install(session)
                # Hold the connection's thread so that COMMIT waits in its queue.
                holding.append(asyncio.ensure_future(driver.execute_fetchall("SELECT gate()")))
                await gate.entered.wait()

        task = asyncio.create_task(victim())
        await committing.wait()  # resumes once the victim awaits its COMMIT
        task.cancel()
        gate.open()
        with pytest.raises(asyncio.CancelledError):
            await task
        await holding[0]

        await assert_others_write_promptly(store, db)
        # All or nothing: a cancel once COMMIT was issued raises CancelledError after the
        # COMMIT has run, so the rows may be there (documented in Store.session).
        assert await victim_rows(db) in (0, len(VICTIM_KEYS))


async def test_second_cancel_during_the_clean_up_still_frees_the_lock(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    async with Store.open(db, busy_timeout_ms=BUSY_TIMEOUT_MS) as store:
        gate = Gate()

        async def victim() -> None:
            async with store.session() as session:
                write_victim_rows(session)
                await session.flush()
                await gate.install(session)
                await session.execute(text("SELECT gate() UNION ALL SELECT 2"))

        task = asyncio.create_task(victim())
        await gate.entered.wait()
        task.cancel()
        # The clean-up now waits behind the gate; cancel it too, as a parent that cancels
        # its children (or asyncio.run shutting down) does.
        for _ in range(5):
            await asyncio.sleep(0)
        task.cancel()
        gate.open()
        with pytest.raises(asyncio.CancelledError):
            await task

        await assert_others_write_promptly(store, db)
        assert await victim_rows(db) == 0


async def test_cancel_while_begin_waits_for_another_writer(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    async with Store.open(db, busy_timeout_ms=BUSY_TIMEOUT_MS) as store:
        holding = asyncio.Event()
        release = asyncio.Event()

        async def holder() -> None:
            async with store.session() as session:
                await session.execute(text("SELECT 1"))
                holding.set()
                await release.wait()

        async def victim() -> None:
            async with store.session() as session:
                write_victim_rows(session)

        held = asyncio.create_task(holder())
        await holding.wait()
        task = asyncio.create_task(victim())
        await asyncio.sleep(0.2)  # the victim's BEGIN IMMEDIATE is waiting for the lock
        task.cancel()
        release.set()
        await held
        with pytest.raises(asyncio.CancelledError):
            await task

        await assert_others_write_promptly(store, db)
        assert await victim_rows(db) == 0


@pytest.mark.parametrize(
    "interrupt",
    ["statement", "await"],
)
async def test_cancelled_reads_do_not_leak_connections(tmp_path: Path, interrupt: str) -> None:
    db = tmp_path / "c.db"
    async with Store.open(db, busy_timeout_ms=BUSY_TIMEOUT_MS) as store:
        prompt = await store.add_prompt("read me", inputs())
        # More cancelled reads than the pool holds (5 + 10 overflow): a leak would exhaust it.
        for _ in range(20):
            gate = Gate()
            inside = asyncio.Event()

            async def reader(gate: Gate = gate, inside: asyncio.Event = inside) -> None:
                async with store.session() as session:
                    await gate.install(session)
                    if interrupt == "statement":
                        await session.execute(text("SELECT gate() UNION ALL SELECT 2"))
                    else:
                        inside.set()
                        await asyncio.Event().wait()

            task = asyncio.create_task(reader())
            waiting: Callable[[], Awaitable[bool]] = (
                gate.entered.wait if interrupt == "statement" else inside.wait
            )
            async with asyncio.timeout(PROMPTLY_S):  # the previous reader left no lock
                await waiting()
            task.cancel()
            gate.open()
            with pytest.raises(asyncio.CancelledError):
                await task

        async with asyncio.timeout(PROMPTLY_S):
            assert (await store.get_prompt(prompt.id)).text == "read me"
        await assert_others_write_promptly(store, db)
