"""The JSON shapes of the sandbox's Docker Engine API: what Docker returns, field by field.

Kept apart from the HTTP handlers (docker_api.py) so that each stays readable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import signal
import tarfile
import time
from pathlib import Path
from typing import Any

from cosmos_tui.sandbox.containers import Container, rfc3339


def time_ns(raw: str | None) -> int:
    """Parse Docker's ``since``/``until``: unix seconds with optional nanoseconds."""
    if not raw:
        return 0
    seconds, _, fraction = raw.partition(".")
    if seconds.lstrip("-").isdigit():
        nanos = int((fraction + "000000000")[:9]) if fraction.isdigit() else 0
        return int(seconds) * 1_000_000_000 + nanos
    try:
        parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return 0
    return int(parsed.timestamp() * 1_000_000_000)


def signal_number(raw: str) -> int:
    """Parse a signal name or number as ``docker kill`` takes it."""
    if raw.isdigit():
        return int(raw)
    name = raw.upper()
    name = name if name.startswith("SIG") else f"SIG{name}"
    return int(getattr(signal, name, signal.SIGKILL))


def filters(raw: str | None) -> dict[str, list[str]]:
    """Parse the ``filters`` query parameter (list or map form)."""
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    result: dict[str, list[str]] = {}
    for key, value in data.items():
        result[key] = list(value) if isinstance(value, list) else [k for k, v in value.items() if v]
    return result


def matches(container: Container, filters: dict[str, list[str]]) -> bool:
    """True when the container passes every filter (label, status, name, id)."""
    labels = container.labels
    for item in filters.get("label", []):
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    if filters.get("status") and container.status not in filters["status"]:
        return False
    if filters.get("name") and not any(n.lstrip("/") in container.name for n in filters["name"]):
        return False
    return not (filters.get("id") and not any(container.id.startswith(i) for i in filters["id"]))


def image_summary(name: str) -> dict[str, Any]:
    """Return an image as ``GET /images/json`` lists it."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    return {
        "Id": f"sha256:{digest}",
        "RepoTags": [name],
        "RepoDigests": [],
        "ParentId": "",
        "Created": 1736121600,
        "Size": 21_474_836_480,
        "Labels": {},
        "Containers": -1,
    }


def status_text(container: Container) -> str:
    """Return ``Up 5 seconds``, ``Exited (0) 3 seconds ago`` or ``Created``."""
    if container.running:
        return f"Up {ago(container.started_ns)}"
    if container.status == "created":
        return "Created"
    return f"Exited ({container.exit_code}) {ago(container.finished_ns)} ago"


def ago(at_ns: int) -> str:
    """Return how long ago ``at_ns`` was, as Docker words it."""
    seconds = max(0, int(time.time() - at_ns / 1e9))
    return f"{seconds} seconds" if seconds < 60 else f"{seconds // 60} minutes"


def mounts(container: Container) -> list[dict[str, Any]]:
    """Return the container's ``Mounts`` as inspect shows them."""
    return [
        {
            "Type": "bind",
            "Source": str(m.source),
            "Destination": m.target,
            "Mode": "",
            "RW": not m.read_only,
            "Propagation": "rprivate",
        }
        for m in container.mounts
    ]


def summary(container: Container) -> dict[str, Any]:
    """Return a container as ``GET /containers/json`` lists it."""
    argv = list(container.config.get("Entrypoint") or []) + list(container.config.get("Cmd") or [])
    return {
        "Id": container.id,
        "Names": [f"/{container.name}"],
        "Image": container.image,
        "ImageID": image_summary(container.image)["Id"],
        "Command": " ".join(argv),
        "Created": container.created_ns // 1_000_000_000,
        "State": container.status,
        "Status": status_text(container),
        "Labels": container.labels,
        "Ports": [],
        "Mounts": mounts(container),
        "HostConfig": {"NetworkMode": container.host_config.get("NetworkMode", "none")},
    }


def inspect(container: Container) -> dict[str, Any]:
    """Return a container as ``GET /containers/{id}/json`` shows it."""
    argv = list(container.config.get("Entrypoint") or []) + list(container.config.get("Cmd") or [])
    config = {
        "Hostname": container.id[:12],
        "Tty": False,
        "OpenStdin": False,
        "Env": list(container.config.get("Env") or []),
        "Cmd": container.config.get("Cmd"),
        "Entrypoint": container.config.get("Entrypoint"),
        "Image": container.image,
        "WorkingDir": container.config.get("WorkingDir") or "",
        "Labels": container.labels,
    }
    return {
        "Id": container.id,
        "Created": rfc3339(container.created_ns),
        "Path": argv[0] if argv else "",
        "Args": argv[1:],
        "State": {
            "Status": container.status,
            "Running": container.running,
            "Paused": False,
            "Restarting": False,
            "OOMKilled": container.oom_killed,
            "Dead": False,
            "Pid": container.pid if container.running else 0,
            "ExitCode": container.exit_code,
            "Error": container.error,
            "StartedAt": rfc3339(container.started_ns),
            "FinishedAt": rfc3339(container.finished_ns),
        },
        "Image": image_summary(container.image)["Id"],
        "Name": f"/{container.name}",
        "RestartCount": 0,
        "Driver": "overlay2",
        "Platform": "linux",
        "HostConfig": container.host_config,
        "Mounts": mounts(container),
        "Config": config,
        "NetworkSettings": {"Networks": {}},
    }


def group_processes(pgid: int) -> list[tuple[int, int, str]]:
    """Return (pid, ppid, command) of every process in a process group, from /proc."""
    found: list[tuple[int, int, str]] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return [(pgid, 1, "python")]
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[2]) == pgid:
            found.append((int(entry.name), int(fields[1]), cmdline))
    return sorted(found) or [(pgid, 1, "python")]


def pull_events(image: str, layers: int, layer_bytes: int) -> list[dict[str, Any]]:
    """Return the progress JSON of a pull, shaped as Docker streams it."""
    name, _, tag = image.rpartition(":")
    events: list[dict[str, Any]] = [{"status": f"Pulling from {name}", "id": tag}]
    ids = [hashlib.sha256(f"{image}/{n}".encode()).hexdigest()[:12] for n in range(layers)]
    events += [{"status": "Pulling fs layer", "progressDetail": {}, "id": i} for i in ids]
    for layer in ids:
        for part in (1, 2, 4):
            current = layer_bytes * part // 4
            events.append(
                {
                    "status": "Downloading",
                    "progressDetail": {"current": current, "total": layer_bytes},
                    "progress": f"{current}/{layer_bytes}",
                    "id": layer,
                }
            )
        events.append({"status": "Download complete", "progressDetail": {}, "id": layer})
        events.append({"status": "Pull complete", "progressDetail": {}, "id": layer})
    digest = hashlib.sha256(image.encode()).hexdigest()
    events.append({"status": f"Digest: sha256:{digest}"})
    events.append({"status": f"Status: Downloaded newer image for {image}"})
    return events


def single_file_tar(path: str, data: bytes) -> bytes:
    """Return a tar holding one file, as the archive endpoint sends it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(path.rstrip("/").rsplit("/", 1)[-1])
        info.size = len(data)
        info.mode = 0o644
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
