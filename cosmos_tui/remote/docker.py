"""The Docker Engine API of a remote host, spoken by aiodocker over the SSH connection.

A local UNIX socket in a private temporary directory is forwarded to the host's docker
socket (``forward_local_path``) on the host's managed SSH connection; in sudo mode each
HTTP connection is instead bridged to ``sudo -n DOCKER -H unix://SOCKET system dial-stdio``
(DOCKER: the full path of the docker CLI on the login user's PATH, found by the check in
:mod:`cosmos_tui.remote.docker_sudo`). The forward is re-made after the SSH connection
reconnects. Containers are created with labels and always selected by label, never by
image name. Every aiodocker/aiohttp exception is translated in
:func:`_translate`.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import logging
import shlex
import shutil
import struct
import tempfile
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

import aiodocker
import aiohttp

from cosmos_tui.errors import CosmosError, DockerError, HostUnreachable
from cosmos_tui.owner import LABEL_OWNER
from cosmos_tui.remote.docker_sudo import SUDO_CHECK, SUDO_VERSION_FORMAT, sudo_docker_cli
from cosmos_tui.remote.docker_types import (
    LABEL_GPUS,
    LABEL_HOST,
    LABEL_MANAGED,
    LABEL_RUN_ID,
    ContainerInfo,
    ContainerSpec,
    DockerVersion,
    Mount,
    container_body,
    info_from_inspect,
    info_from_list,
    parse_size,
)
from cosmos_tui.remote.ssh import SshHost
from cosmos_tui.safe_text import scrub

__all__ = [
    "LABEL_GPUS",
    "LABEL_HOST",
    "LABEL_MANAGED",
    "LABEL_RUN_ID",
    "ContainerInfo",
    "ContainerSpec",
    "DockerClient",
    "DockerVersion",
    "Mount",
    "parse_size",
]

logger = logging.getLogger(__name__)

_NO_GPU_DRIVER = "could not select device driver"
_NO_CONNECTION = 900  # aiodocker's status for "cannot connect"


class DockerClient:
    """Docker Engine operations on one host.

    Args:
        ssh: The host's managed connection.
        socket_path: The docker socket on the host.
        sudo: Bridge each connection through ``sudo -n docker system dial-stdio`` (to
            ``socket_path``) instead of forwarding the socket.
        gpu_request: Send GPU DeviceRequests (hosts with the NVIDIA Container Toolkit).
        dial_argv: A bridge command to use in sudo mode instead of sudo (no sudo check).

    """

    def __init__(
        self,
        ssh: SshHost,
        socket_path: str,
        sudo: bool = False,
        gpu_request: bool = True,
        dial_argv: list[str] | None = None,
    ) -> None:
        self._ssh = ssh
        self._socket_path = socket_path
        self._sudo = sudo
        self._gpu_request = gpu_request
        self._dial_override = dial_argv
        self._dial_argv: list[str] = dial_argv or []
        self._tmp: Path | None = None
        self._generation = -1
        self._listener: Any = None
        self._bridge: asyncio.AbstractServer | None = None
        self._docker: aiodocker.Docker | None = None
        # Whether this connection's socket is known good (a call went through, or it was
        # checked): until then a failed call asks the host why (_check_socket).
        self._socket_ok = False
        self._connector: aiohttp.UnixConnector | None = None
        self._lock = asyncio.Lock()
        self.owner: str | None = None

    @property
    def name(self) -> str:
        """The host name."""
        return self._ssh.name

    async def _client(self) -> aiodocker.Docker:
        async with self._lock:
            conn = await self._ssh.channel()
            if self._docker is not None and self._generation == self._ssh.generation:
                return self._docker
            await self._close_transport()
            if self._tmp is None:
                self._tmp = Path(tempfile.mkdtemp(prefix="cosmos-docker-"))
            local_socket = self._tmp / "docker.sock"
            if self._sudo:
                if self._dial_override is None:
                    docker_cli = await self._check_sudo()
                    self._dial_argv = ["sudo", "-n", docker_cli, "-H", self._docker_host]
                    self._dial_argv += ["system", "dial-stdio"]
                self._bridge = await asyncio.start_unix_server(
                    self._bridge_connection, path=str(local_socket)
                )
            else:
                # The socket is not checked up front (two round trips before every first
                # call): a call that cannot get through asks the host why (_calling).
                self._socket_ok = False
                async with self._ssh.translating(["forward", self._socket_path]):
                    self._listener = await conn.forward_local_path(
                        str(local_socket), self._socket_path
                    )
            self._generation = self._ssh.generation
            # Over the forward, idle connections are kept (keep-alive): a call then costs
            # one round trip, not two (a new forwarded channel each). Through sudo each
            # connection is a dial-stdio process holding a session slot: closed at once.
            self._connector = aiohttp.UnixConnector(
                str(local_socket), force_close=self._sudo, limit=4 if self._sudo else 32
            )
            # Without a read timeout a daemon that accepts but never answers (hung dockerd)
            # would block every call forever; long-running calls (logs, wait) pass their own.
            timeouts = self._ssh.timeouts
            self._docker = aiodocker.Docker(
                url="unix://localhost",
                connector=self._connector,
                timeout=aiohttp.ClientTimeout(connect=timeouts.connect, sock_read=timeouts.command),
            )
            return self._docker

    @contextlib.asynccontextmanager
    async def _calling(self, doing: str, secrets: Iterable[str] = ()) -> AsyncIterator[None]:
        """Translate a call's errors; the first call that cannot get through says why.

        A forward to a missing socket, or one the login user may not use, only shows as
        a dropped connection: the host is then asked (``test -S``, ``test -r -w``) and the
        answer (Docker not running, not in the docker group) is the error instead.
        """
        try:
            async with _translate(self.name, doing, secrets):
                yield
        except DockerError as exc:
            if exc.transient and not self._socket_ok and not self._sudo:
                await self._check_socket()
                self._socket_ok = True
            raise
        self._socket_ok = True

    async def _check_socket(self) -> None:
        script = 'test -S "$1" || exit 3; test -r "$1" && test -w "$1" || { id -un; exit 4; }'
        result = await self._ssh.run(["sh", "-c", script, "sh", self._socket_path], check=False)
        if result.exit_status == 3:
            raise DockerError(
                f"no Docker socket at {self._socket_path} on {self.name}: is Docker "
                "installed and the daemon running ('systemctl start docker')? If it listens "
                "elsewhere, set docker_socket for this host",
                transient=True,
            )
        if result.exit_status == 4:
            # the last line: a login banner of the host's shell may come first
            lines = result.stdout.strip().splitlines()
            user = (lines[-1].strip() if lines else "") or self._ssh.config.user or "USER"
            raise DockerError(
                f"{user} on {self.name} may not use {self._socket_path} (permission denied): "
                f"add the user to the docker group ('sudo usermod -aG docker {user}', then "
                "log in again), or set docker_sudo = true for this host"
            )

    @property
    def _docker_host(self) -> str:
        return f"unix://{self._socket_path}"

    async def _check_sudo(self) -> str:
        """Check that ``sudo -n docker`` reaches the daemon; return the docker CLI's path."""
        argv = ["sh", "-c", SUDO_CHECK, "sh", self._docker_host, SUDO_VERSION_FORMAT]
        result = await self._ssh.run(argv, check=False)
        return sudo_docker_cli(
            result, host=self.name, socket_path=self._socket_path, login_user=self._ssh.config.user
        )

    async def _bridge_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Pump one local HTTP connection through a ``dial-stdio`` process on the host."""
        try:
            conn = await self._ssh.channel()
            async with self._ssh.session_slot(), self._ssh.translating(self._dial_argv):
                process = await conn.create_process(shlex.join(self._dial_argv), encoding=None)

                async def upstream() -> None:
                    while data := await reader.read(65536):
                        process.stdin.write(data)
                    process.stdin.write_eof()

                pump = asyncio.create_task(upstream())
                try:
                    while data := await process.stdout.read(65536):
                        writer.write(data)
                        await writer.drain()
                finally:
                    pump.cancel()
                    process.close()
                    stderr = (await process.stderr.read()).decode(errors="replace")
                    if stderr.strip():
                        logger.warning("docker bridge on %s: %s", self.name, stderr.strip())
        except (OSError, CosmosError, ConnectionError) as exc:
            logger.warning("docker bridge on %s failed: %s", self.name, exc)
        finally:
            writer.close()

    async def _close_transport(self) -> None:
        if self._docker is not None:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                await self._docker.close()
            self._docker = None
        if self._connector is not None:
            await self._connector.close()
            self._connector = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._bridge is not None:
            self._bridge.close()
            self._bridge = None
        if self._tmp is not None:
            (self._tmp / "docker.sock").unlink(missing_ok=True)

    async def close(self) -> None:
        """Close the API client and the forward."""
        await self._close_transport()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    async def api(self) -> aiodocker.Docker:
        """The Engine API client over this host's connection (for remote/docker_probe.py).

        Its callers translate errors themselves, so the socket is checked here first.
        """
        docker = await self._client()
        if not self._socket_ok and not self._sudo:
            await self._check_socket()
            self._socket_ok = True
        return docker

    # operations ----------------------------------------------------------------------------

    async def version(self) -> DockerVersion:
        """Ping the engine and return its version."""
        docker = await self._client()
        async with self._calling("asking Docker for its version"):
            data = await docker.version()
        return DockerVersion(
            version=str(data.get("Version", "")),
            api_version=str(data.get("ApiVersion", "")),
            os=str(data.get("Os", "")),
            arch=str(data.get("Arch", "")),
        )

    async def image_present(self, image: str) -> bool:
        """Return True when ``image`` is on the host."""
        docker = await self._client()
        try:
            async with self._calling(f"inspecting image {image}"):
                await docker.images.inspect(image)
        except DockerError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def create(self, spec: ContainerSpec) -> str:
        """Create (not start) the container ``cosmos-<run id>``; return its id."""
        docker = await self._client()
        body = container_body(spec, self.name, self._gpu_request)
        if self.owner:
            body["Labels"][LABEL_OWNER] = self.owner
        doing = f"creating the container of run {spec.run_id}"
        async with self._calling(doing, secrets=spec.env.values()):
            container = await docker.containers.create(body, name=f"cosmos-{spec.run_id}")
        return str(container.id)

    async def start(self, container_id: str) -> None:
        """Start a created container."""
        docker = await self._client()
        async with self._calling(f"starting container {container_id[:12]}"):
            await docker.containers.container(container_id).start()

    async def inspect(self, container_id: str) -> ContainerInfo:
        """Return a container's state (exit code, OOMKilled, times)."""
        docker = await self._client()
        async with self._calling(f"inspecting container {container_id[:12]}"):
            container = await docker.containers.get(container_id)
        return info_from_inspect(container._container)

    async def wait(self, container_id: str, timeout: float | None = None) -> int:
        """Wait until the container exits and return its exit code."""
        docker = await self._client()
        async with self._calling(f"waiting for container {container_id[:12]}"):
            result = await docker.containers.container(container_id).wait(timeout=timeout)
        return int(result.get("StatusCode", -1))

    async def stop(self, container_id: str, grace_s: float = 10.0) -> None:
        """Send SIGTERM, and SIGKILL after ``grace_s`` seconds if it is still running."""
        docker = await self._client()
        async with self._calling(f"stopping container {container_id[:12]}"):
            await docker.containers.container(container_id).stop(
                t=max(0, round(grace_s)), timeout=grace_s + 30
            )

    async def remove(self, container_id: str, force: bool = False) -> None:
        """Remove a container (a missing one is not an error)."""
        docker = await self._client()
        try:
            async with self._calling(f"removing container {container_id[:12]}"):
                await docker.containers.container(container_id).delete(force=force)
        except DockerError as exc:
            if exc.status != 404:
                raise

    async def list(
        self,
        labels: Mapping[str, str] | None = None,
        include_stopped: bool = True,
        everyone: bool = False,
    ) -> list[ContainerInfo]:
        """List managed containers (``cosmos.managed=true``) matching every label given.

        Containers that carry another installation's owner id (``cosmos.owner``) are left
        out unless ``everyone``: nothing that acts on containers ever sees them.
        """
        docker = await self._client()
        selectors = [f"{LABEL_MANAGED}=true"] + [f"{k}={v}" for k, v in (labels or {}).items()]
        async with self._calling("listing containers"):
            containers = await docker.containers.list(
                all=include_stopped, filters=json.dumps({"label": selectors})
            )
        found = [info_from_list(c._container) for c in containers]
        if everyone or not self.owner:
            return found
        return [c for c in found if c.labels.get(LABEL_OWNER) in (None, "", self.owner)]

    async def log_frames(
        self, container_id: str, since: str | None = None, follow: bool = True
    ) -> AsyncIterator[builtins.list[bytes]]:  # list: the method above, in this class
        """Yield a container's raw log messages: ``<RFC3339Nano> <bytes as written>``.

        For the run log follower, which needs Docker's exact nanosecond timestamps and
        the output unaltered (carriage-return redraws, invalid UTF-8). stdout and stderr
        come interleaved in the order Docker recorded them. Messages come in lists, one
        list per chunk read (one await per chunk, not two per line: 20,000 lines/s stay
        cheap). The stream ends when the container stops (or the connection drops:
        callers check the container's state).

        Args:
            container_id: The container.
            since: Docker's ``since`` (``seconds.nanoseconds``, inclusive).
            follow: Keep reading until the container stops.

        """
        docker = await self._client()
        params: dict[str, Any] = {
            "stdout": "1",
            "stderr": "1",
            "timestamps": "1",
            "follow": "1" if follow else "0",
        }
        if since is not None:
            params["since"] = since
        query = docker._query(f"containers/{container_id}/logs", params=params, timeout=None)
        buffer = bytearray()
        async with self._calling(f"reading logs of {container_id[:12]}"), query as response:
            while chunk := await response.content.readany():
                buffer += chunk
                frames: list[bytes] = []
                offset = 0
                while len(buffer) - offset >= 8:
                    (length,) = struct.unpack_from(">L", buffer, offset + 4)
                    if len(buffer) - offset - 8 < length:
                        break
                    frames.append(bytes(buffer[offset + 8 : offset + 8 + length]))
                    offset += 8 + length
                del buffer[:offset]
                if frames:
                    yield frames


