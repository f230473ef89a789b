"""A Cosmos stand-in image on the real test dockerd and a Workbench pointed at the test host."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from cosmos_tui.config import Config, PathsConfig, RetryConfig, TimeoutsConfig
from cosmos_tui.sandbox.standin import standin_script_path
from cosmos_tui.services import Workbench
from tests.conftest import write_video

STANDIN_TAG = "cosmos-test/standin:latest"
SPEED = "0.02"


@pytest.fixture(scope="session")
def standin_image(build_image: Callable[..., str]) -> str:
    """A busybox image whose ``torchrun`` is the Cosmos stand-in script."""
    script = standin_script_path().read_text()
    return build_image(STANDIN_TAG, {"/bin/torchrun": script}, cmd=["torchrun"])


@pytest.fixture
def make_config(host_config: Any, standin_image: str, tmp_path: Path) -> Callable[..., Config]:
    """Return ``make_config(scenario="ok", run_timeout=60, **host_env)``."""

    def _make(scenario: str = "ok", run_timeout: float = 60.0, **env: str) -> Config:
        host = dataclasses.replace(
            host_config,
            docker_image=standin_image,
            env={"COSMOS_STANDIN_SPEED": SPEED, "COSMOS_STANDIN_SCENARIO": scenario, **env},
        )
        return Config(
            hosts=[host],
            timeouts=TimeoutsConfig(
                connect=10.0, command=30.0, run=run_timeout, cancel_grace=2.0, keepalive=5.0
            ),
            retry=RetryConfig(max_attempts=3, backoff_base=0.2, backoff_max=1.0),
            paths=PathsConfig(data_dir=str(tmp_path / "data")),
        )

    return _make


@pytest.fixture
def video_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "videos"
    write_video(folder / "color.mp4", b"a real enough video " * 500)
    write_video(folder / "depth.mp4", b"depth control " * 100)
    return folder


@pytest.fixture
async def bench_for(make_config: Callable[..., Config]) -> AsyncIterator[Callable[..., Any]]:
    """Return ``await bench_for(config)``: an open Workbench, closed after the test."""
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:

        async def _open(config: Config) -> Workbench:
            return await stack.enter_async_context(Workbench.open(config))

        yield _open
