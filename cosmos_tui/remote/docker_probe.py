"""Short-lived Docker work for the doctor: a GPU probe, a file of an image, a pull.

Each probe container is labelled ``cosmos.doctor=true`` (never ``cosmos.managed``, so run
reconciliation ignores it) and removed in a ``finally``, whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiodocker

from cosmos_tui.errors import DockerError
from cosmos_tui.remote.docker import DockerClient, translate_errors

LABEL_DOCTOR = "cosmos.doctor"


@dataclass(frozen=True)
class ProbeResult:
    """What a probe container printed and how it ended."""

    exit_code: int
    output: str


@dataclass(frozen=True)
class PullProgress:
    """One event of an image pull (Docker's progress JSON, parsed at the edge).

    Attributes:
        layer: The layer id ("" for whole-image messages).
        status: Docker's status text ("Downloading", "Pull complete"...).
        current: Bytes done of this layer, when Docker says.
        total: Bytes of this layer, when Docker says.
    """

    layer: str
    status: str
    current: int | None = None
    total: int | None = None


async def _remove(api: aiodocker.Docker, container_id: str) -> None:
    with contextlib.suppress(aiodocker.DockerError, OSError, asyncio.TimeoutError):
        await api.containers.container(container_id).delete(force=True)


async def run_probe(
    docker: DockerClient,
    image: str,
    command: list[str],
    *,
    all_gpus: bool,
    timeout: float = 60.0,
) -> ProbeResult:
    """Run ``command`` in a throwaway container of ``image`` and return its output.

    Args:
        docker: The host's Docker client.
        image: The image (must be on the host).
        command: The container's command (exec form).
        all_gpus: Request every GPU, as ``docker run --gpus all`` does.
        timeout: Seconds before the container is killed.

    Raises:
        DockerError: Docker refused (no NVIDIA runtime: "could not select device driver").
    """
    api = await docker.api()
    host_config: dict[str, Any] = {"AutoRemove": False}
    if all_gpus:
        host_config["DeviceRequests"] = [
            {"Driver": "", "Count": -1, "Capabilities": [["gpu"]], "DeviceIDs": None}
        ]
    body: dict[str, Any] = {
        "Image": image,
        "Cmd": command,
        "Labels": {LABEL_DOCTOR: "true"},
        "HostConfig": host_config,
        "AttachStdout": False,
        "AttachStderr": False,
    }
    name = f"cosmos-doctor-{secrets.token_hex(4)}"
    async with translate_errors(docker.name, "creating the doctor's test container"):
        container = await api.containers.create(body, name=name)
    try:
        async with translate_errors(docker.name, "running the doctor's test container"):
            await container.start()
            result = await container.wait(timeout=timeout)
            lines = await container.log(stdout=True, stderr=True)
        return ProbeResult(int(result.get("StatusCode", -1)), "".join(lines))
    finally:
        await _remove(api, container.id)


async def read_image_file(docker: DockerClient, image: str, path: str) -> bytes | None:
    """Return the file ``path`` of ``image`` (None when the image has no such file).

    A container is created (never started) and the file is read through the Engine API's
    archive endpoint, so the image needs no shell.
    """
    api = await docker.api()
    body: dict[str, Any] = {"Image": image, "Cmd": ["true"], "Labels": {LABEL_DOCTOR: "true"}}
    name = f"cosmos-doctor-{secrets.token_hex(4)}"
    async with translate_errors(docker.name, f"reading {path} of {image}"):
        container = await api.containers.create(body, name=name)
    try:
        try:
            async with translate_errors(docker.name, f"reading {path} of {image}"):
                archive = await container.get_archive(path)
        except DockerError as exc:
            if exc.status == 404:
                return None
            raise
        member = next((m for m in archive.getmembers() if m.isfile()), None)
        if member is None:
            return None
        handle = archive.extractfile(member)
        return handle.read() if handle is not None else None
    except tarfile.TarError as exc:
        raise DockerError(f"reading {path} of {image} on {docker.name}: {exc}") from exc
    finally:
        await _remove(api, container.id)


def _progress(event: dict[str, Any]) -> PullProgress:
    detail = event.get("progressDetail") or {}
    current = detail.get("current")
    total = detail.get("total")
    return PullProgress(
        layer=str(event.get("id") or ""),
        status=str(event.get("status") or ""),
        current=int(current) if isinstance(current, int | float) else None,
        total=int(total) if isinstance(total, int | float) else None,
    )


async def pull_image(
    docker: DockerClient, image: str, on_progress: Callable[[PullProgress], None]
) -> None:
    """Pull ``image`` on the host, reporting each of Docker's progress events.

    Raises:
        DockerError: The registry or the daemon refused (no such image, no access).
    """
    api = await docker.api()
    async with translate_errors(docker.name, f"pulling {image}"):
        async for event in api.images.pull(image, stream=True, timeout=None):
            if "error" in event:
                raise DockerError(f"pulling {image} on {docker.name}: {event['error']}")
            on_progress(_progress(event))
