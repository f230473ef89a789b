r"""Container logs: cleaning, resumable following, the local log file and its readers.

The pipeline of one run's log::

    docker frames (timestamped)  ->  DockerLogDecoder  ->  LogCursor (drop duplicates)
        ->  clean lines (ANSI stripped, ``\\r`` redraws split, bad UTF-8 replaced)
        ->  LocalLog (append to ``run.log``, then persist the cursor)  ->  LogHub.notify
        ->  tail_log() readers in this or any other process (batches of <= 200 lines)

Crash safety: ``run.log`` is appended first and ``run.log.cursor`` (the last Docker
timestamp written, how many lines carried it, and the file size) is replaced atomically
afterwards (at most every 0.5 s, and whenever a stream ends). On reopen the file is cut
back to the size the cursor records, and following resumes from the cursor's timestamp,
dropping lines already written. The local file therefore equals the container's log line
for line, whatever was interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from cosmos_tui.domain import LogBatch
from cosmos_tui.private_files import open_private, private_dir
from cosmos_tui.safe_text import scrub

MAX_BATCH_LINES = 200
MAX_BATCH_SECONDS = 0.05
CURSOR_SUFFIX = ".cursor"

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NEEDS_CLEANING = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
CURSOR_SAVE_SECONDS = 0.5
DONE_CHECK_SECONDS = 0.5
_TIMESTAMP = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d) ")


def strip_ansi(text: str) -> str:
    """Remove ANSI escape sequences and stray control characters (tabs survive)."""
    return _CONTROL.sub("", _ANSI.sub("", text))


# The end of a tqdm bar (``| 3/8 [00:02<00:03,  1.28it/s]``) with more text glued on:
# tqdm redraws without a newline, so the next log line (a loguru marker, a ``[rank0]:``
# traceback, the shell's ``Killed``) starts on the bar's line.
_GLUED_BAR = re.compile(r"(\|\s*\d+/\d+\s*\[[^\]\n]*\])(?=\S)")


def unglue(text: str) -> list[str]:
    """Split text glued after a tqdm bar into the bar and what follows it."""
    if "%|" not in text:
        return [text]
    return _GLUED_BAR.sub("\\1\n", text).split("\n")


def split_display_lines(text: str) -> list[str]:
    r"""Split one logical line into the lines a reader should see.

    ``\\r`` redraws (tqdm bars) become separate lines, and so does text glued after a
    bar; the empty pieces that redraws leave are dropped, but an empty line stays one
    empty line.
    """
    pieces = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cleaned = [part for p in pieces for part in unglue(strip_ansi(p))]
    kept = [p for p in cleaned if p != ""]
    return kept if kept else [""]


def clean_lines(raw: bytes | str) -> list[str]:
    """Decode (invalid UTF-8 replaced) and split raw output into clean display lines."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    if text.endswith("\n"):
        text = text[:-1]
    if _NEEDS_CLEANING.search(text) is None and "%|" not in text:
        return [text]  # the common case: nothing to strip or split
    return split_display_lines(text)


def parse_timestamp_ns(stamp: bytes | str) -> int:
    """Parse a Docker RFC 3339 timestamp (nanoseconds, trailing zeros trimmed) to ns.

    Raises:
        ValueError: When ``stamp`` is not such a timestamp.

    """
    data = stamp.encode("ascii") if isinstance(stamp, str) else stamp
    match = _TIMESTAMP.match(data + b" ")
    if match is None:
        raise ValueError(f"not a Docker timestamp: {stamp!r}")
    return _stamp_ns(match)


_FRACTION_SCALE = tuple(10 ** (9 - digits) for digits in range(10))


def _stamp_ns(match: re.Match[bytes]) -> int:
    seconds, fraction, zone = match.groups()
    base = _epoch_seconds(seconds, zone) * 1_000_000_000
    return base + int(fraction) * _FRACTION_SCALE[len(fraction)] if fraction else base


