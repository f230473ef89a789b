"""A local TCP port forwarded over a host's managed SSH connection (a Ray dashboard's).

The forward lives on the host's one asyncssh connection (like the Docker socket's). When
that connection drops and is made again, the next :meth:`PortTunnel.address` opens a new
forward: callers ask for the address before each call, so a cut tunnel costs one failed
call, and the Jobs API log stream resumes from its cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from cosmos_tui.errors import ClusterUnreachable, CosmosError

if TYPE_CHECKING:
    from cosmos_tui.remote.ssh import SshHost

logger = logging.getLogger(__name__)


class PortTunnel:
    """A free local port forwarded to ``target_host:target_port`` as the SSH host sees it.

    Args:
        cluster: The cluster it serves (for messages).
        ssh: The host's managed SSH connection.
        target_port: The port to reach (the dashboard's, on the head).
        target_host: The address the SSH host connects to (itself by default).

    """

    def __init__(
        self, cluster: str, ssh: SshHost, target_port: int, target_host: str = "127.0.0.1"
    ) -> None:
        self.cluster = cluster
        self.ssh = ssh
        self.target_host = target_host
        self.target_port = target_port
        self._listener: Any = None
        self._generation = -1
        self._lock = asyncio.Lock()

    async def address(self) -> str:
        """Return the dashboard URL through the tunnel, opening it (again) when needed.

        Raises:
            ClusterUnreachable: When the SSH host or the forward cannot be reached.

        """
        async with self._lock:
            try:
                conn = await self.ssh.channel()
                if self._listener is None or self._generation != self.ssh.generation:
                    self._close()
                    self._listener = await conn.forward_local_port(
                        "127.0.0.1", 0, self.target_host, self.target_port
                    )
                    self._generation = self.ssh.generation
                    logger.info(
                        "cluster %s: dashboard %s:%d through %s on local port %d",
                        self.cluster,
                        self.target_host,
                        self.target_port,
                        self.ssh.name,
                        self._listener.get_port(),
                    )
            except CosmosError as exc:
                raise ClusterUnreachable(self.cluster, f"SSH tunnel: {exc.message}") from exc
            except OSError as exc:  # the local listener (channel errors come per call)
                raise ClusterUnreachable(self.cluster, f"SSH tunnel: {exc}") from exc
            return f"http://127.0.0.1:{self._listener.get_port()}"

    def _close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):  # the connection may be gone already
                self._listener.close()
            self._listener = None

    async def close(self) -> None:
        """Stop forwarding (the SSH connection stays the host's)."""
        async with self._lock:
            self._close()


__all__ = ["PortTunnel"]
