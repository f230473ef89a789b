"""Start-up time of `cosmos demo`: from the command to the first frame with the sandbox ready.

Runs `cosmos demo --bench-first-frame` in a pseudo-terminal several times. That hidden flag
starts everything as usual (workspace, sandbox on 127.0.0.1, TUI), waits for the first
drawn frame, prints the time and quits. Prints the wall time from spawning the command to
the report, and the time the process measured itself.

    .venv/bin/python bench/demo.py [--runs 5]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

REPORT = re.compile(rb"first frame: ([0-9.]+) s after the command started, ([0-9.]+) s after exec")


def one_run(workspace: Path) -> tuple[float, float, float]:
    """Return (spawn-to-report wall s, in-process s, since-exec s) of one start."""
    cosmos = Path(sys.executable).parent / "cosmos"
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(cosmos), "demo", "--workspace", str(workspace), "--bench-first-frame"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        close_fds=True,
    )
    os.close(follower)
    output = b""
    wall = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
            if wall is None and b"[first-frame]" in output:
                wall = time.perf_counter() - started
            if REPORT.search(output):
                break
        elif process.poll() is not None:
            break
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    os.close(leader)
    match = REPORT.search(output)
    if match is None or wall is None:
        tail = output[-2000:].decode("utf-8", "replace")
        raise SystemExit(f"no first-frame report; output tail:\n{tail}")
    return wall, float(match.group(1)), float(match.group(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        workspace = Path(tmp) / "ws"
        first = one_run(workspace)  # a new workspace: the database is created
        results = [one_run(workspace) for _ in range(args.runs)]
    walls = [r[0] for r in results]
    inproc = [r[1] for r in results]
    since_exec = [r[2] for r in results]
    print(f"cosmos demo start-up, {args.runs} runs (command to first TUI frame, sandbox ready)")
    print(
        f"  spawn to first frame (wall):  median {statistics.median(walls):.3f} s, "
        f"max {max(walls):.3f} s"
    )
    print(f"  exec to first frame (self):   median {statistics.median(since_exec):.3f} s")
    print(f"  command body to first frame:  median {statistics.median(inproc):.3f} s")
    print(f"  first start, new workspace:   {first[0]:.3f} s (wall)")
    worst = max([*walls, first[0]])
    print(f"  target: under 2 s -> {'OK' if worst < 2.0 else 'OVER'}")


if __name__ == "__main__":
    main()
