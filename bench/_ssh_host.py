"""Shared set-up of the SSH benchmarks: a throwaway sshd on 127.0.0.1 and a config for it.

Uses the test fixtures' helpers (tests/fixtures/hosts.py), so it needs root, like the
tests. Not a test module.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cosmos_tui.config import HostConfig  # noqa: E402
from tests.fixtures.hosts import SshServer, _make_root, start_ssh_server  # noqa: E402


@contextlib.contextmanager
def ssh_server(name: str) -> Iterator[tuple[SshServer, Path]]:
    """Start sshd for the test user in a fresh folder; yield (server, folder); remove both."""
    root = _make_root(f"cosmos-bench-{name}-")
    server = start_ssh_server(root)
    try:
        yield server, root
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def host_config(server: SshServer, port: int | None = None, **fields: Any) -> HostConfig:
    """The host ``bench`` that reaches ``server`` with its key; ``fields`` add to it.

    ``port``: reach it through this port instead (a shaping proxy in front of it).
    """
    return HostConfig(
        name=fields.pop("name", "bench"),
        **server.connection_fields(port),
        **fields,
    )


def openssh_options(server: SshServer, port: int | None = None) -> list[str]:
    """Options with which OpenSSH's ``ssh`` and ``scp`` reach ``server``, never prompting.

    ``port``: through this port instead (a shaping proxy), its key still checked.
    """
    fields = server.connection_fields(port)
    return [
        "-i",
        str(server.client_key),
        "-o",
        f"Port={fields['port']}",
        "-o",
        f"UserKnownHostsFile={fields['known_hosts']}",
        "-o",
        "BatchMode=yes",
    ]


def load_average(when: str = "") -> str:
    """The one-minute load average and the core count, to read the figures against."""
    label = f"load average {when}".rstrip()
    return f"{label}: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
