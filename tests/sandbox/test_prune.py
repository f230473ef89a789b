"""``cosmos host prune`` on the simulated host: stale .part files and unused inputs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from cosmos_tui.config import Config, PathsConfig
from cosmos_tui.engine.prune import carry_out, parse_age, plan_prune
from cosmos_tui.sandbox import Sandbox
from cosmos_tui.services import Workbench
from tests.conftest import write_video

AGES = [("7d", 604800), ("12h", 43200), ("0", 0), ("90s", 90), ("2w", 1209600), ("1.5m", 90)]


@pytest.mark.parametrize(("text", "seconds"), AGES)
def test_ages(text: str, seconds: float):
    assert parse_age(text) == seconds


async def test_prune_removes_old_parts_and_unused_inputs_only(sandbox: Sandbox, tmp_path: Path):
    config = Config(hosts=[sandbox.host_config()], paths=PathsConfig(str(tmp_path / "data")))
    write_video(tmp_path / "videos" / "color.mp4")
    tool = sandbox.home / ".cosmos-tui"
    inputs = tool / "inputs"
    async with Workbench.open(config) as bench:
        prompt = await bench.create_prompt("kept", tmp_path / "videos")
        used = prompt.inputs[0].sha256
        inputs.mkdir(parents=True)
        (tool / "runs" / "rs_old").mkdir(parents=True)
        files = {
            "used": inputs / f"{used}.mp4",
            "unused": inputs / f"{'a' * 64}.mp4",
            "part": inputs / ".incoming-0123.mp4.part",
            "fresh_part": inputs / ".incoming-4567.mp4.part",
            "spec_part": tool / "runs" / "rs_old" / "spec.json.part",
            "spec": tool / "runs" / "rs_old" / "spec.json",
            "odd": inputs / "notes.txt",
        }
        old = time.time() - 8 * 86400
        for name, path in files.items():
            path.write_bytes(name.encode())
            if name != "fresh_part":
                os.utime(path, (old, old))
        host = config.hosts[0].name
        plan = await plan_prune(bench, [host], parse_age("7d"))
        assert sorted(Path(i.subject).name for i in plan.items) == sorted(
            [files["unused"].name, files["part"].name, files["spec_part"].name]
        )
        done = await carry_out(bench, plan)
        assert all(error is None for _, error in done)
    assert not files["unused"].exists() and not files["part"].exists()
    assert not files["spec_part"].exists()
    for name in ("used", "fresh_part", "spec", "odd"):
        assert files[name].exists(), name
