"""Run a :class:`Sandbox` in a child process: what ``cosmos demo`` does.

The child (``python -m cosmos_tui.sandbox.process``) starts while the demo imports the
TUI, so the two start-ups overlap on separate cores. It prints one JSON line when the
simulated host is ready, then takes commands, one JSON line each, on its stdin and
answers each with one line. When its stdin closes (the demo quit, or died for any reason,
even SIGKILL) or it gets SIGTERM/SIGHUP, it stops the sandbox: every "container" process
ends and the temporary root is removed. It runs in its own session, so a Ctrl+C meant
for the demo does not cut it short.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import selectors
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

from cosmos_tui.config import HostConfig
from cosmos_tui.sandbox.options import SandboxOptions

READY_TIMEOUT_S = 20.0


class SandboxProcessError(RuntimeError):
    """The sandbox process failed to start or to answer."""


class SandboxProcess:
    """A sandbox in a child process; the demo's handle on it.

    Args:
        options: How the sandbox behaves (a SandboxOptions).
        client_dir: Where the client key and known_hosts are written.
        log_path: File the child appends its log records to.

    """

    def __init__(self, options: Any, client_dir: Path, log_path: Path | None = None) -> None:
        self.options = options
        self.client_dir = client_dir
        self.log_path = log_path
        self._process: subprocess.Popen[str] | None = None
        self._info: dict[str, Any] | None = None

    def start(self) -> None:
        """Spawn the child; it gets ready in the background (see :meth:`wait_ready`)."""
        request = {
            "options": dataclasses.asdict(self.options),
            "client_dir": str(self.client_dir),
            "log_path": str(self.log_path) if self.log_path else None,
        }
        self._process = subprocess.Popen(
            [sys.executable, "-m", "cosmos_tui.sandbox.process", json.dumps(request)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Wait for the child's ready line.

        Raises:
            SandboxProcessError: When it exits, reports an error or takes too long.

        """
        reply = self._read_line(timeout)
        if "error" in reply:
            raise SandboxProcessError(f"the simulated host failed to start: {reply['error']}")
        self._info = reply

    @property
    def port(self) -> int:
        """The SSH port on 127.0.0.1."""
        return int(self._ready()["port"])

    def host_config(self, name: str = "simulated-gpu-host") -> HostConfig:
        """Return the host entry that reaches the sandbox."""
        return HostConfig(**self._ready()["host"])

    def force_oom(self, run_id: str) -> None:
        """Make the run ``run_id`` fail with CUDA out of memory when its container starts."""
        self.command({"op": "force_oom", "run_id": run_id})

    def command(self, request: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        """Send one command and return the child's answer.

        Raises:
            SandboxProcessError: When the child is gone or answers with an error.

        """
        stdin = self._pipe().stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(request) + "\n")
            stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise SandboxProcessError("the simulated host is not running") from exc
        reply = self._read_line(timeout)
        if "error" in reply:
            raise SandboxProcessError(str(reply["error"]))
        return reply

    def stop(self, timeout: float = 15.0) -> None:
        """Close the child's stdin (it stops the sandbox) and wait; kill it if it hangs."""
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(BrokenPipeError, OSError):
            if process.stdin is not None:
                process.stdin.close()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if process.stdout is not None:
            process.stdout.close()

    def _pipe(self) -> subprocess.Popen[str]:
        if self._process is None:
            raise SandboxProcessError("the simulated host is not running")
        return self._process

    def _ready(self) -> dict[str, Any]:
        if self._info is None:
            self.wait_ready()
        assert self._info is not None
        return self._info

    def _read_line(self, timeout: float) -> dict[str, Any]:
        process = self._pipe()
        stdout = process.stdout
        assert stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise SandboxProcessError(f"the simulated host did not answer in {timeout:g} s")
        line = stdout.readline()
        if not line:
            raise SandboxProcessError(
                f"the simulated host exited (status {process.poll()}); see demo.log"
            )
        try:
            reply: dict[str, Any] = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SandboxProcessError(
                f"unexpected answer from the simulated host: {line!r}"
            ) from exc
        return reply


# the child ---------------------------------------------------------------------------


def _reply(out: IO[str], data: dict[str, Any]) -> None:
    out.write(json.dumps(data) + "\n")
    out.flush()


async def _serve(request: dict[str, Any], out: IO[str]) -> None:
    # lazy: asyncssh and aiohttp load in the sandbox's own process only; 'cosmos demo'
    # imports this module to start that process
    from cosmos_tui.sandbox.host import Sandbox

    options = SandboxOptions(**request["options"])
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with Sandbox.running(options, Path(request["client_dir"])) as sandbox:
        host = dataclasses.asdict(sandbox.host_config())
        _reply(out, {"port": sandbox.port, "root": str(sandbox.root), "host": host})
        commands = asyncio.ensure_future(_commands(sandbox, reader, out))
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({commands, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for task in (commands, stopped):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _commands(sandbox: Any, reader: asyncio.StreamReader, out: IO[str]) -> None:
    while line := await reader.readline():
        try:
            request = json.loads(line)
            op = request.get("op")
            if op == "force_oom":
                sandbox.faults.force_oom(run_id=str(request["run_id"]))
            elif op == "drop_connections":
                sandbox.drop_connections()
            elif op == "ping":
                pass
            else:
                raise ValueError(f"unknown command {op!r}")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            _reply(out, {"error": str(exc)})
        else:
            _reply(out, {"ok": True})


def main(argv: list[str]) -> int:
    """Entry point of the child: serve until stdin closes or a signal arrives."""
    out = sys.stdout
    try:
        request = json.loads(argv[0])
    except (IndexError, json.JSONDecodeError) as exc:
        _reply(out, {"error": f"bad request: {exc}"})
        return 2
    if request.get("log_path"):
        handler = logging.FileHandler(request["log_path"], encoding="utf-8")
        handler.setFormatter(
            logging.Formatter("%(asctime)s sandbox %(levelname)s %(name)s: %(message)s")
        )
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.WARNING)
        logging.getLogger("cosmos_tui").setLevel(logging.INFO)
    try:
        asyncio.run(_serve(request, out))
    except OSError as exc:
        _reply(out, {"error": str(exc)})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
