"""Waiting for a write lock that another connection holds: cancellable, bounded, and fair.

A transaction takes the write lock in short attempts with pauses between them, so a task
waiting for a lock held elsewhere (another process, another Store) ends at once when
cancelled instead of waiting out the busy timeout on the connection's thread; the wait
as a whole still lasts up to the busy timeout, then fails with the one-line "busy" error.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cosmos_tui.domain import InputFile
from cosmos_tui.engine import scheduler as scheduler_module
from cosmos_tui.engine.queue import HostView
from cosmos_tui.engine.scheduler import Scheduler, StaticCluster
from cosmos_tui.errors import StoreError
from cosmos_tui.store.queue_store import Claim, QueueStore
from cosmos_tui.store.repositories import Store
from cosmos_tui.store.tables import PromptRow

BUSY_TIMEOUT_MS = 10_000  # the default: a cancel that waited it out fails every deadline
CANCEL_DEADLINE_S = 0.5
WAITING_S = 0.3  # long enough for a session to be waiting for the lock
PROMPTLY_S = 2.0

HOLDER_SCRIPT = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("held", flush=True)
sys.stdin.readline()
connection.rollback()
connection.close()
"""


def inputs() -> list[InputFile]:
    return [InputFile("color", Path("/v/color.mp4"), "a" * 64, 10)]


async def prompt_count(store: Store) -> int:
    async with store.session() as session:
        return int(await session.scalar(select(func.count()).select_from(PromptRow)) or 0)


