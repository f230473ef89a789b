"""The sandbox's "containers": local processes that run the Cosmos stand-in.

A container's bind mounts are honoured by translating container paths into host paths
under the sandbox root: in the command line, the environment, the working directory and
inside the spec and batch files the command points at (translated copies are passed to
the process, the client's files are never changed). A ``torchrun`` command runs the
Cosmos stand-in ``cosmos_standin.sh`` (see its header), Transfer2.5's
``examples/inference.py`` (python or torchrun) runs ``transfer25_standin.sh``, Cosmos 3's
``-m cosmos_framework.scripts.inference`` runs ``cosmos3_standin.sh``; any other
command runs as is, as it would in an image that has a shell. An injected OOM selects the
stand-in's ``oom`` scenario, so the failure has the real signature.

Logs are kept per line with a nanosecond timestamp, as Docker's json-file driver keeps
them, so the API can serve ``since``, ``tail``, ``timestamps`` and ``follow``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cosmos_tui.sandbox.container_types import (
    BANNER,
    PHASE_MARKERS,
    STDERR,
    STDOUT,
    Container,
    ContainerError,
    LogEntry,
    Mount,
    rfc3339,
)
from cosmos_tui.sandbox.faults import Faults
from cosmos_tui.sandbox.hostile import leaked_env
from cosmos_tui.sandbox.paths import copy_specs, translate_arg
from cosmos_tui.sandbox.standin import cosmos3_standin_path, transfer25_standin_path
from cosmos_tui.sandbox.upsampler_standin import SIGNATURE

__all__ = [
    "STDERR",
    "STDOUT",
    "Container",
    "ContainerError",
    "ContainerRuntime",
    "LogEntry",
    "Mount",
    "rfc3339",
]

logger = logging.getLogger(__name__)


class ContainerRuntime:
    """Creates, runs, stops and removes the sandbox's containers.

    Args:
        root: The sandbox root; mounts must lie under it.
        faults: The sandbox's fault switches (OOM injection).
        standin_argv: Builds the host argv of a ``torchrun`` command (whole, with its
            paths translated) for a container.
        standin_env: Extra environment for stand-in processes (speed and the like).
        images: Image names the host has.
        clock_ns: Source of timestamps.

    """

    def __init__(
        self,
        root: Path,
        faults: Faults,
        standin_argv: Callable[[list[str], Container], list[str]],
        standin_env: dict[str, str] | None = None,
        images: tuple[str, ...] = (),
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.root = root
        self.faults = faults
        self.standin_argv = standin_argv
        self.standin_env = dict(standin_env or {})
        self.images = list(images)
        self.clock_ns = clock_ns
        self.containers: dict[str, Container] = {}
        self.gpu_count = 0
        # Files inside images (image -> path -> content), read through the archive API.
        self.image_files: dict[str, dict[str, bytes]] = {}
        # The host's nvidia-smi, which the NVIDIA runtime puts in containers given GPUs.
        self.smi_path: Path | None = None
        self.on_exit: Callable[[Container], None] | None = None

    # lookup -----------------------------------------------------------------------

    def find(self, ref: str) -> Container:
        """Return the container with this id, id prefix or name.

        Raises:
            ContainerError: 404 when none matches, 400 when a prefix is ambiguous.

        """
        if ref in self.containers:
            return self.containers[ref]
        name = ref.lstrip("/")
        for container in self.containers.values():
            if container.name == name:
                return container
        matches = [c for c in self.containers.values() if c.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ContainerError(400, f"multiple IDs found with provided prefix: {ref}")
        raise ContainerError(404, f"No such container: {ref}")

    def has_image(self, name: str) -> bool:
        """True when the host has image ``name`` (``:latest`` implied)."""
        wanted = name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"
        return wanted in self.images or name in self.images

    # create / start ---------------------------------------------------------------

    def create(self, body: dict[str, Any], name: str | None) -> Container:
        """Record a new container from an Engine API create body.

        Raises:
            ContainerError: 404 for a missing image, 409 for a name in use, 400 for a
                mount outside the sandbox or a missing bind source.

        """
        image = str(body.get("Image") or "")
        if not self.has_image(image):
            raise ContainerError(404, f"No such image: {image}")
        if name and any(c.name == name for c in self.containers.values()):
            raise ContainerError(409, f'Conflict. The container name "/{name}" is already in use.')
        container_id = secrets.token_hex(32)
        host_config = dict(body.get("HostConfig") or {})
        mounts = self._mounts(host_config)
        private_dir = self.root / "var" / "lib" / "docker" / "containers" / container_id
        (private_dir / "rootfs").mkdir(parents=True)
        container = Container(
            id=container_id,
            name=name or f"sandbox_{container_id[:8]}",
            image=image,
            config=body,
            host_config=host_config,
            mounts=mounts,
            gpus=self._gpus(host_config, body),
            created_ns=self.clock_ns(),
            private_dir=private_dir,
        )
        self.containers[container_id] = container
        return container

    def _mounts(self, host_config: dict[str, Any]) -> tuple[Mount, ...]:
        mounts: list[Mount] = []
        for bind in host_config.get("Binds") or []:
            parts = str(bind).split(":")
            if len(parts) < 2:
                raise ContainerError(400, f"invalid volume specification: '{bind}'")
            source = self._inside_root(parts[0])
            source.mkdir(parents=True, exist_ok=True)
            mounts.append(Mount(source, parts[1], len(parts) > 2 and "ro" in parts[2]))
        targets: set[str] = set()
        for item in host_config.get("Mounts") or []:
            if item.get("Type", "bind") != "bind":
                continue
            target = str(item.get("Target", ""))
            if not target.startswith("/"):  # Docker's own checks and messages
                raise ContainerError(
                    400,
                    f"invalid mount config for type \"bind\": invalid mount path: '{target}' "
                    "mount path must be absolute",
                )
            if target in targets:
                raise ContainerError(400, f"Duplicate mount point: {target}")
            targets.add(target)
            source = self._inside_root(str(item.get("Source", "")))
            if not source.exists():
                raise ContainerError(
                    400,
                    'invalid mount config for type "bind": bind source path does not '
                    f"exist: {source}",
                )
            mounts.append(Mount(source, str(item["Target"]), bool(item.get("ReadOnly"))))
        return tuple(mounts)

    def _inside_root(self, raw: str) -> Path:
        path = Path(os.path.realpath(raw))
        if not path.is_relative_to(self.root):
            raise ContainerError(
                400,
                f"bind source {raw} is outside the simulated host's root {self.root}; "
                "the sandbox only mounts its own files",
            )
        return path

    def _gpus(self, host_config: dict[str, Any], body: dict[str, Any]) -> tuple[int, ...]:
        indices: list[int] = []
        for request in host_config.get("DeviceRequests") or []:
            ids = request.get("DeviceIDs") or []
            if ids:
                indices += [int(i) for i in ids if str(i).isdigit()]
            elif request.get("Count") == -1:
                indices += list(range(self.gpu_count))
            else:
                indices += list(range(min(int(request.get("Count") or 0), self.gpu_count)))
        if not indices:
            for entry in body.get("Env") or []:
                key, _, value = str(entry).partition("=")
                if key in ("NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"):
                    if value == "all":
                        indices = list(range(self.gpu_count))
                    else:
                        indices = [int(v) for v in value.split(",") if v.strip().isdigit()]
        return tuple(sorted(set(indices)))

    async def start(self, container: Container) -> bool:
        """Start the container's process; False when it was already running.

        Raises:
            ContainerError: 400/500 when the command cannot be started.

        """
        if container.running:
            return False
        if self.faults.no_nvidia_runtime and container.host_config.get("DeviceRequests"):
            # what dockerd answers when no NVIDIA Container Toolkit registered a GPU driver
            raise ContainerError(
                500, 'could not select device driver "" with capabilities: [[gpu]]'
            )
        missing = [i for i in container.gpus if i >= self.gpu_count]
        if missing:
            # what the NVIDIA runtime answers for a GPU index the host does not have
            raise ContainerError(
                500,
                "failed to create task for container: failed to create shim task: OCI "
                "runtime create failed: nvidia-container-cli: device error: "
                f"{missing[0]}: unknown device: unknown",
            )
        argv = list(container.config.get("Entrypoint") or []) + list(
            container.config.get("Cmd") or []
        )
        if not argv:
            raise ContainerError(400, "No command specified")
        workdir = str(container.config.get("WorkingDir") or "/")
        cwd = container.translate(workdir)
        if cwd == workdir:
            cwd = str(container.private_dir / "rootfs" / workdir.lstrip("/"))
        Path(cwd).mkdir(parents=True, exist_ok=True)
        env = self._env(container)
        host_argv = self._host_argv(argv, container, env)
        try:
            process = await asyncio.create_subprocess_exec(
                *host_argv,
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            container.status = "exited"
            container.exit_code = 127
            container.error = f"exec: {argv[0]}: {exc.strerror or exc}"
            container.finished_ns = self.clock_ns()
            container.exited.set()
            raise ContainerError(
                400,
                f'failed to create task for container: exec: "{argv[0]}": '
                f"{exc.strerror or exc}: unknown",
            ) from exc
        container.process = process
        container.pid = process.pid
        self._write_cgroup(container)
        container.status = "running"
        container.started_ns = self.clock_ns()
        container.finished_ns = 0
        container.exit_code = 0
        container.exited.clear()
        container.phase = "starting"
        container.phase_since = time.monotonic()
        assert process.stdout is not None and process.stderr is not None
        if Path(argv[0]).name == "torchrun":
            await self._append(container, STDOUT, BANNER)
            if self.faults.leak_secrets:
                await self._append(container, STDOUT, leaked_env(env))
        readers = [
            asyncio.create_task(self._read(container, process.stdout, STDOUT)),
            asyncio.create_task(self._read(container, process.stderr, STDERR)),
        ]
        container.tasks.append(asyncio.create_task(self._supervise(container, readers)))
        logger.info(
            "container %s started: pid %d, gpus %s", container.name, process.pid, container.gpus
        )
        return True

    def _env(self, container: Container) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(container.private_dir / "rootfs" / "root"),
            "LANG": "C.UTF-8",
        }
        for entry in container.config.get("Env") or []:
            key, _, value = str(entry).partition("=")
            env[key] = container.translate(value)
        if container.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in container.gpus)
        return env

    def _host_argv(self, argv: list[str], container: Container, env: dict[str, str]) -> list[str]:
        translated = [translate_arg(arg, container) for arg in argv]
        if Path(argv[0]).name == "nvidia-smi" and container.gpus and self.smi_path:
            return [str(self.smi_path), *translated[1:]]
        if _is_transfer25(argv):
            # Transfer2.5's examples/inference.py (python or torchrun): its stand-in
            env.update(self.standin_env)
            if self.faults.draw_oom(container.labels.get("cosmos.run_id")):
                env["COSMOS_STANDIN_SCENARIO"] = "oom"
            standin = str(transfer25_standin_path())
            return ["/bin/sh", standin, *copy_specs(translated, container)]
        if _is_cosmos3(argv):
            # Cosmos 3's `python|torchrun -m cosmos_framework.scripts.inference`
            env.update(self.standin_env)
            if self.faults.draw_oom(container.labels.get("cosmos.run_id")):
                env["COSMOS_STANDIN_SCENARIO"] = "oom"
            launcher = Path(argv[0]).name
            standin = str(cosmos3_standin_path())
            return ["/bin/sh", standin, launcher, *copy_specs(translated[1:], container)]
        if Path(argv[0]).name != "torchrun":
            return translated
        env.update(self.standin_env)
        script = _upsampler_script(translated[1:])
        if script is not None:
            # the prompt-enhancement script: the sandbox's upsampler stand-in runs it
            rest = translated[translated.index(script) + 1 :]
            return [sys.executable, "-m", "cosmos_tui.sandbox.upsampler_standin", *rest]
        if self.faults.draw_oom(container.labels.get("cosmos.run_id")):
            env["COSMOS_STANDIN_SCENARIO"] = "oom"
        return self.standin_argv(copy_specs(translated, container), container)

    async def _read(self, container: Container, stream: asyncio.StreamReader, kind: int) -> None:
        while True:
            try:
                line = await stream.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                if exc.partial:
                    await self._append(container, kind, exc.partial + b"\n")
                return
            except asyncio.LimitOverrunError:
                line = await stream.read(65536)
            await self._append(container, kind, line)

    async def _append(self, container: Container, kind: int, data: bytes) -> None:
        container.logs.append(LogEntry(self.clock_ns(), kind, data))
        text = data.decode("utf-8", "replace")
        for marker, phase in PHASE_MARKERS:
            if marker in text:
                container.phase = phase
                container.phase_since = time.monotonic()
                break
        if "OutOfMemoryError" in text:
            container.phase = "oom"
            container.phase_since = time.monotonic()
        async with container.changed:
            container.changed.notify_all()

    async def _supervise(self, container: Container, readers: list[asyncio.Task[None]]) -> None:
        process = container.process
        assert process is not None
        returncode = await process.wait()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*readers), timeout=2.0)
        for task in container.tasks:
            if task is not asyncio.current_task() and not task.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if container.exit_code == 0:
            container.exit_code = returncode if returncode >= 0 else 128 - returncode
        if self.on_exit is not None:
            self.on_exit(container)
        container.status = "exited"
        container.phase = "exited"
        container.finished_ns = self.clock_ns()
        container.exited.set()
        shutil.rmtree(self.proc_dir / str(container.pid), ignore_errors=True)
        async with container.changed:
            container.changed.notify_all()
        logger.info("container %s exited with %d", container.name, container.exit_code)

    @property
    def proc_dir(self) -> Path:
        """The simulated ``/proc`` of container processes (see :meth:`_write_cgroup`)."""
        return self.root / "proc"

    def _write_cgroup(self, container: Container) -> None:
        """Record the container's cgroup where the sandbox's ``/proc/<pid>/cgroup`` is read.

        The processes are not really in a container, so the SSH server answers reads of
        ``/proc/<pid>/cgroup`` for them from this file, as Docker's cgroup would read.
        """
        folder = self.proc_dir / str(container.pid)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "cgroup").write_text(
            f"0::/system.slice/docker-{container.id}.scope\n", encoding="utf-8"
        )

    # stop / kill / remove ---------------------------------------------------------

    @staticmethod
    def _signal(container: Container, signum: int) -> None:
        if container.pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(container.pid, signum)

    async def stop(self, container: Container, grace: float = 10.0) -> bool:
        """SIGTERM, wait ``grace`` seconds, then SIGKILL; False when not running."""
        if not container.running:
            return False
        self._signal(container, signal.SIGTERM)
        try:
            await asyncio.wait_for(container.exited.wait(), timeout=max(grace, 0.0))
        except TimeoutError:
            self._signal(container, signal.SIGKILL)
            await container.exited.wait()
        return True

    async def kill(
        self, container: Container, signum: int = signal.SIGKILL, oom_killed: bool = False
    ) -> None:
        """Send ``signum`` to the container's processes.

        Args:
            container: The container.
            signum: The signal.
            oom_killed: Report the exit as the kernel's OOM killer's (State.OOMKilled).

        Raises:
            ContainerError: 409 when it is not running.

        """
        if not container.running:
            raise ContainerError(409, f"Container {container.id} is not running")
        container.oom_killed = oom_killed
        self._signal(container, signum)
        if signum == signal.SIGKILL:
            await container.exited.wait()

    async def remove(self, container: Container, force: bool = False) -> None:
        """Forget the container (and kill it first with ``force``).

        Raises:
            ContainerError: 409 when it runs and ``force`` is off.

        """
        if container.running:
            if not force:
                raise ContainerError(
                    409,
                    f"You cannot remove a running container {container.id}. Stop the "
                    "container before attempting removal or force remove",
                )
            await self.kill(container)
        self.containers.pop(container.id, None)
        container.removed.set()
        async with container.changed:
            container.changed.notify_all()

    async def close(self) -> None:
        """Kill every container's processes and wait for them; used at shutdown."""
        for container in list(self.containers.values()):
            if container.running:
                self._signal(container, signal.SIGKILL)
        for container in list(self.containers.values()):
            for task in container.tasks:
                if not task.done():
                    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                        await asyncio.wait_for(task, timeout=5.0)


def _is_cosmos3(argv: list[str]) -> bool:
    """True for ``python``/``torchrun ... -m cosmos_framework...`` (Cosmos 3's entry)."""
    if Path(argv[0]).name not in ("python", "python3", "torchrun") or "-m" not in argv:
        return False
    module = argv[argv.index("-m") + 1] if argv.index("-m") + 1 < len(argv) else ""
    return module.startswith("cosmos_framework.")


def _is_transfer25(argv: list[str]) -> bool:
    """True for ``python``/``torchrun ... examples/inference.py`` (Transfer2.5's entry)."""
    if Path(argv[0]).name not in ("python", "python3", "torchrun"):
        return False
    script = next((a for a in argv[1:] if not a.startswith("-")), "")
    return script.endswith("examples/inference.py")


def _upsampler_script(args: list[str]) -> str | None:
    """Return the host path of a torchrun script that uses the prompt upsampler, if any."""
    for arg in args:
        if arg.endswith(".py") and not arg.startswith("-"):
            try:
                text = Path(arg).read_text(encoding="utf-8", errors="replace")
            except OSError:
                return None
            return arg if SIGNATURE in text else None
    return None
