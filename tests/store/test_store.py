from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from cosmos_tui.domain import GenerationParams, InputFile, RunState, RunType
from cosmos_tui.errors import AmbiguousId, InvalidTransition, NotFound, StoreError, ValidationError
from cosmos_tui.ids import IdSource
from cosmos_tui.store.migrate import known_revisions
from cosmos_tui.store.repositories import PromptFilter, RunFilter, Store


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def sequence_ids(*values: str) -> IdSource:
    queue = list(values)
    return IdSource(lambda n: queue.pop(0))


def inputs(tag: str) -> list[InputFile]:
    return [InputFile("color", Path(f"/v/{tag}/color.mp4"), "a" * 64, 10)]


async def test_schema_is_migrated_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    async with Store.open(db) as store:
        async with store.session() as session:
            mode = (await session.execute(text("PRAGMA journal_mode"))).scalar()
            fks = (await session.execute(text("PRAGMA foreign_keys"))).scalar()
        assert mode == "wal"
        assert fks == 1
    with sqlite3.connect(db) as raw:
        stored = raw.execute("SELECT version_num FROM alembic_version").fetchone()
    assert stored == (known_revisions()[-1],)


async def test_not_sqlite_foreign_and_newer_databases_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError, match="not an SQLite database"):
        async with Store.open(junk):
            pass
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as raw:
        raw.execute("CREATE TABLE other (x)")
    with pytest.raises(StoreError, match="not one of cosmos-tui's"):
        async with Store.open(foreign):
            pass
    newer = tmp_path / "newer.db"
    async with Store.open(newer):
        pass
    with sqlite3.connect(newer) as raw:
        raw.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match="newer cosmos-tui"):
        async with Store.open(newer):
            pass


async def test_prompt_round_trip_and_prefix_resolution(tmp_path: Path) -> None:
    ids = sequence_ids("aaaa11111111", "aaaa22222222", "bbbb33333333")
    async with Store.open(tmp_path / "c.db", ids=ids, clock=Clock()) as store:
        first = await store.add_prompt("a red car", inputs("1"), name="car")
        await store.add_prompt("a blue car", inputs("2"))
        await store.add_run(first.id, GenerationParams())
        loaded = await store.get_prompt(first.id)
        assert loaded.text == "a red car"
        assert loaded.inputs[0].role == "color"
        assert await store.resolve_id("ps_aaaa1") == "ps_aaaa11111111"
        assert await store.resolve_id("aaaa2") == "ps_aaaa22222222"
        assert await store.resolve_id("bbbb", kind="run") == "rs_bbbb33333333"
        with pytest.raises(AmbiguousId) as info:
            await store.resolve_id("ps_aaaa")
        assert "ps_aaaa11111111" in info.value.message and "ps_aaaa22222222" in info.value.message
        with pytest.raises(NotFound):
            await store.resolve_id("ps_ffff")
        with pytest.raises(ValidationError):
            await store.resolve_id("ps_aaaa1", kind="run")


async def test_transition_records_timeline_and_rejects_invalid(tmp_path: Path) -> None:
    async with Store.open(tmp_path / "c.db", clock=Clock()) as store:
        prompt = await store.add_prompt("x", inputs("1"))
        run = await store.add_run(prompt.id, GenerationParams(num_steps=7))
        assert run.state == RunState.QUEUED
        await store.transition(run.id, RunState.UPLOADING, "claimed", host="gpu1", gpus=[0, 3])
        await store.transition(run.id, RunState.STARTING, "inputs uploaded")
        running = await store.transition(run.id, RunState.RUNNING, "container started")
        assert running.started_at is not None
        with pytest.raises(InvalidTransition):
            await store.transition(run.id, RunState.UPLOADING, "again")
        done = await store.transition(
            run.id, RunState.FAILED, "oom", failure_kind="gpu_oom", exit_code=1
        )
        assert done.host == "gpu1" and done.gpus == (0, 3)
        assert done.finished_at is not None
        assert done.failure_kind is not None and done.failure_kind.value == "gpu_oom"
        assert done.params.num_steps == 7
        assert [e.to_state.value for e in done.events] == [
            "queued", "uploading", "starting", "running", "failed",
        ]  # fmt: skip
        assert [e.reason for e in done.events][-1] == "oom"


