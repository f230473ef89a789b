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
    for name in host.env:
        if not _ENV_NAME.fullmatch(name):
            raise ConfigError(
                f"'{host.name}.env' has the variable name {one_line(name)!r}; names are "
                "letters, digits and _ and do not start with a digit",
                path=path,
                line=env_line,
            )
