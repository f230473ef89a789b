"""The probe of a silent Ray log stream (a websocket with no heartbeat).

A head that went away without a reset leaves the stream open and silent for good; the
probe asks the Jobs API (an HTTP call, which times out) whether the job still runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cosmos_tui.engine.ray_job import probed
from cosmos_tui.errors import ClusterUnreachable


async def talks_then_goes_silent(chunks: list[str]) -> AsyncIterator[str]:
    for chunk in chunks:
        yield chunk
    await asyncio.sleep(3600)  # open and silent: what an idle websocket does
    yield "never"


async def test_a_silent_stream_ends_once_the_probe_says_the_job_ended() -> None:
    asked: list[int] = []

    async def live() -> bool:
        asked.append(1)
        return len(asked) < 3

    got = [c async for c in probed(talks_then_goes_silent(["a\n", "b\n"]), live, 0.05)]
    assert got == ["a\n", "b\n"] and len(asked) == 3


async def test_a_probe_that_cannot_reach_the_head_raises_for_the_caller_to_resume() -> None:
    async def live() -> bool:
        raise ClusterUnreachable("lab", "timed out")

    with pytest.raises(ClusterUnreachable, match="timed out"):
        async for _chunk in probed(talks_then_goes_silent(["a\n"]), live, 0.05):
            pass


async def test_a_stream_that_keeps_talking_is_never_probed_and_ends_with_its_source() -> None:
    async def steady() -> AsyncIterator[str]:
        for number in range(20):
            await asyncio.sleep(0.01)
            yield f"{number}\n"

    async def live() -> bool:
        raise AssertionError("probed while the stream talked")

    got = [c async for c in probed(steady(), live, 0.5)]
    assert got == [f"{n}\n" for n in range(20)]


async def test_an_error_of_the_stream_itself_reaches_the_caller() -> None:
    async def breaks() -> AsyncIterator[str]:
        yield "a\n"
        raise ClusterUnreachable("lab", "log stream: reset")

    async def live() -> bool:
        return True

    got: list[str] = []
    with pytest.raises(ClusterUnreachable, match="reset"):
        async for chunk in probed(breaks(), live, 1.0):
            got.append(chunk)
    assert got == ["a\n"]


async def test_a_stream_silent_too_long_while_the_job_runs_ends_for_a_new_one() -> None:
    asked: list[int] = []

    async def live() -> bool:
        asked.append(1)
        return True  # the job runs on: only the socket may be dead

    got = [c async for c in probed(talks_then_goes_silent(["a\n"]), live, 0.05, 0.2)]
    assert got == ["a\n"] and len(asked) == 4  # 4 probes of 0.05 s silence each


async def test_chunks_between_probes_restart_the_silence_count() -> None:
    async def slow() -> AsyncIterator[str]:
        for number in range(4):
            await asyncio.sleep(0.12)  # two probes' worth of silence before each chunk
            yield f"{number}\n"

    async def live() -> bool:
        return True

    got = [c async for c in probed(slow(), live, 0.05, 0.2)]
    assert got == [f"{n}\n" for n in range(4)]
