"""RemoteHost: everything cosmos-tui does on one GPU host, behind one object.

It owns the host's managed SSH connection and the clients that ride on it (SFTP transfers,
the Docker Engine API, GPU telemetry), all created lazily: constructing a RemoteHost
connects nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cosmos_tui.config import HostConfig, RetryConfig, TimeoutsConfig
from cosmos_tui.domain import HostStatus
from cosmos_tui.remote.docker import DockerClient
from cosmos_tui.remote.sftp import DownloadResult, ProgressCallback, SftpTransfers, UploadResult
from cosmos_tui.remote.ssh import CommandResult, HostKeyInfo, LineStream, SshHost

if TYPE_CHECKING:
    from cosmos_tui.remote.gpu import GpuTelemetry


class RemoteHost:
    """One configured GPU host.

    Args:
        config: The host.
        timeouts: Time limits (connect, command, keepalive).
        retry: Reconnect attempts and backoff.
        gpu_interval_ms: Sampling interval of the telemetry channel.
        rng: Random source for reconnect jitter.
        ssh_config: OpenSSH client config to read; None reads ~/.ssh/config.

    """

    def __init__(
        self,
        config: HostConfig,
        timeouts: TimeoutsConfig | None = None,
        retry: RetryConfig | None = None,
        gpu_interval_ms: int = 1000,
        rng: random.Random | None = None,
        ssh_config: Path | None = None,
    ) -> None:
        self.config = config
        self.ssh = SshHost(config, timeouts, retry, rng=rng, ssh_config=ssh_config)
        self.files = SftpTransfers(self.ssh, config.remote_tool_dir)
        self.docker = DockerClient(
            self.ssh, config.docker_socket, sudo=config.docker_sudo, gpu_request=config.gpu_request
        )
        self._gpu_interval_ms = gpu_interval_ms
        self._gpu: GpuTelemetry | None = None

    @property
    def name(self) -> str:
        """The configured host name."""
        return self.config.name

    @property
    def gpu(self) -> GpuTelemetry:
        """GPU telemetry of this host (its channel starts on :meth:`GpuTelemetry.start`)."""
        if self._gpu is None:
            # lazy: the GPU telemetry modules (~15 ms) load only for hosts whose GPUs are read
            from cosmos_tui.remote.gpu import GpuTelemetry

            self._gpu = GpuTelemetry(self.ssh, self.docker, self._gpu_interval_ms)
        return self._gpu

    # connection ----------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the SSH connection now (it also opens on first use)."""
        await self.ssh.connect()

    def status(self) -> HostStatus:
        """The connection state right now."""
        return self.ssh.status()

    def watch(self) -> AsyncIterator[HostStatus]:
        """Yield the connection state and each change."""
        return self.ssh.watch()

    async def host_key(self) -> HostKeyInfo:
        """The host's key and whether known_hosts trusts it."""
        return await self.ssh.host_key()

    async def close(self) -> None:
        """Stop telemetry, close the Docker client and the connection."""
        if self._gpu is not None:
            await self._gpu.stop()
        await self.docker.close()
        await self.files.close()
        await self.ssh.close()

    # commands and files ----------------------------------------------------------------------

    async def run(
        self,
        argv: list[str],
        *,
        timeout: float | None = None,
        check: bool = True,
        input_text: str | None = None,
    ) -> CommandResult:
        """Run a command (argv list) on the host; see :meth:`SshHost.run`."""
        return await self.ssh.run(argv, timeout=timeout, check=check, input_text=input_text)

    def stream(self, argv: list[str]) -> contextlib.AbstractAsyncContextManager[LineStream]:
        """Run a long-lived command and read its lines; see :meth:`SshHost.stream`."""
        return self.ssh.stream(argv)

    async def tool_dir(self) -> str:
        """The absolute tool directory on the host."""
        return await self.files.tool_dir()

    async def upload_input(
        self,
        local_path: Path,
        progress: ProgressCallback | None = None,
        expected_sha256: str | None = None,
        expected_size: int | None = None,
    ) -> UploadResult:
        """Upload a run input content-addressed; see :meth:`SftpTransfers.upload_input`."""
        return await self.files.upload_input(local_path, progress, expected_sha256, expected_size)

    async def upload_inputs(
        self, inputs: Sequence[tuple[Path, str | None, int | None]]
    ) -> list[UploadResult]:
        """Upload several inputs at once: ``(path, recorded sha256, recorded size)`` each.

        Checks of inputs the host already holds overlap (about one round trip for all of
        them on a distant host); how many transfers move together is bounded by the
        transfer layer. The first failure (or a cancel) stops the other uploads.
        """
        uploads = [
            asyncio.ensure_future(self.files.upload_input(path, None, sha256, size))
            for path, sha256, size in inputs
        ]
        try:
            return list(await asyncio.gather(*uploads))
        except BaseException:
            for upload in uploads:
                upload.cancel()
            await asyncio.gather(*uploads, return_exceptions=True)
            raise

    async def download(
        self,
        remote_dir: str,
        name: str,
        local_dir: Path,
        expected_size: int | None = None,
        verify_hash: bool = False,
        progress: ProgressCallback | None = None,
    ) -> DownloadResult:
        """Download one file by plain name; see :meth:`SftpTransfers.download`."""
        return await self.files.download(
            remote_dir, name, local_dir, expected_size, verify_hash, progress
        )