@asynccontextmanager
async def lock_held_by_another_process(db: Path) -> AsyncIterator[asyncio.Event]:
    """Hold the write lock in a child process until the yielded event is set (or exit)."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER_SCRIPT, str(db),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    release = asyncio.Event()

    async def release_when_set() -> None:
        await release.wait()
        child.stdin.write(b"\n")  # type: ignore[union-attr]
        await child.stdin.drain()  # type: ignore[union-attr]
        await child.wait()

    try:
        assert await child.stdout.readline() == b"held\n"
        releaser = asyncio.create_task(release_when_set())
        yield release
        release.set()
        await releaser
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()


@asynccontextmanager
async def lock_held_by_another_store(db: Path) -> AsyncIterator[asyncio.Event]:
    """Hold the write lock in a session of a second Store until the event is set."""
    release = asyncio.Event()
    holding = asyncio.Event()
    async with Store.open(db, busy_timeout_ms=BUSY_TIMEOUT_MS) as other:

        async def hold() -> None:
            async with other.session() as session:
                session.add(PromptRow(id="ps_holder", text="holder", created_at=other.clock()))
                await session.flush()
                holding.set()
                await release.wait()

        holder = asyncio.create_task(hold())
        await holding.wait()
        try:
            yield release
        finally:
            release.set()
            await holder


HOLDERS = {"process": lock_held_by_another_process, "store": lock_held_by_another_store}


@pytest.mark.parametrize("holder", sorted(HOLDERS))
async def test_a_session_waiting_for_the_lock_is_cancelled_at_once(
    tmp_path: Path, holder: str
) -> None:
    db = tmp_path / "c.db"
    async with Store.open(db, busy_timeout_ms=BUSY_TIMEOUT_MS) as store:
        before = await prompt_count(store)
        async with HOLDERS[holder](db) as release:
            # Several cancels, each landing at another point of the attempt/pause cycle.
            for offset in range(6):
                victim = asyncio.create_task(store.add_prompt("cancelled", inputs()))
                await asyncio.sleep(WAITING_S + offset * 0.013)
                assert not victim.done()  # waiting for the lock: nothing else blocks it
                cancelled_at = time.monotonic()
                victim.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await victim
                assert time.monotonic() - cancelled_at < CANCEL_DEADLINE_S

            # A new session waits for the lock and proceeds as soon as it is released.
            waiter = asyncio.create_task(store.add_prompt("after the release", inputs()))
            await asyncio.sleep(WAITING_S)
            assert not waiter.done()
            released_at = time.monotonic()
            release.set()
            async with asyncio.timeout(PROMPTLY_S):
                await waiter
            assert time.monotonic() - released_at < CANCEL_DEADLINE_S

        holder_rows = 1 if holder == "store" else 0  # the second Store's row is committed
        assert await prompt_count(store) == before + holder_rows + 1  # no cancelled prompt
        async with asyncio.timeout(PROMPTLY_S):
            await store.add_prompt("the store still works", inputs())


async def test_the_lock_held_past_the_busy_timeout_is_the_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    busy_timeout_s = 0.4
    async with Store.open(db, busy_timeout_ms=int(busy_timeout_s * 1000)) as store:
        async with lock_held_by_another_process(db):
            started = time.monotonic()
            with pytest.raises(StoreError) as info:
                await store.add_prompt("locked out", inputs())
            waited = time.monotonic() - started
        assert busy_timeout_s <= waited < busy_timeout_s + CANCEL_DEADLINE_S
        assert "another cosmos process holds it" in info.value.message
        assert "\n" not in info.value.message
        async with asyncio.timeout(PROMPTLY_S):
            await store.add_prompt("the store still works", inputs())
        assert await prompt_count(store) == 1


async def test_a_busy_timeout_of_zero_fails_at_once(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    async with Store.open(db, busy_timeout_ms=0) as store:
        holder = sqlite3.connect(db, isolation_level=None, timeout=0)
        holder.execute("BEGIN IMMEDIATE")
        try:
            started = time.monotonic()
            with pytest.raises(StoreError, match="another cosmos process holds it"):
                await store.add_prompt("locked out", inputs())
            assert time.monotonic() - started < CANCEL_DEADLINE_S
        finally:
            holder.rollback()
            holder.close()
        await store.add_prompt("free again", inputs())


async def test_a_writer_waits_for_another_store_then_proceeds(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    hold_s = 0.3
    async with (
        Store.open(db, busy_timeout_ms=BUSY_TIMEOUT_MS) as first,
        Store.open(db, busy_timeout_ms=BUSY_TIMEOUT_MS) as second,
    ):
        holding = asyncio.Event()

        async def slow_writer() -> None:
            async with first.session() as session:
                session.add(PromptRow(id="ps_slow", text="slow", created_at=first.clock()))
                await session.flush()
                holding.set()
                await asyncio.sleep(hold_s)

        slow = asyncio.create_task(slow_writer())
        await holding.wait()
        started = time.monotonic()
        await second.add_prompt("waited", inputs())
        waited = time.monotonic() - started
        await slow
        assert hold_s * 0.8 <= waited < hold_s + CANCEL_DEADLINE_S
        assert await prompt_count(first) == 2


async def test_many_writers_on_two_stores_all_succeed(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    async with (
        Store.open(db, busy_timeout_ms=BUSY_TIMEOUT_MS) as first,
        Store.open(db, busy_timeout_ms=BUSY_TIMEOUT_MS) as second,
    ):

        async def writer(store: Store, name: str) -> None:
            for i in range(15):
                await store.add_prompt(f"{name} {i}", inputs())

        await asyncio.gather(
            *(writer(store, f"{n}-{i}") for n, store in (("a", first), ("b", second))
              for i in range(4))
        )  # fmt: skip
        assert await prompt_count(second) == 2 * 4 * 15


async def test_scheduler_clean_up_is_bounded_while_another_process_holds_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cleanup_s = 0.5
    monkeypatch.setattr(scheduler_module, "CLEANUP_TIMEOUT_S", cleanup_s)
    db = tmp_path / "c.db"

    class NoLaunch:
        async def launch(self, claim: Claim) -> None:
            raise AssertionError("nothing is queued")

    async with Store.open(db, busy_timeout_ms=BUSY_TIMEOUT_MS) as store:
        queue = QueueStore(store)
        sched = Scheduler(queue, StaticCluster((HostView("a", True, (0,)),)), NoLaunch(),
                          poll_interval=0.01)  # fmt: skip
        running = asyncio.create_task(sched.run())
        async with asyncio.timeout(PROMPTLY_S):
            while sched.id not in await queue.live_schedulers(timedelta(seconds=60)):
                await asyncio.sleep(0.01)
        async with lock_held_by_another_process(db):
            await asyncio.sleep(WAITING_S)  # the next pass waits for the lock
            assert not running.done()
            cancelled_at = time.monotonic()
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
            # The pass ends at once; unregister waits for the lock until the clean-up
            # timeout, far below the busy timeout.
            assert time.monotonic() - cancelled_at < cleanup_s + CANCEL_DEADLINE_S
