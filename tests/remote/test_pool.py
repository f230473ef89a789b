"""The host pool the facade owns: lazy, injectable, closed with the Workbench."""

from __future__ import annotations

import subprocess
import sys

from cosmos_tui.config import Config, HostConfig, PathsConfig
from cosmos_tui.domain import HostState
from cosmos_tui.services import Workbench


class _FakeHost:
    def __init__(self, host: HostConfig) -> None:
        self.name = host.name
        self.closed = False

    async def close(self) -> None:
        self.closed = True


def test_importing_the_facade_does_not_import_ssh_or_docker() -> None:
    code = (
        "import sys, cosmos_tui.services, cosmos_tui.remote.pool; "
        "assert 'asyncssh' not in sys.modules and 'aiodocker' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_workbench_makes_hosts_lazily_and_closes_them(tmp_path) -> None:
    config = Config(
        hosts=[HostConfig(name="a", hostname="a.invalid"), HostConfig(name="b", hostname="b")],
        paths=PathsConfig(data_dir=str(tmp_path)),
    )
    made: list[_FakeHost] = []

    def factory(host: HostConfig, cfg: Config) -> _FakeHost:
        made.append(_FakeHost(host))
        return made[-1]

    async with Workbench.open(config, remote_factory=factory) as bench:
        assert made == []
        assert bench.hosts.names == ["a", "b"]
        host = bench.hosts.get("a")
        assert bench.hosts.get("a") is host and len(made) == 1
    assert made[0].closed


async def test_real_host_is_not_connected_until_used(tmp_path) -> None:
    config = Config(
        hosts=[HostConfig(name="a", hostname="a.invalid")],
        paths=PathsConfig(data_dir=str(tmp_path)),
    )
    async with Workbench.open(config) as bench:
        host = bench.hosts.get("a")
        assert host.status().state is HostState.UNKNOWN


def test_unknown_host_name_is_a_config_error(tmp_path) -> None:
    import pytest

    from cosmos_tui.errors import ConfigError
    from cosmos_tui.remote.pool import HostPool

    pool = HostPool(Config(hosts=[HostConfig(name="a", hostname="a")]))
    with pytest.raises(ConfigError) as info:
        pool.get("b")
    assert "no host named 'b'" in info.value.message
