"""Two installations on one real dockerd: each acts only on its own containers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cosmos_tui.cli import cli
from cosmos_tui.config import Config
from cosmos_tui.engine.prune import carry_out, plan_prune
from cosmos_tui.owner import LABEL_OWNER, installation_owner
from cosmos_tui.services import Workbench
from tests.lifecycle.conftest import write_config_file

THEIRS = "ow_secondinstallation01"


def _create(daemon: Any, image: str, name: str, labels: dict[str, str], *cmd: str) -> str:
    args = ["create", "--name", name]
    for key, value in labels.items():
        args += ["--label", f"{key}={value}"]
    made = daemon.cli(*args, image, *cmd).stdout.decode().strip()
    daemon.cli("start", made)
    if cmd[0] != "sleep":
        daemon.cli("wait", made)
    return made


def _state(daemon: Any, container_id: str) -> str:
    result = daemon.cli("inspect", "--format", "{{.State.Status}}", container_id, check=False)
    return result.stdout.decode().strip() if result.returncode == 0 else "gone"


@pytest.fixture
def installations(
    docker_daemon: Any, busybox_image: str, make_config: Callable[..., Config]
) -> Iterator[tuple[Config, dict[str, str], str]]:
    """Our config, the other installation's containers (name -> id) and one of ours."""
    config = make_config()
    ours = installation_owner(config.data_dir)
    managed = {"cosmos.managed": "true"}
    theirs = {
        "exited": _create(docker_daemon, busybox_image, "cosmos-rs_theirs01", {
            **managed, LABEL_OWNER: THEIRS, "cosmos.run_id": "rs_theirs01"}, "true"),
        "running": _create(docker_daemon, busybox_image, "cosmos-rs_theirs02", {
            **managed, LABEL_OWNER: THEIRS, "cosmos.run_id": "rs_theirs02"}, "sleep", "300"),
        "legacy": _create(docker_daemon, busybox_image, "cosmos-rs_theirs03", {
            **managed, "cosmos.run_id": "rs_theirs03"}, "true"),
    }  # fmt: skip
    mine = _create(docker_daemon, busybox_image, "cosmos-rs_minegone1", {
        **managed, LABEL_OWNER: ours, "cosmos.run_id": "rs_minegone1"}, "true")  # fmt: skip
    try:
        yield config, theirs, mine
    finally:
        docker_daemon.cli("rm", "-f", *theirs.values(), mine, check=False)


async def test_a_second_installations_containers_survive_verify_reconcile_and_prune(
    installations: tuple[Config, dict[str, str], str], docker_daemon: Any
):
    config, theirs, mine = installations
    async with Workbench.open(config) as bench:
        host = config.hosts[0].name
        plan = await plan_prune(bench, [host], older_than=0)
        # (the session's dockerd also holds other tests' containers: other installations)
        assert [i.subject for i in plan.items if i.kind == "container"] == [mine]
        assert set(theirs.values()) <= {i.subject for i in plan.foreign}
        report = await bench.runs.reconcile()
        assert set(theirs.values()) <= {o.container_id for o in report.foreign}
        assert not {o.container_id for o in report.orphans} & set(theirs.values())
        verified = await bench.verify(fix=True)
        assert {c[:12] for c in theirs.values()} <= {f.subject for f in verified.foreign}
        fixed = [f for f in verified.findings if f.fixed]
        assert [f.subject for f in fixed] == [mine[:12]]  # ours, of an unknown run: removed
        assert _state(docker_daemon, mine) == "gone"
        await carry_out(bench, await plan_prune(bench, [host], older_than=0))
    assert _state(docker_daemon, theirs["exited"]) == "exited"
    assert _state(docker_daemon, theirs["legacy"]) == "exited"
    assert _state(docker_daemon, theirs["running"]) == "running"


def test_host_prune_cli_lists_first_and_leaves_foreign_containers(
    installations: tuple[Config, dict[str, str], str], docker_daemon: Any, tmp_path: Path
):
    config, theirs, mine = installations
    path = write_config_file(config, tmp_path / "config.toml")
    runner = CliRunner()
    dry = runner.invoke(cli, ["--config", str(path), "host", "prune", "--older-than", "0",
                              "--dry-run"], catch_exceptions=False)  # fmt: skip
    assert dry.exit_code == 0, dry.output
    assert f"would remove container testhost: {mine}" in dry.output
    for name in ("cosmos-rs_theirs01", "cosmos-rs_theirs02", "cosmos-rs_theirs03"):
        assert f"{name} (" in dry.output and "left alone" in dry.output
    assert _state(docker_daemon, mine) == "exited"
    done = runner.invoke(cli, ["--config", str(path), "host", "prune", "testhost",
                               "--older-than", "0s", "--json"], catch_exceptions=False)  # fmt: skip
    assert done.exit_code == 0, done.output
    data = json.loads(done.output)
    assert [i["subject"] for i in data["remove"]] == [mine]
    assert _state(docker_daemon, mine) == "gone"
    assert {_state(docker_daemon, c) for c in theirs.values()} == {"exited", "running"}
    bad = runner.invoke(cli, ["--config", str(path), "host", "prune", "--older-than", "soon"])
    assert bad.exit_code == 1 and "is not an age" in bad.output
