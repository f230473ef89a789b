"""Small remote file operations over SFTP, and the translation of SFTP errors.

The parts of :class:`~cosmos_tui.remote.sftp.SftpTransfers` that are not transfers: the
home folder (from SFTP, never from a shell's stdout), listings that report each entry's
own type (a symlink is a symlink), and small reads and writes that never follow a planted
link. Every asyncssh SFTP exception is translated in :func:`translate`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, cast

import asyncssh

from cosmos_tui.errors import CosmosError, TransferFailed
from cosmos_tui.remote.sftp_io import ensure_dir, stat_or_none

if TYPE_CHECKING:
    from cosmos_tui.remote.ssh import SshHost

PART_SUFFIX = ".part"


@dataclass(frozen=True)
class RemoteEntry:
    """One entry of a remote directory listing, as the host reports it (untrusted).

    Attributes:
        name: The name as listed (may be anything: check it before use).
        size: Bytes (of the entry itself: a symlink's own size, not its target's).
        is_dir: A real directory (not a symlink to one).
        mtime: Modification time.
        kind: ``file``, ``dir``, ``symlink`` or ``special`` (devices, FIFOs, sockets).

    """

    name: str
    size: int
    is_dir: bool
    mtime: float | None
    kind: str = "file"


_KINDS = {
    asyncssh.FILEXFER_TYPE_REGULAR: "file",
    asyncssh.FILEXFER_TYPE_DIRECTORY: "dir",
    asyncssh.FILEXFER_TYPE_SYMLINK: "symlink",
}


def _entry(name: object, attrs: asyncssh.SFTPAttrs) -> RemoteEntry:
    kind = _KINDS.get(attrs.type, "special")
    if attrs.type == asyncssh.FILEXFER_TYPE_UNKNOWN and attrs.permissions is not None:
        kind = {0o100000: "file", 0o040000: "dir", 0o120000: "symlink"}.get(
            attrs.permissions & 0o170000, "special"
        )
    return RemoteEntry(
        name=name if isinstance(name, str) else repr(name),
        size=int(attrs.size or 0),
        is_dir=kind == "dir",
        mtime=attrs.mtime,
        kind=kind,
    )


class RemoteFiles:
    """Small file operations; mixed into SftpTransfers (which supplies ``_shared_session``)."""

    _ssh: SshHost
    _home: str | None

    def _shared_session(
        self, doing: str
    ) -> contextlib.AbstractAsyncContextManager[asyncssh.SFTPClient]:
        """The connection's long-lived SFTP session, errors translated (SftpTransfers)."""
        raise NotImplementedError

    async def home(self) -> str:
        """Return the login user's home on the host, as SFTP resolves ``.``.

        Never taken from a shell's stdout: a login greeting (a ``~/.bashrc`` that echoes)
        would end up in every remote path.

        Raises:
            TransferFailed: The host answers with something that is not an absolute path.

        """
        if self._home is None:
            async with self._shared_session("finding the home") as sftp:
                home = await sftp.realpath(".")
            if not isinstance(home, str) or not home.startswith("/") or "\n" in home:
                raise TransferFailed(
                    f"{self._ssh.name} reports {home!a} as the home folder, not an "
                    "absolute path; set remote_tool_dir to an absolute path"
                )
            self._home = home
        return self._home

    async def listdir(self, remote_dir: str) -> list[RemoteEntry]:
        """List a remote directory (without . and ..); a missing one lists as empty."""
        async with self._shared_session(f"listing {remote_dir}") as sftp:
            try:
                entries = await sftp.readdir(remote_dir)
            except asyncssh.SFTPNoSuchFile:
                return []
        return sorted(
            (_entry(entry.filename, entry.attrs) for entry in entries
             if entry.filename not in (".", "..")),
            key=lambda e: e.name,
        )  # fmt: skip

    async def kind(self, remote_path: str) -> str | None:
        """``file``, ``dir``, ``symlink`` or ``special`` (not following links); None: absent."""
        async with self._shared_session(f"looking at {remote_path}") as sftp:
            try:
                attrs = await sftp.lstat(remote_path)
            except asyncssh.SFTPNoSuchFile:
                return None
        return _entry(remote_path, attrs).kind

    async def is_dir(self, remote_path: str) -> bool:
        """True when ``remote_path`` is a folder on the host (following symlinks)."""
        async with self._shared_session(f"looking at {remote_path}") as sftp:
            attrs = await stat_or_none(sftp, remote_path)
        return attrs is not None and attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY

    async def remove(self, remote_path: str) -> None:
        """Remove a file (a symlink itself, never its target); a missing one is fine."""
        async with self._shared_session(f"removing {remote_path}") as sftp:
            with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                await sftp.remove(remote_path)

    async def read_text(self, remote_path: str, limit: int = 1024 * 1024) -> str | None:
        """Return a small remote text file (at most ``limit`` bytes); None when missing.

        Read over SFTP, never through a shell's stdout (a login greeting would be in it).
        Only a regular file is read: a symlink, FIFO or device (planted by a container) is
        treated as missing (a FIFO would never end).
        """
        async with self._shared_session(f"reading {remote_path}") as sftp:
            try:
                if _entry(remote_path, await sftp.lstat(remote_path)).kind != "file":
                    return None
                async with sftp.open(remote_path, "rb") as handle:
                    # asyncssh types read() as a bare AnyStr; a file opened "rb" reads bytes.
                    data = cast(bytes, await handle.read(limit))
            except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPPermissionDenied):
                return None
        return bytes(data).decode("utf-8", "replace")

    async def makedirs(self, remote_dir: str) -> None:
        """Create a remote directory and its parents."""
        async with self._shared_session(f"creating {remote_dir}") as sftp:
            await ensure_dir(sftp, remote_dir)

    async def write_text(self, remote_path: str, text: str) -> None:
        """Write a small text file on the host (via ``.part`` and rename)."""
        part = remote_path + PART_SUFFIX
        async with self._shared_session(f"writing {remote_path}") as sftp:
            # A .part left there may be a symlink planted by a container: remove the link
            # itself, then create the file exclusively, so nothing is written through one.
            # The folder check and the removal go out together (one round trip fewer).
            await asyncio.gather(
                ensure_dir(sftp, str(PurePosixPath(remote_path).parent)), _remove_if_any(sftp, part)
            )
            handle = await sftp.open(part, "xb")
            try:
                await handle.write(text.encode())
            except BaseException:
                await handle.close()
                raise
            # sftp-server handles one channel's requests in order: the rename follows the
            # close without waiting for its answer.
            await asyncio.gather(handle.close(), sftp.posix_rename(part, remote_path))


