"""One managed SSH connection per GPU host (asyncssh).

The connection opens lazily on first use, honours ~/.ssh/config (aliases, ProxyJump,
IdentityFile), ssh-agent and known_hosts, and sends keepalives. After a drop it reconnects
in the background with exponential backoff and jitter; its state is observable through
:meth:`SshHost.status` and :meth:`SshHost.watch`. Remote commands are argv lists joined with
``shlex.join``; at most ``max_sessions`` channels are open at once, below OpenSSH's default
MaxSessions (10). Every asyncssh exception is translated in :func:`_translate`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import shlex
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncssh

from cosmos_tui.config import HostConfig, RetryConfig, TimeoutsConfig
from cosmos_tui.domain import HostState, HostStatus
from cosmos_tui.errors import (
    AuthenticationFailed,
    CommandTimedOut,
    ConfigError,
    CosmosError,
    HostKeyUnknown,
    HostUnreachable,
    RemoteCommandFailed,
)
from cosmos_tui.remote.channels import STDERR_TAIL_CHARS, LineStream, open_process, stop_process
from cosmos_tui.remote.hostkeys import HostKeyInfo, has_other_key, key_info, trust_host_key

__all__ = ["CommandResult", "HostKeyInfo", "LineStream", "SshHost", "trust_host_key"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_SESSIONS = 8
BULK_SESSIONS = 8
"""Channels the bulk connection (see ``SshHost.bulk_session_slot``) may hold at once: under
OpenSSH's MaxSessions of 10."""
RECEIVE_WINDOW_BYTES = 32 * 1024 * 1024
"""Each channel's receive window. asyncssh's default (2 MiB) caps a download at
2 MiB per round trip: 40 MB/s at 50 ms, 14 MB/s at 150 ms. asyncssh tops the window up
once half of it is used, so a channel carries between a half and a whole window per
round trip: 32 MiB gave a download at 150 ms and 1 Gbit/s 0.51 of the link, 16 MiB 0.33,
64 MiB 0.53 (docs/remote.md, "Over a real network")."""
# AES-GCM first: with AES-NI it moves bulk data about twice as fast as chacha20 here.
PREFERRED_CIPHERS = [
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
]


@dataclass(frozen=True)
class CommandResult:
    """What a finished remote command produced.

    Attributes:
        argv: The command as run.
        exit_status: Its exit status (-1 when it ended by a signal).
        stdout: Standard output, decoded as UTF-8 (invalid bytes replaced).
        stderr: Standard error, decoded the same way.
        duration_s: Wall time from sending the command to its exit.

    """

    argv: tuple[str, ...]
    exit_status: int
    stdout: str
    stderr: str
    duration_s: float


def _backoff(attempt: int, retry: RetryConfig, rng: random.Random) -> float:
    """Seconds before reconnect attempt ``attempt`` (1-based): exponential, jittered."""
    # typeshed types int ** int as Any (a negative exponent gives a float)
    delay: float = min(retry.backoff_max, retry.backoff_base * (2 ** (attempt - 1)))
    return delay * rng.uniform(0.5, 1.0)


class _Client(asyncssh.SSHClient):
    """Records the host key when it is not trusted and reports a lost connection."""

    def __init__(self, on_lost: Callable[[Exception | None], None]) -> None:
        self._on_lost = on_lost
        self.rejected: tuple[str, str, int | None, asyncssh.SSHKey] | None = None

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.rejected = (host, addr, port, key)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost(exc)


