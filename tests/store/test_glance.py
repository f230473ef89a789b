"""store.glance: the newest pages read with sqlite3 alone equal the store's own pages."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cosmos_tui.domain import GenerationParams, InputFile, RunMetrics, RunState, RunType
from cosmos_tui.store.glance import newest_pages
from cosmos_tui.store.repositories import PromptFilter, RunFilter, Store


class Clock:
    """Moves one second per call, with a pause now and then so that times tie."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        self.calls = 0

    def __call__(self) -> datetime:
        self.calls += 1
        if self.calls % 3:
            self.now += timedelta(seconds=1, microseconds=250)
        return self.now


async def fill(store: Store) -> None:
    """Prompts with and without inputs and runs, runs in many states and with every field."""
    prompts = []
    for index in range(7):
        files = [
            InputFile(role, Path(f"/v/{index}/{role}.mp4"), f"{index:064x}", 10 + index)
            for role in ("depth", "color", "seg")[: index % 4]
        ]
        prompt = await store.add_prompt(
            f"prompt text {index}",
            files,
            name=f"p{index}" if index % 2 else None,
            negative_prompt="blurry" if index == 3 else None,
            video_dir=Path(f"/v/{index}") if files else None,
        )
        prompts.append(prompt)
    params = GenerationParams(seed=5, num_steps=12)
    for index in range(23):
        prompt_id = prompts[index % 5].id if index != 4 else None
        run_type = RunType.UPSCALE if index % 6 == 5 else RunType.TRANSFER
        run = await store.add_run(prompt_id, params, run_type, priority=index % 3)
        if index % 4 == 0:
            continue
        await store.transition(run.id, RunState.UPLOADING, "test", host="gpu-a", gpus=(0, 1))
        await store.transition(run.id, RunState.STARTING, "test", started_at=store.clock())
        await store.transition(run.id, RunState.RUNNING, "test", container_id=f"c{index}")
        if index % 4 == 1:
            await store.update_run(
                run.id,
                progress_phase="diffusion",
                progress_percent=42.5,
                eta_seconds=90.0,
                log_path=Path(f"/logs/{run.id}.log"),
            )
        elif index % 4 == 2:
            await store.transition(
                run.id,
                RunState.FAILED,
                "boom",
                failure_kind="gpu_oom",
                failure_message="CUDA out of memory",
                exit_code=1,
            )
        else:
            await store.transition(run.id, RunState.DOWNLOADING, "test")
            await store.transition(
                run.id,
                RunState.COMPLETED,
                "done",
                outputs=["output.mp4"],
                spec={"prompt": "x"},
                metrics=json.dumps(RunMetrics(samples=3, seconds=2.0).to_dict()),
            )
            await store.rate(run.id, index % 5 + 1)


async def test_newest_pages_equal_the_stores_first_pages(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    async with Store.open(db, clock=Clock()) as store:
        await fill(store)
        for limit in (5, 50):
            expected_runs = await store.list_runs(RunFilter(), 0, limit, "created", True)
            expected_prompts = await store.list_prompts(PromptFilter(), 0, limit, "created", True)
            assert newest_pages(db, limit, limit) == (expected_runs, expected_prompts)
    assert expected_runs.total == 23 and expected_prompts.total == 7


async def test_nothing_to_glance_at_is_none_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "data" / "c.db"
    assert newest_pages(missing, 10, 10) is None
    assert not missing.parent.exists()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    assert newest_pages(junk, 10, 10) is None
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as raw:
        raw.execute("CREATE TABLE other (x)")
    assert newest_pages(foreign, 10, 10) is None
    old = tmp_path / "old.db"
    async with Store.open(old):
        pass
    with sqlite3.connect(old) as raw:  # a schema this code would migrate first
        raw.execute("UPDATE alembic_version SET version_num = '0001'")
    assert newest_pages(old, 10, 10) is None
    empty = tmp_path / "empty.db"
    async with Store.open(empty):
        pass
    runs, prompts = newest_pages(empty, 10, 10) or (None, None)
    assert runs is not None and runs.items == () and runs.total == 0
    assert prompts is not None and prompts.items == () and prompts.total == 0


def test_the_glance_does_not_load_sqlalchemy() -> None:
    code = (
        "import sys\n"
        "import cosmos_tui.store.glance\n"
        "assert 'sqlalchemy' not in sys.modules, 'sqlalchemy imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


async def glanced_db(path: Path) -> Path:
    async with Store.open(path, clock=Clock()) as store:
        await fill(store)
    return path


def timed_glance(db: Path) -> tuple[object, float]:
    begin = time.perf_counter()
    pages = newest_pages(db, 10, 10)
    return pages, time.perf_counter() - begin


async def test_a_writer_does_not_hold_the_glance_up(tmp_path: Path) -> None:
    db = await glanced_db(tmp_path / "c.db")
    writer = sqlite3.connect(db, isolation_level=None)
    try:
        writer.execute("BEGIN EXCLUSIVE")  # in WAL mode readers go on reading
        writer.execute("DELETE FROM run_events")
        pages, took = timed_glance(db)
        assert pages is not None and pages[0].total == 23 and took < 0.5
    finally:
        writer.execute("ROLLBACK")
        writer.close()


@pytest.mark.parametrize("how", ["exclusive locking mode", "rollback journal"])
async def test_a_locked_database_gives_no_glance_at_once(tmp_path: Path, how: str) -> None:
    db = await glanced_db(tmp_path / "c.db")
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        if how == "rollback journal":
            holder.execute("PRAGMA journal_mode=DELETE")
        else:
            holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")  # readers are locked out until it ends
        holder.execute("DELETE FROM run_events")
        pages, took = timed_glance(db)
        assert pages is None and took < 0.5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert newest_pages(db, 10, 10) is not None


async def test_a_conversion_bug_is_not_taken_for_an_unreadable_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cosmos_tui.store import glance

    db = await glanced_db(tmp_path / "c.db")

    def broken(*_args: object) -> object:
        raise AttributeError("a converter bug")

    monkeypatch.setattr(glance, "run_from_row", broken)
    with pytest.raises(AttributeError, match="a converter bug"):
        newest_pages(db, 10, 10)
