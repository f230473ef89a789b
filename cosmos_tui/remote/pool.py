"""The pool of configured hosts that the service facade owns.

Creating the pool is free: it imports no SSH library and connects nothing. A host's
:class:`~cosmos_tui.remote.host.RemoteHost` is made by an injectable factory on first
``get`` and connects on first use; ``aclose`` closes every host that was made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from cosmos_tui.config import Config, HostConfig
from cosmos_tui.owner import installation_owner

if TYPE_CHECKING:
    from cosmos_tui.remote.host import RemoteHost


class RemoteHostFactory(Protocol):
    """Makes the RemoteHost of one configured host (tests and the sandbox inject theirs)."""

    def __call__(self, host: HostConfig, config: Config) -> RemoteHost:
        """Return an unconnected RemoteHost for ``host``."""
        ...


def default_remote_factory(host: HostConfig, config: Config) -> RemoteHost:
    """Make a real RemoteHost (asyncssh + aiodocker) from the configuration."""
    # lazy: asyncssh and aiodocker (~300 ms) load with the first host, not with the services
    from cosmos_tui.remote.host import RemoteHost

    return RemoteHost(
        host,
        timeouts=config.timeouts,
        retry=config.retry,
        gpu_interval_ms=config.ui.gpu_interval_ms,
    )


class HostPool:
    """The configured hosts, made lazily.

    Args:
        config: The configuration (its ``hosts`` list is the pool).
        factory: Makes one RemoteHost; defaults to :func:`default_remote_factory`.

    """

    def __init__(
        self, config: Config, factory: RemoteHostFactory | Callable[..., RemoteHost] | None = None
    ) -> None:
        self._config = config
        self._factory = factory or default_remote_factory
        self._hosts: dict[str, RemoteHost] = {}
        self._owner: str | None = None

    @property
    def names(self) -> list[str]:
        """Names of every configured host, in config order."""
        return [host.name for host in self._config.hosts]

    def get(self, name: str) -> RemoteHost:
        """Return the host called ``name`` (made on first call, not connected).

        Raises:
            ConfigError: When no host has that name.

        """
        if name not in self._hosts:
            host = self._factory(self._config.host(name), self._config)
            if getattr(getattr(host, "docker", None), "owner", "") is None:
                host.docker.owner = self.owner
            self._hosts[name] = host
        return self._hosts[name]

    @property
    def owner(self) -> str:
        """This installation's owner id (see :mod:`cosmos_tui.owner`), made on first use."""
        if self._owner is None:
            self._owner = installation_owner(self._config.data_dir)
        return self._owner

    def opened(self) -> list[RemoteHost]:
        """The hosts made so far."""
        return list(self._hosts.values())

    async def aclose(self) -> None:
        """Close every host that was made."""
        hosts, self._hosts = list(self._hosts.values()), {}
        await asyncio.gather(*(host.close() for host in hosts), return_exceptions=True)
