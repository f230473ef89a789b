"""Low-level SFTP reads and writes with several requests in flight.

Callers in :mod:`cosmos_tui.remote.sftp` wrap these in their exception translator.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import posixpath
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import asyncssh

from cosmos_tui.private_files import open_private

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
"""Called with (bytes done, bytes in total) as a transfer moves."""

CHUNK_BYTES = 8 * 1024 * 1024
WRITES_IN_FLIGHT = 2
WRITES_PER_CHANNEL = 2
"""Chunks queued on each channel of a multi-channel upload: the next one is there when
the last one's window empties (docs/remote.md, "Over a real network")."""
READS_IN_FLIGHT = 6


async def stat_or_none(sftp: asyncssh.SFTPClient, path: str) -> asyncssh.SFTPAttrs | None:
    """Return the attributes of a remote path, None when it does not exist."""
    try:
        return await sftp.stat(path)
    except asyncssh.SFTPNoSuchFile:
        return None


async def ensure_dir(sftp: asyncssh.SFTPClient, path: str) -> None:
    """Create the remote directory ``path`` and its missing parents.

    One round trip when it exists, two when only it is missing. asyncssh's own
    ``makedirs`` tries a mkdir and then a stat for every component of the path: 8-10
    round trips for a typical ``~/.cosmos-tui/inputs``, seconds on a distant host.

    Raises:
        asyncssh.SFTPError: A component is not a directory, or the host refuses.
    """
    attrs = await stat_or_none(sftp, path)
    if attrs is not None:
        if attrs.type != asyncssh.FILEXFER_TYPE_DIRECTORY:
            raise asyncssh.SFTPFailure(f"{path} is not a directory")
        return
    try:
        await sftp.mkdir(path)
    except asyncssh.SFTPNoSuchFile:
        parent = posixpath.dirname(path.rstrip("/"))
        if not parent or parent == path:
            raise
        await ensure_dir(sftp, parent)
        await ensure_dir(sftp, path)
    except (asyncssh.SFTPFailure, asyncssh.SFTPFileAlreadyExists):
        # Made by someone else since the stat (OpenSSH reports EEXIST as a failure).
        attrs = await stat_or_none(sftp, path)
        if attrs is None or attrs.type != asyncssh.FILEXFER_TYPE_DIRECTORY:
            raise


def marker_path(part: str) -> str:
    """Where an upload over several channels records how much of ``part`` is contiguous.

    It ends in ``.part`` too, so nothing takes it for a finished input.
    """
    return part.removesuffix(".part") + ".acked.part"


async def resume_offset(sftp: asyncssh.SFTPClient, part: str, size: int) -> int:
    """Where an upload into ``part`` (for a file of ``size`` bytes) can resume.

    A ``.part`` written over one channel is contiguous: its size. One written over
    several may have holes below its end (chunks land out of order), so its marker
    (see :class:`AckMarker`) bounds it: the bytes before the marker's offset were all
    acknowledged.
    """
    partial = await stat_or_none(sftp, part)
    if partial is None or partial.size is None or partial.size > size:
        return 0
    try:
        async with sftp.open(marker_path(part), "rb") as handle:
            # asyncssh types read() as a bare AnyStr; a file opened "rb" reads bytes.
            marker = cast(bytes, await handle.read(32))
            text = marker.decode("ascii", "replace").strip()
    except asyncssh.SFTPNoSuchFile:
        return int(partial.size)
    # The resume truncates the .part to this offset (send_file), so past it the file is
    # contiguous again; a new marker is written if the resume uses several channels. A
    # .part left with holes and no marker (a cut in between) fails the host's hash check
    # and is discarded: never a silently corrupted input.
    with contextlib.suppress(asyncssh.SFTPNoSuchFile):
        await sftp.remove(marker_path(part))
    return min(int(partial.size), int(text)) if text.isdigit() else 0


