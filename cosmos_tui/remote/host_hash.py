"""A sha256 that the host computes while a file is still arriving.

One process on the host hashes the file in order: each time the uploader learns that
more whole MiB blocks have been written, it tells the process (a line ``SKIP COUNT`` on
its standard input) and a ``dd`` of those blocks feeds the hasher's pipe. When the last
byte has been written, the rest of the file is fed and the digest is read back, so the
host's verification ends right after the transfer instead of one more read of the file
later.

This is an optimisation only: callers fall back to hashing the whole file on the host
when it yields nothing (channel gone, tool missing) or a digest that does not match.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shlex
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import asyncssh

from cosmos_tui.remote.channels import open_process, stop_process

if TYPE_CHECKING:
    from cosmos_tui.remote.ssh import SshHost

logger = logging.getLogger(__name__)

HASH_SETUP = (
    'if command -v openssl >/dev/null 2>&1; then H="openssl dgst -sha256 -r"; '
    "else H=sha256sum; fi; "
)
"""Shell that sets ``$H`` to the fastest sha256 tool on the host (openssl uses SHA-NI)."""

MIB = 1024 * 1024
FEED_BYTES = 8 * MIB
"""The host is told about written blocks in steps of at least this much (one dd each):
at most this much is left to hash when the last byte lands."""

_TO_END = 1 << 40
"""A block count that reads a file to its end."""

_FEEDER = (
    HASH_SETUP + '{ while read -r skip count; do dd if="$1" bs=1048576 skip="$skip" '
    'count="$count" 2>/dev/null || { echo dd-failed >&2; exit 1; }; done; } | $H'
)
"""A failing dd is reported on stderr: the digest then cannot be trusted (see digest())."""
_ANY_DIGEST = re.compile(r"\b[0-9a-f]{64}\b")
_DIGEST = re.compile(r"[0-9a-f]{64}")


class StreamedHostHash:
    """Feeds the written blocks of one file to a hashing process on the host."""

    def __init__(self, process: asyncssh.SSHClientProcess[Any] | None) -> None:
        self._process = process
        self._fed = 0

    def written(self, done: int) -> None:
        """Account for the first ``done`` bytes of the file being written on the host."""
        whole = done // MIB * MIB
        if self._process is not None and whole - self._fed >= FEED_BYTES:
            self._feed(whole // MIB - self._fed // MIB)
            self._fed = whole

    def _feed(self, blocks: int) -> None:
        assert self._process is not None
        try:
            self._process.stdin.write(f"{self._fed // MIB} {blocks}\n".encode())
        except (asyncssh.Error, OSError) as exc:
            logger.debug("host hash feed stopped: %s", exc)
            self._process = None

    async def digest(self, timeout: float) -> str | None:
        """Feed the rest of the file and return the host's sha256 of all of it.

        Args:
            timeout: Seconds to wait for the host to finish hashing.

        Returns:
            The hex digest, or None when the stream has none to give (never started,
            broken, a block that could not be read, or no answer in time).
        """
        process = self._process
        if process is None:
            return None
        self._feed(_TO_END)
        try:
            process.stdin.write_eof()
            output = await asyncio.wait_for(process.stdout.read(), timeout)
            errors = await asyncio.wait_for(process.stderr.read(), timeout)
            await asyncio.wait_for(process.wait_closed(), timeout)
        except (asyncssh.Error, OSError, TimeoutError) as exc:
            logger.debug("host hash stream gave no digest: %s", exc)
            return None
        found = last_digest(output.decode("ascii", "replace"))
        if process.exit_status != 0 or found is None or b"dd-failed" in errors:
            return None
        return found


def last_digest(output: str) -> str | None:
    """Return the last sha256 hex digest in a hashing command's output.

    The last one, not the first token: a login greeting (a ``~/.bashrc`` that echoes) may
    come before the command's own output.
    """
    found = _ANY_DIGEST.findall(output)
    return found[-1] if found else None


@contextlib.asynccontextmanager
async def streamed_host_sha256(ssh: SshHost, path: str) -> AsyncIterator[StreamedHostHash]:
    """Start hashing ``path`` on the host as it is written; closed when the block ends.

    When no session slot is free right now or the process cannot be started, the yielded
    hasher gives no digest (the caller hashes the whole file instead): the stream never
    makes a transfer wait or fail.

    Args:
        ssh: The host's connection.
        path: The remote file that is being written.

    Yields:
        The hasher to tell about written bytes and to ask for the digest.
    """
    argv = ["sh", "-c", _FEEDER, "sh", path]
    async with ssh.spare_session_slot() as held:
        process: asyncssh.SSHClientProcess[Any] | None = None
        try:
            if held:
                process = await open_process(await ssh.channel(), shlex.join(argv), encoding=None)
        except (asyncssh.Error, OSError) as exc:
            logger.debug("host hash stream not started on %s: %s", ssh.name, exc)
        try:
            yield StreamedHostHash(process)
        finally:
            if process is not None:
                stop_process(process)
