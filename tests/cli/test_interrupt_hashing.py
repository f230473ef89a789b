"""Ctrl+C while a large input is being hashed stops the command within a second."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
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
    # The stop is when the command says so; the interpreter's own teardown after that
    # (seconds on a loaded 2-core machine) is bounded separately.
    said: list[float] = []
    err_lines: list[str] = []

    def read_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            err_lines.append(line)
            if "interrupted" in line and not said:
                said.append(time.monotonic())

    reader = threading.Thread(target=read_stderr)
    reader.start()
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    out = process.stdout.read() if process.stdout else ""
    process.wait(timeout=30)
    reader.join(timeout=30)
    exited = time.monotonic() - sent
    err = "".join(err_lines)
    assert said, (out, err)
    assert said[0] - sent < 1.0, f"said interrupted {said[0] - sent:.2f} s after SIGINT"
    assert exited < 5.0, f"exited {exited:.2f} s after SIGINT"
    assert process.returncode == 130, (out, err)
    assert "Traceback" not in err
    listed = subprocess.run(
        [sys.executable, "-m", "cosmos_tui", "list", "prompts", "--json"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert json.loads(listed.stdout)["total"] == 0
