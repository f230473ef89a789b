"""Run a :class:`Sandbox` in a thread of its own, beside an application's event loop.

``cosmos demo`` uses it so that the simulated host is ready (port, key, known_hosts)
before the TUI starts, and so that neither event loop can stall the other: the TUI talks
to the sandbox over real sockets only, as it would to a remote host.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from cosmos_tui.config import HostConfig
from cosmos_tui.sandbox.host import Sandbox
from cosmos_tui.sandbox.options import SandboxOptions

T = TypeVar("T")


class SandboxError(RuntimeError):
    """The sandbox could not start."""


class SandboxThread:
    """A sandbox running in a daemon thread; a context manager.

    Args:
        options: How the sandbox behaves.
        client_dir: Where the client key and known_hosts are written.
        start_timeout: Seconds to wait for the sandbox to be ready.

    """

    def __init__(
        self, options: SandboxOptions, client_dir: Path, start_timeout: float = 20.0
    ) -> None:
        self.options = options
        self.client_dir = client_dir
        self.start_timeout = start_timeout
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._sandbox: Sandbox | None = None
        self._error: BaseException | None = None

    @property
    def sandbox(self) -> Sandbox:
        """The running sandbox (read its attributes; change it through :meth:`call`)."""
        if self._sandbox is None:
            raise SandboxError("the sandbox is not running")
        return self._sandbox

    def start(self) -> Sandbox:
        """Start the thread and wait until the sandbox accepts connections.

        Raises:
            SandboxError: When it fails or takes longer than ``start_timeout``.

        """
        self._thread = threading.Thread(target=self._main, name="cosmos-sandbox", daemon=True)
        self._thread.start()
        if not self._ready.wait(self.start_timeout):
            raise SandboxError(f"the sandbox did not start within {self.start_timeout:g} s")
        if self._error is not None:
            raise SandboxError(f"the sandbox failed to start: {self._error}") from self._error
        return self.sandbox

    @property
    def port(self) -> int:
        """The SSH port on 127.0.0.1."""
        return self.sandbox.port

    def host_config(self, name: str = "simulated-gpu-host") -> HostConfig:
        """The host entry that reaches the sandbox."""
        return self.sandbox.host_config(name)

    def force_oom(self, run_id: str) -> None:
        """Make the run ``run_id`` fail with CUDA out of memory when its container starts."""

        async def force(sandbox: Sandbox) -> None:
            sandbox.faults.force_oom(run_id=run_id)

        self.call(force)

    def call(self, action: Callable[[Sandbox], Awaitable[T]], timeout: float = 30.0) -> T:
        """Run ``action(sandbox)`` in the sandbox's loop and return its result."""
        if self._loop is None:
            raise SandboxError("the sandbox is not running")
        future = asyncio.run_coroutine_threadsafe(_call(action, self.sandbox), self._loop)
        return future.result(timeout)

    async def acall(self, action: Callable[[Sandbox], Awaitable[T]]) -> T:
        """Like :meth:`call`, awaited from another event loop."""
        if self._loop is None:
            raise SandboxError("the sandbox is not running")
        future = asyncio.run_coroutine_threadsafe(_call(action, self.sandbox), self._loop)
        return await asyncio.wrap_future(future)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the sandbox (every process it started ends) and join the thread."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> SandboxThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except Exception as exc:  # noqa: BLE001 (reported to the starting thread)
            self._error = exc
        finally:
            self._sandbox = None
            self._loop = None
            self._ready.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with Sandbox.running(self.options, self.client_dir) as sandbox:
            self._sandbox = sandbox
            self._loop = asyncio.get_running_loop()
            self._ready.set()
            await self._stop.wait()


async def _call(action: Callable[[Sandbox], Awaitable[T]], sandbox: Sandbox) -> T:
    return await action(sandbox)
