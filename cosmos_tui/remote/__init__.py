"""The remote host layer: SSH commands, SFTP, Docker over SSH, GPU telemetry, status.

Public API (see docs/remote.md): :class:`HostPool` (what the facade owns), the
:class:`RemoteHost` it hands out and the frozen dataclasses those return. Only this
package imports asyncssh and aiodocker; nothing from them crosses its boundary.

The names are imported lazily so that importing this package (for HostPool) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cosmos_tui.remote.docker import (
        ContainerInfo,
        ContainerSpec,
        DockerClient,
        DockerVersion,
        Mount,
    )
    from cosmos_tui.remote.host import RemoteHost
    from cosmos_tui.remote.pool import HostPool, RemoteHostFactory, default_remote_factory
    from cosmos_tui.remote.sftp import DownloadResult, RemoteEntry, UploadResult
    from cosmos_tui.remote.ssh import CommandResult, HostKeyInfo

_EXPORTS = {
    "HostPool": "pool",
    "RemoteHostFactory": "pool",
    "default_remote_factory": "pool",
    "RemoteHost": "host",
    "CommandResult": "ssh",
    "HostKeyInfo": "ssh",
    "trust_host_key": "ssh",
    "UploadResult": "sftp",
    "DownloadResult": "sftp",
    "RemoteEntry": "sftp",
    "ContainerSpec": "docker",
    "ContainerInfo": "docker",
    "DockerClient": "docker",
    "DockerVersion": "docker",
    "Mount": "docker",
    "GpuTelemetry": "gpu",
    "GpuState": "gpu",
    "parse_gpu_line": "gpu",
    "HostReport": "status",
    "collect_status": "status",
}

__all__ = [
    "CommandResult",
    "ContainerInfo",
    "ContainerSpec",
    "DockerClient",
    "DockerVersion",
    "DownloadResult",
    "GpuState",
    "GpuTelemetry",
    "HostKeyInfo",
    "HostPool",
    "HostReport",
    "Mount",
    "RemoteEntry",
    "RemoteHost",
    "RemoteHostFactory",
    "UploadResult",
    "collect_status",
    "default_remote_factory",
    "parse_gpu_line",
    "trust_host_key",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"cosmos_tui.remote.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'cosmos_tui.remote' has no attribute {name!r}")
