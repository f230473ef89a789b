"""Session slots are given back only once the host has let the channel go."""

from __future__ import annotations

import asyncio

from cosmos_tui.remote.sftp import SftpTransfers
from cosmos_tui.remote.ssh import SshHost


async def test_sessions_that_come_and_go_fast_never_exceed_the_hosts_limit(host_config) -> None:
    # As many slots as the test sshd allows sessions (MaxSessions 10): a slot given back
    # while the host still holds the closing channel would make the next open fail
    # ("open failed"), as five uploads at once with their extra channels once did.
    ssh = SshHost(host_config, max_sessions=10)
    files = SftpTransfers(ssh, host_config.remote_tool_dir)

    async def sftp_once() -> None:
        async with files._client() as sftp:
            await sftp.stat(".")

    async def command_once() -> None:
        assert (await ssh.run(["true"])).exit_status == 0

    async def stream_once() -> None:
        async with ssh.stream(["echo", "line"]) as lines:
            assert [line async for line in lines] == ["line"]

    try:
        await ssh.connect()
        for _ in range(4):
            await asyncio.wait_for(
                asyncio.gather(*(sftp_once() for _ in range(20)),
                               *(command_once() for _ in range(20)),
                               *(stream_once() for _ in range(10))),
                60,
            )  # fmt: skip
    finally:
        await files.close()
        await ssh.close()
