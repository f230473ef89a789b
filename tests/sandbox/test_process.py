"""The sandbox in a child process (what `cosmos demo` runs): commands, and no leftovers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import asyncssh
import pytest

from cosmos_tui.sandbox.options import SandboxOptions
from cosmos_tui.sandbox.process import SandboxProcess, SandboxProcessError
from tests.sandbox.test_demo_headless import processes_mentioning


def test_ready_commands_and_stop(tmp_path: Path):
    sandbox = SandboxProcess(SandboxOptions(gpus=3), tmp_path / "client", tmp_path / "log")
    sandbox.start()
    try:
        sandbox.wait_ready()
        host = sandbox.host_config()
        assert host.port == sandbox.port and host.hostname == "127.0.0.1"
        assert Path(host.known_hosts or "").read_text().startswith(f"[127.0.0.1]:{host.port}")
        sandbox.force_oom("rs_1")
        assert sandbox.command({"op": "ping"}) == {"ok": True}
        with pytest.raises(SandboxProcessError, match="unknown command"):
            sandbox.command({"op": "explode"})
        root = Path(host.docker_socket).parents[2]
        assert root.is_dir()
    finally:
        sandbox.stop()
    assert not root.exists()


async def test_the_child_serves_ssh(tmp_path: Path):
    sandbox = SandboxProcess(SandboxOptions(gpus=2), tmp_path / "client")
    sandbox.start()
    try:
        sandbox.wait_ready()
        host = sandbox.host_config()
        async with asyncssh.connect(
            "127.0.0.1",
            host.port,
            username=host.user,
            client_keys=[host.identity_file],
            known_hosts=host.known_hosts,
            config=[],
            agent_path=None,
        ) as conn:
            result = await conn.run("nvidia-smi -L", encoding="utf-8")
        assert result.stdout.count("SIMULATED") == 2
    finally:
        sandbox.stop()


def test_a_killed_parent_leaves_nothing_behind(tmp_path: Path):
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from cosmos_tui.sandbox.options import SandboxOptions
        from cosmos_tui.sandbox.process import SandboxProcess
        sandbox = SandboxProcess(SandboxOptions(), Path({str(tmp_path / "c")!r}))
        sandbox.start()
        sandbox.wait_ready()
        print(Path(sandbox.host_config().docker_socket).parents[2], flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    root = parent.stdout.readline().strip()
    assert root and Path(root).is_dir()
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 15
    while (Path(root).exists() or processes_mentioning(root)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(root).exists()
    assert processes_mentioning(root) == []
    while processes_mentioning(str(tmp_path / "c")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_mentioning(str(tmp_path / "c")) == []  # the sandbox process itself
