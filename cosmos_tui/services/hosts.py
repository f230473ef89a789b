"""Hosts for the TUI's Hosts screen: what ``cosmos host ...`` and ``cosmos doctor`` do.

List, add, edit and remove ``[[hosts]]`` entries of the config file (comments kept,
validated before writing: config_hosts.py), ask a new host for its key (trusted only
after the user said so), discover its Docker socket and access, GPUs, model checkout
and checkpoints, and run the doctor on several hosts at once. What talks to a host goes
through a :class:`HostProbe`, injected so the screen's tests need no host.

The running session keeps the hosts it started with (its connections, monitors and
queue); a change here applies to runs from the next start of the TUI or CLI.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cosmos_tui.config import Config, HostConfig, RetryConfig, default_config_path, load_config
from cosmos_tui.config_hosts import NAME_PATTERN, add_host, edit_host, remove_host
from cosmos_tui.errors import ConfigError, ValidationError

if TYPE_CHECKING:
    from cosmos_tui.doctor.model import DoctorReport
    from cosmos_tui.remote.discover import HostFacts
    from cosmos_tui.remote.host import RemoteHost
    from cosmos_tui.remote.hostkeys import HostKeyInfo


class HostProbe(Protocol):
    """What the Hosts screen asks hosts (the real one connects over SSH)."""

    async def host_key(self, config: Config, host: HostConfig) -> HostKeyInfo:
        """The key the host presents, and whether known_hosts trusts it."""
        ...

    async def discover(self, config: Config, host: HostConfig) -> HostFacts:
        """Docker socket and access, GPUs, checkout and checkpoints of a trusted host."""
        ...

    async def doctor(
        self, config: Config, names: Sequence[str], profile: str, only: frozenset[str] | None
    ) -> list[DoctorReport]:
        """The doctor's reports of the hosts ``names`` (checked at once)."""
        ...


class SshProbe:
    """The real :class:`HostProbe`: one short-lived connection per question."""

    @staticmethod
    def _remote(config: Config, host: HostConfig) -> RemoteHost:
        # lazy: asyncssh and aiodocker (~300 ms) load on the first question, not with the screen
        from cosmos_tui.remote import RemoteHost

        return RemoteHost(host, config.timeouts, RetryConfig(max_attempts=1))

    async def host_key(self, config: Config, host: HostConfig) -> HostKeyInfo:
        """Connect far enough to see the host's key."""
        remote = self._remote(config, host)
        try:
            return await remote.host_key()
        finally:
            await remote.close()

    async def discover(self, config: Config, host: HostConfig) -> HostFacts:
        """Ask the host what ``cosmos host add`` asks it."""
        # lazy: pulls asyncssh and aiodocker (see _remote)
        from cosmos_tui.remote.discover import discover

        remote = self._remote(config, host)
        try:
            return await discover(
                remote, host_field(host, "docker_socket"), host_field(host, "remote_repo_dir")
            )
        finally:
            await remote.close()

    async def doctor(
        self, config: Config, names: Sequence[str], profile: str, only: frozenset[str] | None
    ) -> list[DoctorReport]:
        """Run the doctor on every named host at once."""
        # lazy: the doctor and RemoteHost pull asyncssh and aiodocker (see _remote)
        from cosmos_tui.doctor.runner import run_doctors
        from cosmos_tui.remote import RemoteHost

        remotes = [RemoteHost(config.host(n), config.timeouts, config.retry) for n in names]
        try:
            return await run_doctors(remotes, config, profile, only=only)
        finally:
            await asyncio.gather(*(r.close() for r in remotes), return_exceptions=True)


def host_field(host: HostConfig, name: str) -> Any:
    """A host's value of ``name`` when it differs from the default (else None)."""
    value = getattr(host, name)
    default = getattr(HostConfig(name=host.name, hostname=host.hostname), name)
    return None if value == default else value


def target_text(host: HostConfig) -> str:
    """``user@hostname:port`` as far as the entry says."""
    user = f"{host.user}@" if host.user else ""
    port = f":{host.port}" if host.port else ""
    return f"{user}{host.hostname}{port}"


