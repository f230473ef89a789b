"""Fixtures: a running sandbox and asyncssh connections to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from cosmos_tui.sandbox import Sandbox, SandboxOptions


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    options = SandboxOptions(gpus=2, time_scale=0.02)
    async with Sandbox.running(options, tmp_path / "client") as running:
        yield running


async def connect(sandbox: Sandbox) -> asyncssh.SSHClientConnection:
    """Open a connection the way a user's client would: key file + known_hosts."""
    return await asyncssh.connect(
        "127.0.0.1",
        sandbox.port,
        username="demo",
        client_keys=[str(sandbox.client_key_path)],
        known_hosts=str(sandbox.known_hosts_path),
        config=[],
        agent_path=None,
    )


@pytest.fixture
async def conn(sandbox: Sandbox) -> AsyncIterator[asyncssh.SSHClientConnection]:
    connection = await connect(sandbox)
    try:
        yield connection
    finally:
        connection.close()
        await connection.wait_closed()
