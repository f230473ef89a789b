"""`cosmos demo` runs Cosmos 3 and Transfer2.5 as well as Transfer1: the simulated host has
their weights in its Hugging Face cache and a cosmos-framework checkout, and its
"containers" run each family's stand-in (a double of upstream)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cosmos_tui.cli import cli
from cosmos_tui.cli.demo import prepare_workspace
from cosmos_tui.sandbox import SandboxOptions
from cosmos_tui.sandbox.thread import SandboxThread
from cosmos_tui.sandbox.workspace import DemoWorkspace

pytestmark = pytest.mark.timeout(150)


@contextlib.contextmanager
def demo_cli(tmp_path: Path) -> Iterator[tuple[Callable[..., str], str]]:
    """A running demo host; yield ``cosmos(*args) -> stdout`` (exit 0 asserted) and the id
    of a prompt made from the demo's rainy-street inputs."""
    space = DemoWorkspace(tmp_path / "ws")
    runner = CliRunner()
    with SandboxThread(SandboxOptions(gpus=2, time_scale=0.05), space.ssh_dir) as sandbox:
        config = prepare_workspace(space, sandbox)

        def cosmos(*args: str) -> str:
            result = runner.invoke(cli, ["--config", str(config.source), *args])
            assert result.exit_code == 0, result.output
            return result.stdout

        folder = space.inputs_dir / "rainy-street"
        prompt_id = cosmos("create", "prompt", "a rainy street at dusk", str(folder)).split()[-1]
        yield cosmos, prompt_id


def test_the_demo_host_runs_every_family(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)  # the simulated cache needs no token
    with demo_cli(tmp_path) as (cosmos, prompt_id):
        for profile in ("transfer2.5", "cosmos3"):
            cosmos("inference", prompt_id, "--profile", profile)
        runs = json.loads(cosmos("list", "runs", "--json"))["items"]
    by_profile = {run["profile"]: run for run in runs}
    assert set(by_profile) == {"transfer2.5", "cosmos3"}
    for profile, run in by_profile.items():
        assert run["state"] == "completed", (profile, run)
        assert any(name.endswith(".mp4") for name in run["outputs"]), (profile, run)


def test_a_cosmos3_run_started_by_id_is_checked_for_cosmos3(tmp_path: Path) -> None:
    # Transfer1's checkpoints are gone from the host: a Cosmos 3 run given by its id is
    # checked for Cosmos 3 (which does not need them), not refused for Transfer1.
    space = DemoWorkspace(tmp_path / "ws")
    runner = CliRunner()
    with SandboxThread(SandboxOptions(gpus=2, time_scale=0.05), space.ssh_dir) as sandbox:
        config = prepare_workspace(space, sandbox)

        async def no_base(box):  # type: ignore[no-untyped-def]
            box.setup.checkpoint("nvidia/Cosmos-Transfer1-7B/base_model.pt", "missing")

        sandbox.call(no_base)

        def cosmos(*args: str):  # type: ignore[no-untyped-def]
            return runner.invoke(cli, ["--config", str(config.source), *args])

        folder = space.inputs_dir / "rainy-street"
        prompt_id = cosmos("create", "prompt", "a street", str(folder)).stdout.split()[-1]
        transfer1 = cosmos("inference", prompt_id)
        assert transfer1.exit_code == 1 and "Checkpoints present" in transfer1.stderr
        created = cosmos("create", "run", prompt_id, "--profile", "cosmos3")
        assert created.exit_code == 0, created.output
        run_id = created.stdout.split()[-1]
        started = cosmos("inference", run_id)
        assert started.exit_code == 0, started.output
        assert "completed" in started.stdout


def test_the_demo_host_enhances_a_prompt_with_cosmos3s_reasoner(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)  # the simulated cache needs no token
    with demo_cli(tmp_path) as (cosmos, prompt_id):
        run_id = cosmos("enhance", prompt_id, "--profile", "cosmos3").strip()
        cosmos("queue", "run", "--until-idle")
        run = json.loads(cosmos("show", run_id, "--json"))
        assert run["state"] == "completed", run
        child = json.loads(cosmos("show", run["result_prompt_id"], "--json"))
    assert child["parent_id"] == prompt_id
    assert child["text"].startswith("a rainy street at dusk Seen in the video")