@contextlib.asynccontextmanager
async def _translate(host: str, doing: str, secrets: Iterable[str] = ()) -> AsyncIterator[None]:
    """Turn aiodocker and aiohttp errors into DockerError (the one place).

    ``secrets`` (e.g. a container's environment values) are masked in the message.
    """
    try:
        yield
    except CosmosError:
        raise
    except aiodocker.DockerError as exc:
        message = scrub(str(exc.message).strip(), secrets)
        if exc.status == _NO_CONNECTION:
            raise DockerError(
                f"{doing} on {host}: the Docker daemon does not answer ({message}); is it "
                "running ('systemctl start docker')?",
                status=exc.status,
                transient=True,
            ) from exc
        if _NO_GPU_DRIVER in message:
            raise DockerError(
                f"{doing} on {host}: Docker cannot give the container GPUs ({message}); "
                "install the NVIDIA Container Toolkit on the host, or set gpu_request = false "
                "for this host",
                status=exc.status,
            ) from exc
        raise DockerError(f"{doing} on {host}: {message}", status=exc.status) from exc
    except (
        aiohttp.ClientConnectionError,
        aiohttp.ClientPayloadError,
        ConnectionError,
        asyncio.IncompleteReadError,
    ) as exc:
        raise DockerError(
            f"{doing} on {host}: the Docker daemon does not answer ({exc}); is it running?",
            transient=True,
        ) from exc
    except TimeoutError as exc:
        raise DockerError(f"{doing} on {host} timed out", transient=True) from exc
    except aiohttp.ClientError as exc:
        raise DockerError(f"{doing} on {host}: {exc}") from exc
    except OSError as exc:
        raise HostUnreachable(host, f"{doing}: {exc.strerror or exc}") from exc


# The one translation of aiodocker errors, for the other Docker modules of this package.
translate_errors = _translate
