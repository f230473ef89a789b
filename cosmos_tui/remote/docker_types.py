"""Plain types of the Docker layer and their conversion to and from Engine API JSON.

Nothing here talks to a daemon: :mod:`cosmos_tui.remote.docker` does, and re-exports these.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

LABEL_MANAGED = "cosmos.managed"
LABEL_RUN_ID = "cosmos.run_id"
LABEL_HOST = "cosmos.host"
LABEL_GPUS = "cosmos.gpus"


@dataclass(frozen=True)
class Mount:
    """A bind mount from the host into a container."""

    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    """What a run's container is made of.

    Attributes:
        run_id: The run; names the container ``cosmos-<run id>`` and labels it.
        image: Image reference.
        command: Command argv (an exec form, never a shell string).
        gpus: Host GPU indices to request (only used when the host config allows it).
        env: Environment variables.
        mounts: Bind mounts.
        workdir: Working directory inside the container.
        shm_size_bytes: Size of /dev/shm; None keeps Docker's default.
        ipc_host: Share the host's IPC namespace (parallel torchrun wants it).
        labels: Extra labels (``cosmos.*`` ones are added by the client).
        network_host: Use the host network (no port mapping exists here anyway).
        memory_bytes: Memory limit (swap included); None means no limit.

    """

    run_id: str
    image: str
    command: tuple[str, ...]
    gpus: tuple[int, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()
    workdir: str | None = None
    shm_size_bytes: int | None = None
    ipc_host: bool = True
    labels: Mapping[str, str] = field(default_factory=dict)
    network_host: bool = False
    memory_bytes: int | None = None


@dataclass(frozen=True)
class ContainerInfo:
    """The state of one container, as inspect or list reports it."""

    id: str
    name: str
    image: str
    status: str
    running: bool
    labels: Mapping[str, str]
    exit_code: int | None = None
    oom_killed: bool = False
    error: str | None = None
    pid: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def run_id(self) -> str | None:
        """The run this container belongs to, from its label."""
        return self.labels.get(LABEL_RUN_ID)


@dataclass(frozen=True)
class DockerVersion:
    """The remote engine's version."""

    version: str
    api_version: str
    os: str
    arch: str


def parse_size(text: str) -> int:
    """Return bytes for sizes such as ``8g``, ``512m``, ``1024``."""
    units = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
    cleaned = text.strip().lower().removesuffix("b")
    if cleaned and cleaned[-1] in units:
        return int(float(cleaned[:-1]) * units[cleaned[-1]])
    return int(cleaned)


def parse_time(text: str | None) -> datetime | None:
    """Parse Docker's RFC 3339 nanosecond time; None for the zero time."""
    if not text or text.startswith("0001-01-01"):
        return None
    head, _, rest = text.rstrip("Z").partition(".")
    fraction = (rest[:6] if rest else "0").ljust(6, "0")
    return datetime.fromisoformat(f"{head}.{fraction}").replace(tzinfo=UTC)


def container_body(spec: ContainerSpec, host: str, gpu_request: bool) -> dict[str, Any]:
    """Return the Engine API create body of ``spec`` (labels, mounts, GPUs, IPC, shm)."""
    labels = {
        **spec.labels,
        LABEL_MANAGED: "true",
        LABEL_RUN_ID: spec.run_id,
        LABEL_HOST: host,
        LABEL_GPUS: ",".join(str(g) for g in spec.gpus),
    }
    host_config: dict[str, Any] = {
        "Binds": [f"{m.source}:{m.target}:{'ro' if m.read_only else 'rw'}" for m in spec.mounts],
        "AutoRemove": False,
    }
    if spec.ipc_host:
        host_config["IpcMode"] = "host"
    if spec.network_host:
        host_config["NetworkMode"] = "host"
    if spec.shm_size_bytes:
        host_config["ShmSize"] = spec.shm_size_bytes
    if spec.memory_bytes:
        host_config["Memory"] = spec.memory_bytes
        host_config["MemorySwap"] = spec.memory_bytes
    if gpu_request and spec.gpus:
        host_config["DeviceRequests"] = [
            {
                "Driver": "nvidia",
                "DeviceIDs": [str(g) for g in spec.gpus],
                "Capabilities": [["gpu"]],
            }
        ]
    body: dict[str, Any] = {
        "Image": spec.image,
        "Cmd": list(spec.command),
        "Env": [f"{k}={v}" for k, v in spec.env.items()],
        "Labels": labels,
        "Tty": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "HostConfig": host_config,
    }
    if spec.workdir:
        body["WorkingDir"] = spec.workdir
    return body


def info_from_inspect(data: Mapping[str, Any]) -> ContainerInfo:
    """Convert ``GET /containers/{id}/json`` into a ContainerInfo."""
    state = data.get("State", {})
    config = data.get("Config", {})
    running = bool(state.get("Running"))
    return ContainerInfo(
        id=data["Id"],
        name=str(data.get("Name", "")).lstrip("/"),
        image=str(config.get("Image", "")),
        status=str(state.get("Status", "")),
        running=running,
        labels=dict(config.get("Labels") or {}),
        exit_code=None if running or state.get("Status") == "created" else state.get("ExitCode"),
        oom_killed=bool(state.get("OOMKilled")),
        error=state.get("Error") or None,
        pid=state.get("Pid") or None,
        started_at=parse_time(state.get("StartedAt")),
        finished_at=parse_time(state.get("FinishedAt")),
    )


def info_from_list(data: Mapping[str, Any]) -> ContainerInfo:
    """Convert one ``GET /containers/json`` entry into a ContainerInfo."""
    status = str(data.get("Status", ""))
    exit_code = None
    if status.startswith("Exited (") and ")" in status:
        with contextlib.suppress(ValueError):
            exit_code = int(status[len("Exited (") : status.index(")")])
    names = data.get("Names") or [""]
    return ContainerInfo(
        id=data["Id"],
        name=str(names[0]).lstrip("/"),
        image=str(data.get("Image", "")),
        status=str(data.get("State", "")),
        running=data.get("State") == "running",
        labels=dict(data.get("Labels") or {}),
        exit_code=exit_code,
    )
