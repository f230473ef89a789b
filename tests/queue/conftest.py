"""Fixtures of the queue tests: a real SQLite store and quick prompt/run makers."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cosmos_tui.domain import GenerationParams, InputFile, Prompt, Run, RunType
from cosmos_tui.store.repositories import Store

# The Cosmos stand-in image and Workbench fixtures of the lifecycle tests (real hosts).
from tests.lifecycle.conftest import (  # noqa: F401
    bench_for,
    cosmos3_config,
    cosmos3_image,
    make_config,
    standin_image,
)
from tests.lifecycle.test_transfer25_lifecycle import t25_config, t25_image  # noqa: F401


class StepClock:
    """A clock that moves one second per reading unless told otherwise."""

    def __init__(self, step: float = 1.0) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        self.step = timedelta(seconds=step)

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


BASE = GenerationParams(negative_prompt="ugly")


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
async def store(tmp_path: Path, clock: StepClock) -> AsyncIterator[Store]:
    async with Store.open(tmp_path / "q.db", clock=clock) as opened:
        yield opened


MakePrompt = Callable[..., Awaitable[Prompt]]
MakeRun = Callable[..., Awaitable[Run]]


@pytest.fixture
def make_prompt(store: Store) -> MakePrompt:
    counter = iter(range(100_000))

    async def _make(text: str | None = None, controls: tuple[str, ...] = ()) -> Prompt:
        n = next(counter)
        inputs = [InputFile("color", Path(f"/v/{n}/color.mp4"), f"{n:064x}", 100)]
        for hint in controls:
            inputs.append(
                InputFile(hint, Path(f"/v/{n}/{hint}.mp4"), f"{n + 7000:063x}{hint[0]}", 50)
            )
        return await store.add_prompt(
            text or f"prompt number {n}", inputs, video_dir=Path(f"/v/{n}")
        )

    return _make


@pytest.fixture
def make_run(store: Store, make_prompt: MakePrompt) -> MakeRun:
    async def _make(
        prompt: Prompt | None = None,
        priority: int = 0,
        run_type: RunType = RunType.TRANSFER,
        **params: Any,
    ) -> Run:
        prompt = prompt or await make_prompt()
        full = dataclasses.replace(BASE, **params)
        return await store.add_run(prompt.id, full, run_type, priority=priority)

    return _make


@pytest.fixture
def upload_overlap(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """``[now, most]``: input uploads under way at once (they overlap on a distant host)."""
    from cosmos_tui.remote.host import RemoteHost

    original = RemoteHost.upload_input
    moving = [0, 0]

    async def counted(self: RemoteHost, *args: Any, **kwargs: Any) -> Any:
        moving[0] += 1
        moving[1] = max(moving)
        try:
            return await original(self, *args, **kwargs)
        finally:
            moving[0] -= 1

    monkeypatch.setattr(RemoteHost, "upload_input", counted)
    return moving