class HostAdmin:
    """The hosts of one config file, and the doctor.

    Args:
        config: The configuration the session runs with (its ``source`` is the file).
        probe: Asks hosts; defaults to :class:`SshProbe`.

    """

    def __init__(self, config: Config, probe: HostProbe | None = None) -> None:
        self.config = config
        self.probe = probe or SshProbe()

    @property
    def path(self) -> Path:
        """The config file that is edited."""
        return self.config.source or default_config_path()

    def current(self) -> Config:
        """The config as the file says now (the session's when there is no file yet)."""
        if not self.path.exists():
            return self.config
        return load_config(self.path)

    async def hosts(self) -> tuple[HostConfig, ...]:
        """The configured hosts, read from the file."""
        return tuple((await asyncio.to_thread(self.current)).hosts)

    async def host_key(self, values: Mapping[str, Any]) -> HostKeyInfo:
        """The key of the host a form describes (nothing is written).

        Raises:
            ValidationError: The name is not usable or is taken.
            HostUnreachable: The host cannot be reached.
        """
        config = await asyncio.to_thread(self.current)
        host = self._new_host(config, values)
        return await self.probe.host_key(config, host)

    async def trust(self, info: HostKeyInfo) -> None:
        """Record a host key the user accepted (a changed key is refused)."""
        # lazy: remote.hostkeys pulls asyncssh (see SshProbe._remote)
        from cosmos_tui.remote.hostkeys import trust_host_key

        await asyncio.to_thread(trust_host_key, info)

    async def add(self, values: Mapping[str, Any]) -> tuple[HostConfig, HostFacts]:
        """Discover what the form left out, then write the host (its key must be trusted).

        Returns:
            The host as written, and what discovery found.
        """
        config = await asyncio.to_thread(self.current)
        host = self._new_host(config, values)
        facts = await self.probe.discover(config, host)
        chosen = {k: v for k, v in values.items() if v not in (None, "")}
        if facts.docker.socket and "docker_socket" not in chosen:
            chosen["docker_socket"] = facts.docker.socket
        if facts.docker.sudo and "docker_sudo" not in chosen:
            chosen["docker_sudo"] = True
        if facts.repo_dirs and "remote_repo_dir" not in chosen:
            chosen["remote_repo_dir"] = facts.repo_dirs[0]
        if "checkpoints_dir" not in chosen:
            # as `cosmos host add` does: the checkout's own folder unless one was found
            if facts.checkpoints_dirs:
                chosen["checkpoints_dir"] = facts.checkpoints_dirs[0]
            elif "remote_repo_dir" in chosen:
                chosen["checkpoints_dir"] = f"{chosen['remote_repo_dir']}/checkpoints"
        stamp = datetime.now(UTC).strftime("%Y-%m-%d")
        written = await asyncio.to_thread(
            add_host, self.path, chosen, f"added by the Hosts screen {stamp}"
        )
        return written.host(host.name), facts

    async def edit(self, name: str, changes: Mapping[str, Any]) -> HostConfig:
        """Set the given keys (None: back to the default); return the host as written."""
        written = await asyncio.to_thread(edit_host, self.path, name, dict(changes))
        return written.host(name)

    async def remove(self, name: str) -> None:
        """Remove the host from the config file (its runs and remote files stay)."""
        await asyncio.to_thread(remove_host, self.path, name)

    async def doctor(
        self, names: Sequence[str], profile: str = "transfer1", quick: bool = False
    ) -> list[DoctorReport]:
        """Run the doctor (``quick``: only the cheap checks) on the named hosts at once."""
        # lazy: doctor.runner pulls asyncssh and aiodocker (see SshProbe._remote)
        from cosmos_tui.doctor.runner import CHEAP_CHECKS, check_profile

        config = await asyncio.to_thread(self.current)
        check_profile(config, profile)
        for name in names:
            config.host(name)
        only = CHEAP_CHECKS if quick else None
        return await self.probe.doctor(config, list(names), profile, only)

    @staticmethod
    def _new_host(config: Config, values: Mapping[str, Any]) -> HostConfig:
        name = str(values.get("name") or "").strip()
        if not NAME_PATTERN.match(name):
            raise ValidationError(
                f"'{name}' cannot be a host name: use letters, digits, '.', '_' or '-' "
                "(at most 63, starting with a letter or digit)",
                field="name",
            )
        if any(h.name == name for h in config.hosts):
            raise ValidationError(
                f"a host named '{name}' exists already: edit it instead", field="name"
            )
        fields = {k: v for k, v in values.items() if v not in (None, "") and k != "name"}
        fields.setdefault("hostname", name)
        try:
            return dataclasses.replace(HostConfig(name=name, hostname=name), **fields)
        except TypeError as exc:
            raise ConfigError(f"unknown host setting: {exc}") from exc


def form_values(raw: Mapping[str, str]) -> dict[str, Any]:
    """A host form's text fields as config values (empty: not set; port a number).

    Raises:
        ValidationError: The port is not a number from 1 to 65535.
    """
    values: dict[str, Any] = {k: (v.strip() or None) for k, v in raw.items()}
    port = values.get("port")
    if port is not None:
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValidationError(f"port must be a number from 1 to 65535, not '{port}'", "port")
        values["port"] = int(port)
    return values