@functools.lru_cache(maxsize=64)
def _epoch_seconds(seconds: bytes, zone: bytes) -> int:
    offset = "+00:00" if zone == b"Z" else zone.decode("ascii")
    return int(datetime.fromisoformat(seconds.decode("ascii") + offset).timestamp())


def since_param(ts_ns: int) -> str:
    """Return the Docker API ``since`` value (``seconds.nanoseconds``) for ``ts_ns``."""
    return f"{ts_ns // 1_000_000_000}.{ts_ns % 1_000_000_000:09d}"


@dataclass(frozen=True)
class RawLine:
    """One logical line of container output.

    Attributes:
        ts_ns: Docker's timestamp in nanoseconds since the epoch; None when absent.
        data: The line's bytes without timestamp or trailing newline.

    """

    ts_ns: int | None
    data: bytes


class DockerLogDecoder:
    r"""Turns Docker log frames (``timestamps=1``) into timestamped raw lines.

    A frame is one Docker log message: ``<RFC3339Nano> <text>\\n``. Docker splits lines
    longer than 16 KiB into partial messages without the newline; each continuation
    carries its own timestamp, which is dropped so the line is rebuilt whole. Frames
    that are not exactly one message (a transport that chunks) are also handled, since
    lines are cut at newlines.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._ts: int | None = None

    def feed(self, frame: bytes | str) -> list[RawLine]:
        """Add one frame and return the lines it completes."""
        data = frame.encode("utf-8", errors="surrogateescape") if isinstance(frame, str) else frame
        if not self._buffer and data.endswith(b"\n") and data.count(b"\n") == 1:
            match = _TIMESTAMP.match(data)  # the common case: one whole message
            if match is None:
                return [RawLine(None, data[:-1])]
            return [RawLine(_stamp_ns(match), data[match.end() : -1])]
        if not self._buffer:
            data = self._take_stamp(data, first=True)
        else:
            data = self._take_stamp(data, first=False)
        self._buffer += data
        lines: list[RawLine] = []
        while True:
            cut = self._buffer.find(b"\n")
            if cut < 0:
                break
            lines.append(RawLine(self._ts, self._buffer[:cut]))
            rest = self._buffer[cut + 1 :]
            self._buffer = b""
            self._ts = None
            if rest:
                self._buffer = self._take_stamp(rest, first=True)
        return lines

    def flush(self) -> list[RawLine]:
        """Return the last line when the stream ended without a newline."""
        if not self._buffer and self._ts is None:
            return []
        line = RawLine(self._ts, self._buffer)
        self._buffer, self._ts = b"", None
        return [line]

    def _take_stamp(self, data: bytes, first: bool) -> bytes:
        match = _TIMESTAMP.match(data)
        if match is None:
            return data
        if first or self._ts is None:
            self._ts = _stamp_ns(match)
        return data[match.end() :]


@dataclass
class LogCursor:
    """How far a run's log has been written: the resume point of a follow.

    Attributes:
        since_ns: Timestamp of the last line written (None before the first line).
        at_since: How many lines written so far carry exactly ``since_ns``.
        size: Bytes of ``run.log`` that these lines occupy.
        lines: Display lines in ``run.log``.
        stamped: Timestamped raw lines written since the attempt's log began: the resume
            point in a log that is read again from its start (a Ray job log), where
            stamps need not rise (the entrypoint's lines come from another clock). None
            in a cursor saved before it was counted: resume by time then.

    """

    since_ns: int | None = None
    at_since: int = 0
    size: int = 0
    lines: int = 0
    stamped: int | None = 0

    def dedupe(self) -> Deduper:
        """Return a filter for a stream that resumes from this cursor."""
        return Deduper(self.since_ns, self.at_since)

    def skip_written(self) -> Deduper:
        """Return a filter for a stream that starts again at the attempt's first line."""
        if self.stamped is None:
            return self.dedupe()
        return Deduper(None, 0, skip_first=self.stamped)

    def new_attempt(self) -> None:
        """Forget the resume point: the next lines come from a new attempt's log."""
        self.since_ns, self.at_since, self.stamped = None, 0, 0

    def advance(self, ts_ns: int | None) -> None:
        """Record that one more raw line with ``ts_ns`` was written."""
        if ts_ns is None:
            return
        if self.stamped is not None:
            self.stamped += 1
        if ts_ns == self.since_ns:
            self.at_since += 1
        else:
            self.since_ns, self.at_since = ts_ns, 1

    def to_json(self) -> str:
        """Serialise for the cursor file."""
        return json.dumps(
            {
                "since_ns": self.since_ns,
                "at_since": self.at_since,
                "size": self.size,
                "lines": self.lines,
                "stamped": self.stamped,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> LogCursor:
        """Read a cursor file's text; unreadable content means the start of the log."""
        try:
            data = json.loads(text)
            return cls(
                since_ns=data.get("since_ns"),
                at_since=int(data.get("at_since", 0)),
                size=int(data.get("size", 0)),
                lines=int(data.get("lines", 0)),
                stamped=int(data["stamped"]) if data.get("stamped") is not None else None,
            )
        except (ValueError, TypeError, AttributeError):
            return cls()


class Deduper:
    """Drops lines that a resumed stream repeats.

    Docker's ``since`` is inclusive: lines stamped before the cursor, and the ones at
    its stamp already written, are dropped. A stream read again from its start drops
    its first ``skip_first`` stamped lines instead (by position, not time).
    """

    def __init__(self, since_ns: int | None, at_since: int, skip_first: int = 0) -> None:
        self._since = since_ns
        self._skip = at_since
        self._first = skip_first

    def accept(self, ts_ns: int | None) -> bool:
        """Return True when a line stamped ``ts_ns`` is new."""
        if self._first > 0 and ts_ns is not None:
            self._first -= 1
            return False
        if self._since is None or ts_ns is None:
            return True
        if ts_ns < self._since:
            return False
        if ts_ns == self._since and self._skip > 0:
            self._skip -= 1
            return False
        self._since = None
        return True


class LogHub:
    """Wakes in-process readers of a run's log as soon as new lines are written.

    Readers in other processes poll the file instead; both read the same file.
    """

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def notify(self, run_id: str) -> None:
        """Tell waiting readers of ``run_id`` that the log grew or the run ended."""
        event = self._events.pop(run_id, None)
        if event is not None:
            event.set()

    def waiter(self, run_id: str) -> asyncio.Event:
        """Return the event the next :meth:`notify` of ``run_id`` sets.

        Take it *before* looking at the file, then wait on it: a notify that happens in
        between is not lost.
        """
        return self._events.setdefault(run_id, asyncio.Event())

    async def wait(self, run_id: str, timeout: float) -> None:
        """Wait until :meth:`notify` for ``run_id`` or ``timeout`` seconds pass."""
        await wait_event(self.waiter(run_id), timeout)


async def wait_event(event: asyncio.Event, timeout: float) -> None:
    """Wait until ``event`` is set or ``timeout`` seconds pass."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        return


class LocalLog:
    """The append-only local copy of a run's log and its resume cursor.

    Args:
        path: The ``run.log`` file; its folder is created when missing.
        secrets: Values masked in every line before it is kept or handed on (the
            container's tokens: :func:`cosmos_tui.engine.launch.log_secrets`).

    """

    def __init__(self, path: Path, secrets: Iterable[str] = ()) -> None:
        self.path = path
        self.secrets = tuple(secrets)
        self.cursor_path = path.with_name(path.name + CURSOR_SUFFIX)
        self.cursor = LogCursor()
        self._handle: IO[bytes] | None = None
        self._saved_at = 0.0

    def open(self) -> LogCursor:
        """Load the cursor and cut off anything written after it (an interrupted write)."""
        private_dir(self.path.parent)
        if self.cursor_path.exists():
            self.cursor = LogCursor.from_json(self.cursor_path.read_text(encoding="utf-8"))
        else:
            self.cursor = LogCursor()
        self.close()
        with open_private(self.path, "ab") as handle:
            if handle.tell() != self.cursor.size:
                handle.truncate(self.cursor.size)
        return self.cursor

    def close(self) -> None:
        """Save the cursor and close the file (appending reopens it)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
            self._save_cursor()

    def append(self, raw_lines: Iterable[RawLine], deduper: Deduper) -> list[str]:
        """Clean, de-duplicate and append lines; persist the cursor; return what was added."""
        added: list[str] = []
        for raw in raw_lines:
            if not deduper.accept(raw.ts_ns):
                continue
            lines = clean_lines(raw.data)
            if self.secrets:
                lines = [scrub(line, self.secrets) for line in lines]
            added.extend(lines)
            self.cursor.advance(raw.ts_ns)
        if not added:
            return added
        payload = ("\n".join(added) + "\n").encode("utf-8", errors="replace")
        if self._handle is None:
            self._handle = open_private(self.path, "ab", buffering=0)
        self._handle.write(payload)
        self.cursor.size += len(payload)
        self.cursor.lines += len(added)
        now = time.monotonic()
        if now - self._saved_at >= CURSOR_SAVE_SECONDS:
            self._save_cursor()
        return added

    def flush_cursor(self) -> None:
        """Persist the cursor now (a stream ended)."""
        self._save_cursor()

    def _save_cursor(self) -> None:
        self._saved_at = time.monotonic()
        temporary = self.cursor_path.with_name(self.cursor_path.name + ".tmp")
        with open_private(temporary, "w", encoding="utf-8") as stream:
            stream.write(self.cursor.to_json())
        os.replace(temporary, self.cursor_path)


LinesCallback = Callable[[list[str]], None]


class LogFollower:
    """Writes one stream of Docker log frames into a :class:`LocalLog`, in batches.

    Lines are flushed to the file at once when ``MAX_BATCH_LINES`` are pending or the
    last flush is ``MAX_BATCH_SECONDS`` old, else when it gets that old: never more than
    one small flush per 50 ms, and no line waits longer. After each flush the hub is
    notified and ``on_lines`` sees the new lines (the progress parser).

    Args:
        run_id: The run whose log this is.
        local_log: The opened local log.
        hub: Wakes readers.
        on_lines: Called with each flushed batch of clean lines.
        from_start: The stream starts at the attempt's first line each time (a Ray job
            log), not at the cursor's time: resume by position.

    """

    def __init__(
        self,
        run_id: str,
        local_log: LocalLog,
        hub: LogHub,
        on_lines: LinesCallback | None = None,
        from_start: bool = False,
    ) -> None:
        self.run_id = run_id
        self.local_log = local_log
        self.hub = hub
        self.on_lines = on_lines
        self.from_start = from_start
        self._pending: list[RawLine] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushed_at = 0.0

    async def follow(self, frames: AsyncIterator[bytes | str | list[bytes]]) -> int:
        """Consume ``frames`` (a stream that started at the cursor) until it ends.

        Items are Docker log messages, or lists of them.

        Returns:
            The number of display lines added by this stream.

        """
        decoder = DockerLogDecoder()
        cursor = self.local_log.cursor
        deduper = cursor.skip_written() if self.from_start else cursor.dedupe()
        before = self.local_log.cursor.lines
        loop = asyncio.get_running_loop()
        try:
            async for item in frames:
                for frame in item if isinstance(item, list) else (item,):
                    self._pending.extend(decoder.feed(frame))
                if not self._pending:
                    continue
                waited = loop.time() - self._flushed_at
                if len(self._pending) >= MAX_BATCH_LINES or waited >= MAX_BATCH_SECONDS:
                    self._flush(deduper)
                elif self._timer is None:
                    delay = MAX_BATCH_SECONDS - waited
                    self._timer = loop.call_later(delay, self._flush, deduper)
        finally:
            self._pending.extend(decoder.flush())
            self._flush(deduper)
            self.local_log.flush_cursor()
        return self.local_log.cursor.lines - before

    def _flush(self, deduper: Deduper) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        with contextlib.suppress(RuntimeError):  # no running loop: called from finally
            self._flushed_at = asyncio.get_running_loop().time()
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        added = self.local_log.append(pending, deduper)
        if added:
            self.hub.notify(self.run_id)
            if self.on_lines is not None:
                self.on_lines(added)


DoneCheck = Callable[[], Awaitable[bool]]


async def tail_log(
    run_id: str,
    path: Path,
    *,
    tail: int | None = None,
    follow: bool = False,
    is_done: DoneCheck | None = None,
    hub: LogHub | None = None,
    poll_seconds: float = 0.1,
) -> AsyncIterator[LogBatch]:
    """Read a run's local log as batches, optionally following it as it grows.

    Args:
        run_id: The run (put into each batch).
        path: Its ``run.log``.
        tail: Start with only the last ``tail`` lines; None reads from the start.
        follow: Keep reading until ``is_done`` says the run has ended.
        is_done: Returns True once no more lines will come.
        hub: Wakes this reader at once when the writer is in this process.
        poll_seconds: How often to look at the file when nothing wakes the reader.

    """
    offset, line_no = 0, 0
    idle, ended = True, False
    checked_at = -DONE_CHECK_SECONDS
    if tail is not None and path.exists():
        offset, line_no = await asyncio.to_thread(_tail_start, path, tail)
    while True:
        wake = hub.waiter(run_id) if hub is not None else None
        # Ask whether the run ended only once the file has nothing new (no query per
        # batch), at most every DONE_CHECK_SECONDS, and before the read that follows,
        # so no last line is missed.
        if follow and not ended and idle and is_done is not None:
            now = time.monotonic()
            if now - checked_at >= DONE_CHECK_SECONDS:
                checked_at = now
                ended = await is_done()
        # A local read of at most a few MiB: cheaper inline than a thread hop.
        chunk, offset = _read_complete_lines(path, offset)
        if chunk:
            idle = False
            lines = chunk.decode("utf-8", errors="replace").split("\n")[:-1]
            for start in range(0, len(lines), MAX_BATCH_LINES):
                part = tuple(lines[start : start + MAX_BATCH_LINES])
                yield LogBatch(run_id=run_id, lines=part, first_line=line_no)
                line_no += len(part)
            continue
        if ended or not follow:
            return
        if not idle:
            idle = True
            continue
        if wake is not None:
            await wait_event(wake, poll_seconds)
            if wake.is_set():  # the writer spoke (new lines, or the run ended): look now
                checked_at = -DONE_CHECK_SECONDS
        else:
            await asyncio.sleep(poll_seconds)


_READ_LIMIT = 4 * 1024 * 1024


def _read_complete_lines(path: Path, offset: int) -> tuple[bytes, int]:
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size < offset:
                offset = 0
            handle.seek(offset)
            data = handle.read(_READ_LIMIT)
    except FileNotFoundError:
        return b"", offset
    cut = data.rfind(b"\n")
    if cut < 0:
        return b"", offset
    return data[: cut + 1], offset + cut + 1


def _tail_start(path: Path, tail: int) -> tuple[int, int]:
    data = path.read_bytes()
    total = data.count(b"\n")
    skip = max(0, total - tail)
    offset = 0
    for _ in range(skip):
        offset = data.index(b"\n", offset) + 1
    return offset, skip


def read_log_lines(path: Path) -> list[str]:
    """Return every line of a local log (empty when there is none yet)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    text = data.decode("utf-8", errors="replace")
    if not text:
        return []
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
