"""A Cosmos stand-in image on the real test dockerd and a Workbench pointed at the test host."""

from __future__ import annotations

import contextlib
import dataclasses
import pwd
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cosmos_tui.config import Config, PathsConfig, ProfileConfig, RetryConfig, TimeoutsConfig
from cosmos_tui.sandbox.standin import COSMOS3_JSON_AWK, cosmos3_standin_path, standin_script_path
from cosmos_tui.services import Workbench
from cosmos_tui.services.runs import RunOptions
from tests.conftest import write_video
from tests.fixtures.hosts import TEST_USER

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

        async def _open(config: Config, run_options: RunOptions | None = None) -> Workbench:
            return await stack.enter_async_context(Workbench.open(config, run_options=run_options))

        yield _open


def cut_ssh(ssh_server: Any) -> int:
    """Drop every SSH connection of ``ssh_server`` for real: kill all its descendants.

    Killing only the listener's direct children leaves OpenSSH's unprivileged
    per-connection process (a grandchild) serving the connection and its forwards.
    """
    import os
    import signal

    from tests.fixtures.hosts import _children

    if ssh_server.process is None:
        return 0
    found: list[int] = []
    frontier = [ssh_server.process.pid]
    while frontier:
        children = [c for pid in frontier for c in _children(pid)]
        found.extend(children)
        frontier = children
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    return len(found)


def stop_ssh(ssh_server: Any) -> None:
    """Cut every connection, then stop the listener (the host looks down)."""
    cut_ssh(ssh_server)
    ssh_server.stop()


def write_config_file(config: Config, path: Path) -> Path:
    """Write ``config`` (one host, as made by make_config) as a TOML file for the CLI."""
    import json

    host = config.hosts[0]

    def value(item: Any) -> str:
        return json.dumps(item) if isinstance(item, str) else repr(item).lower()

    lines = [
        "[paths]",
        f"data_dir = {value(config.paths.data_dir)}",
        "[timeouts]",
        f"run = {config.timeouts.run}",
        f"cancel_grace = {config.timeouts.cancel_grace}",
        "[retry]",
        f"max_attempts = {config.retry.max_attempts}",
        f"backoff_base = {config.retry.backoff_base}",
        f"backoff_max = {config.retry.backoff_max}",
        "[[hosts]]",
    ]
    for key in ("name", "hostname", "port", "user", "identity_file", "known_hosts",
                "remote_tool_dir", "remote_repo_dir", "checkpoints_dir", "docker_image",
                "docker_socket", "gpu_request"):  # fmt: skip
        lines.append(f"{key} = {value(getattr(host, key))}")
    lines.append('hf_cache_dir = ""')
    lines.append("[hosts.env]")
    lines += [f"{key} = {value(val)}" for key, val in host.env.items()]
    batching = config.batching
    lines += [
        "[batching]",
        f"enabled = {value(batching.enabled)}",
        f"max_size = {batching.max_size}",
    ]
    for name, settings in config.profiles.items():  # e.g. [profiles.transfer2_5]
        lines.append(f"[profiles.{name}]")
        for item in dataclasses.fields(settings):
            setting = getattr(settings, item.name)
            if setting is not None:
                lines.append(f"{item.name} = {json.dumps(setting)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- Cosmos 3: its stand-in image and a config whose cosmos3 profile uses it ------------

COSMOS3_TAG = "cosmos-test/cosmos3:latest"


@pytest.fixture(scope="session")
def cosmos3_image(build_image: Callable[..., str]) -> str:
    script = cosmos3_standin_path().read_text()
    awk = (cosmos3_standin_path().parent / COSMOS3_JSON_AWK).read_text()
    files = {"/bin/python": script, "/bin/torchrun": script, f"/bin/{COSMOS3_JSON_AWK}": awk}
    return build_image(COSMOS3_TAG, files, cmd=["python"])


@pytest.fixture
def cosmos3_config(
    make_config: Callable[..., Config], cosmos3_image: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., Config]]:  # fmt: skip
    """Return ``make(**profile_fields)``: a config whose cosmos3 profile uses the image."""
    home = Path(pwd.getpwnam(TEST_USER).pw_dir)
    (home / "cosmos-framework").mkdir(exist_ok=True)
    (home / "cosmos-framework" / "pyproject.toml").write_text("[project]\nname='cf'\n")
    monkeypatch.setenv("TEST_COSMOS3_TOKEN", "hf_test_token")

    with user_hf_cache("hf-cache") as cache:

        def _make(scenario: str = "ok", **fields: Any) -> Config:
            config = make_config(scenario)
            settings = ProfileConfig(
                image=cosmos3_image, extra_args=[], repo_dir="cosmos-framework",
                hf_cache_dir=cache, token_env="TEST_COSMOS3_TOKEN", **fields,
            )  # fmt: skip
            return dataclasses.replace(config, profiles={**config.profiles, "cosmos3": settings})

        yield _make


@contextlib.contextmanager
def user_hf_cache(prefix: str) -> Iterator[str]:
    """A fresh Hugging Face cache folder in the test user's home; yield its relative name."""
    home = Path(pwd.getpwnam(TEST_USER).pw_dir)
    cache = f"{prefix}-{uuid.uuid4().hex[:12]}"
    (home / cache).mkdir()
    user = pwd.getpwnam(TEST_USER)
    shutil.chown(home / cache, user.pw_uid, user.pw_gid)
    try:
        yield cache
    finally:
        shutil.rmtree(home / cache, ignore_errors=True)
