"""Host keys: what a host presented, and recording a trusted one in known_hosts.

A key is recorded only when the user says so (``cosmos host trust NAME``); a key that
differs from the recorded one is never replaced here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncssh

from cosmos_tui.errors import ConfigError, HostKeyUnknown


@dataclass(frozen=True)
class HostKeyInfo:
    """The key a host presented, and the known_hosts name it is recorded under."""

    host: str
    port: int | None
    fingerprint: str
    known_hosts_line: str
    known_hosts_path: Path
    trusted: bool
    changed: bool

    @property
    def pattern(self) -> str:
        """The host name as known_hosts records it (``[host]:port`` off port 22)."""
        if self.known_hosts_line:
            return self.known_hosts_line.split()[0]
        return self.host if self.port in (None, 22) else f"[{self.host}]:{self.port}"

    @property
    def key_type(self) -> str:
        """The key algorithm, e.g. ``ssh-ed25519``."""
        parts = self.known_hosts_line.split()
        return parts[1] if len(parts) > 1 else ""


def key_info(
    host: str, port: int | None, key: asyncssh.SSHKey, path: Path, changed: bool
) -> HostKeyInfo:
    """Describe an untrusted key and the known_hosts line that would trust it."""
    name = host if port in (None, 22) else f"[{host}]:{port}"
    public = key.export_public_key("openssh").decode().split()
    return HostKeyInfo(
        host=host,
        port=port,
        fingerprint=key.get_fingerprint("sha256"),
        known_hosts_line=f"{name} {public[0]} {public[1]}",
        known_hosts_path=path,
        trusted=False,
        changed=changed,
    )


def trust_host_key(info: HostKeyInfo) -> None:
    """Append the host's key to its known_hosts file.

    Raises:
        HostKeyUnknown: When known_hosts already holds a different key for the host
            (the user must remove the old entry first: a changed key is never replaced).
        ConfigError: When the known_hosts file cannot be written.

    """
    if info.changed:
        raise HostKeyUnknown(info.host, info.fingerprint, changed=True)
    if info.trusted:
        return
    try:
        info.known_hosts_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with info.known_hosts_path.open("a+b") as handle:
            # A last line without its newline would swallow the new entry.
            handle.seek(0, 2)
            if handle.tell() > 0:
                handle.seek(-1, 2)
                if handle.read(1) != b"\n":
                    handle.write(b"\n")
            handle.write(info.known_hosts_line.encode("ascii") + b"\n")
    except OSError as exc:
        raise ConfigError(
            f"cannot record the host key ({exc.strerror or exc}): make the file writable "
            "or set known_hosts for this host to a file that can be written",
            path=info.known_hosts_path,
        ) from exc


def has_other_key(path: Path | None, host: str, addr: str, port: int | None) -> bool:
    """Return True when known_hosts already holds a key for this host (so it changed)."""
    if path is None or not path.is_file():
        return False
    try:
        matched = asyncssh.match_known_hosts(str(path), host, addr, port if port != 22 else None)
    except (OSError, ValueError, asyncssh.Error):
        return False
    return bool(matched[0])
