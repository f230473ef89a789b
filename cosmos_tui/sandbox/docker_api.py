"""A Docker Engine API endpoint on a UNIX socket, backed by :class:`ContainerRuntime`.

It implements the part of the API that cosmos-tui's remote layer uses, with Docker's
status codes, JSON shapes and multiplexed log frames, so that aiodocker cannot tell it
from a real daemon: ping, version, info, images (list, inspect, pull from the simulated
registry with Docker's progress JSON), containers (create, start, inspect, list with
filters, logs, top, wait, stop, kill, delete, archive of an image's file). Any other call
gets Docker's 404 ``page not found`` and is logged, so a gap shows up at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from cosmos_tui.sandbox import docker_json
from cosmos_tui.sandbox.containers import (
    Container,
    ContainerError,
    ContainerRuntime,
    LogEntry,
    rfc3339,
)
from cosmos_tui.sandbox.faults import Faults

logger = logging.getLogger(__name__)

API_VERSION = "1.43"
PULL_LAYERS = 3
PULL_LAYER_BYTES = 4 * 1024 * 1024
ENGINE_VERSION = "24.0.7"
_VERSION_PREFIX = re.compile(r"^/v[0-9]+\.[0-9]+(?=/)")
Handler = Callable[[web.Request, dict[str, str]], Awaitable[web.StreamResponse]]


class DockerApi:
    """The fake Engine API server.

    Args:
        runtime: Containers and images of the sandbox.
        socket_path: Where the UNIX socket is created.
        faults: Fault switches (stalled log streams).

    """

    def __init__(self, runtime: ContainerRuntime, socket_path: Path, faults: Faults) -> None:
        self.runtime = runtime
        # What the simulated registry can pull: the images the host starts with.
        self.registry: set[str] = set(runtime.images)
        self.socket_path = socket_path
        self.faults = faults
        self._runner: web.AppRunner | None = None
        self._site: web.UnixSite | None = None
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        for method, pattern, handler in (
            ("GET", r"/_ping", self._ping),
            ("HEAD", r"/_ping", self._ping),
            ("GET", r"/version", self._version),
            ("GET", r"/info", self._info),
            ("GET", r"/images/json", self._images),
            ("GET", r"/images/(?P<name>.+)/json", self._image_inspect),
            ("POST", r"/images/create", self._pull),
            ("GET", r"/containers/(?P<id>[^/]+)/archive", self._archive),
            ("POST", r"/containers/create", self._create),
            ("GET", r"/containers/json", self._list),
            ("GET", r"/containers/(?P<id>[^/]+)/json", self._inspect),
            ("POST", r"/containers/(?P<id>[^/]+)/start", self._start),
            ("POST", r"/containers/(?P<id>[^/]+)/stop", self._stop),
            ("POST", r"/containers/(?P<id>[^/]+)/kill", self._kill),
            ("POST", r"/containers/(?P<id>[^/]+)/wait", self._wait),
            ("GET", r"/containers/(?P<id>[^/]+)/logs", self._logs),
            ("GET", r"/containers/(?P<id>[^/]+)/top", self._top),
            ("DELETE", r"/containers/(?P<id>[^/]+)", self._delete),
        ):
            self._routes.append((method, re.compile(f"^{pattern}$"), handler))

    @property
    def running(self) -> bool:
        """True while the socket accepts connections."""
        return self._site is not None

    async def start(self) -> None:
        """Listen on the socket (again, after :meth:`stop`)."""
        if self._site is not None:
            return
        if self._runner is None:
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._dispatch)
            self._runner = web.AppRunner(
                app, handle_signals=False, shutdown_timeout=0.5, access_log=None
            )
            await self._runner.setup()
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        site = web.UnixSite(self._runner, str(self.socket_path))
        await site.start()
        self._site = site

    async def stop(self) -> None:
        """Stop listening (the daemon looks down); containers keep running."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    async def close(self) -> None:
        """Stop listening and end every open request."""
        await self.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # dispatch ---------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = _VERSION_PREFIX.sub("", request.path, count=1)
        for method, pattern, handler in self._routes:
            match = pattern.match(path)
            if match and request.method == method:
                try:
                    return await handler(request, match.groupdict())
                except ContainerError as exc:
                    return _error(exc.status, exc.message)
        logger.warning("sandbox docker: unsupported call %s %s", request.method, request.path)
        return _error(404, "page not found")

    # system -----------------------------------------------------------------------

    async def _ping(self, request: web.Request, _: dict[str, str]) -> web.StreamResponse:
        headers = {
            "API-Version": API_VERSION,
            "Docker-Experimental": "false",
            "Ostype": "linux",
            "Cache-Control": "no-cache",
        }
        body = b"" if request.method == "HEAD" else b"OK"
        return web.Response(body=body, headers=headers, content_type="text/plain")

    async def _version(self, request: web.Request, _: dict[str, str]) -> web.StreamResponse:
        return web.json_response(
            {
                "Platform": {"Name": "cosmos-tui sandbox (SIMULATED GPU HOST)"},
                "Version": ENGINE_VERSION,
                "ApiVersion": API_VERSION,
                "MinAPIVersion": "1.12",
                "Os": "linux",
                "Arch": "amd64",
                "KernelVersion": os.uname().release,
                "GoVersion": "go1.20.13",
                "GitCommit": "sandbox",
                "Components": [{"Name": "Engine", "Version": ENGINE_VERSION}],
            }
        )

    async def _info(self, request: web.Request, _: dict[str, str]) -> web.StreamResponse:
        containers = list(self.runtime.containers.values())
        return web.json_response(
            {
                "ID": "SANDBOX",
                "Name": "simulated-gpu-host",
                "OperatingSystem": "SIMULATED GPU HOST (cosmos-tui sandbox)",
                "ServerVersion": ENGINE_VERSION,
                "Containers": len(containers),
                "ContainersRunning": sum(c.running for c in containers),
                "ContainersStopped": sum(not c.running for c in containers),
                "Images": len(self.runtime.images),
                "NCPU": os.cpu_count() or 1,
                "Runtimes": {
                    "runc": {"path": "runc"},
                    "nvidia": {"path": "nvidia-container-runtime"},
                },
                "DefaultRuntime": "runc",
                "DockerRootDir": str(self.runtime.root / "var" / "lib" / "docker"),
            }
        )

    # images -----------------------------------------------------------------------

    async def _images(self, request: web.Request, _: dict[str, str]) -> web.StreamResponse:
        return web.json_response([docker_json.image_summary(name) for name in self.runtime.images])

    async def _image_inspect(
        self, request: web.Request, groups: dict[str, str]
    ) -> web.StreamResponse:
        name = groups["name"]
        if not self.runtime.has_image(name):
            return _error(404, f"No such image: {name}")
        summary = docker_json.image_summary(name)
        return web.json_response(
            {
                "Id": summary["Id"],
                "RepoTags": summary["RepoTags"],
                "RepoDigests": [],
                "Created": "2025-01-06T00:00:00Z",
                "Size": summary["Size"],
                "Os": "linux",
                "Architecture": "amd64",
                "Config": {
                    "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"],
                    "WorkingDir": "/workspace",
                },
            }
        )

    async def _pull(self, request: web.Request, _: dict[str, str]) -> web.StreamResponse:
        """``POST /images/create``: a pull from the simulated registry, with progress."""
        image = request.query.get("fromImage", "")
        tag = request.query.get("tag", "")
        if tag and "@" not in image and ":" not in image.rsplit("/", 1)[-1]:
            image = f"{image}:{tag}"
        if image not in self.registry:
            name = image.rsplit(":", 1)[0]
            return _error(
                404,
                f"pull access denied for {name}, repository does not exist or may require "
                "'docker login': denied: requested access to the resource is denied",
            )
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for event in docker_json.pull_events(image, PULL_LAYERS, PULL_LAYER_BYTES):
            await response.write(json.dumps(event).encode() + b"\r\n")
            await asyncio.sleep(0)
        if not self.runtime.has_image(image):
            self.runtime.images.append(image)
        await response.write_eof()
        return response

    # containers -------------------------------------------------------------------

    async def _archive(self, request: web.Request, groups: dict[str, str]) -> web.StreamResponse:
        """``GET /containers/{id}/archive``: one file of the container's image, as a tar."""
        container = self.runtime.find(groups["id"])
        path = request.query.get("path", "")
        data = self.runtime.image_files.get(container.image, {}).get(path)
        if data is None:
            return _error(404, f"Could not find the file {path} in container {container.name}")
        return web.Response(
            body=docker_json.single_file_tar(path, data),
            headers={"Content-Type": "application/x-tar"},
        )

    async def _create(self, request: web.Request, _: dict[str, str]) -> web.StreamResponse:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "invalid JSON body")
        container = self.runtime.create(body, request.query.get("name"))
        return web.json_response({"Id": container.id, "Warnings": []}, status=201)

    async def _list(self, request: web.Request, _: dict[str, str]) -> web.StreamResponse:
        show_all = request.query.get("all", "0") in ("1", "true", "True")
        filters = docker_json.filters(request.query.get("filters"))
        result = []
        for container in sorted(self.runtime.containers.values(), key=lambda c: -c.created_ns):
            if not show_all and not container.running:
                continue
            if docker_json.matches(container, filters):
                result.append(docker_json.summary(container))
        return web.json_response(result)

    async def _inspect(self, request: web.Request, groups: dict[str, str]) -> web.StreamResponse:
        return web.json_response(docker_json.inspect(self.runtime.find(groups["id"])))

    async def _start(self, request: web.Request, groups: dict[str, str]) -> web.StreamResponse:
        container = self.runtime.find(groups["id"])
        started = await self.runtime.start(container)
        return web.Response(status=204 if started else 304)

    async def _stop(self, request: web.Request, groups: dict[str, str]) -> web.StreamResponse:
        container = self.runtime.find(groups["id"])
        grace = float(request.query.get("t", "10"))
        stopped = await self.runtime.stop(container, grace)
        return web.Response(status=204 if stopped else 304)

    async def _kill(self, request: web.Request, groups: dict[str, str]) -> web.StreamResponse:
        container = self.runtime.find(groups["id"])
        signum = docker_json.signal_number(request.query.get("signal", "SIGKILL"))
        await self.runtime.kill(container, signum)
        return web.Response(status=204)

    async def _wait(self, request: web.Request, groups: dict[str, str]) -> web.StreamResponse:
        container = self.runtime.find(groups["id"])
        condition = request.query.get("condition", "not-running")
        if condition == "removed":
            await container.removed.wait()
        elif condition == "next-exit" or container.running:
            if not container.running:
                container.exited.clear()
            await container.exited.wait()
        return web.json_response({"StatusCode": container.exit_code, "Error": None})

    async def _delete(self, request: web.Request, groups: dict[str, str]) -> web.StreamResponse:
        container = self.runtime.find(groups["id"])
        force = request.query.get("force", "0") in ("1", "true", "True")
        await self.runtime.remove(container, force=force)
        return web.Response(status=204)

    async def _top(self, request: web.Request, groups: dict[str, str]) -> web.StreamResponse:
        container = self.runtime.find(groups["id"])
        if not container.running:
            return _error(409, f"Container {container.id} is not running")
        processes = [
            ["sandbox", str(pid), str(ppid), "0", "00:00", "?", "00:00:00", cmd]
            for pid, ppid, cmd in docker_json.group_processes(container.pid)
        ]
        titles = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        return web.json_response({"Titles": titles, "Processes": processes})

    async def _logs(self, request: web.Request, groups: dict[str, str]) -> web.StreamResponse:
        container = self.runtime.find(groups["id"])
        query = request.query
        streams = {1} if _flag(query, "stdout") else set()
        if _flag(query, "stderr"):
            streams.add(2)
        if not streams:
            return _error(400, "Bad parameters: you must choose at least one stream")
        follow = _flag(query, "follow")
        stamps = _flag(query, "timestamps")
        since_ns = docker_json.time_ns(query.get("since"))
        until_ns = docker_json.time_ns(query.get("until"))

        def wanted(entry: LogEntry) -> bool:
            if entry.stream not in streams or entry.at_ns < since_ns:
                return False
            return not (until_ns and entry.at_ns > until_ns)

        response = web.StreamResponse(
            headers={"Content-Type": "application/vnd.docker.multiplexed-stream"}
        )
        await response.prepare(request)
        snapshot = len(container.logs)
        backlog = [e for e in container.logs[:snapshot] if wanted(e)]
        tail = query.get("tail", "all")
        if tail not in ("all", "") and tail.lstrip("-").isdigit() and int(tail) >= 0:
            backlog = backlog[len(backlog) - int(tail) :] if int(tail) else []
        try:
            await self._write(response, backlog, stamps)
            position = snapshot
            while follow:
                if position >= len(container.logs) and (
                    not container.running or container.removed.is_set()
                ):
                    break
                if position >= len(container.logs):
                    await _wait_for_lines(container, position)
                    continue
                fresh = container.logs[position:]
                position += len(fresh)
                await self._write(response, [e for e in fresh if wanted(e)], stamps)
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            logger.debug("log stream of %s ended by the client", container.name)
        return response

    async def _write(
        self, response: web.StreamResponse, entries: list[LogEntry], stamps: bool
    ) -> None:
        if not entries:
            return
        await self.faults.wait_unstalled()
        chunks = []
        for entry in entries:
            payload = entry.data
            if stamps:
                payload = rfc3339(entry.at_ns).encode() + b" " + payload
            chunks.append(struct.pack(">BxxxL", entry.stream, len(payload)) + payload)
        await response.write(b"".join(chunks))


async def _wait_for_lines(container: Container, position: int) -> None:
    """Wait until the container has more than ``position`` lines or stops running."""
    async with container.changed:
        await container.changed.wait_for(
            lambda: position < len(container.logs) or not container.running
        )


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


def _flag(query: Any, name: str) -> bool:
    return str(query.get(name, "0")).lower() in ("1", "true", "yes")