async def test_two_processes_racing_one_transition_only_one_wins(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    async with Store.open(db) as first, Store.open(db) as second:
        prompt = await first.add_prompt("x", inputs("1"))
        run = await first.add_run(prompt.id, GenerationParams())
        results = await asyncio.gather(
            first.transition(run.id, RunState.UPLOADING, "a"),
            second.transition(run.id, RunState.UPLOADING, "b"),
            return_exceptions=True,
        )
        assert sum(isinstance(r, InvalidTransition) for r in results) == 1
        final = await first.get_run(run.id)
        assert [e.to_state for e in final.events].count(RunState.UPLOADING) == 1


async def test_filters_paging_and_search(tmp_path: Path) -> None:
    clock = Clock()
    async with Store.open(tmp_path / "c.db", clock=clock) as store:
        cat = await store.add_prompt("a cat on a red sofa", inputs("1"), name="cat")
        dog = await store.add_prompt("a dog in the park", inputs("2"), name="dog")
        runs = [await store.add_run(cat.id, GenerationParams()) for _ in range(5)]
        upscale = await store.add_run(dog.id, GenerationParams(), RunType.UPSCALE)
        await store.transition(runs[0].id, RunState.CANCELLED, "user")
        await store.rate(runs[1].id, 4)
        await store.rate(runs[2].id, 2)

        page = await store.list_runs(RunFilter(states=frozenset({RunState.QUEUED})), 0, 2)
        assert page.total == 5 and len(page.items) == 2
        assert page.items[0].created_at >= page.items[1].created_at
        second = await store.list_runs(RunFilter(states=frozenset({RunState.QUEUED})), 4, 2)
        assert len(second.items) == 1
        assert (await store.list_runs(RunFilter(type=RunType.UPSCALE))).items[0].id == upscale.id
        assert (await store.list_runs(RunFilter(prompt_id=dog.id))).total == 1
        assert {r.id for r in (await store.list_runs(RunFilter(min_rating=3))).items} == {
            runs[1].id
        }
        since = (await store.get_run(runs[3].id)).created_at
        assert (await store.list_runs(RunFilter(since=since))).total == 3
        assert (await store.list_runs(RunFilter(text="red sofa"))).total == 5
        assert (await store.list_runs(RunFilter(text="park"))).items[
            0
        ].prompt_text == "a dog in the park"

        assert [p.id for p in (await store.list_prompts(PromptFilter(text="sofa"))).items] == [
            cat.id
        ]
        assert (await store.list_prompts(PromptFilter(text="do"))).items[0].id == dog.id
        assert (await store.list_prompts(PromptFilter(text="100%"))).total == 0
        listed = {p.id: p for p in (await store.list_prompts()).items}
        assert listed[cat.id].run_count == 5
        assert listed[dog.id].latest_state == RunState.QUEUED


async def test_delete_cascades_and_refuses_active_runs(tmp_path: Path) -> None:
    async with Store.open(tmp_path / "c.db") as store:
        prompt = await store.add_prompt("x", inputs("1"))
        run = await store.add_run(prompt.id, GenerationParams())
        await store.transition(run.id, RunState.UPLOADING, "go")
        with pytest.raises(ValidationError, match="still active"):
            await store.delete_prompt(prompt.id)
        await store.transition(run.id, RunState.CANCELLED, "stop")
        await store.delete_prompt(prompt.id)
        with pytest.raises(NotFound):
            await store.get_run(run.id)
        async with store.session() as session:
            left = (await session.execute(text("SELECT count(*) FROM run_events"))).scalar()
        assert left == 0


async def test_rating_bounds(tmp_path: Path) -> None:
    async with Store.open(tmp_path / "c.db") as store:
        prompt = await store.add_prompt("x", inputs("1"))
        run = await store.add_run(prompt.id, GenerationParams())
        for bad in (0, 6, -1):
            with pytest.raises(ValidationError):
                await store.rate(run.id, bad)
        assert (await store.rate(run.id, 5)).rating == 5
        assert (await store.rate(run.id, None)).rating is None


async def test_locked_database_is_one_line_with_the_fix(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    async with Store.open(db, busy_timeout_ms=100) as store:
        prompt = await store.add_prompt("x", inputs("1"))
        holder = sqlite3.connect(db, timeout=0)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(StoreError) as info:
                await store.add_run(prompt.id, GenerationParams())
        finally:
            holder.rollback()
            holder.close()
        assert "another cosmos process holds it" in info.value.message
        assert "\n" not in info.value.message
        assert (await store.list_runs()).total == 0


RACE_SCRIPT = """
import asyncio, sys
from pathlib import Path
from cosmos_tui.domain import RunState
from cosmos_tui.errors import InvalidTransition
from cosmos_tui.store.repositories import Store

async def main() -> None:
    won = []
    async with Store.open(Path(sys.argv[1])) as store:
        for run_id in sys.argv[2:]:
            try:
                await store.transition(run_id, RunState.UPLOADING, "claimed")
                won.append(run_id)
            except InvalidTransition:
                pass
    print(" ".join(won))

asyncio.run(main())
"""


async def test_two_processes_claiming_the_same_runs_never_both_win(tmp_path: Path) -> None:
    import subprocess
    import sys

    db = tmp_path / "c.db"
    async with Store.open(db) as store:
        prompt = await store.add_prompt("x", inputs("1"))
        run_ids = [(await store.add_run(prompt.id, GenerationParams())).id for _ in range(40)]
    script = tmp_path / "race.py"
    script.write_text(RACE_SCRIPT)
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), str(db), *order], stdout=subprocess.PIPE, text=True
        )
        for order in (run_ids, list(reversed(run_ids)))
    ]
    won = [set(w.communicate(timeout=120)[0].split()) for w in workers]
    assert all(w.returncode == 0 for w in workers)
    assert won[0].isdisjoint(won[1])
    assert won[0] | won[1] == set(run_ids)
    async with Store.open(db) as store:
        for run_id in run_ids:
            events = (await store.get_run(run_id)).events
            assert [e.to_state.value for e in events] == ["queued", "uploading"]
