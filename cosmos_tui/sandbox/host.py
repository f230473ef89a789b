"""The simulated GPU host: SSH server, Docker Engine API and GPUs under one temporary root.

:meth:`Sandbox.running` starts everything in the current event loop and stops it on
exit, leaving no process, socket or file behind::

    async with Sandbox.running(SandboxOptions(gpus=2), client_dir) as sandbox:
        host = sandbox.host_config()      # a HostConfig the remote layer connects to

The client side is given exactly what a user of a real host has: a private key, a
known_hosts file that trusts the sandbox's fresh host key, and a HostConfig. Nothing in
the project's services knows that the host is simulated.

Fault injection (tests, ``cosmos demo --flaky-ssh``): :attr:`Sandbox.faults` (OOM rate,
stalled streams, nvidia-smi driver failure), :meth:`drop_connections`,
:meth:`host_down`/:meth:`host_up`, :meth:`docker_down`/:meth:`docker_up`,
:meth:`kill_container`; set-up faults for the doctor in :attr:`Sandbox.setup`
(see breakage.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import shutil
import signal
import struct
import sys
import tempfile
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncssh

from cosmos_tui.config import HostConfig
from cosmos_tui.sandbox.breakage import SetupFaults, lay_out_model
from cosmos_tui.sandbox.containers import Container, ContainerRuntime
from cosmos_tui.sandbox.docker_api import DockerApi
from cosmos_tui.sandbox.faults import Faults
from cosmos_tui.sandbox.gpus import GpuSimulator, run_nvidia_smi
from cosmos_tui.sandbox.hostile import GREETING, foreign_container_bodies, plant_outputs
from cosmos_tui.sandbox.options import SIMULATED_LABEL, SandboxOptions
from cosmos_tui.sandbox.smi_replay import SmiReplay
from cosmos_tui.sandbox.sshd import SandboxSshd
from cosmos_tui.sandbox.standin import standin_script_path

logger = logging.getLogger(__name__)


_SMI_SHIM = '''#!{python}
"""nvidia-smi of the cosmos-tui sandbox (SIMULATED GPU HOST): asks the sandbox's GPUs."""
import json, os, socket, struct, sys

sock = socket.socket(socket.AF_UNIX)
try:
    sock.connect({socket_path!r})
except OSError:
    sys.stdout.write("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA "
                     "driver. Make sure that the latest NVIDIA driver is installed and running.\\n")
    sys.exit(9)
sock.sendall(json.dumps(sys.argv[1:]).encode() + b"\\n")
stream = sock.makefile("rb")
while True:
    head = stream.read(5)
    if len(head) < 5:
        sys.exit(1)
    kind, size = head[:1], struct.unpack(">I", head[1:])[0]
    data = stream.read(size)
    if kind == b"x":
        sys.exit(int(data))
    out = sys.stdout if kind == b"o" else sys.stderr
    out.buffer.write(data)
    out.flush()