class AckMarker:
    """Keeps the host's marker of an upload's acknowledged prefix up to date.

    ``start`` creates it before any chunk can land out of order; ``note(done)`` (a
    callback of :func:`send_file`) schedules an update; ``remove`` deletes it once every
    byte is acknowledged (the ``.part`` is contiguous then). The marker stays open for
    the whole upload and each update rewrites its fixed-width text in place with one
    request (one round trip). An empty marker (created, not yet written) reads as
    offset 0: a resume then starts over, never trusting bytes it cannot vouch for.
    """

    WIDTH = 20

    def __init__(self, sftp: asyncssh.SFTPClient, part: str) -> None:
        """Describe the marker of ``part``; nothing is written before ``start``."""
        self._sftp = sftp
        self._path = marker_path(part)
        self._handle: asyncssh.SFTPClientFile | None = None
        self._latest = 0
        self._written = -1
        self._writer: asyncio.Task[None] | None = None

    async def _write(self, done: int) -> None:
        assert self._handle is not None
        await self._handle.write(f"{done:0{self.WIDTH}d}\n".encode("ascii"), 0)
        self._written = done

    async def start(self, offset: int) -> None:
        """Create the marker (one round trip) and record ``offset`` soon after.

        ``offset`` is what the host holds contiguously now. It is written in the
        background: until it lands the empty marker means 0, which is safe.
        """
        self._handle = await self._sftp.open(self._path, "wb")
        self.note(offset)

    def note(self, done: int) -> None:
        """Every byte before ``done`` was acknowledged: record it soon."""
        self._latest = done
        if self._handle is not None and (self._writer is None or self._writer.done()):
            self._writer = asyncio.ensure_future(self._catch_up())
            self._writer.add_done_callback(_log_marker_failure)

    async def _catch_up(self) -> None:
        while self._written < self._latest:
            await self._write(self._latest)

    def abandon(self) -> None:
        """Stop updating (the transfer failed): the host keeps an offset that is safe."""
        if self._writer is not None:
            self._writer.cancel()
            self._writer.add_done_callback(lambda task: task.cancelled() or task.exception())

    async def remove(self) -> None:
        """Delete the marker and close it, side by side (every byte was acknowledged).

        An update still on its way goes to the deleted file: it is not waited for.
        """
        self.abandon()
        removing = self._sftp.remove(self._path)
        if self._handle is None:
            with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                await removing
            return
        closed, removed = await asyncio.gather(
            self._handle.close(), removing, return_exceptions=True
        )
        for outcome in (closed, removed):
            if isinstance(outcome, BaseException) and not isinstance(
                outcome, asyncssh.SFTPNoSuchFile
            ):
                raise outcome


