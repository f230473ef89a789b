"""`cosmos inference` runs the doctor's quick checks first and refuses with their fixes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cosmos_tui.cli.demo import prepare_workspace
from cosmos_tui.sandbox import SandboxOptions
from cosmos_tui.sandbox.thread import SandboxThread
from cosmos_tui.sandbox.workspace import SAMPLE_PROMPTS, DemoWorkspace

pytestmark = pytest.mark.timeout(180)

EDGE = "nvidia/Cosmos-Transfer1-7B/edge_control.pt"


def cosmos(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSMOS_")}
    return subprocess.run(
        [sys.executable, "-m", "cosmos_tui", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_inference_refuses_a_broken_host_with_the_fix_then_runs_once_fixed(tmp_path):
    space = DemoWorkspace(tmp_path / "ws")
    with SandboxThread(SandboxOptions(gpus=1, time_scale=0.02), space.ssh_dir) as sandbox:
        config = prepare_workspace(space, sandbox).source
        assert config is not None
        sample = SAMPLE_PROMPTS[0]
        created = cosmos(config, "create", "prompt", sample.text, str(space.video_dir(sample)))
        assert created.returncode == 0, created.stderr
        prompt_id = created.stdout.strip().split()[-1]

        async def break_it(box):
            box.setup.checkpoint(EDGE, "missing")

        sandbox.call(break_it)
        refused = cosmos(config, "inference", prompt_id)
        assert refused.returncode == 1
        assert "simulated-gpu-host: Checkpoints present: under" in refused.stderr
        assert EDGE in refused.stderr and "download_checkpoints.py" in refused.stderr
        assert "nothing was started" in refused.stderr
        listed = cosmos(config, "list", "runs", "--json")
        assert json.loads(listed.stdout)["items"] == []

        async def repair(box):
            box.setup.checkpoint(EDGE, "ok")

        sandbox.call(repair)
        done = cosmos(config, "inference", prompt_id, "--steps", "5")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "started" in done.stdout