'''


_MAX_SOCKET_PATH = 100  # UNIX socket paths are limited to 107 bytes on Linux


def _make_root() -> Path:
    """Create the temporary root, short enough for the sockets it will hold."""
    root = Path(os.path.realpath(tempfile.mkdtemp(prefix="cosmos-sbx-")))
    if len(os.fsencode(root / "var" / "run" / "docker.sock")) > _MAX_SOCKET_PATH:
        root.rmdir()
        root = Path(os.path.realpath(tempfile.mkdtemp(prefix="cosmos-sbx-", dir="/tmp")))
    return root


# Models whose cache the simulated host holds (engine/profiles/hf_token.py checks them).
SIMULATED_HUB_MODELS = (
    "Cosmos-Guardrail1",
    "Cosmos-Transfer2.5-2B",
    "Cosmos3-Edge",
    "Cosmos3-Nano",
    "Cosmos3-Super",
)


class Sandbox:
    """A running simulated GPU host; create it with :meth:`running`."""

    def __init__(self, options: SandboxOptions, root: Path, client_dir: Path) -> None:
        self.options = options
        self.root = root
        self.home = root / "home" / options.user
        self.client_dir = client_dir
        self.client_key_path = client_dir / "id_ed25519"
        self.known_hosts_path = client_dir / "known_hosts"
        self.docker_socket = root / "var" / "run" / "docker.sock"
        self.smi_socket = root / "run" / "nvidia-smi.sock"
        self.bin_dir = root / "usr" / "local" / "bin"
        self.faults = Faults(
            oom_rate=options.oom_rate,
            flaky_ssh=options.flaky_ssh,
            flaky_interval=options.flaky_interval,
            rng=random.Random(options.seed),  # noqa: S311
        )
        if options.hostile:
            self.faults.greeting = GREETING
            self.faults.hostile_names = True
            self.faults.hostile_outputs = True
            self.faults.leak_secrets = True
        self.runtime = ContainerRuntime(
            root,
            self.faults,
            standin_argv=lambda argv, _container: ["/bin/sh", str(standin_script_path()), *argv],
            standin_env={"COSMOS_STANDIN_SPEED": f"{options.time_scale:g}"},
            images=(options.docker_image,),
        )
        self.runtime.gpu_count = options.gpus
        self.runtime.on_exit = self._after_exit
        self.gpus = GpuSimulator(options.gpus, self.runtime, self.faults, seed=options.seed)
        if options.smi_replay:
            self.replay_smi(Path(options.smi_replay), options.smi_replay_tick_s)
        self.docker = DockerApi(self.runtime, self.docker_socket, self.faults)
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.sshd = SandboxSshd(
            root,
            self.home,
            self.host_key,
            self.client_key,
            self.faults,
            smi=lambda args, out, err: run_nvidia_smi(args, self.gpus, out, err),
            extra_path=self.bin_dir,
            proc_dir=self.runtime.proc_dir,
        )
        self._smi_server: asyncio.AbstractServer | None = None
        self.setup = SetupFaults(self)
        self._tasks: set[asyncio.Task[None]] = set()

    # lifecycle --------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def running(
        cls, options: SandboxOptions | None = None, client_dir: Path | None = None
    ) -> AsyncIterator[Sandbox]:
        """Start a sandbox and stop it (processes, sockets, temporary root) on exit.

        Args:
            options: How it behaves; defaults for None.
            client_dir: Where the client's key and known_hosts go; None puts them in the
                sandbox root (removed on exit).

        """
        root = _make_root()
        sandbox = cls(options or SandboxOptions(), root, client_dir or root / "client")
        try:
            await sandbox._start()
            yield sandbox
        finally:
            await sandbox.close()

    async def _start(self) -> None:
        self._lay_out()
        await self.docker.start()
        self._smi_server = await asyncio.start_unix_server(self._serve_smi, str(self.smi_socket))
        await self.sshd.start()
        self._write_client_files()
        if self.options.hostile:
            await self.add_foreign_containers()
        if self.faults.flaky_ssh:
            self._spawn(self._flaky_loop())
        logger.info("sandbox (%s) on 127.0.0.1:%d, root %s", SIMULATED_LABEL, self.port, self.root)

    def _lay_out(self) -> None:
        cache = self.home / ".cache" / "huggingface"
        # The weights Cosmos 3 and Transfer2.5 download at their first run are "there"
        # (the hub layout `hf download` writes), so their token check passes offline.
        for model in SIMULATED_HUB_MODELS:
            folder = cache / "hub" / f"models--nvidia--{model}"
            (folder / "snapshots" / "main").mkdir(parents=True)
            # what each stand-in takes for a finished download: Cosmos 3's snapshot
            # (cosmos3_standin.sh), Transfer2.5's mark (transfer25_standin.sh)
            (folder / "snapshots" / "main" / "config.json").write_text("{}\n", encoding="utf-8")
            (folder / ".standin-complete").touch()
        # a cosmos-framework checkout ([profiles.cosmos3] repo_dir in the demo's config):
        # the image's entrypoint installs it from /workspace (cosmos3_standin.sh)
        framework = self.home / "cosmos-framework"
        framework.mkdir(parents=True)
        (framework / "pyproject.toml").write_text(
            '[project]\nname = "cosmos-framework"  # SIMULATED GPU HOST\nversion = "1.0.0"\n',
            encoding="utf-8",
        )
        self.smi_socket.parent.mkdir(parents=True)
        self.bin_dir.mkdir(parents=True)
        shim = self.bin_dir / "nvidia-smi"
        shim.write_text(
            _SMI_SHIM.format(python=sys.executable, socket_path=str(self.smi_socket)),
            encoding="utf-8",
        )
        shim.chmod(0o755)
        lay_out_model(self)

    def _write_client_files(self) -> None:
        self.client_dir.mkdir(parents=True, exist_ok=True)
        self.client_key.write_private_key(str(self.client_key_path))
        self.client_key_path.chmod(0o600)
        public = self.host_key.export_public_key().decode().strip()
        self.known_hosts_path.write_text(f"[127.0.0.1]:{self.port} {public}\n", encoding="utf-8")

    async def close(self) -> None:
        """Stop everything; kill every container process; remove the root."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.sshd.close()
        await self.runtime.close()
        await self.docker.close()
        if self._smi_server is not None:
            self._smi_server.close()
            await self._smi_server.wait_closed()
            self._smi_server = None
        shutil.rmtree(self.root, ignore_errors=True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # what the client needs --------------------------------------------------------

    @property
    def port(self) -> int:
        """The SSH port on 127.0.0.1."""
        return self.sshd.port

    def host_config(self, name: str = "simulated-gpu-host") -> HostConfig:
        """Return a host entry that reaches this sandbox like any real host."""
        return HostConfig(
            name=name,
            hostname="127.0.0.1",
            port=self.port,
            user=self.options.user,
            identity_file=str(self.client_key_path),
            known_hosts=str(self.known_hosts_path),
            docker_image=self.options.docker_image,
            docker_socket=str(self.docker_socket),
            gpu_request=True,
        )

    # faults -----------------------------------------------------------------------

    def replay_smi(self, path: Path | None, tick_s: float = 1.0) -> None:
        """Make nvidia-smi answer from a captured output, from its first tick (None: stop).

        Raises:
            ReplayError: When the file cannot be read or is not a replay.
        """
        self.gpus.set_replay(None if path is None else SmiReplay.load(path, tick_s))

    def drop_connections(self) -> int:
        """Cut every SSH connection now (the client must reconnect); return how many."""
        return self.sshd.drop_connections()

    async def host_down(self) -> None:
        """Drop connections and refuse new ones until :meth:`host_up`."""
        await self.sshd.stop_listening()
        self.sshd.drop_connections()

    async def host_up(self) -> None:
        """Accept connections again, on the same port."""
        await self.sshd.start(self.port)

    async def docker_down(self) -> None:
        """Make the Docker daemon unreachable (its socket disappears); containers go on."""
        await self.docker.stop()

    async def docker_up(self) -> None:
        """Bring the Docker socket back."""
        await self.docker.start()

    def containers(self) -> list[Container]:
        """Every container the host knows, oldest first."""
        return sorted(self.runtime.containers.values(), key=lambda c: c.created_ns)

    async def kill_container(self, ref: str, oom_killed: bool = False) -> None:
        """SIGKILL a container's processes behind the client's back (exit status 137).

        Args:
            ref: Container id, id prefix, name, or a run id in its ``cosmos.run_id`` label.
            oom_killed: Report it as killed by the kernel's OOM killer.

        """
        container = self._find(ref)
        await self.runtime.kill(container, signal.SIGKILL, oom_killed=oom_killed)

    async def remove_container(self, ref: str) -> None:
        """Remove a container behind the client's back (it disappears)."""
        await self.runtime.remove(self._find(ref), force=True)

    def _after_exit(self, container: Container) -> None:
        """With ``hostile_outputs``, leave a malicious image's files in a run's folder."""
        if not self.faults.hostile_outputs or "cosmos.run_id" not in container.labels:
            return
        for mount in container.mounts:
            if mount.target == "/cosmos-tui/run":
                plant_outputs(mount.source, self.home)

    async def add_foreign_containers(self) -> list[Container]:
        """Create a second installation's containers (another owner id).

        One has exited, one runs; they must survive everything this installation does.
        """
        made = []
        for name, body, running in foreign_container_bodies(self.options.docker_image):
            container = self.runtime.create(body, name)
            await self.runtime.start(container)
            if not running:
                await container.exited.wait()
            made.append(container)
        return made

    def _find(self, ref: str) -> Container:
        for container in self.runtime.containers.values():
            if ref in container.labels.values():
                return container
        return self.runtime.find(ref)

    async def _flaky_loop(self) -> None:
        rng = self.faults.rng
        while True:
            await asyncio.sleep(rng.expovariate(1.0 / max(self.faults.flaky_interval, 0.1)))
            if not self.faults.flaky_ssh:
                continue
            await self.host_down()
            # down for 0.5-3 s (shorter when drops are more frequent than every 10 s)
            scale = min(1.0, self.faults.flaky_interval / 10.0)
            await asyncio.sleep(rng.uniform(0.5, 3.0) * scale)
            await self.host_up()

    # nvidia-smi shim --------------------------------------------------------------

    async def _serve_smi(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The work runs in a task of our own: close() cancels it, and this handler (whose
        # cancellation asyncio would log as an error) just returns.
        work = asyncio.ensure_future(self._answer_smi(reader, writer))
        self._tasks.add(work)
        work.add_done_callback(self._tasks.discard)
        with contextlib.suppress(asyncio.CancelledError):
            await work

    async def _answer_smi(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def send(kind: bytes, data: bytes) -> None:
            writer.write(kind + struct.pack(">I", len(data)) + data)
            await writer.drain()

        try:
            args = json.loads(await reader.readline())
            code = await run_nvidia_smi(
                [str(a) for a in args],
                self.gpus,
                lambda data: send(b"o", data),
                lambda data: send(b"e", data),
            )
            await send(b"x", str(code).encode())
        except (ConnectionError, json.JSONDecodeError, asyncio.IncompleteReadError) as exc:
            logger.debug("nvidia-smi shim client went away: %s", exc)
        finally:
            writer.close()
