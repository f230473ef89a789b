"""`cosmos demo --headless --hostile`: every hostile switch, through the real CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cosmos_tui.sandbox.scenario import mp4_is_valid


def test_hostile_scenario_is_contained(tmp_path: Path):
    workspace = tmp_path / "ws"
    cosmos = Path(sys.executable).parent / "cosmos"
    result = subprocess.run(
        [str(cosmos), "demo", "--headless", "--hostile", "--speed", "20",
         "--workspace", str(workspace)],
        capture_output=True,
        text=True,
        timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hostile scenario OK: 3 runs contained" in result.stdout
    assert "2 foreign container(s) untouched" in result.stdout
    assert result.stdout.count("failed (refused_output)") == 3
    assert "\x1b" not in result.stdout  # the escape sequences in names are shown escaped
    assert (workspace / "canary.txt").is_file()
    outputs = workspace / "data" / "outputs"
    videos = sorted(outputs.glob("rs_*/output.mp4"))
    assert len(videos) == 3 and all(mp4_is_valid(v) for v in videos)
    assert not any(p.is_symlink() for p in outputs.rglob("*"))
    assert not any(p.name in ("huge.mp4", "secret.mp4", "device.mp4") for p in outputs.rglob("*"))
    # the image printed the host's HF_TOKEN: every log keeps the line, masked
    from cosmos_tui.sandbox.hostile_scenario import DEMO_TOKEN

    assert DEMO_TOKEN not in result.stdout
    logs = [p.read_text() for p in outputs.glob("rs_*/run.log")]
    assert any("HF_TOKEN=***" in text for text in logs)
    files = [p for p in workspace.rglob("*") if p.is_file() and not p.is_symlink()]
    assert not any(DEMO_TOKEN.encode() in p.read_bytes() for p in files)
