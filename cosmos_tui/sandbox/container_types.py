"""What the sandbox knows about a container: its record, log lines, mounts and errors.

The runtime that starts and stops them is in containers.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STDOUT = 1
STDERR = 2
BANNER = b"SIMULATED GPU HOST: the cosmos-tui sandbox replays Cosmos-Transfer1's log phases\n"

# Log markers of Cosmos-Transfer1 (COSMOS.md section 5) -> what the GPUs are doing.
PHASE_MARKERS: tuple[tuple[str, str], ...] = (
    ("Start creating base model", "loading"),
    ("Loading the prompt upsampler", "loading"),
    ("Upsampling prompt for", "sampling"),
    ("running preprocessor", "preprocess"),
    ("Running text embedding", "embedding"),
    ("Starting latent encoding", "encode"),
    ("Starting diffusion sampling", "sampling"),
    ("Completed diffusion sampling", "decode"),
    ("Starting VAE decode", "decode"),
    ("Finish generation", "finishing"),
)


class ContainerError(Exception):
    """A request about containers that the Engine API answers with an error status.

    Args:
        status: The HTTP status Docker uses for this case.
        message: Docker's ``message`` text.

    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class LogEntry:
    """One line a container printed: when (ns since the epoch), where (1 out, 2 err)."""

    at_ns: int
    stream: int
    data: bytes


@dataclass(frozen=True)
class Mount:
    """A bind mount: ``source`` on the host appears at ``target`` in the container."""

    source: Path
    target: str
    read_only: bool = False


@dataclass
class Container:
    """One container and everything Docker would report about it."""

    id: str
    name: str
    image: str
    config: dict[str, Any]
    host_config: dict[str, Any]
    mounts: tuple[Mount, ...]
    gpus: tuple[int, ...]
    created_ns: int
    private_dir: Path
    status: str = "created"
    pid: int = 0
    exit_code: int = 0
    oom_killed: bool = False
    error: str = ""
    started_ns: int = 0
    finished_ns: int = 0
    phase: str = "starting"
    phase_since: float = 0.0
    logs: list[LogEntry] = field(default_factory=list)
    process: asyncio.subprocess.Process | None = None
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    removed: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def running(self) -> bool:
        """True between start and exit."""
        return self.status == "running"

    @property
    def labels(self) -> dict[str, str]:
        """The container's labels."""
        return dict(self.config.get("Labels") or {})

    def translate(self, path: str) -> str:
        """Return the host path of a container path under a mount, else ``path``."""
        for mount in sorted(self.mounts, key=lambda m: len(m.target), reverse=True):
            target = mount.target.rstrip("/") or "/"
            if path == target:
                return str(mount.source)
            if path.startswith(target + "/"):
                return str(mount.source / path[len(target) + 1 :])
        return path


def rfc3339(at_ns: int) -> str:
    """Format nanoseconds since the epoch as Docker does (``...T12:00:00.123456789Z``)."""
    if at_ns <= 0:
        return "0001-01-01T00:00:00Z"
    seconds, nanos = divmod(at_ns, 1_000_000_000)
    stamp = dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"