class SshHost:
    """The managed SSH connection to one host.

    Args:
        config: The host.
        timeouts: Connect, command and keepalive times.
        retry: Reconnect attempts and backoff.
        max_sessions: Most channels (commands, streams, SFTP) open at once.
        rng: Random source for jitter (tests pass a seeded one).
        ssh_config: OpenSSH client config to read; None reads ~/.ssh/config.

    """

    def __init__(
        self,
        config: HostConfig,
        timeouts: TimeoutsConfig | None = None,
        retry: RetryConfig | None = None,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        rng: random.Random | None = None,
        ssh_config: Path | None = None,
    ) -> None:
        self.config = config
        self._ssh_config = ssh_config
        self.timeouts = timeouts or TimeoutsConfig()
        self.retry = retry or RetryConfig()
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not security)
        self._sessions = asyncio.Semaphore(max_sessions)
        self._max_sessions = max_sessions
        self._slots_held = 0
        self._slot_freed = asyncio.Event()  # replaced by a fresh one at each release
        self._conn: asyncssh.SSHClientConnection | None = None
        self._client: _Client | None = None
        self._connecting: asyncio.Task[asyncssh.SSHClientConnection] | None = None
        self._status = HostStatus(config.name, HostState.UNKNOWN)
        self._watchers: set[asyncio.Queue[HostStatus]] = set()
        self._closed = False
        self.generation = 0
        # The second connection for large transfers: (the main connection's generation it
        # belongs to, its opening), and the slots of its channels.
        self._bulk: tuple[int, asyncio.Task[asyncssh.SSHClientConnection | None]] | None = None
        self._bulk_sessions = asyncio.Semaphore(BULK_SESSIONS)

    @property
    def name(self) -> str:
        """The configured host name."""
        return self.config.name

    # state -------------------------------------------------------------------------------

    def status(self) -> HostStatus:
        """Return the current connection state."""
        return self._status

    async def watch(self) -> AsyncIterator[HostStatus]:
        """Yield the current state, then every change, until the host is closed."""
        queue: asyncio.Queue[HostStatus] = asyncio.Queue(maxsize=64)
        self._watchers.add(queue)
        try:
            yield self._status
            while not self._closed or not queue.empty():
                yield await queue.get()
        finally:
            self._watchers.discard(queue)

    def _set_status(self, state: HostState, reason: str | None = None, **extra: Any) -> None:
        latency = extra.pop("latency_ms", self._status.latency_ms)
        self._status = HostStatus(self.name, state, reason, latency_ms=latency, **extra)
        logger.debug("host %s is %s (%s)", self.name, state.value, reason or "")
        for queue in list(self._watchers):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(self._status)

    # connecting --------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the connection now if it is not open (it also opens on first use)."""
        await self._connection()

    async def _connection(self) -> asyncssh.SSHClientConnection:
        if self._closed:
            raise HostUnreachable(self.name, "the connection was closed")
        if self._conn is not None:
            if not self._conn.is_closed():
                return self._conn
            self._conn = None  # closed before its loss could be reported
            self._drop_bulk()
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.create_task(self._connect_with_retry(attempts=1))
        return await asyncio.shield(self._connecting)

    async def _connect_with_retry(self, attempts: int) -> asyncssh.SSHClientConnection:
        error: CosmosError | None = None
        for attempt in range(1, attempts + 1):
            if attempt > 1 or self._status.state is HostState.RECONNECTING:
                delay = _backoff(attempt, self.retry, self._rng)
                when = datetime.now(UTC) + timedelta(seconds=delay)
                reason = error.message if error else self._status.reason
                self._set_status(HostState.RECONNECTING, reason, next_attempt_at=when)
                await asyncio.sleep(delay)
            else:
                self._set_status(HostState.CONNECTING)
            try:
                conn = await self._open_once()
            except CosmosError as exc:
                error = exc
                if not exc.transient:
                    break
                continue
            self._conn = conn
            self.generation += 1
            self._set_status(HostState.CONNECTED)
            return conn
        assert error is not None
        self._set_status(HostState.DOWN, error.message)
        raise error

    def connect_options(self) -> dict[str, Any]:
        """Return the asyncssh.connect keyword arguments for this host.

        Raises:
            ConfigError: When the configured identity_file cannot be read.

        """
        options: dict[str, Any] = {
            "encryption_algs": PREFERRED_CIPHERS,
            "keepalive_interval": self.timeouts.keepalive,
            "keepalive_count_max": 3,
            "connect_timeout": self.timeouts.connect,
            "window": RECEIVE_WINDOW_BYTES,
        }
        if self.config.port is not None:
            options["port"] = self.config.port
        if self.config.user is not None:
            options["username"] = self.config.user
        if self.config.identity_file is not None:
            key_file = Path(self.config.identity_file).expanduser()
            if not key_file.is_file() or not os.access(key_file, os.R_OK):
                raise ConfigError(
                    f"identity_file {key_file} of host {self.name} does not exist or cannot be "
                    "read: fix identity_file for this host in the config"
                )
            options["client_keys"] = [str(key_file)]
            # A passphrase-protected key file is skipped: ssh-agent offers it instead.
            options["ignore_encrypted"] = True
        if self._ssh_config is not None:
            options["config"] = [str(self._ssh_config)]
        # Always explicit, so that host keys are verified even where ~/.ssh/config says
        # 'UserKnownHostsFile none'; missing files trust nothing (asyncssh cannot open them).
        existing = [str(path) for path in self.known_hosts_files() if path.is_file()]
        options["known_hosts"] = existing or b""
        return options

    async def _create(self, client: _Client, **extra: Any) -> asyncssh.SSHClientConnection:
        """Open a connection (``extra`` overrides connect options); errors translated."""
        target = self.config.hostname + (f":{self.config.port}" if self.config.port else "")
        async with _translate(
            self.name, client=client, known_hosts=self.known_hosts_files(), target=target
        ):
            conn, _ = await asyncio.wait_for(
                asyncssh.create_connection(
                    lambda: client, self.config.hostname, **{**self.connect_options(), **extra}
                ),
                self.timeouts.connect * 2,
            )
        return conn

    async def _open_once(self) -> asyncssh.SSHClientConnection:
        client = _Client(lambda exc: self._lost(client, exc))
        try:
            conn = await self._create(client)
        except HostUnreachable as exc:
            if _cut_in_handshake(exc, client):
                await self._raise_if_key_of_other_type()
            raise
        self._client = client
        return conn

    async def _raise_if_key_of_other_type(self) -> None:
        """Raise HostKeyUnknown when the host only has keys of types known_hosts lacks.

        asyncssh asks only for the key types known_hosts holds for a host; a host that has
        none of them (reinstalled with new key types) just hangs up. Asking again for
        every type shows its key, which is then reported as changed or unknown.
        """
        probe = _Client(lambda exc: None)
        try:
            conn = await self._create(probe, server_host_key_algs="default")
        except (HostUnreachable, AuthenticationFailed):
            return
        conn.close()
        with contextlib.suppress(OSError, asyncssh.Error):
            await conn.wait_closed()

    def known_hosts_files(self) -> list[Path]:
        """The known_hosts files this host's key is checked against; the first is written.

        The host's ``known_hosts``, else UserKnownHostsFile (and GlobalKnownHostsFile) from
        the OpenSSH client config, else ~/.ssh/known_hosts.
        """
        if self.config.known_hosts is not None:
            return [Path(self.config.known_hosts).expanduser()]
        try:
            parsed = asyncssh.SSHClientConnectionOptions(
                host=self.config.hostname,
                port=self.config.port or (),
                username=self.config.user or (),
                config=[str(self._ssh_config)] if self._ssh_config is not None else (),
                client_keys=None,
                agent_path=None,
            ).known_hosts
        except (OSError, ValueError, asyncssh.Error):
            parsed = None  # connecting reports the broken config
        if isinstance(parsed, list | tuple) and parsed:
            return [Path(str(name)).expanduser() for name in parsed]
        return [Path("~/.ssh/known_hosts").expanduser()]

    def known_hosts_path(self) -> Path:
        """The known_hosts file a trusted key is recorded in."""
        return self.known_hosts_files()[0]

    def _lost(self, client: _Client, exc: Exception | None) -> None:
        if client is not self._client or self._conn is None:
            return  # a connection that never became (or no longer is) the current one
        self._conn = None
        self._drop_bulk()
        if self._closed:
            return
        reason = f"connection lost: {exc}" if exc else "connection closed by the host"
        logger.warning("host %s: %s; reconnecting", self.name, reason)
        self._set_status(HostState.RECONNECTING, reason, next_attempt_at=datetime.now(UTC))
        self._connecting = asyncio.get_running_loop().create_task(
            self._connect_with_retry(attempts=self.retry.max_attempts)
        )
        self._connecting.add_done_callback(_consume)

    async def close(self) -> None:
        """Close the connection and stop reconnecting."""
        self._closed = True
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, CosmosError):
                await self._connecting
        conn, self._conn = self._conn, None
        bulk = self._drop_bulk()
        if conn is not None:
            conn.close()
            with contextlib.suppress(OSError, asyncssh.Error):
                await conn.wait_closed()
        if bulk is not None:
            with contextlib.suppress(OSError, asyncssh.Error):
                await bulk.wait_closed()
        self._set_status(HostState.DOWN, "closed")

    # host keys ---------------------------------------------------------------------------

    async def host_key(self) -> HostKeyInfo:
        """Fetch the host's key and say whether known_hosts trusts it (no login needed).

        Raises:
            HostUnreachable: When the host cannot be reached.

        """
        for extra in ({}, {"server_host_key_algs": "default"}):
            client = _Client(lambda exc: None)
            try:
                conn = await self._create(client, **extra)
            except HostKeyUnknown as exc:
                if client.rejected is None:
                    raise
                host, _, port, key = client.rejected
                return key_info(host, port, key, self.known_hosts_path(), changed=exc.changed)
            except AuthenticationFailed:
                break
            except HostUnreachable as exc:
                # Retried asking for every key type: see _raise_if_key_of_other_type.
                if extra or not _cut_in_handshake(exc, client):
                    raise
            else:
                conn.close()
                with contextlib.suppress(OSError, asyncssh.Error):
                    await conn.wait_closed()
                break
        return HostKeyInfo(
            self.config.hostname,
            self.config.port,
            "",
            "",
            self.known_hosts_path(),
            trusted=True,
            changed=False,
        )

    # commands ----------------------------------------------------------------------------

    async def run(
        self,
        argv: list[str],
        *,
        timeout: float | None = None,
        check: bool = True,
        input_text: str | None = None,
        slotted: asyncio.Event | None = None,
        leave_free: int = 0,
    ) -> CommandResult:
        """Run ``argv`` on the host and collect its output.

        Args:
            argv: Program and arguments; joined with ``shlex.join``, never interpolated.
            timeout: Seconds before the command is abandoned; None uses the configured one.
            check: Raise when the exit status is not 0.
            input_text: Sent to the command's standard input.
            slotted: Set once the command holds its session slot (a caller that is
                about to take a slot of its own waits for this first: see
                ``SftpTransfers.download``).
            leave_free: Start only while this many slots stay free for others (see
                ``session_slot``).

        Raises:
            RemoteCommandFailed: Non-zero exit (with ``check``) or timeout.
            HostUnreachable: The connection cannot be opened or drops.

        """
        limit = self.timeouts.command if timeout is None else timeout
        command = shlex.join(argv)
        conn = await self._connection()
        await self._room(leave_free)
        async with self._slot():
            if slotted is not None:
                slotted.set()
            started = time.monotonic()
            async with _translate(self.name, argv=argv):
                process = await open_process(conn, command, encoding=None)
                if not input_text:  # communicate() sends EOF only after some input
                    process.stdin.write_eof()
                try:
                    stdout, stderr = await asyncio.wait_for(
                        process.communicate(input_text.encode() if input_text else None), limit
                    )
                except TimeoutError:
                    stop_process(process)
                    raise CommandTimedOut(self.name, argv) from None
                finally:
                    process.close()
        duration = time.monotonic() - started
        status = process.exit_status
        if status is None:
            if process.exit_signal is None and self._conn is not conn:
                raise HostUnreachable(self.name, f"connection lost while running {argv[0]}")
            status = -1
        result = CommandResult(
            tuple(argv),
            status,
            (stdout or b"").decode("utf-8", "replace"),
            (stderr or b"").decode("utf-8", "replace"),
            duration,
        )
        self._status = HostStatus(
            self.name,
            self._status.state,
            self._status.reason,
            self._status.next_attempt_at,
            round(duration * 1000, 2),
        )
        if check and status != 0:
            raise RemoteCommandFailed(self.name, argv, status, result.stderr[-STDERR_TAIL_CHARS:])
        return result

    @contextlib.asynccontextmanager
    async def stream(self, argv: list[str]) -> AsyncIterator[LineStream]:
        """Run a long-lived command and read its output line by line.

        Usage: ``async with host.stream(argv) as lines: async for line in lines: ...``.
        Leaving the block closes the channel. Holds one session slot while open.
        """
        conn = await self._connection()
        async with self._slot():
            async with _translate(self.name, argv=argv):
                process = await open_process(
                    conn, shlex.join(argv), encoding="utf-8", errors="replace"
                )
            stream = LineStream(
                self.name,
                argv,
                process,
                lambda: self._conn is conn,
                lambda: _translate(self.name, argv=argv),
            )
            try:
                yield stream
            finally:
                stream.close()

    async def channel(self) -> asyncssh.SSHClientConnection:
        """Return the open connection (for the SFTP and Docker modules of this package)."""
        return await self._connection()

    async def bulk_channel(self) -> asyncssh.SSHClientConnection | None:
        """Return a second connection for the extra channels of large transfers, or None.

        One connection carries at most MaxSessions (10 on OpenSSH) channels, and sshd
        grants each upload channel a 2 MiB window: on a long, fast path a large transfer
        needs more windows in flight than one connection holds (docs/remote.md). This
        one is opened on first use, with the same options and host key checks as the
        main one, and lives as long as it: it is closed when the main connection is lost
        or closed. It never changes the host's state; when it cannot be opened (a host
        that limits connections, say) transfers go on without it until the main
        connection is made again.
        """
        conn = await self._connection()
        if self._bulk is None or self._bulk[0] != self.generation:
            self._drop_bulk()
            self._bulk = (self.generation, asyncio.ensure_future(self._open_bulk(conn)))
        bulk = await asyncio.shield(self._bulk[1])
        return None if bulk is None or bulk.is_closed() else bulk

    def warm_bulk(self) -> None:
        """Start opening the bulk connection now, in the background, if it is not open.

        A large transfer calls this as soon as it knows it will send or fetch (before
        its own session and checks), so the second connection's handshake overlaps them
        instead of following them: at 150 ms it joined a 1 GiB upload about 1.4 s later
        when it was asked for only once the transfer's sessions had opened. Does nothing
        while the main connection is not open (``bulk_channel`` opens it then).
        """
        conn = self._conn
        if conn is None or conn.is_closed() or self._closed:
            return
        if self._bulk is None or self._bulk[0] != self.generation:
            self._drop_bulk()
            self._bulk = (self.generation, asyncio.ensure_future(self._open_bulk(conn)))

    async def _open_bulk(
        self, main: asyncssh.SSHClientConnection
    ) -> asyncssh.SSHClientConnection | None:
        client = _Client(lambda exc: None)
        try:
            bulk = await self._create(client)
        except (HostKeyUnknown, AuthenticationFailed) as exc:
            logger.warning("host %s: second connection refused: %s", self.name, exc)
            return None
        except CosmosError as exc:
            logger.info("host %s: no second connection for transfers: %s", self.name, exc)
            return None
        if main.is_closed() or self._closed:
            bulk.close()
            return None
        return bulk

    def _drop_bulk(self) -> asyncssh.SSHClientConnection | None:
        """Forget the bulk connection and close it; return it (to wait for its close)."""
        if self._bulk is None:
            return None
        _, opening = self._bulk
        self._bulk = None
        if not opening.done():
            opening.cancel()
            opening.add_done_callback(_consume)
            return None
        bulk = None if opening.cancelled() or opening.exception() else opening.result()
        if bulk is not None:
            bulk.close()
        return bulk

    @contextlib.asynccontextmanager
    async def bulk_session_slot(self) -> AsyncIterator[bool]:
        """Hold one of the bulk connection's session slots if one is free now."""
        if self._bulk_sessions.locked():
            yield False
            return
        async with self._bulk_sessions:
            yield True

    def translating(self, argv: list[str]) -> contextlib.AbstractAsyncContextManager[None]:
        """Translate asyncssh errors of raw channel use (this package's Docker bridge)."""
        return _translate(self.name, argv=argv)

    @contextlib.asynccontextmanager
    async def session_slot(self, leave_free: int = 0) -> AsyncIterator[None]:
        """Hold one of the connection's session slots (SFTP and sudo bridges use one).

        Args:
            leave_free: Wait until taking one leaves this many free for others (a
                download's own session: commands, log follows and telemetry still start
                while several downloads run). Callers already queued for a slot may
                still take those.
        """
        await self._room(leave_free)
        async with self._slot():
            yield

    async def _room(self, leave_free: int) -> None:
        """Wait until taking a slot leaves ``leave_free`` free (never more than 6 of 8)."""
        leave_free = min(leave_free, self._max_sessions - 2)
        while self._max_sessions - self._slots_held <= leave_free:
            await self._slot_freed.wait()

    @contextlib.asynccontextmanager
    async def spare_session_slot(self, leave_free: int = 0) -> AsyncIterator[bool]:
        """Hold a session slot if one is free now, without waiting for one.

        For optional helpers of work that already holds a slot: waiting there could
        deadlock with other such work. Yields True while holding a slot, False when none
        was free (nothing is held then).

        Args:
            leave_free: Take a slot only while this many more stay free for others
                (a large upload's extra channels leave room for telemetry and logs).
        """
        if self._sessions.locked() or self._max_sessions - self._slots_held <= leave_free:
            yield False
            return
        async with self._slot():
            yield True

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        """Hold one session slot, waiting for one; counted for ``spare_session_slot``."""
        async with self._sessions:
            self._slots_held += 1
            try:
                yield
            finally:
                self._slots_held -= 1
                freed, self._slot_freed = self._slot_freed, asyncio.Event()
                freed.set()


