"""Checks of host settings that are well-typed but unusable (an empty image, "lots" of shm).

Kept apart from :mod:`cosmos_tui.config_parse` (the generic builder) so each stays small.
"""

from __future__ import annotations

import re
from pathlib import Path

from cosmos_tui.config import HostConfig
from cosmos_tui.errors import ConfigError
from cosmos_tui.safe_text import one_line

# Host keys whose value must not be empty (the defaults are fine; "" is not).
HOST_REQUIRED_TEXT = (
    "name",
    "hostname",
    "remote_repo_dir",
    "checkpoints_dir",
    "remote_tool_dir",
    "docker_image",
    "docker_socket",
)
_SIZE = re.compile(r"(\d+(\.\d+)?)\s*([kmgt]?)b?", re.IGNORECASE)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Docker's --user: a name or uid, optionally :group or :gid (no spaces, no other colons).
_CONTAINER_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?")


def check_host_text(
    host: HostConfig, path: Path | None, shm_line: int | None, env_line: int | None
) -> None:
    """Check a host's shm_size and env names: mistakes here would only show at launch.

    Raises:
        ConfigError: Naming the host, the key and what a good value looks like.
    """
    size = _SIZE.fullmatch(host.shm_size.strip())
    if size is None or float(size.group(1)) <= 0:
        raise ConfigError(
            f"'{host.name}.shm_size' is {one_line(host.shm_size)!r}; give a size such as "
            "8g, 512m or 1073741824 (bytes)",
            path=path,
            line=shm_line,
        )
    user = host.container_user
    if user is not None and not _CONTAINER_USER.fullmatch(user):
        raise ConfigError(
            f"'{host.name}.container_user' is {one_line(user)!r}; give a user or uid, "
            'optionally with a group or gid, such as "1000:1000" or "cosmos"',
            path=path,
            line=env_line or shm_line,
        )
    for name in host.env:
        if not _ENV_NAME.fullmatch(name):
            raise ConfigError(
                f"'{host.name}.env' has the variable name {one_line(name)!r}; names are "
                "letters, digits and _ and do not start with a digit",
                path=path,
                line=env_line,
            )


def check_gpu_selectors(host: HostConfig, key: str, path: Path | None, line: int | None) -> None:
    """Check ``gpu_exclude``/``gpu_include`` entries: GPU indices as strings, or UUIDs.

    Raises:
        ConfigError: Naming the host, the key, the bad entry and the accepted forms.
    """
    for entry in getattr(host, key):
        if not (entry.isdecimal() or entry.startswith(("GPU-", "MIG-"))):
            raise ConfigError(
                f"'{host.name}.{key}' has {one_line(entry)!r}; give GPU indices as strings "
                '("1") or UUIDs ("GPU-...", see \'nvidia-smi -L\')',
                path=path,
                line=line,
            )
