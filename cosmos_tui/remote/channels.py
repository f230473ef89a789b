"""SSH channels: opening them under sshd's session limit, and reading long-lived ones.

Exceptions are translated by the caller's translator (passed in), so that asyncssh errors
are still turned into the project's errors in one place (``cosmos_tui.remote.ssh``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import asyncssh

from cosmos_tui.errors import HostUnreachable

STDERR_TAIL_CHARS = 2000
OPEN_RETRIES = 6


class LineStream:
    """Lines of a long-lived remote command; see :meth:`SshHost.stream`."""

    def __init__(
        self,
        host: str,
        argv: list[str],
        process: asyncssh.SSHClientProcess[str],
        alive: Callable[[], bool],
        translate: Callable[[], AbstractAsyncContextManager[None]],
    ) -> None:
        self._host = host
        self._argv = argv
        self._process = process
        self._alive = alive
        self._translate = translate
        self._stderr: list[str] = []
        self._stderr_task = asyncio.get_running_loop().create_task(self._read_stderr())

    async def _read_stderr(self) -> None:
        with contextlib.suppress(asyncssh.Error, OSError):
            async for line in self._process.stderr:
                self._stderr.append(line)
                del self._stderr[:-50]

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        async with self._translate():
            while line := await self._process.stdout.readline():
                yield line.rstrip("\r\n")
        if not self._alive():
            raise HostUnreachable(self._host, f"connection lost while running {self._argv[0]}")

    @property
    def stderr_tail(self) -> str:
        """The last lines the command wrote to standard error."""
        return "".join(self._stderr)[-STDERR_TAIL_CHARS:]

    async def wait(self) -> int | None:
        """Wait for the command to exit and return its status (None if unknown)."""
        with contextlib.suppress(asyncssh.Error, OSError):
            await self._process.wait_closed()
        # asyncio.wait, not awaiting the task: the reader may have been cancelled by
        # close(), and suppressing that CancelledError would swallow a cancel of our own.
        await asyncio.wait([self._stderr_task])
        return self._process.exit_status

    def close(self) -> None:
        """Ask the remote command to stop (SIGTERM) and close the channel."""
        if self._process.exit_status is None:
            stop_process(self._process)
        self._process.close()
        self._stderr_task.cancel()


def stop_process(process: asyncssh.SSHClientProcess[Any]) -> None:
    """Send SIGTERM over the channel (OpenSSH >= 7.9 delivers it) and close it."""
    with contextlib.suppress(asyncssh.Error, OSError):
        process.send_signal("TERM")
    process.close()


async def open_process(
    conn: asyncssh.SSHClientConnection, command: str, **kwargs: Any
) -> asyncssh.SSHClientProcess[Any]:
    """Open a session channel, retrying briefly when sshd still counts closed sessions.

    sshd frees a closed session's slot a moment after the close, so a new channel opened
    right away can be refused with "open failed" although fewer than MaxSessions are open.
    """
    for attempt in range(OPEN_RETRIES):
        try:
            return await conn.create_process(command, **kwargs)
        except asyncssh.ChannelOpenError:
            if attempt == OPEN_RETRIES - 1 or conn.is_closed():
                raise
            await asyncio.sleep(0.02 * (attempt + 1))
    raise AssertionError("unreachable")


async def open_sftp(conn: asyncssh.SSHClientConnection) -> asyncssh.SFTPClient:
    """Start an SFTP session, retrying briefly as :func:`open_process` does.

    Several uploads at once open and close sessions quickly (their extra channels, their
    hash streams): a session sshd still counts after its close would refuse the next one.
    """
    for attempt in range(OPEN_RETRIES):
        try:
            return await conn.start_sftp_client()
        except asyncssh.ChannelOpenError:
            if attempt == OPEN_RETRIES - 1 or conn.is_closed():
                raise
            await asyncio.sleep(0.02 * (attempt + 1))
    raise AssertionError("unreachable")