def _cut_in_handshake(exc: HostUnreachable, client: _Client) -> bool:
    """True when the host hung up before showing a key (it may lack the known types)."""
    hung_up = (asyncssh.DisconnectError, ConnectionResetError, BrokenPipeError)
    return client.rejected is None and isinstance(exc.__cause__, hung_up)


def _consume(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


@contextlib.asynccontextmanager
async def _translate(
    host: str,
    argv: list[str] | None = None,
    client: _Client | None = None,
    known_hosts: list[Path] | None = None,
    target: str | None = None,
) -> AsyncIterator[None]:
    """Turn asyncssh and socket errors into the project's errors (the one place).

    ``target`` (``hostname[:port]``) is given while connecting: connection errors then
    name it and say what to check.
    """
    try:
        yield
    except CosmosError:
        raise
    except asyncssh.HostKeyNotVerifiable as exc:
        if client is None or client.rejected is None:
            # Not this host's key: a ProxyJump host's (or a revoked key or certificate),
            # which 'cosmos host trust' cannot record.
            unknown = HostKeyUnknown(host, "unknown")
            unknown.message = (
                f"{exc.reason} on the way to {host} (a ProxyJump host, or a revoked key): "
                "verify that host's key and record it, e.g. by connecting to it once with ssh"
            )
            unknown.args = (unknown.message,)
            raise unknown from exc
        name, addr, port, key = client.rejected
        changed = any(has_other_key(path, name, addr, port) for path in known_hosts or ())
        raise HostKeyUnknown(host, key.get_fingerprint("sha256"), changed=changed) from exc
    except asyncssh.PermissionDenied as exc:
        raise AuthenticationFailed(host, exc.reason or "permission denied") from exc
    except asyncssh.ChannelOpenError as exc:
        raise HostUnreachable(host, f"cannot open a channel: {exc.reason}") from exc
    except (asyncssh.ConnectionLost, asyncssh.DisconnectError) as exc:
        if "too many authentication failures" in str(exc.reason).lower():
            raise AuthenticationFailed(
                host,
                "it hung up after too many keys were offered (ssh-agent may hold many); "
                "'IdentitiesOnly yes' for this host in ~/.ssh/config offers only its key",
            ) from exc
        raise HostUnreachable(host, f"connection lost: {exc.reason}") from exc
    except asyncssh.Error as exc:
        raise HostUnreachable(host, str(exc.reason)) from exc
    except TimeoutError as exc:
        where = f" to {target}" if target else ""
        raise HostUnreachable(
            host, f"timed out connecting{where}: is the host up and is 'port' its SSH port?"
        ) from exc
    except socket.gaierror as exc:
        raise HostUnreachable(
            host,
            f"cannot resolve {target or host} ({exc.strerror}): check 'hostname' "
            "for this host in the config (or its HostName in ~/.ssh/config)",
        ) from exc
    except ConnectionRefusedError as exc:
        raise HostUnreachable(
            host,
            f"{target or host} refused the connection: is sshd running there and is 'port' right?",
        ) from exc
    except (OSError, ValueError) as exc:
        if argv is not None and isinstance(exc, BrokenPipeError):
            raise HostUnreachable(host, f"connection lost while running {argv[0]}") from exc
        strerror = exc.strerror if isinstance(exc, OSError) else None  # ValueError has none
        raise HostUnreachable(host, strerror or str(exc)) from exc
