from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cosmos_tui.engine.logs import (
    MAX_BATCH_LINES,
    DockerLogDecoder,
    LocalLog,
    LogFollower,
    LogHub,
    clean_lines,
    parse_timestamp_ns,
    read_log_lines,
    since_param,
    split_display_lines,
    strip_ansi,
    tail_log,
)
from cosmos_tui.engine.ray_job import timestamped_lines

BASE = 1_795_000_000 * 1_000_000_000


def stamp(ns: int) -> str:
    from datetime import UTC, datetime

    seconds, frac = divmod(ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{frac:09d}".rstrip("0")
    return text + ("." + digits if digits else "") + "Z"


def frame(ns: int, text: str | bytes, newline: bool = True) -> bytes:
    body = text.encode() if isinstance(text, str) else text
    return stamp(ns).encode() + b" " + body + (b"\n" if newline else b"")


async def frames_of(items: list[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


# cleaning ---------------------------------------------------------------------------


def test_strip_ansi_removes_colour_and_cursor_codes() -> None:
    assert strip_ansi("\x1b[32mINFO\x1b[0m done\x1b[2K\x1b]0;title\x07") == "INFO done"
    assert strip_ansi("tab\tkept\x08") == "tab\tkept"


def test_carriage_return_redraws_become_lines() -> None:
    text = "\r  0%|          | 0/1 [00:00<?, ?it/s]\r100%|##########| 1/1 [00:02<00:00]"
    assert split_display_lines(text) == [
        "  0%|          | 0/1 [00:00<?, ?it/s]",
        "100%|##########| 1/1 [00:02<00:00]",
    ]
    assert split_display_lines("") == [""]
    assert split_display_lines("a\r\nb") == ["a", "b"]


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert clean_lines(b"bad \xff\xfe byte\n") == ["bad \ufffd\ufffd byte"]


def test_timestamps_parse_with_trimmed_fraction() -> None:
    assert parse_timestamp_ns("2026-11-21T17:08:38.5Z") == parse_timestamp_ns(
        "2026-11-21T17:08:38.500000000Z"
    )
    assert parse_timestamp_ns("2026-11-21T17:08:38Z") % 1_000_000_000 == 0
    assert parse_timestamp_ns(stamp(BASE + 123)) == BASE + 123
    assert since_param(BASE + 5) == f"{BASE // 10**9}.000000005"
    with pytest.raises(ValueError):
        parse_timestamp_ns("yesterday")


def test_decoder_rebuilds_partial_messages_and_keeps_first_stamp() -> None:
    decoder = DockerLogDecoder()
    assert decoder.feed(frame(BASE + 1, "first half ", newline=False)) == []
    lines = decoder.feed(frame(BASE + 2, "second half"))
    assert [(x.ts_ns, x.data) for x in lines] == [(BASE + 1, b"first half second half")]
    assert decoder.feed(frame(BASE + 3, "tail", newline=False)) == []
    assert [(x.ts_ns, x.data) for x in decoder.flush()] == [(BASE + 3, b"tail")]
    assert decoder.flush() == []


def test_decoder_handles_chunks_holding_several_lines() -> None:
    decoder = DockerLogDecoder()
    blob = frame(BASE + 1, "a") + frame(BASE + 2, "b") + frame(BASE + 3, "c")
    lines = decoder.feed(blob)
    assert [(x.ts_ns, x.data) for x in lines] == [
        (BASE + 1, b"a"), (BASE + 2, b"b"), (BASE + 3, b"c")
    ]  # fmt: skip


# local log, cursor and resume ---------------------------------------------------------


async def follow(path: Path, items: list[bytes], hub: LogHub | None = None) -> list[str]:
    log = LocalLog(path)
    log.open()
    seen: list[str] = []
    follower = LogFollower("rs_1", log, hub or LogHub(), on_lines=seen.extend)
    await follower.follow(frames_of(items))
    return seen


async def test_resume_drops_duplicates_including_equal_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "rs_1" / "run.log"
    first = [frame(BASE + 1, "one"), frame(BASE + 2, "two a"), frame(BASE + 2, "two b")]
    assert await follow(path, first) == ["one", "two a", "two b"]
    # Docker's since is inclusive: the resumed stream repeats every line at BASE+2.
    again = [frame(BASE + 2, "two a"), frame(BASE + 2, "two b"), frame(BASE + 2, "two c"),
             frame(BASE + 3, "three")]  # fmt: skip
    assert await follow(path, again) == ["two c", "three"]
    assert read_log_lines(path) == ["one", "two a", "two b", "two c", "three"]
    cursor = LocalLog(path).open()
    assert (cursor.since_ns, cursor.at_since, cursor.lines) == (BASE + 3, 1, 5)


async def follow_job_log(path: Path, chunks: list[str]) -> list[str]:
    """Follow a Ray job log stream (read from its start each time) as the driver does."""
    log = LocalLog(path)
    log.open()
    seen: list[str] = []
    follower = LogFollower("rs_1", log, LogHub(), on_lines=seen.extend, from_start=True)
    try:
        await follower.follow(timestamped_lines(texts_of(chunks)))
    finally:
        log.close()
    return seen


async def texts_of(chunks: list[str]) -> AsyncIterator[str]:
    for chunk in chunks:
        yield chunk


async def test_a_job_log_read_again_from_its_start_resumes_by_position(tmp_path: Path) -> None:
    # The entrypoint says "running" after the container started: the container's first
    # lines carry earlier stamps but come after it in the job log. A resume by time would
    # take them as new and write them twice.
    path = tmp_path / "rs_1" / "run.log"
    log = [frame(BASE + 9, "[cosmos-tui] running").decode(), "Ray's own line, no stamp\n",
           frame(BASE + 1, "one").decode(), frame(BASE + 2, "two").decode()]  # fmt: skip
    assert await follow_job_log(path, log) == ["[cosmos-tui] running", "one", "two"]
    more = [frame(BASE + 3, "three").decode(), frame(BASE + 3, "three b").decode()]
    assert await follow_job_log(path, ["".join(log), *more]) == ["three", "three b"]
    assert await follow_job_log(path, [*log, *more]) == []
    assert read_log_lines(path) == ["[cosmos-tui] running", "one", "two", "three", "three b"]


async def test_a_job_log_stream_cut_mid_line_writes_no_half_line(tmp_path: Path) -> None:
    path = tmp_path / "rs_1" / "run.log"
    whole = frame(BASE + 1, "one").decode() + frame(BASE + 2, "two complete").decode()
    assert await follow_job_log(path, [whole[:-6]]) == ["one"]  # the stream broke there
    assert await follow_job_log(path, [whole]) == ["two complete"]
    assert read_log_lines(path) == ["one", "two complete"]


async def test_a_cursor_saved_before_positions_resumes_by_time(tmp_path: Path) -> None:
    path = tmp_path / "rs_1" / "run.log"
    await follow_job_log(path, [frame(BASE + 1, "one").decode()])
    cursor_path = path.with_name("run.log.cursor")
    saved = json.loads(cursor_path.read_text())
    del saved["stamped"]  # a cursor written by an earlier version
    cursor_path.write_text(json.dumps(saved))
    both = frame(BASE + 1, "one").decode() + frame(BASE + 2, "two").decode()
    assert await follow_job_log(path, [both]) == ["two"]
    assert read_log_lines(path) == ["one", "two"]


async def test_reopen_cuts_a_write_that_the_cursor_never_saw(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    await follow(path, [frame(BASE + 1, "kept")])
    with path.open("ab") as handle:  # a crash after writing, before saving the cursor
        handle.write(b"half written\n")
    assert await follow(path, [frame(BASE + 1, "kept"), frame(BASE + 2, "next")]) == ["next"]
    assert read_log_lines(path) == ["kept", "next"]


async def test_progress_redraws_and_ansi_arrive_clean(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    items = [frame(BASE + 1, "\x1b[1m[11-21 17:00:00|INFO|x.py:1:f] Run generation\x1b[0m"),
             frame(BASE + 2, b"\r  0%|  | 0/1\r100%|##| 1/1 \xff")]  # fmt: skip
    await follow(path, items)
    assert read_log_lines(path) == [
        "[11-21 17:00:00|INFO|x.py:1:f] Run generation",
        "  0%|  | 0/1",
        "100%|##| 1/1 \ufffd",
    ]


async def test_large_streams_flush_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    batches: list[int] = []
    log = LocalLog(path)
    log.open()
    follower = LogFollower("rs_1", log, LogHub(), on_lines=lambda lines: batches.append(len(lines)))
    count = 5_000
    added = await follower.follow(frames_of([frame(BASE + i, f"line {i}") for i in range(count)]))
    assert added == count
    assert max(batches) <= MAX_BATCH_LINES
    assert read_log_lines(path) == [f"line {i}" for i in range(count)]


async def test_slow_stream_flushes_within_the_batch_interval(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    log = LocalLog(path)
    log.open()
    hub = LogHub()
    gate = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield frame(BASE + 1, "early")
        await gate.wait()

    wake = hub.waiter("rs_1")  # taken first: the notify cannot slip past
    task = asyncio.create_task(LogFollower("rs_1", log, hub).follow(slow()))
    await asyncio.wait_for(wake.wait(), 5.0)
    assert read_log_lines(path) == ["early"]
    gate.set()
    await task


# readers ------------------------------------------------------------------------------


async def test_tail_reads_last_lines_and_numbers_them(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    path.write_text("".join(f"l{i}\n" for i in range(500)) + "partial", encoding="utf-8")
    batches = [b async for b in tail_log("rs_1", path)]
    assert [len(b.lines) for b in batches] == [200, 200, 100]
    assert batches[1].first_line == 200
    tailed = [b async for b in tail_log("rs_1", path, tail=3)]
    assert tailed[0].lines == ("l497", "l498", "l499") and tailed[0].first_line == 497
    assert [b async for b in tail_log("rs_1", tmp_path / "missing.log")] == []


async def test_follow_reader_sees_lines_from_a_writer_until_done(tmp_path: Path) -> None:
    path = tmp_path / "rs_1" / "run.log"
    hub = LogHub()
    finished = asyncio.Event()

    async def is_done() -> bool:
        return finished.is_set()

    async def read() -> list[str]:
        got: list[str] = []
        async for batch in tail_log("rs_1", path, follow=True, is_done=is_done, hub=hub,
                                    poll_seconds=5.0):  # fmt: skip
            got.extend(batch.lines)
        return got

    reader = asyncio.create_task(read())
    await asyncio.sleep(0)
    await follow(path, [frame(BASE + i, f"x{i}") for i in range(10)], hub=hub)
    finished.set()
    hub.notify("rs_1")
    assert await asyncio.wait_for(reader, 5.0) == [f"x{i}" for i in range(10)]
