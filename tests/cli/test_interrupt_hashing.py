"""Ctrl+C while a large input is being hashed ends the command within a second."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import write_video

BIG = 6 * 1024**3  # a sparse 6 GB "video": hashing it takes several seconds


def _reading(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open (the hashing has started)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                return True
        except OSError:
            continue
    return False


def test_sigint_during_hashing_stops_within_a_second(workspace, tmp_path) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    video = write_video(folder / "color.mp4")
    with video.open("r+b") as handle:
        handle.truncate(BIG)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    process = subprocess.Popen(
        [sys.executable, "-m", "cosmos_tui", "create", "prompt", "big one", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 30
    while not _reading(process.pid, video.resolve()):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the hashing never started"
        time.sleep(0.01)
    time.sleep(0.3)  # well inside the hashing
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    elapsed = time.monotonic() - sent
    assert elapsed < 1.0, f"took {elapsed:.2f} s after SIGINT"
    assert process.returncode == 130, (out, err)
    assert "interrupted" in err and "Traceback" not in err
    listed = subprocess.run(
        [sys.executable, "-m", "cosmos_tui", "list", "prompts", "--json"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert json.loads(listed.stdout)["total"] == 0