def _log_marker_failure(task: asyncio.Task[None]) -> None:
    """A marker update that failed: the marker keeps an older, still safe, offset."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        logger.debug("resume marker not updated: %s", exc)


def _read_chunk(source: BinaryIO, hasher: hashlib._Hash | None) -> bytes:
    chunk = source.read(CHUNK_BYTES)
    if hasher is not None:
        hasher.update(chunk)
    return chunk


class LateSessions:
    """SFTP sessions that join transfers while they move (the bulk connection's).

    The opener :meth:`add` s each one the moment it opens; a transfer's
    :class:`Handles` opens its file on it at once and wakes the transfer's loop, so the
    new window is used before the next acknowledgement comes back.
    """

    def __init__(self) -> None:
        """No sessions yet."""
        self.sessions: list[asyncssh.SFTPClient] = []
        self.changed = asyncio.Event()

    def add(self, session: asyncssh.SFTPClient) -> None:
        """One more session for the transfer."""
        self.sessions.append(session)
        self.changed.set()


class Handles:
    """One remote file open on a set of SFTP sessions that may grow while it moves.

    Sessions added to ``late`` (the bulk connection's channels, which take a handshake
    to come) open the file in the background and join the rotation once they have;
    :meth:`grown` says when one did. Every handle that opened is closed by
    :meth:`close`.
    """

    def __init__(
        self,
        handles: list[asyncssh.SFTPClientFile],
        late: LateSessions | None,
        path: str,
        flags: int,
    ) -> None:
        """Rotate over ``handles``, adopting sessions added to ``late``."""
        self.handles = handles
        self._late = late if late is not None else LateSessions()
        self._path = path
        self._flags = flags
        self._adopted = 0
        self._opening: set[asyncio.Task[None]] = set()

    def pick(self, index: int) -> asyncssh.SFTPClientFile:
        """The handle for chunk ``index`` (round robin over those open now)."""
        self._adopt_new()
        return self.handles[index % len(self.handles)]

    def _adopt_new(self) -> None:
        while self._adopted < len(self._late.sessions):
            session = self._late.sessions[self._adopted]
            self._adopted += 1
            task = asyncio.ensure_future(self._adopt(session))
            self._opening.add(task)
            task.add_done_callback(self._opening.discard)

    async def _adopt(self, session: asyncssh.SFTPClient) -> None:
        try:
            handle = await session.open(self._path, self._flags, encoding=None)
        except (asyncssh.Error, OSError) as exc:
            logger.debug("a late session could not open %s: %s", self._path, exc)
            return
        self.handles.append(handle)
        self._late.changed.set()

    async def grown(self, open_now: int) -> None:
        """Return once more than ``open_now`` handles are open (never, if none comes).

        A transfer waiting for its oldest request races this against it, so that a
        window that just opened is filled at once.
        """
        while True:
            self._late.changed.clear()
            self._adopt_new()
            if len(self.handles) > open_now:
                return
            await self._late.changed.wait()

    def more_in_flight(self, per_handle: int, least: int) -> int:
        """How many requests may be outstanding with the handles open now."""
        return max(least, per_handle * len(self.handles))

    async def close(self, check: bool = False) -> None:
        """Stop adopting and close every handle at once (``check``: raise a failed close)."""
        for task in list(self._opening):
            task.cancel()
        await asyncio.gather(*self._opening, return_exceptions=True)
        await _close_all(self.handles, check)


async def send_file(
    sftp: asyncssh.SFTPClient | Sequence[asyncssh.SFTPClient],
    local_path: Path,
    part: str,
    offset: int,
    size: int,
    progress: ProgressCallback | None,
    hasher: hashlib._Hash | None = None,
    on_written: Callable[[int], None] | None = None,
    alongside: Awaitable[None] | None = None,
    late: LateSessions | None = None,
) -> None:
    """Write the file from ``offset`` into ``part``, chunks spread over the given sessions.

    With several SFTP sessions (channels), chunk ``i`` goes over session ``i % n``: each
    channel has its own flow-control window (OpenSSH's sshd grants 2 MiB, which caps one
    channel at 2 MiB per round trip: 14 MB/s at 150 ms), so n channels carry n windows.
    At least WRITES_IN_FLIGHT chunks, and WRITES_PER_CHANNEL per session, are outstanding
    (up to 2 x 12 x 8 MiB of the file in memory with the second connection's channels).

    Every session opens ``part`` at once, and the handles close at once at the end: one
    round trip each, not one per session (docs/remote.md, "Fewer round trips, a second
    connection"). ``alongside`` (the caller's own set-up, such as the resume marker) is
    awaited together with the opens, before any byte is written. Sessions added to
    ``late`` while the file moves join in (see :class:`Handles`).

    ``hasher`` (if given) is fed every byte read, in order, in the reading thread: one
    read of the file both sends and hashes it. ``on_written(done)`` is told each time the
    host has acknowledged every byte before ``done`` (with ``done == size`` before the
    handles close, so that a caller can start its checks then).
    """
    sessions = [sftp] if isinstance(sftp, asyncssh.SFTPClient) else list(sftp)

    async def open_first() -> asyncssh.SFTPClientFile:
        if not offset:
            return await sessions[0].open(part, "wb")
        handle = await sessions[0].open(part, "r+b")
        try:
            await handle.truncate(offset)
        except BaseException:
            await _close_all([handle])
            raise
        return handle

    # The others may open before the first one has created the file: they create it
    # too, never truncate it (nothing is written before every open has answered).
    shared_flags = asyncssh.FXF_WRITE | (asyncssh.FXF_CREAT if not offset else asyncssh.FXF_READ)
    handles = await _open_all(
        [
            open_first(),
            *(session.open(part, shared_flags, encoding=None) for session in sessions[1:]),
        ],
        alongside,
    )
    remotes = Handles(handles, late, part, asyncssh.FXF_WRITE)
    try:
        await _send_chunks(remotes, local_path, offset, size, progress, hasher, on_written)
    except BaseException:
        await remotes.close()
        raise
    await remotes.close(check=True)


async def _open_all(
    opens: list[Awaitable[asyncssh.SFTPClientFile]], alongside: Awaitable[None] | None = None
) -> list[asyncssh.SFTPClientFile]:
    """Await every open (and ``alongside``) at once; on any failure close those that opened.

    Raises:
        The first failure, once every handle that did open is closed.
    """
    opened = await asyncio.gather(
        *opens, *([alongside] if alongside is not None else []), return_exceptions=True
    )
    handles = [h for h in opened[: len(opens)] if isinstance(h, asyncssh.SFTPClientFile)]
    failures = [o for o in opened if isinstance(o, BaseException)]
    if failures:
        await _close_all(handles)
        raise failures[0]
    return handles


async def _close_all(handles: Sequence[asyncssh.SFTPClientFile], check: bool = False) -> None:
    """Close every handle at once; with ``check``, raise the first close that failed."""
    closed = await asyncio.gather(*(h.close() for h in handles), return_exceptions=True)
    for outcome in closed:
        if isinstance(outcome, BaseException) and (
            check or not isinstance(outcome, (asyncssh.Error, OSError))
        ):
            raise outcome


async def _send_chunks(
    remotes: Handles,
    local_path: Path,
    offset: int,
    size: int,
    progress: ProgressCallback | None,
    hasher: hashlib._Hash | None,
    on_written: Callable[[int], None] | None,
) -> None:
    """Write the file's chunks (from ``offset``) in order, round robin over ``remotes``."""
    with local_path.open("rb") as source:
        source.seek(offset)
        done = offset
        if progress:
            progress(done, size)
        in_flight: deque[tuple[asyncio.Future[int], int]] = deque()
        position = offset
        sent = 0
        try:
            while True:
                chunk = await asyncio.to_thread(_read_chunk, source, hasher)
                if chunk:
                    remote = remotes.pick(sent)
                    write: asyncio.Future[int] = asyncio.ensure_future(
                        remote.write(chunk, position)
                    )
                    sent += 1
                    position += len(chunk)
                    in_flight.append((write, position))
                open_now = len(remotes.handles)
                most = remotes.more_in_flight(WRITES_PER_CHANNEL, WRITES_IN_FLIGHT)
                if in_flight and (len(in_flight) >= most or not chunk):
                    oldest = in_flight[0][0]
                    if chunk and not await _first_or_grown(oldest, remotes, open_now):
                        continue  # a handle joined: more may be in flight now
                    write, done = in_flight.popleft()
                    await write
                    if progress:
                        progress(done, size)
                    if on_written:
                        on_written(done)
                if not chunk and not in_flight:
                    break
        finally:
            for write, _ in in_flight:
                write.cancel()


async def _first_or_grown(first: asyncio.Future[Any], remotes: Handles, open_now: int) -> bool:
    """Wait for ``first`` or for more than ``open_now`` handles; True when ``first`` is done.

    ``open_now`` is the count the caller's limit on requests in flight was taken with.
    """
    if first.done():
        return True
    growing = asyncio.ensure_future(remotes.grown(open_now))
    try:
        await asyncio.wait({first, growing}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        growing.cancel()
    return first.done()


def _write_chunk(target: IO[bytes], chunk: bytes, hasher: hashlib._Hash | None) -> None:
    target.write(chunk)
    if hasher is not None:
        hasher.update(chunk)


async def receive_file(
    sftp: asyncssh.SFTPClient | Sequence[asyncssh.SFTPClient],
    remote_path: str,
    part: Path,
    offset: int,
    size: int,
    progress: ProgressCallback | None,
    hasher: hashlib._Hash | None = None,
    late: LateSessions | None = None,
) -> None:
    """Read the remote file from ``offset`` into ``part`` (appending), reporting progress.

    With several SFTP sessions (channels), chunk ``i`` is read over session ``i % n``:
    each channel has its own window and its own SFTP server process on the host, so n
    of them carry more at once on a long, fast path (docs/remote.md). Chunks are asked
    for READS_IN_FLIGHT ahead (at least two per session) and written strictly in order,
    so ``part`` is always a contiguous prefix and a resume can trust its size. Sessions
    added to ``late`` while the file moves join in (see :class:`Handles`).

    ``hasher`` (if given) is fed every byte written, in order.
    """
    sessions = [sftp] if isinstance(sftp, asyncssh.SFTPClient) else list(sftp)
    handles = await _open_all([session.open(remote_path, "rb") for session in sessions])
    remotes = Handles(handles, late, remote_path, asyncssh.FXF_READ)
    try:
        with open_private(part, "ab" if offset else "wb") as target:
            done = offset
            if progress:
                progress(done, size)
            reads: deque[tuple[asyncio.Future[bytes], int]] = deque()
            position = offset
            asked = 0
            try:
                while done < size:
                    open_now = len(remotes.handles)
                    while position < size and len(reads) < remotes.more_in_flight(
                        2, READS_IN_FLIGHT
                    ):
                        length = min(CHUNK_BYTES, size - position)
                        remote = remotes.pick(asked)
                        reads.append((asyncio.ensure_future(remote.read(length, position)), length))
                        asked += 1
                        position += length
                    oldest = reads[0][0]
                    if position < size and not await _first_or_grown(oldest, remotes, open_now):
                        continue  # a handle joined: more may be asked for now
                    read, wanted = reads.popleft()
                    chunk = await read
                    await asyncio.to_thread(_write_chunk, target, chunk, hasher)
                    done += len(chunk)
                    if progress:
                        progress(done, size)
                    if len(chunk) != wanted:
                        break  # the remote file shrank: the caller's size check reports it
            finally:
                for read, _ in reads:
                    read.cancel()
    except BaseException:
        await remotes.close()
        raise
    await remotes.close(check=True)
