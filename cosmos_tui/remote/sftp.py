"""File transfers over SFTP on a host's managed SSH connection.

Uploads of run inputs are content-addressed: ``<tool dir>/inputs/<sha256>.<ext>``. A file
is written under a ``.part`` name, its sha256 is computed on the host (``sha256sum``) and
only a verified file is renamed to its final name; so a final name that exists holds the
content its name says, and re-uploading it is skipped. An interrupted upload or download
continues from the bytes already written. Downloads refuse names with ``/``, ``..`` or
absolute paths, verify the size (and, on request, the hash) and only then replace the local
file. Every asyncssh SFTP exception is translated in :func:`_translate`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import os
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, cast

import asyncssh

from cosmos_tui.containment import contained_path, name_problem, shown
from cosmos_tui.errors import (
    CosmosError,
    InputChanged,
    TransferCorrupted,
    TransferFailed,
    ValidationError,
)
from cosmos_tui.private_files import private_dir
from cosmos_tui.remote.channels import open_sftp
from cosmos_tui.remote.host_hash import (
    HASH_SETUP,
    StreamedHostHash,
    last_digest,
    streamed_host_sha256,
)
from cosmos_tui.remote.sftp_files import PART_SUFFIX, RemoteEntry, RemoteFiles
from cosmos_tui.remote.sftp_files import translate as _translate
from cosmos_tui.remote.sftp_io import (
    CHUNK_BYTES,
    AckMarker,
    LateSessions,
    ProgressCallback,
    ensure_dir,
    receive_file,
    resume_offset,
    send_file,
    stat_or_none,
)
from cosmos_tui.remote.ssh import SshHost

__all__ = [
    "DownloadResult",
    "ProgressCallback",
    "RemoteEntry",
    "SftpTransfers",
    "UploadResult",
    "check_download_name",
    "file_sha256",
]

logger = logging.getLogger(__name__)


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
TRANSFERS_AT_ONCE = 5  # a prompt's five control videos together (docs/remote.md)
# upload() with a hash check runs the host's sha256sum while it holds its SFTP session (a
# second slot): fewer of them at once leave slots for that.
FILE_TRANSFERS_AT_ONCE = 2
# download() starts its hash command before it takes its own session slot, so it never
# waits for a slot while holding one, and takes that slot only while SLOTS_LEFT_FREE stay
# free for others: a run's outputs come back this many at once.
DOWNLOADS_AT_ONCE = TRANSFERS_AT_ONCE
# Small downloads share the long-lived session and hold no slot of their own: a run's
# small outputs (a log, prompt.txt, short videos) move this many at once.
SMALL_FILES_AT_ONCE = 8
UPLOAD_CHANNELS = 6
"""SSH channels one large upload may spread over (see sftp_io.send_file); the extra
ones only from free session slots, leaving SLOTS_LEFT_FREE of them to others."""
BULK_CHANNELS = 6
"""Channels a large transfer adds on the host's second connection (SshHost.bulk_channel),
once it has opened, beside the ones on the main connection."""
BULK_MIN_BYTES = 16 * CHUNK_BYTES
"""A transfer this large asks for the second connection, and so do input uploads sent
together that are this large in all (a run's control videos): a handshake and session
opens (about 13 round trips) before it helps, worth it only when the bytes outlast them."""
DOWNLOAD_CHANNELS = 3
"""SSH channels one large download may read over (see sftp_io.receive_file), the extra
ones only from free session slots as for uploads."""
SLOTS_LEFT_FREE = 1
"""Session slots a large upload's extra channels leave free: a command (telemetry, a
hash) and a stream (a log follow) still start while it runs."""
HASH_TIMEOUT_S = 600
CLOSE_WAIT_S = 5.0
"""The longest close() waits for late sessions to close (see SftpTransfers.close)."""


_Helpers = tuple[StreamedHostHash, list[asyncssh.SFTPClient], LateSessions | None]
"""An upload's helpers: the host's hash stream, the extra sessions on the main connection,
and the late ones on the second connection (None: not asked for)."""


@dataclass(frozen=True)
class UploadResult:
    """Where an uploaded file lives on the host.

    Attributes:
        remote_path: Absolute path on the host.
        sha256: Hex digest of the content.
        size: Bytes.
        skipped: True when the host already had the file and nothing was sent.
        resumed_from: Bytes that were already on the host from an interrupted upload.

    """

    remote_path: str
    sha256: str
    size: int
    skipped: bool
    resumed_from: int = 0


@dataclass(frozen=True)
class DownloadResult:
    """A downloaded file.

    Attributes:
        local_path: The finished local file.
        size: Bytes.
        skipped: True when an identical finished local file was already there.
        resumed_from: Bytes kept from an interrupted download.
        sha256: Hex digest, when it was verified.

    """

    local_path: Path
    size: int
    skipped: bool
    resumed_from: int = 0
    sha256: str | None = None


# Hash on the host with openssl when it is there (SHA extensions: about 4x sha256sum).
def _safe_path(remote_path: str) -> str:
    """A path that no hashing tool can take for an option."""
    return remote_path if remote_path.startswith("/") else "./" + remote_path


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of a local file (run it in a thread for large files)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def check_download_name(name: str) -> str:
    r"""Return ``name`` if it is a plain file name; refuse paths.

    Raises:
        ValidationError: When it is empty, absolute, or holds ``/``, ``\\`` or ``..``.

    """
    problem = name_problem(name)
    if problem is not None:
        raise ValidationError(
            f"refusing to download {shown(name)}: not a plain file name ({problem})", "name"
        )
    return name


class SftpTransfers(RemoteFiles):
    """Uploads and downloads on one host.

    Args:
        ssh: The host's managed connection.
        tool_dir: The tool's directory on the host (relative paths are under the home).

    """

    def __init__(self, ssh: SshHost, tool_dir: str) -> None:
        self._ssh = ssh
        self._tool_dir = tool_dir
        self._home: str | None = None
        self._hash_cache: dict[tuple[str, int, int, int], str] = {}
        # An input upload holds one SFTP session and only ever waits for that slot (its
        # host hash stream and extra channels take free slots or none): five at a time
        # cannot deadlock on the connection's slots. upload() may wait for a hash
        # command's slot while it holds its session: two at a time for those. download()
        # never does (its hash command takes its slot first): five at a time.
        self._transfers = asyncio.Semaphore(TRANSFERS_AT_ONCE)
        self._file_transfers = asyncio.Semaphore(FILE_TRANSFERS_AT_ONCE)
        self._downloads = asyncio.Semaphore(DOWNLOADS_AT_ONCE)
        self._small_files = asyncio.Semaphore(SMALL_FILES_AT_ONCE)
        # .part path -> (the upload under way, the sha256 its caller expects)
        self._running: dict[str, tuple[asyncio.Future[UploadResult], str | None]] = {}
        # One long-lived SFTP session for small requests (see _shared_session).
        self._shared: tuple[asyncssh.SFTPClient, object, contextlib.AsyncExitStack] | None = None
        self._shared_lock = asyncio.Lock()
        # Late sessions still opening when their transfer ended (see _late_sessions),
        # and every late opening under way (close() cuts those short).
        self._closing: set[asyncio.Future[None]] = set()
        self._late_openings: set[asyncio.Future[None]] = set()
        self._sending = 0  # bytes of the input uploads being sent (see _late_sessions)
        # Transfers whose late sessions were not asked for yet (see _late_sessions).
        self._not_asked: set[asyncio.Event] = set()

    async def tool_dir(self) -> str:
        """Return the absolute tool directory on the host."""
        if self._tool_dir.startswith("/"):
            return self._tool_dir
        return str(PurePosixPath(await self.home()) / self._tool_dir)

    @staticmethod
    def _cache_key(path: Path) -> tuple[str, int, int, int]:
        stat = path.stat()
        return (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)

    def _cached_sha256(self, path: Path) -> str | None:
        return self._hash_cache.get(self._cache_key(path))

    def _remember(self, path: Path, digest: str, before: tuple[str, int, int, int]) -> None:
        """Cache ``digest`` for ``path`` if the file is as it was (``before``) when read."""
        with contextlib.suppress(OSError):
            if self._cache_key(path) == before:
                self._hash_cache[before] = digest

    async def local_sha256(self, path: Path) -> str:
        """Return the sha256 of a local file, cached by (path, size, mtime, inode)."""
        key = self._cache_key(path)
        if key in self._hash_cache:
            return self._hash_cache[key]
        digest = await asyncio.to_thread(file_sha256, path)
        self._remember(path, digest, key)
        return digest

    async def remote_sha256(
        self, remote_path: str, slotted: asyncio.Event | None = None, leave_free: int = 0
    ) -> str | None:
        """Return the sha256 of a remote file computed on the host, None if it is missing.

        ``slotted`` is set once the command holds its session slot; it starts only while
        ``leave_free`` slots stay free (see SshHost.run).
        """
        script = HASH_SETUP + '$H "$1"'
        result = await self._ssh.run(
            ["sh", "-c", script, "sh", _safe_path(remote_path)],
            check=False,
            timeout=HASH_TIMEOUT_S,
            slotted=slotted,
            leave_free=leave_free,
        )
        if result.exit_status != 0:
            return None
        return last_digest(result.stdout)

    async def _holds(self, remote_path: str, size: int) -> bool:
        """True when the host has a file of ``size`` bytes at ``remote_path``."""
        async with self._shared_session("looking for an input") as sftp:
            existing = await stat_or_none(sftp, remote_path)
        return existing is not None and existing.size == size

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[asyncssh.SFTPClient]:
        conn = await self._ssh.channel()
        async with self._ssh.session_slot(), self._opened_session(conn) as client:
            yield client

    @contextlib.asynccontextmanager
    async def _opened_session(
        self, conn: asyncssh.SSHClientConnection
    ) -> AsyncIterator[asyncssh.SFTPClient]:
        """An SFTP session of its own on ``conn``, for a caller that holds a slot."""
        async with _translate(self._ssh.name, "opening SFTP"):
            client = await open_sftp(conn)
        try:
            yield client
        finally:
            client.exit()

    async def _sessions_for(
        self, stack: contextlib.AsyncExitStack, most: int, size: int
    ) -> tuple[asyncssh.SFTPClient, list[asyncssh.SFTPClient]]:
        """Open a transfer's own session and up to ``most`` extra ones side by side.

        The caller holds the transfer's slot; ``stack`` closes every session that did
        open. The extras come from free slots only (see ``_spare_sessions``).
        """
        opened = await asyncio.gather(
            stack.enter_async_context(self._opened_session(await self._ssh.channel())),
            stack.enter_async_context(self._spare_sessions(most, size)),
            return_exceptions=True,
        )
        for outcome in opened:
            if isinstance(outcome, BaseException):
                raise outcome
        return cast(tuple[asyncssh.SFTPClient, list[asyncssh.SFTPClient]], tuple(opened))

    @contextlib.asynccontextmanager
    async def _late_sessions(self, size: int) -> AsyncIterator[LateSessions | None]:
        """Sessions on the host's second connection, added one by one as they open.

        None for a transfer under two chunks. The others ask for them once it is
        BULK_MIN_BYTES or more, or once the input uploads under way with it reach that
        much in all (a run's control videos; ``_upload_input`` starts them then, the
        first upload included), each transfer then taking its share of BULK_CHANNELS.
        The transfer starts at once on what it has; these join it when the handshake
        is done (sftp_io.Handles), so a short or slow transfer loses nothing to them.
        Slots are taken only where free.
        """
        if size < 2 * CHUNK_BYTES:
            yield None
            return
        late = LateSessions()
        stack = contextlib.AsyncExitStack()
        asked = asyncio.Event()

        async def open_them() -> None:
            await asked.wait()
            together = max(size, self._sending)
            share = min(max(1, BULK_CHANNELS * size // together), size // CHUNK_BYTES)
            conn = await self._ssh.bulk_channel()
            if conn is not None:
                await self._open_on_free_slots(
                    stack, conn, self._ssh.bulk_session_slot, share, late.add
                )

        async def close_when_open() -> None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.shield(opening)
            try:
                await stack.aclose()
            except (asyncssh.Error, OSError) as exc:
                logger.debug("late sessions on %s closed with: %s", self._ssh.name, exc)

        opening = asyncio.ensure_future(open_them())
        self._late_openings.add(opening)
        opening.add_done_callback(self._late_openings.discard)
        self._not_asked.add(asked)
        if max(size, self._sending) >= BULK_MIN_BYTES:
            asked.set()
        try:
            yield late
        finally:
            self._not_asked.discard(asked)
            if not asked.is_set():
                opening.cancel()  # never asked for: nothing opened
            # A transfer that ended before they opened does not cut their opening short
            # (a channel cut mid-open may stay open on the host): they close once open.
            closing = asyncio.ensure_future(close_when_open())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
            if opening.done():
                await asyncio.shield(closing)  # a cancel here still lets it close

    @contextlib.asynccontextmanager
    async def _upload_helpers(self, part: str, size: int) -> AsyncIterator[_Helpers]:
        """The host's hash stream of ``part`` and the extra sessions, opened side by side.

        Both take round trips to open; neither waits for a slot (see
        ``streamed_host_sha256`` and ``_spare_sessions``).
        """
        async with contextlib.AsyncExitStack() as stack:
            opened = await asyncio.gather(
                stack.enter_async_context(streamed_host_sha256(self._ssh, part)),
                stack.enter_async_context(self._spare_sessions(UPLOAD_CHANNELS - 1, size)),
                return_exceptions=True,  # the stack closes whichever one did open
            )
            host_hash, extra = opened
            if isinstance(host_hash, BaseException):
                raise host_hash
            if isinstance(extra, BaseException):
                raise extra
            late = await stack.enter_async_context(self._late_sessions(size))
            yield host_hash, extra, late

    @contextlib.asynccontextmanager
    async def _shared_session(self, doing: str) -> AsyncIterator[asyncssh.SFTPClient]:
        """The connection's long-lived SFTP session, for small requests (stat, list, write).

        Opening an SFTP session costs about three round trips (channel, subsystem, version
        exchange): 0.45 s at 150 ms. Small requests share one session, opened once per
        connection (it holds one session slot until the connection changes or closes);
        bulk transfers keep their own sessions so that they never queue behind each other.
        A session that fails is dropped and opened afresh by the next request.
        """
        conn = await self._ssh.channel()
        async with self._shared_lock:
            if self._shared is not None and self._shared[1] is not conn:
                await self._drop_shared()
            if self._shared is None:
                stack = contextlib.AsyncExitStack()
                await stack.enter_async_context(self._ssh.session_slot())
                try:
                    async with _translate(self._ssh.name, "opening SFTP"):
                        client = await open_sftp(conn)
                except BaseException:
                    await stack.aclose()
                    raise
                self._shared = (client, conn, stack)
            client = self._shared[0]
        try:
            async with _translate(self._ssh.name, doing):
                yield client
        except CosmosError as exc:
            if exc.transient:  # the session (or its connection) broke, not the request
                async with self._shared_lock:
                    if self._shared is not None and self._shared[0] is client:
                        await self._drop_shared()
            raise

    @contextlib.asynccontextmanager
    async def _spare_sessions(
        self, most: int, size: int
    ) -> AsyncIterator[list[asyncssh.SFTPClient]]:
        """Up to ``most`` more SFTP sessions for one large transfer, from free slots only.

        Never waits for a slot (the caller already holds one: waiting could deadlock with
        other transfers), leaves SLOTS_LEFT_FREE slots to others, and gives none for a
        transfer under one chunk per session, where the round trips of opening them would
        cost more than their windows bring.
        """
        conn = await self._ssh.channel()
        async with contextlib.AsyncExitStack() as stack:
            yield await self._open_on_free_slots(
                stack,
                conn,
                lambda: self._ssh.spare_session_slot(leave_free=SLOTS_LEFT_FREE),
                min(most, size // CHUNK_BYTES),
            )

    async def _open_on_free_slots(
        self,
        stack: contextlib.AsyncExitStack,
        conn: asyncssh.SSHClientConnection,
        free_slot: Callable[[], contextlib.AbstractAsyncContextManager[bool]],
        most: int,
        on_open: Callable[[asyncssh.SFTPClient], None] | None = None,
    ) -> list[asyncssh.SFTPClient]:
        """Open up to ``most`` SFTP sessions on ``conn``, one per slot ``free_slot`` gives.

        ``stack`` holds the slots and closes the sessions: each one is put there the
        moment it opens, so a cancel (of this call or its caller) leaves none open. One
        that fails to open is left out (logged). ``on_open`` is told of each one as it
        opens (a transfer under way adopts it then, not once all have opened).
        """
        slots = 0
        while slots < most and await stack.enter_async_context(free_slot()):
            slots += 1
        sessions: list[asyncssh.SFTPClient] = []

        async def one() -> None:
            try:
                session = await open_sftp(conn)
            except Exception as exc:  # noqa: BLE001 (optional: the transfer goes on)
                logger.debug("no extra SFTP session on %s: %s", self._ssh.name, exc)
                return
            stack.callback(session.exit)
            sessions.append(session)
            if on_open is not None:
                on_open(session)

        await asyncio.gather(*(one() for _ in range(slots)))
        return sessions

    async def _drop_shared(self) -> None:
        if self._shared is None:
            return
        client, _, stack = self._shared
        self._shared = None
        client.exit()
        await stack.aclose()

    async def close(self) -> None:
        """Close the shared SFTP session and any late ones (the connection's owner calls this).

        Late openings still under way are cut short (the connection closes next anyway,
        and one may be waiting for a reconnect); their closing is waited for, briefly.
        """
        for opening in list(self._late_openings):
            opening.cancel()
        if self._closing:
            await asyncio.wait(set(self._closing), timeout=CLOSE_WAIT_S)
        async with self._shared_lock:
            await self._drop_shared()

    def partial_path(self, tool_dir: str, local_path: Path) -> str:
        """Where an unfinished upload of ``local_path`` is kept on the host.

        Named after the local file (path, size, mtime) rather than its content, so that a
        fresh upload can start before the file is hashed and a retry finds it again.
        """
        stat = local_path.stat()
        key = f"{local_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()
        name = f".incoming-{hashlib.sha256(key).hexdigest()[:32]}{local_path.suffix.lower()}"
        return str(PurePosixPath(tool_dir) / "inputs" / (name + PART_SUFFIX))

    async def upload_input(
        self,
        local_path: Path,
        progress: ProgressCallback | None = None,
        expected_sha256: str | None = None,
        expected_size: int | None = None,
    ) -> UploadResult:
        """Upload a run input to ``<tool dir>/inputs/<sha256>.<ext>``, skipping known files.

        When no input on the host has this file's size it cannot be there yet: the file
        is then hashed while it is sent (one read) instead of before.

        Args:
            local_path: The file to send.
            progress: Called with (bytes done, bytes in total).
            expected_sha256: The content recorded for this input (its prompt's). When the
                host holds it the local file is not read at all; otherwise what is sent
                must have this hash.
            expected_size: The recorded size; a file of another size is refused unsent.

        Raises:
            TransferFailed: The local file cannot be read or the host refuses the write.
            TransferCorrupted: The host computed another hash than the local one.
            InputChanged: The file no longer has the expected size or sha256.
            HostUnreachable: The connection dropped (retry: the upload resumes).

        """
        inputs = str(PurePosixPath(await self.tool_dir()) / "inputs")
        recorded_size = _local_size(local_path) if expected_size is None else expected_size
        if expected_sha256 is not None:
            final = f"{inputs}/{expected_sha256}{local_path.suffix.lower()}"
            if await self._holds(final, recorded_size):
                if progress:
                    progress(recorded_size, recorded_size)
                return UploadResult(final, expected_sha256, recorded_size, skipped=True)
        size = _local_size(local_path)
        if size != recorded_size:
            raise InputChanged(local_path, f"{recorded_size} bytes", f"{size} bytes")
        part = self.partial_path(str(PurePosixPath(inputs).parent), local_path)
        # The same file asked for twice at once is sent once: later callers wait for it.
        # Its outcome is shared only with callers that expect the same content; the others
        # wait for the .part to be free and then try for themselves.
        while (running := self._running.get(part)) is not None:
            leader, leader_expects = running
            try:
                result = await asyncio.shield(leader)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if leader.cancelled() and not (task and task.cancelling()):
                    continue  # the first caller was cancelled, not this one: send it here
                raise
            except CosmosError:
                if leader_expects != expected_sha256:
                    continue
                raise
            if leader_expects != expected_sha256:
                continue
            if progress:
                progress(size, size)
            return result
        future: asyncio.Future[UploadResult] = asyncio.get_running_loop().create_future()
        self._running[part] = (future, expected_sha256)
        try:
            result = await self._upload_input(
                local_path, inputs, part, size, progress, expected_sha256
            )
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here; waiters re-raise it
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self._running[part]

    async def _upload_input(
        self,
        local_path: Path,
        inputs: str,
        part: str,
        size: int,
        progress: ProgressCallback | None,
        expected: str | None,
    ) -> UploadResult:
        suffix = local_path.suffix.lower()
        digest = self._cached_sha256(local_path)
        if expected is not None and digest is not None and digest != expected:
            raise _changed(local_path, expected, digest)
        doing = f"uploading {local_path.name}"
        async with self._transfers:
            # The second connection's handshake goes beside this upload's own set-up
            # when it or the uploads under way with it are large (a run's five control
            # videos; see _late_sessions).
            self._sending += size
            try:
                if self._sending >= BULK_MIN_BYTES:
                    self._ssh.warm_bulk()
                    for asked in self._not_asked:
                        asked.set()  # the uploads already under way too
                async with _translate(self._ssh.name, doing):
                    found = await self._send_input(
                        local_path, inputs, part, size, digest, progress, expected, doing
                    )
            finally:
                self._sending -= size
            if isinstance(found, UploadResult):
                return found
            digest, offset, verified = found
            final = f"{inputs}/{digest}{suffix}"
            await self._place(local_path, part, final, digest, verified)
        logger.info("uploaded %s to %s:%s (%d bytes)", local_path, self._ssh.name, final, size)
        return UploadResult(final, digest, size, skipped=False, resumed_from=offset)

    async def _send_input(
        self,
        local_path: Path,
        inputs: str,
        part: str,
        size: int,
        digest: str | None,
        progress: ProgressCallback | None,
        expected: str | None,
        doing: str,
    ) -> UploadResult | tuple[str, int, bool]:
        """Skip a known input, or send it into ``part``: (sha256, resumed from, verified).

        A file under one chunk goes over the shared session (a session of its own would
        cost round trips and bring nothing); a larger one opens its own session side by
        side with the host's hash stream and its extra channels. An input whose sha256
        is recorded was already looked for (``upload_input``); one without is looked
        for first, before anything else is opened.
        """
        suffix = local_path.suffix.lower()
        async with contextlib.AsyncExitStack() as stack:
            if size >= CHUNK_BYTES:
                # The transfer's own slot first: its extra channels only take free ones.
                await stack.enter_async_context(self._ssh.session_slot())
                session = self._opened_session(await self._ssh.channel())
            else:
                session = self._shared_session(doing)
            offset: int | None
            if expected is None:
                sftp = await stack.enter_async_context(session)
                known = await self._known_input(sftp, local_path, inputs, size, digest)
                if isinstance(known, UploadResult):
                    if progress:
                        progress(size, size)
                    return known
                digest = known
                helpers = await stack.enter_async_context(self._upload_helpers(part, size))
                offset = None
            else:
                # The folder and resume checks go over the shared session while this
                # one opens, when it is open already (upload_input just used it): it
                # needs no slot then.
                opened = await asyncio.gather(
                    stack.enter_async_context(session),
                    stack.enter_async_context(self._upload_helpers(part, size)),
                    self._resume_on_shared(inputs, part, size, doing),
                    return_exceptions=True,  # the stack closes whichever did open
                )
                for outcome in opened:
                    if isinstance(outcome, BaseException):
                        raise outcome
                sftp, helpers = cast(tuple[asyncssh.SFTPClient, _Helpers], opened[:2])
                offset = cast(int | None, opened[2])
            if offset is None:
                offset = await self._resume_point(sftp, inputs, part, size)
            digest, verified = await self._send_verified(
                sftp,
                helpers,
                local_path,
                (part, lambda sha256: f"{inputs}/{sha256}{suffix}"),
                offset,
                size,
                digest,
                progress,
                expected,
            )
        return digest, offset, verified

    async def _resume_on_shared(
        self, directory: str, part: str, size: int, doing: str
    ) -> int | None:
        """``_resume_point`` on the shared session if it is open now; else None.

        Never opens it: that could wait for a slot while the caller holds one.
        """
        conn = await self._ssh.channel()
        # Read without the lock: whoever holds it may be waiting for a slot (reopening).
        open_now = self._shared if not self._shared_lock.locked() else None
        if open_now is None or open_now[1] is not conn:
            return None
        async with _translate(self._ssh.name, doing):
            return await self._resume_point(open_now[0], directory, part, size)

    async def _resume_point(
        self, sftp: asyncssh.SFTPClient, directory: str, part: str, size: int
    ) -> int:
        """Make sure ``directory`` exists; return where an upload into ``part`` resumes.

        Both questions at once (a round trip saved): without the folder there is no
        .part either, and the resume starts at 0.
        """
        _, offset = await asyncio.gather(
            ensure_dir(sftp, directory), resume_offset(sftp, part, size)
        )
        return offset

    async def _known_input(
        self,
        sftp: asyncssh.SFTPClient,
        local_path: Path,
        inputs: str,
        size: int,
        digest: str | None,
    ) -> UploadResult | str | None:
        """Look on the host for an input with no recorded sha256.

        Returns:
            The host's copy when it has one; else the local sha256 when it is known
            (cached, or hashed because a finished input of this size is there), or None.
        """
        if digest is None and await _has_size(sftp, inputs, size):
            digest = await self.local_sha256(local_path)
        if digest is None:
            return None
        final = f"{inputs}/{digest}{local_path.suffix.lower()}"
        existing = await stat_or_none(sftp, final)
        # A content-addressed name is only ever given to a verified file.
        if existing is not None and existing.size == size:
            return UploadResult(final, digest, size, skipped=True)
        return digest

    async def _place(
        self, local_path: Path, part: str, final: str, digest: str, verified: bool
    ) -> None:
        """Give a sent ``part`` its final name; unless ``verified``, hash it whole first.

        Runs with no SFTP session held, so the host command has a slot to run in. The
        rename goes over the shared session (a session of its own would cost three more
        round trips: five uploads at once leave three of them without a hash stream).
        """
        if verified:
            return
        remote = await self.remote_sha256(part)
        async with self._shared_session(f"placing {final}") as sftp:
            if remote != digest:
                await sftp.remove(part)
                raise TransferCorrupted(
                    f"upload of {local_path.name} to {self._ssh.name} arrived corrupted "
                    "(its sha256 on the host differs); it was discarded, upload again"
                )
            await sftp.posix_rename(part, final)

    async def _send_verified(
        self,
        sftp: asyncssh.SFTPClient,
        helpers: _Helpers,
        local_path: Path,
        names: tuple[str, Callable[[str], str]],
        offset: int,
        size: int,
        digest: str | None,
        progress: ProgressCallback | None,
        expected: str | None = None,
    ) -> tuple[str, bool]:
        """Send into a ``.part`` from ``offset``; return (the sha256, verified and renamed).

        ``names`` are the ``.part`` and what gives the final name for a sha256: a
        verified ``.part`` is renamed to it. ``helpers`` are the host's hash stream of
        the ``.part`` and the extra sessions (see ``_upload_helpers``). The host hashes
        the ``.part`` as its blocks are written, so its digest is ready right after the
        last byte: it is asked for, and the resume marker removed, as soon as every byte
        is acknowledged, while the handles close; the rename does not wait for the
        marker. When that stream gave no matching digest, ``verified`` is False and the
        caller has the whole file hashed (see ``_place``).
        ``digest`` may be None: a fresh upload then hashes the file in the same read that
        sends it, and a resumed one hashes the local file while the host finishes. With
        ``expected`` (the recorded content) the host's digest is checked against it and
        the local file is hashed only when they differ, to tell an edited file (discarded,
        InputChanged) from a damaged copy.
        """
        host_hash, extra, late = helpers
        part, final_name = names
        read_as = self._cache_key(local_path)
        host_checks_expected = expected is not None and digest is None
        local_hash = digest is None and not host_checks_expected
        hasher = hashlib.sha256() if local_hash and offset == 0 else None
        # Over several channels chunks land out of order: a marker on the host keeps a
        # resume from trusting the .part's size (see sftp_io.resume_offset). Once every
        # byte is acknowledged the .part is contiguous and the marker can go.
        marker = AckMarker(sftp, part) if extra or late is not None else None
        # [the host's digest, the marker's removal], started once every byte is acked
        finishing: list[asyncio.Future[Any]] = []

        def written(done: int) -> None:
            host_hash.written(done)
            if marker is not None:
                marker.note(done)
            if done >= size and not finishing:
                finishing.append(asyncio.ensure_future(host_hash.digest(HASH_TIMEOUT_S)))
                if marker is not None:
                    finishing.append(asyncio.ensure_future(marker.remove()))

        try:
            await send_file(
                [sftp, *extra],
                local_path,
                part,
                offset,
                size,
                progress,
                hasher,
                written,
                alongside=marker.start(offset) if marker is not None else None,
                late=late,
            )
            if not finishing:
                written(size)  # nothing was left to send (a resume at the end)
            if hasher is not None:
                digest = hasher.hexdigest()
            local = [self.local_sha256(local_path)] if digest is None and local_hash else []
            results = await asyncio.gather(finishing[0], *local)
            digest, verified = await self._check_sent(
                sftp, local_path, part, digest, results, expected, bool(local)
            )
            renaming = [sftp.posix_rename(part, final_name(digest))] if verified else []
            outcomes = await asyncio.gather(*renaming, *finishing[1:], return_exceptions=True)
            if renaming and isinstance(outcomes[0], BaseException):
                raise outcomes[0]
            for outcome in outcomes[len(renaming) :]:  # the marker: litter, never a failure
                if isinstance(outcome, BaseException):
                    logger.warning("could not remove the resume marker of %s: %s", part, outcome)
        except BaseException:
            if marker is not None:
                marker.abandon()
            for task in finishing:
                task.cancel()
                task.add_done_callback(lambda t: t.cancelled() or t.exception())
            raise
        if verified:
            self._remember(local_path, digest, read_as)
        return digest, verified

    async def _check_sent(
        self,
        sftp: asyncssh.SFTPClient,
        local_path: Path,
        part: str,
        digest: str | None,
        results: list[Any],
        expected: str | None,
        hashed_here: bool,
    ) -> tuple[str, bool]:
        """Compare what was sent with the host's digest: (the sha256, verified).

        ``results`` are the host's digest and, when ``hashed_here``, the local one.

        Raises:
            InputChanged: The file is not the recorded ``expected`` content (the
                ``.part`` is removed).
        """
        remote = cast(str | None, results[0])
        if hashed_here:
            digest = cast(str, results[-1])
        if expected is not None and digest is None:
            if remote is not None and remote == expected:
                return remote, True
            digest = await self.local_sha256(local_path)
        if expected is not None and digest != expected:
            await sftp.remove(part)
            raise _changed(local_path, expected, digest)
        assert digest is not None
        if remote != digest:
            if remote is not None:
                logger.warning(
                    "streamed sha256 of %s on %s differs; hashing the whole file",
                    part,
                    self._ssh.name,
                )
            return digest, False
        return digest, True

    async def upload(
        self,
        local_path: Path,
        remote_path: str,
        progress: ProgressCallback | None = None,
        sha256: str | None = None,
    ) -> UploadResult:
        """Upload a file via a ``.part`` name, verify its hash on the host, then rename.

        An existing final file of the same size is trusted only when its name is its hash
        (``sha256`` given and in the name); otherwise it is hashed on the host first.

        Raises:
            TransferFailed: The local file cannot be read or the host refuses the write.
            TransferCorrupted: The host computed another hash than the local one.
            HostUnreachable: The connection dropped (retry: the upload resumes).

        """
        size = _local_size(local_path)
        digest = sha256 or await self.local_sha256(local_path)
        part = remote_path + PART_SUFFIX
        doing = f"uploading to {remote_path}"
        async with (
            self._file_transfers,
            self._client() as sftp,
            _translate(self._ssh.name, doing),
        ):
            existing = await stat_or_none(sftp, remote_path)
            # A content-addressed name is only ever given to a verified file.
            if (
                existing is not None
                and existing.size == size
                and (
                    digest in PurePosixPath(remote_path).name
                    or await self.remote_sha256(remote_path) == digest
                )
            ):
                if progress:
                    progress(size, size)
                return UploadResult(remote_path, digest, size, skipped=True)
            offset = await self._resume_point(
                sftp, str(PurePosixPath(remote_path).parent), part, size
            )
            async with self._upload_helpers(part, size - offset) as helpers:
                _, verified = await self._send_verified(
                    sftp,
                    helpers,
                    local_path,
                    (part, lambda _: remote_path),
                    offset,
                    size,
                    digest,
                    progress,
                )
        await self._place(local_path, part, remote_path, digest, verified)
        logger.info(
            "uploaded %s to %s:%s (%d bytes)", local_path, self._ssh.name, remote_path, size
        )
        return UploadResult(remote_path, digest, size, skipped=False, resumed_from=offset)

    async def download(
        self,
        remote_dir: str,
        name: str,
        local_dir: Path,
        expected_size: int | None = None,
        verify_hash: bool = False,
        progress: ProgressCallback | None = None,
    ) -> DownloadResult:
        """Download ``remote_dir/name`` into ``local_dir/name``.

        Data goes to ``name.part`` (continued if it is there) and replaces the local file
        only when complete and verified, so a finished file is never replaced by a partial.

        Raises:
            ValidationError: ``name`` is not a plain file name.
            TransferFailed: The remote file is missing or unreadable, or the local side fails.
            TransferCorrupted: Size or hash differs from what was expected.

        """
        check_download_name(name)
        remote_path = str(PurePosixPath(remote_dir) / name)
        # Neither the file nor its .part may be a symlink (writes would follow it).
        final = contained_path(local_dir, name)
        part = contained_path(local_dir, name + PART_SUFFIX)
        doing = f"downloading {remote_path}"
        listed = None
        if expected_size is None:
            # The size decides how many sessions it gets: asked first, on the shared one.
            async with self._shared_session(doing) as shared:
                attrs = await stat_or_none(shared, remote_path)
            if attrs is None or attrs.size is None:
                raise TransferFailed(f"{remote_path} does not exist on {self._ssh.name}")
            listed = int(attrs.size)
        sized = expected_size if expected_size is not None else listed
        assert sized is not None
        if sized >= BULK_MIN_BYTES and not (final.exists() and final.stat().st_size == sized):
            self._ssh.warm_bulk()  # its handshake beside this download's own set-up
        # A file under one chunk (a run's log, prompt.txt, a small video) goes over the
        # shared session: a session of its own costs three round trips and brings nothing.
        small = sized < CHUNK_BYTES
        gate = self._small_files if small else self._downloads
        remote_hash: asyncio.Task[str | None] | None = None
        async with gate, contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(_translate(self._ssh.name, doing))
            # The host hashes its copy, while the bytes travel where slots allow. Its
            # command takes its slot before this transfer takes one: a transfer holding
            # a slot never waits for another (several downloads at once cannot hold
            # every slot and wait). Both leave SLOTS_LEFT_FREE slots to commands; with
            # few slots the later downloads start once their hash is done.
            if verify_hash:
                slotted = asyncio.Event()
                remote_hash = asyncio.create_task(
                    self.remote_sha256(remote_path, slotted, leave_free=SLOTS_LEFT_FREE)
                )
                remote_hash.add_done_callback(lambda t: t.cancelled() or t.exception())
                stack.callback(remote_hash.cancel)
                if not small:  # a small one holds no slot of its own: nothing to order
                    waiting = asyncio.ensure_future(slotted.wait())
                    try:
                        await asyncio.wait(
                            {remote_hash, waiting}, return_when=asyncio.FIRST_COMPLETED
                        )
                    finally:
                        waiting.cancel()
                    failed = remote_hash.done() and not remote_hash.cancelled()
                    if failed and remote_hash.exception() is not None:
                        await remote_hash  # the host is away: say so before any transfer
            extra: list[asyncssh.SFTPClient] = []
            late: LateSessions | None = None
            if small:
                sftp = await stack.enter_async_context(self._shared_session(doing))
            else:
                # The transfer's own slot first (leaving some free: several downloads
                # never take every slot), then its session and the extra ones (free
                # slots only) open side by side.
                await stack.enter_async_context(self._ssh.session_slot(leave_free=SLOTS_LEFT_FREE))
                sftp, extra = await self._sessions_for(stack, DOWNLOAD_CHANNELS - 1, sized)
                late = await stack.enter_async_context(self._late_sessions(sized))
            private_dir(local_dir)
            if verify_hash and expected_size is not None:
                # No stat (a round trip): a missing file fails to open, and a file of
                # another size fails the length or the host's hash check below.
                size = expected_size
            elif listed is not None:
                size = listed
            else:
                attrs = await stat_or_none(sftp, remote_path)
                if attrs is None or attrs.size is None:
                    raise TransferFailed(f"{remote_path} does not exist on {self._ssh.name}")
                size = int(attrs.size)
                if expected_size is not None and size != expected_size:
                    raise TransferCorrupted(
                        f"{remote_path} on {self._ssh.name} has {size} bytes, expected "
                        f"{expected_size}"
                    )
            if final.exists() and final.stat().st_size == size:
                known = None
                if remote_hash is not None:
                    known = await asyncio.to_thread(file_sha256, final)
                if remote_hash is None or known == await remote_hash:
                    if progress:
                        progress(size, size)
                    return DownloadResult(final, size, skipped=True, sha256=known)
            offset = part.stat().st_size if part.exists() else 0
            if offset > size:
                part.unlink()
                offset = 0
            free = shutil.disk_usage(local_dir).free
            if size - offset > free:
                raise TransferFailed(
                    f"not enough space in {local_dir} to download {name}: it needs "
                    f"{size - offset} more bytes and {free} are free; free some space "
                    "and download again"
                )
            hasher = hashlib.sha256() if verify_hash else None
            if hasher is not None and offset:
                await asyncio.to_thread(_hash_prefix, hasher, part)
            try:
                await receive_file(
                    [sftp, *extra], remote_path, part, offset, size, progress, hasher, late
                )
            except OSError as exc:
                if exc.errno not in _DISK_FULL:
                    raise
                part.unlink(missing_ok=True)
                raise TransferFailed(
                    f"{local_dir} ran out of space while downloading {name} "
                    f"({size} bytes); the partial file was removed: free some space and "
                    "download again"
                ) from exc
            remote_digest = await remote_hash if remote_hash is not None else None
            got = part.stat().st_size
            digest = hasher.hexdigest() if hasher is not None else None
            if got != size or (verify_hash and remote_digest != digest):
                # A short read is the file's end: the file is not what was listed (or it
                # changed); nothing of it is kept. Rare: a stat says which, if it can.
                part.unlink(missing_ok=True)
                attrs = await stat_or_none(sftp, remote_path)
                if attrs is not None and attrs.size is not None and attrs.size != size:
                    raise TransferCorrupted(
                        f"{remote_path} on {self._ssh.name} has {attrs.size} bytes, expected "
                        f"{size}; it was not kept"
                    )
                if got != size:
                    raise TransferCorrupted(
                        f"download of {remote_path} stopped at {got} of {size} bytes; it was "
                        "not kept, download again"
                    )
                raise TransferCorrupted(
                    f"download of {remote_path} is corrupted (sha256 {digest} != "
                    f"{remote_digest}); it was discarded, download again"
                )
            os.replace(part, final)
        return DownloadResult(final, size, skipped=False, resumed_from=offset, sha256=digest)


def _hash_prefix(hasher: hashlib._Hash, path: Path) -> None:
    with path.open("rb") as handle:
        while block := handle.read(8 * 1024 * 1024):
            hasher.update(block)


def _local_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise TransferFailed(f"cannot read {path}: {exc.strerror}") from exc


def _changed(path: Path, recorded: str, found: str | None) -> InputChanged:
    return InputChanged(path, f"sha256 {recorded[:12]}...", f"sha256 {(found or '?')[:12]}...")


async def _has_size(sftp: asyncssh.SFTPClient, directory: str, size: int) -> bool:
    """True when a finished file in ``directory`` has ``size`` bytes."""
    try:
        entries = await sftp.readdir(directory)
    except asyncssh.SFTPNoSuchFile:
        return False
    return any(e.attrs.size == size and not str(e.filename).endswith(PART_SUFFIX) for e in entries)
