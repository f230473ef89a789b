"""The sandbox's SSH server: asyncssh on 127.0.0.1 with key auth only.

What a client can do, as on a real host:

- exec: the command runs with ``/bin/sh -c`` in the sandbox user's home (``HOME`` and
  the working directory inside the sandbox root), stdin, stdout and stderr pumped with
  explicit loops (``process.redirect`` lost stderr and exit codes), the exit status or the
  killing signal reported, and signals from the client delivered to the command's process
  group. ``nvidia-smi ...`` is answered by the GPU simulation in-process.
- SFTP, confined to the sandbox root (a path outside it is "permission denied");
  relative paths start in the user's home, as with OpenSSH.
- direct-streamlocal forwarding to UNIX sockets inside the root (the Docker socket).

Faults: :meth:`SandboxSshd.drop_connections` cuts every connection at once, and the
listener can be closed and reopened on the same port (the host goes down and comes back).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shlex
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import asyncssh

from cosmos_tui.sandbox.faults import Faults
from cosmos_tui.sandbox.hostile import with_lies

logger = logging.getLogger(__name__)

SmiHandler = Callable[
    [list[str], Callable[[bytes], Awaitable[None]], Callable[[bytes], Awaitable[None]]],
    Coroutine[Any, Any, int],
]
_CHUNK = 65536
_PROC_PATH = re.compile(r"/proc/(\d+)/")


class ConfinedSFTPServer(asyncssh.SFTPServer):
    """An SFTP server that serves real paths, but only those under the sandbox root.

    Args:
        chan: The SSH channel (passed by asyncssh).
        root: The sandbox root (resolved).
        home: Where relative paths start.

    """

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], root: Path, home: Path) -> None:
        super().__init__(chan)
        self._root = os.fsencode(root)
        self._home = os.fsencode(home)

    def map_path(self, path: bytes) -> bytes:
        """Resolve ``path`` against the home directory; refuse anything outside the root."""
        full = os.path.normpath(os.path.join(self._home, path))
        real = os.path.realpath(full)
        if real != self._root and not real.startswith(self._root + b"/"):
            raise asyncssh.SFTPPermissionDenied("outside the simulated host's root")
        return full

    def reverse_map_path(self, path: bytes) -> bytes:
        """Report local paths unchanged (they are the host's real paths)."""
        return path


class HostileSFTPServer(ConfinedSFTPServer):
    """A confined SFTP server that lies in listings while ``faults.hostile_names`` is on."""

    def __init__(
        self, chan: asyncssh.SSHServerChannel[bytes], root: Path, home: Path, faults: Faults
    ) -> None:
        super().__init__(chan, root, home)
        self._faults = faults

    def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        """List ``path``; add impossible names to output folders when switched on."""
        names = super().scandir(path)
        if not self._faults.hostile_names:
            return names
        return with_lies(names, path)


class _ServerHooks(asyncssh.SSHServer):
    """Per-connection hooks: registration, and which forwardings are allowed."""

    def __init__(self, owner: SandboxSshd) -> None:
        self._owner = owner
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._owner.connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._owner.connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def unix_connection_requested(self, dest_path: str) -> bool:
        real = Path(os.path.realpath(dest_path))
        allowed = real.is_relative_to(self._owner.root)
        if not allowed:
            logger.warning("sandbox sshd: refused forwarding to %s (outside the root)", dest_path)
        return allowed


class SandboxSshd:
    """An in-process SSH server for one sandbox.

    Args:
        root: The sandbox root; SFTP and forwarding are confined to it.
        home: The login user's home (inside ``root``).
        host_key: The server's private host key.
        authorized_key: The one client public key that may log in.
        faults: Fault switches (stalled streams).
        smi: Answers ``nvidia-smi`` command lines.
        extra_path: Directory put first on commands' PATH (stand-in tools).
        proc_dir: Simulated ``/proc/<pid>/`` entries of container processes; a command
            that names ``/proc/<pid>/`` of such a process reads them instead, and its
            output names ``/proc`` again.

    """

    def __init__(
        self,
        root: Path,
        home: Path,
        host_key: asyncssh.SSHKey,
        authorized_key: asyncssh.SSHKey,
        faults: Faults,
        smi: SmiHandler,
        extra_path: Path | None = None,
        proc_dir: Path | None = None,
    ) -> None:
        self.root = root
        self.home = home
        self.host_key = host_key
        self.authorized_key = authorized_key
        self.faults = faults
        self.smi = smi
        self.extra_path = extra_path
        self.proc_dir = proc_dir
        self.connections: set[asyncssh.SSHServerConnection] = set()
        self.port = 0
        self._listener: asyncssh.SSHAcceptor | None = None
        self._sessions: set[asyncio.Task[None]] = set()

    @property
    def listening(self) -> bool:
        """True while new connections are accepted."""
        return self._listener is not None

    async def start(self, port: int = 0) -> int:
        """Listen on 127.0.0.1 (``port`` 0 picks a free one, or the previous one); return it."""
        if self._listener is not None:
            return self.port
        authorized = asyncssh.import_authorized_keys(
            self.authorized_key.export_public_key().decode()
        )
        self._listener = await asyncssh.listen(
            "127.0.0.1",
            port or self.port,
            server_factory=lambda: _ServerHooks(self),
            server_host_keys=[self.host_key],
            authorized_client_keys=authorized,
            process_factory=self._handle,
            sftp_factory=lambda chan: HostileSFTPServer(chan, self.root, self.home, self.faults),
            allow_scp=False,
            encoding=None,
            password_auth=False,
            kbdint_auth=False,
            reuse_address=True,
        )
        self.port = self._listener.get_port()
        return self.port

    async def stop_listening(self) -> None:
        """Refuse new connections (existing ones stay up)."""
        if self._listener is not None:
            self._listener.close()
            await self._listener.wait_closed()
            self._listener = None

    def drop_connections(self) -> int:
        """Cut every open connection abruptly, as a network failure would; return how many."""
        dropped = list(self.connections)
        for conn in dropped:
            conn.abort()
        self.connections.clear()
        if dropped:
            logger.info("sandbox sshd: dropped %d connection(s)", len(dropped))
        return len(dropped)

    async def close(self) -> None:
        """Stop listening, drop connections and end every running command."""
        await self.stop_listening()
        self.drop_connections()
        for task in list(self._sessions):
            task.cancel()
        for task in list(self._sessions):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # sessions ---------------------------------------------------------------------

    async def _handle(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            command = process.command
            if not command:
                process.stderr.write(b"this simulated GPU host offers no interactive shell\n")
                process.exit(1)
                return
            try:
                argv = shlex.split(command)
            except ValueError:
                argv = []
            if self.faults.command_delay_s:  # a distant host: every command is late
                await asyncio.sleep(self.faults.command_delay_s)
            if self.faults.greeting:  # a chatty ~/.bashrc prints before every command
                await self._write(process.stdout, self.faults.greeting.encode())
            if argv and Path(argv[0]).name == "nvidia-smi":
                await self._run_smi(process, argv[1:])
            else:
                await self._run_command(process, command)
        except (BrokenPipeError, ConnectionError, asyncssh.Error) as exc:
            logger.debug("sandbox sshd: session ended: %s", exc)
        finally:
            self._sessions.discard(task)

    async def _write(self, stream: asyncssh.SSHWriter[bytes], data: bytes) -> None:
        await self.faults.wait_unstalled()
        stream.write(data)
        await stream.drain()

    async def _run_smi(self, process: asyncssh.SSHServerProcess[bytes], args: list[str]) -> None:
        work = asyncio.create_task(
            self.smi(
                args,
                lambda data: self._write(process.stdout, data),
                lambda data: self._write(process.stderr, data),
            )
        )
        signalled: list[str] = []

        def deliver(name: str) -> None:
            # a real nvidia-smi dies of TERM, INT, HUP, KILL ... sent over the channel
            if name not in ("WINCH", "CHLD", "CONT", "URG"):
                signalled.append(name)
                work.cancel()

        # mypy checks an instance's override against asyncssh's unbound method (self and all)
        process.signal_received = deliver  # type: ignore[assignment]
        closed = asyncio.create_task(process.wait_closed())
        done, _ = await asyncio.wait({work, closed}, return_when=asyncio.FIRST_COMPLETED)
        if work in done and not signalled:
            closed.cancel()
            process.exit(work.result())
            return
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError, BrokenPipeError, ConnectionError):
            await work
        if signalled and not closed.done():
            closed.cancel()
            process.exit_with_signal(signalled[0])

    def _env(self) -> dict[str, str]:
        path = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
        if self.extra_path is not None:
            path = f"{self.extra_path}{os.pathsep}{path}"
        user = self.home.name
        return {
            "HOME": str(self.home),
            "USER": user,
            "LOGNAME": user,
            "SHELL": "/bin/sh",
            "PATH": path,
            "LANG": "C.UTF-8",
        }

    def _simulated_proc(self, command: str) -> tuple[str, bytes | None]:
        """Point ``/proc/<pid>/`` of container processes at their simulated entries."""
        if self.proc_dir is None or "/proc/" not in command:
            return command, None
        proc_dir = self.proc_dir

        def swap(match: re.Match[str]) -> str:
            pid = match.group(1)
            return f"{proc_dir}/{pid}/" if (proc_dir / pid).is_dir() else match.group(0)

        rewritten = _PROC_PATH.sub(swap, command)
        if rewritten == command:
            return command, None
        return rewritten, os.fsencode(proc_dir) + b"/"

    async def _run_command(self, process: asyncssh.SSHServerProcess[bytes], command: str) -> None:
        command, proc_prefix = self._simulated_proc(command)
        child = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            command,
            cwd=self.home,
            env=self._env(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )

        def deliver(name: str) -> None:
            signum = getattr(signal, f"SIG{name}", None)
            if signum is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.pid, signum)

        # asyncssh hands a client's signal to the session's signal_received(); deliver it
        # to the command's process group as sshd does.
        # mypy checks an instance's override against asyncssh's unbound method (self and all)
        process.signal_received = deliver  # type: ignore[assignment]
        assert child.stdin is not None and child.stdout is not None and child.stderr is not None
        pumps = [
            asyncio.create_task(self._pump_in(process, child.stdin)),
            asyncio.create_task(self._pump_out(child.stdout, process.stdout, proc_prefix)),
            asyncio.create_task(self._pump_out(child.stderr, process.stderr)),
        ]
        closed = asyncio.create_task(process.wait_closed())
        waiter = asyncio.create_task(child.wait())
        try:
            await asyncio.wait({waiter, closed}, return_when=asyncio.FIRST_COMPLETED)
            if not waiter.done():
                deliver("HUP")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(waiter), timeout=1.0)
                deliver("KILL")
                await waiter
                return
            await asyncio.gather(pumps[1], pumps[2], return_exceptions=True)
            code = waiter.result()
            if code < 0:
                name = signal.Signals(-code).name.removeprefix("SIG")
                process.exit_with_signal(name)
            else:
                process.exit(code)
        finally:
            for task in (*pumps, closed, waiter):
                task.cancel()
            if child.returncode is None:
                deliver("KILL")
                with contextlib.suppress(ProcessLookupError):
                    await child.wait()

    async def _pump_in(
        self, process: asyncssh.SSHServerProcess[bytes], sink: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                try:
                    data = await process.stdin.read(_CHUNK)
                except (asyncssh.BreakReceived, asyncssh.TerminalSizeChanged):
                    continue
                if not data:
                    break
                sink.write(data)
                await sink.drain()
        except (BrokenPipeError, ConnectionError):
            return
        finally:
            with contextlib.suppress(BrokenPipeError, ConnectionError, RuntimeError):
                sink.close()

    async def _pump_out(
        self,
        source: asyncio.StreamReader,
        stream: asyncssh.SSHWriter[bytes],
        proc_prefix: bytes | None = None,
    ) -> None:
        if proc_prefix is not None:
            # a short read of simulated /proc entries: whole, with the real paths restored
            data = await source.read()
            await self._write(stream, data.replace(proc_prefix, b"/proc/"))
            return
        while data := await source.read(_CHUNK):
            await self._write(stream, data)
