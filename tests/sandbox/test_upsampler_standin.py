"""The sandbox's prompt-upsampler stand-in needs the repository on PYTHONPATH, as upstream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cosmos_tui

PACKAGE_ROOT = str(Path(cosmos_tui.__file__).parents[1])


def upsample(tmp_path: Path, extra_path: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "in.jsonl").write_text(json.dumps({"name": "rs_1", "prompt": "a cat",
                                                   "video": "v.mp4"}) + "\n")  # fmt: skip
    python_path = PACKAGE_ROOT + (f":{extra_path}" if extra_path is not None else "")
    env = {**os.environ, "PYTHONPATH": python_path, "COSMOS_STANDIN_SPEED": "0"}
    return subprocess.run(
        [sys.executable, "-m", "cosmos_tui.sandbox.upsampler_standin", "--input", "in.jsonl",
         "--output", "out/enhanced.jsonl"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_without_the_repo_on_pythonpath_it_dies_at_import(tmp_path: Path) -> None:
    done = upsample(tmp_path, None)
    assert done.returncode == 1
    assert "ModuleNotFoundError: No module named 'cosmos_transfer1'" in done.stderr
    assert not (tmp_path / "out" / "enhanced.jsonl").exists()


def test_with_the_repo_on_pythonpath_it_enhances(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "cosmos_transfer1").mkdir(parents=True)
    done = upsample(tmp_path, str(repo))
    assert done.returncode == 0, done.stderr
    [line] = (tmp_path / "out" / "enhanced.jsonl").read_text().splitlines()
    assert json.loads(line)["name"] == "rs_1"