async def _remove_if_any(sftp: asyncssh.SFTPClient, path: str) -> None:
    with contextlib.suppress(asyncssh.SFTPNoSuchFile):
        await sftp.remove(path)


@contextlib.asynccontextmanager
async def _translate(host: str, doing: str) -> AsyncIterator[None]:
    """Turn SFTP and local I/O errors into TransferFailed (the one place)."""
    try:
        yield
    except CosmosError:
        raise
    except (asyncssh.SFTPConnectionLost, asyncssh.SFTPNoConnection) as exc:
        raise TransferFailed(
            f"{doing} on {host} was interrupted ({exc.reason}); retry to resume", transient=True
        ) from exc
    except asyncssh.SFTPError as exc:
        raise TransferFailed(f"{doing} on {host} failed: {exc.reason}") from exc
    except (asyncssh.ConnectionLost, asyncssh.DisconnectError, asyncssh.ChannelOpenError) as exc:
        raise TransferFailed(
            f"{doing} on {host} was interrupted ({exc.reason}); retry to resume", transient=True
        ) from exc
    except (BrokenPipeError, ConnectionError) as exc:
        raise TransferFailed(
            f"{doing} on {host} was interrupted; retry to resume", transient=True
        ) from exc
    except OSError as exc:
        # SFTP reports the host's failures as SFTPError: an OSError here is this machine's.
        where = f" ({exc.filename})" if exc.filename else ""
        raise TransferFailed(
            f"{doing} failed on this machine, not on {host}: {exc.strerror or exc}{where}; "
            "check that path, its permissions and free space"
        ) from exc


translate = _translate
