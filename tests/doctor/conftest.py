"""Fixtures of the doctor's tests on the simulated GPU host: the host and a connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cosmos_tui.config import HostConfig, RetryConfig, TimeoutsConfig
from cosmos_tui.remote import RemoteHost
from cosmos_tui.sandbox import Sandbox, SandboxOptions


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    async with Sandbox.running(SandboxOptions(gpus=2, time_scale=0.02), tmp_path / "c") as box:
        yield box


def connect(config: HostConfig) -> RemoteHost:
    """A connection to the simulated host that fails fast (one attempt)."""
    return RemoteHost(
        config,
        timeouts=TimeoutsConfig(connect=5.0, command=20.0),
        retry=RetryConfig(max_attempts=1),
    )


@pytest.fixture
async def host(sandbox: Sandbox) -> AsyncIterator[RemoteHost]:
    remote = connect(sandbox.host_config())
    try:
        yield remote
    finally:
        await remote.close()
