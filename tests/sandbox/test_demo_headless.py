"""`cosmos demo --headless`: the whole scenario through the real CLI, services and sandbox."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from cosmos_tui.sandbox.scenario import mp4_is_valid

ASSETS = Path(__file__).resolve().parents[2] / "cosmos_tui" / "sandbox" / "assets"


def processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{entry.name}: {cmdline}")
    return found


def test_headless_scenario_completes_with_valid_videos(tmp_path: Path):
    workspace = tmp_path / "ws"
    cosmos = Path(sys.executable).parent / "cosmos"
    result = subprocess.run(
        [str(cosmos), "demo", "--headless", "--speed", "20", "--workspace", str(workspace)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "scenario OK: 7 runs" in result.stdout
    assert (
        "prepared rolling-ball: 36 frames, 96x54 at 24 fps "
        "(encoded color, depth, seg, edge, vis)" in result.stdout
    )
    prepared = workspace / "inputs" / "rolling-ball"
    assert sorted(p.name for p in prepared.glob("*.mp4")) == [
        "color.mp4",
        "depth.mp4",
        "edge.mp4",
        "segmentation.mp4",
        "vis.mp4",
    ]
    lines = {line.split()[2]: line for line in result.stdout.splitlines() if line.startswith("rs_")}
    assert "failed     gpu_oom" in lines["oom"]
    assert "cancelled" in lines["cancel"]
    assert lines["batch"].split()[5] == "yes"
    # Line 2 of the batch of four is blocked: the container dies there (batch size 1),
    # line 1 keeps its output, lines 3 and 4 go back in the queue and complete.
    assert "blocked    guardrail" in lines["blocked"]
    assert lines["requeued"].split()[3] == "completed"
    again = [line for line in result.stdout.splitlines() if line.startswith("back in the queue")]
    assert len(again) == 1 and len(re.findall(r"rs_\w+", again[0])) == 2
    outputs = sorted((workspace / "data" / "outputs").glob("rs_*/output.mp4"))
    assert len(outputs) == 4
    assets = {p.read_bytes() for p in ASSETS.glob("*.mp4")}
    for output in outputs:
        assert mp4_is_valid(output)
        assert output.read_bytes() in assets  # the stand-in returns the input video
    # nothing of the sandbox is left: no process, no root (with its docker socket)
    config = tomllib.loads((workspace / "config.toml").read_text())
    sandbox_root = str(Path(config["hosts"][0]["docker_socket"]).parents[2])
    assert not Path(sandbox_root).exists()
    assert processes_mentioning(sandbox_root) == []


def test_mp4_check_rejects_truncated_and_foreign_files(tmp_path: Path):
    video = (ASSETS / "street.mp4").read_bytes()
    assert mp4_is_valid(ASSETS / "street.mp4")
    (tmp_path / "cut.mp4").write_bytes(video[: len(video) // 2])
    (tmp_path / "text.mp4").write_bytes(b"not a video at all")
    assert not mp4_is_valid(tmp_path / "cut.mp4")
    assert not mp4_is_valid(tmp_path / "text.mp4")
    assert not mp4_is_valid(tmp_path / "missing.mp4")


def test_sigterm_mid_run_stops_the_sandbox_and_its_containers(tmp_path: Path):
    import signal
    import time

    workspace = tmp_path / "ws"
    cosmos = Path(sys.executable).parent / "cosmos"
    process = subprocess.Popen(
        [str(cosmos), "demo", "--headless", "--workspace", str(workspace)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("start "):
                break
        config = tomllib.loads((workspace / "config.toml").read_text())
        sandbox_root = str(Path(config["hosts"][0]["docker_socket"]).parents[2])

        def containers() -> list[str]:
            return [p for p in processes_mentioning(sandbox_root) if "cosmos_standin" in p]

        deadline = time.monotonic() + 20
        while not containers() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert containers()  # a "container" is running
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) != 0
    finally:
        if process.poll() is None:
            process.kill()
    assert processes_mentioning(sandbox_root) == []
    assert not Path(sandbox_root).exists()


def test_the_scenario_rides_through_flaky_ssh(tmp_path: Path):
    workspace = tmp_path / "ws"
    cosmos = Path(sys.executable).parent / "cosmos"
    result = subprocess.run(
        [
            str(cosmos),
            "demo",
            "--headless",
            "--speed",
            "20",
            "--flaky-ssh",
            "--workspace",
            str(workspace),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "scenario OK: 7 runs" in result.stdout
    assert (
        "prepared rolling-ball: 36 frames, 96x54 at 24 fps "
        "(encoded color, depth, seg, edge, vis)" in result.stdout
    )
    prepared = workspace / "inputs" / "rolling-ball"
    assert sorted(p.name for p in prepared.glob("*.mp4")) == [
        "color.mp4",
        "depth.mp4",
        "edge.mp4",
        "segmentation.mp4",
        "vis.mp4",
    ]
    log = (workspace / "demo.log").read_text()
    assert re.search(r"dropped [1-9][0-9]* connection", log)  # it did drop connections
