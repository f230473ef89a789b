"""Closing a sandbox leaves no process, socket or file behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiodocker

from cosmos_tui.sandbox import Sandbox, SandboxOptions
from cosmos_tui.sandbox.options import SANDBOX_IMAGE
from tests.sandbox.conftest import connect


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_close_kills_every_process_and_removes_the_root(tmp_path: Path):
    async with Sandbox.running(SandboxOptions(time_scale=1.0), tmp_path / "c") as sandbox:
        root = sandbox.root
        client = await connect(sandbox)
        shell = await client.create_process("echo $$; exec sleep 60", encoding="utf-8")
        shell_pid = int(await shell.stdout.readline())
        smi = await client.create_process("nvidia-smi --query-gpu=index --format=csv -lms 50")
        shim = await client.create_process("sh -c 'nvidia-smi --query-gpu=index --format=csv -l 1'")
        docker = aiodocker.Docker(url=f"unix://{sandbox.docker_socket}")
        container = await docker.containers.create(
            {"Image": SANDBOX_IMAGE, "Cmd": ["sh", "-c", "sleep 60 & sleep 60 & wait"]}
        )
        await container.start()
        await asyncio.sleep(0.3)
        pids = [shell_pid] + [
            int(p[1])
            for p in (await docker._query_json(f"containers/{container.id}/top"))["Processes"]
        ]
        assert len(pids) == 4 and all(alive(pid) for pid in pids)
        await docker.close()
        del smi, shim
    assert not any(alive(pid) for pid in pids)
    assert not root.exists()
    assert not sandbox.docker_socket.exists()
    client.close()
