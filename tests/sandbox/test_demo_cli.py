"""`cosmos demo`: the command, its workspace, and what is left after it quits (nothing)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
import tomllib
from pathlib import Path

import aiodocker
import pytest
from click.testing import CliRunner

from cosmos_tui.cli import cli
from cosmos_tui.sandbox import SandboxOptions
from cosmos_tui.sandbox.options import SANDBOX_IMAGE
from cosmos_tui.sandbox.thread import SandboxThread
from cosmos_tui.sandbox.workspace import SAMPLE_PROMPTS, DemoWorkspace
from tests.sandbox.test_cleanup import alive
from tests.sandbox.test_demo_headless import processes_mentioning


def run_in_pty(argv: list[str], timeout: float = 60) -> tuple[int, str]:
    """Run a command on a 120x40 pseudo-terminal; return its status and output."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(
        argv,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        close_fds=True,
        env={**os.environ, "TERM": "xterm-256color"},
    )
    os.close(follower)
    output = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        elif process.poll() is not None:
            break
    os.close(leader)
    return process.wait(timeout=30), output.decode("utf-8", "replace")


def test_help_lists_the_demo_switches():
    result = CliRunner().invoke(cli, ["demo", "--help"])
    assert result.exit_code == 0
    for switch in ("--workspace", "--gpus", "--speed", "--flaky-ssh", "--oom-rate", "--headless"):
        assert switch in result.output
    assert "SIMULATED GPU HOST" in result.output


def test_the_demo_opens_the_tui_and_leaves_nothing_behind(tmp_path: Path):
    workspace = tmp_path / "ws"
    cosmos = Path(sys.executable).parent / "cosmos"
    status, output = run_in_pty(
        [str(cosmos), "demo", "--workspace", str(workspace), "--gpus", "3", "--bench-first-frame"]
    )
    assert status == 0, output[-2000:]
    assert "first frame:" in output
    config = tomllib.loads((workspace / "config.toml").read_text())
    (host,) = config["hosts"]
    assert host["hostname"] == "127.0.0.1" and host["gpu_limit"] == 3
    known = (workspace / "ssh" / "known_hosts").read_text()
    assert known.startswith(f"[127.0.0.1]:{host['port']} ssh-ed25519 ")
    for sample in SAMPLE_PROMPTS:
        assert (workspace / "inputs" / sample.name / "color.mp4").stat().st_size > 1000
    # quit: the SSH port is closed, the sandbox root (with its docker socket) is gone
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", host["port"]), 1):
        pass
    sandbox_root = Path(host["docker_socket"]).parents[2]
    assert not sandbox_root.exists()
    assert processes_mentioning(str(sandbox_root)) == []
    assert processes_mentioning(str(workspace / "ssh")) == []  # the sandbox process


def test_a_throwaway_workspace_is_removed_on_quit(tmp_path: Path):
    tmp = tmp_path / "a-rather-long-temporary-directory-name-to-push-socket-paths-past-the-limit"
    tmp.mkdir()
    cosmos = Path(sys.executable).parent / "cosmos"
    status, output = run_in_pty(
        ["env", f"TMPDIR={tmp}", str(cosmos), "demo", "--bench-first-frame"]
    )
    assert status == 0, output[-2000:]
    assert "first frame:" in output
    assert list(tmp.iterdir()) == []


async def test_stopping_the_sandbox_thread_ends_its_containers(tmp_path: Path):
    space = DemoWorkspace(tmp_path / "ws")
    with SandboxThread(SandboxOptions(time_scale=1.0), space.ssh_dir) as thread:
        sandbox = thread.sandbox
        docker = aiodocker.Docker(url=f"unix://{sandbox.docker_socket}")
        try:
            container = await docker.containers.create(
                {"Image": SANDBOX_IMAGE, "Cmd": ["sh", "-c", "sleep 60"]}
            )
            await container.start()
            pid = (await container.show())["State"]["Pid"]
            assert alive(pid)
        finally:
            await docker.close()
        root = sandbox.root
    assert not alive(pid)
    assert not root.exists()


def test_a_hangup_ends_the_demo_and_its_sandbox(tmp_path: Path):
    workspace = tmp_path / "ws"
    cosmos = Path(sys.executable).parent / "cosmos"
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(
        [str(cosmos), "demo", "--workspace", str(workspace)],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        close_fds=True,
        env={**os.environ, "TERM": "xterm-256color"},
    )
    os.close(follower)
    output = b""
    deadline = time.monotonic() + 30
    try:
        while b"SIMULATED GPU HOST" not in output and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                output += os.read(leader, 65536)
        assert b"SIMULATED GPU HOST" in output
        config = tomllib.loads((workspace / "config.toml").read_text())
        sandbox_root = Path(config["hosts"][0]["docker_socket"]).parents[2]
        assert sandbox_root.is_dir()
        process.send_signal(signal.SIGHUP)
        assert process.wait(timeout=15) == 128 + signal.SIGHUP
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (
        sandbox_root.exists() or processes_mentioning(str(workspace / "ssh"))
    ):
        time.sleep(0.1)
    assert not sandbox_root.exists()
    assert processes_mentioning(str(workspace / "ssh")) == []
