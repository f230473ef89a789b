"""A TCP proxy that shapes a loopback path like a wide-area link: delay, bandwidth, stalls.

The kernel on the development machines has no ``netem``, so the test suite and the
benchmarks put this proxy in front of a real sshd to see the tool at 20-150 ms of round-trip
time. Each direction of every connection is a delay line:

- a byte read at time ``t`` leaves the link's serialiser at
  ``max(t, link_free) + bytes / rate`` and is written to the other side
  ``one_way_delay_s`` later. There is one serialiser per direction for the whole link,
  shared by every connection through it: a bandwidth cap is one bottleneck queue, and a
  second connection finds the same link, not a second one;
- the bytes held in the delay line are bounded (the bandwidth-delay product plus a
  router-sized buffer), so a slow reader on one side pushes back on the sender through
  TCP flow control, as on a real path;
- ``stall(seconds)`` holds every byte in every direction for that long (reading continues
  until the buffer is full): to the two ends it looks like a path that went silent.
- ``down()`` closes every connection and closes each new one at once, until ``up()``:
  to the client it looks like a server that went away (connections reset or refused).

It runs in its own process (:class:`ShapedLink`), so its CPU time neither shares the GIL
with the client under test nor hides in its figures; :meth:`ShapedLink.stats` reports the
proxy's own CPU seconds next to the bytes it moved.

Control protocol (JSON lines): the child prints ``{"port": N}`` once listening; on its
stdin it takes ``stall <seconds>``, ``resume``, ``down``, ``up`` and ``stats`` (answered
with one JSON line).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import resource
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

logger = logging.getLogger(__name__)

READ_BYTES = 64 * 1024
"""Largest piece read at once; smaller pieces keep the bandwidth model smooth."""

ROUTER_BUFFER_BYTES = 4 * 1024 * 1024
"""Bytes a direction may queue beyond the bandwidth-delay product before pushing back."""


@dataclass(frozen=True)
class LinkShape:
    """What the shaped path looks like.

    Attributes:
        rtt_ms: Round-trip time added by the proxy (half of it in each direction).
        mbit: Bandwidth cap per direction in Mbit/s (None: no cap).
    """

    rtt_ms: float = 0.0
    mbit: float | None = None

    @property
    def one_way_delay_s(self) -> float:
        """The delay added to each direction, in seconds."""
        return self.rtt_ms / 2000.0

    @property
    def rate_bytes_per_s(self) -> float | None:
        """The cap in bytes per second, None without one."""
        return None if self.mbit is None else self.mbit * 1_000_000 / 8

    @property
    def queue_limit_bytes(self) -> int:
        """Bytes one direction holds before it stops reading (BDP plus a buffer)."""
        rate = self.rate_bytes_per_s
        if rate is None:
            return 64 * 1024 * 1024
        return int(rate * self.one_way_delay_s * 2) + ROUTER_BUFFER_BYTES


class _Stall:
    """When the path is silent: a shared deadline every direction waits out."""

    def __init__(self) -> None:
        self.until = 0.0
        self.changed = asyncio.Event()

    def set(self, seconds: float) -> None:
        self.until = time.monotonic() + seconds
        self.changed.set()
        self.changed = asyncio.Event()

    async def wait_out(self) -> None:
        while (remaining := self.until - time.monotonic()) > 0:
            changed = self.changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)


class _Serialiser:
    """One direction of the link: when it is free to put the next byte on the wire."""

    def __init__(self) -> None:
        self.free_at = 0.0


class _Direction:
    """One direction of one connection: a bounded delay line on the link's serialiser."""

    def __init__(
        self, shape: LinkShape, stall: _Stall, counters: dict[str, int], link: _Serialiser
    ) -> None:
        self._shape = shape
        self._stall = stall
        self._counters = counters
        self._link = link
        self._line: deque[tuple[float, bytes]] = deque()
        self._held = 0
        self._has_data = asyncio.Event()
        self._has_room = asyncio.Event()
        self._has_room.set()
        self._eof = False

    async def pump_in(self, reader: asyncio.StreamReader) -> None:
        rate = self._shape.rate_bytes_per_s
        limit = self._shape.queue_limit_bytes
        try:
            while chunk := await reader.read(READ_BYTES):
                now = time.monotonic()
                start = max(now, self._link.free_at)
                self._link.free_at = start + (len(chunk) / rate if rate else 0.0)
                self._line.append((self._link.free_at + self._shape.one_way_delay_s, chunk))
                self._held += len(chunk)
                self._has_data.set()
                if self._held >= limit:
                    self._has_room.clear()
                    await self._has_room.wait()
        except (ConnectionError, OSError):
            pass
        finally:
            self._eof = True
            self._has_data.set()

    async def pump_out(self, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                if not self._line:
                    if self._eof:
                        break
                    self._has_data.clear()
                    await self._has_data.wait()
                    continue
                due, chunk = self._line[0]
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._stall.wait_out()
                self._line.popleft()
                writer.write(chunk)
                await writer.drain()
                self._held -= len(chunk)
                self._counters["bytes"] += len(chunk)
                if self._held < self._shape.queue_limit_bytes:
                    self._has_room.set()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pass


class ShapingProxy:
    """The proxy itself, inside one event loop (see :class:`ShapedLink` for a process)."""

    def __init__(self, target_host: str, target_port: int, shape: LinkShape) -> None:
        """Forward connections to ``target_host:target_port`` through ``shape``."""
        self._target = (target_host, target_port)
        self._shape = shape
        self._stall = _Stall()
        # The link's two directions, shared by every connection through it.
        self._upstream = _Serialiser()
        self._downstream = _Serialiser()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._down = False
        self.counters = {"bytes": 0, "connections": 0}

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen; return the port."""
        self._server = await asyncio.start_server(self._handle, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    def stall(self, seconds: float) -> None:
        """Hold every byte in both directions for ``seconds`` (0 resumes now)."""
        self._stall.set(seconds)

    async def down(self) -> None:
        """Close every connection now and each new one at once, until :meth:`up`."""
        self._down = True
        await self._drop_all()

    def up(self) -> None:
        """Forward new connections again."""
        self._down = False

    async def _drop_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
        await self._drop_all()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self._down:
            client_w.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.counters["connections"] += 1
        try:
            server_r, server_w = await asyncio.open_connection(*self._target)
        except OSError as exc:
            logger.warning("shaping proxy cannot reach %s:%s: %s", *self._target, exc)
            client_w.close()
            self._tasks.discard(task)
            return
        up = _Direction(self._shape, self._stall, self.counters, self._upstream)
        down = _Direction(self._shape, self._stall, self.counters, self._downstream)
        try:
            await asyncio.gather(
                up.pump_in(client_r),
                up.pump_out(server_w),
                down.pump_in(server_r),
                down.pump_out(client_w),
            )
        except asyncio.CancelledError:
            pass  # the proxy is closing: asyncio's server callback must see a clean end
        finally:
            for writer in (client_w, server_w):
                writer.close()
            self._tasks.discard(task)


async def _serve(target_host: str, target_port: int, shape: LinkShape) -> None:
    proxy = ShapingProxy(target_host, target_port, shape)
    port = await proxy.start()
    print(json.dumps({"port": port}), flush=True)
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    while line := await commands.readline():
        word, _, argument = line.decode("ascii", "replace").strip().partition(" ")
        if word == "stall":
            proxy.stall(float(argument))
        elif word == "resume":
            proxy.stall(0.0)
        elif word == "down":
            await proxy.down()
            print(json.dumps({"down": True}), flush=True)
        elif word == "up":
            proxy.up()
        elif word == "stats":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            figures = {**proxy.counters, "cpu_s": usage.ru_utime + usage.ru_stime}
            print(json.dumps(figures), flush=True)
    await proxy.close()


class ShapedLink:
    """A :class:`ShapingProxy` in a child process: ``with ShapedLink(port, shape) as link``.

    Connect to ``127.0.0.1:link.port`` instead of the target. The child ends when the
    block ends (its stdin closes).
    """

    def __init__(self, target_port: int, shape: LinkShape, target_host: str = "127.0.0.1"):
        """Describe the link; nothing starts before ``__enter__``."""
        self.shape = shape
        self._argv = [
            sys.executable,
            "-m",
            "cosmos_tui.sandbox.netshape",
            "--target",
            f"{target_host}:{target_port}",
            "--rtt-ms",
            str(shape.rtt_ms),
        ]
        if shape.mbit is not None:
            self._argv += ["--mbit", str(shape.mbit)]
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def __enter__(self) -> ShapedLink:
        """Start the proxy process and wait until it listens."""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        self._process = subprocess.Popen(
            self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        assert self._process.stdout is not None
        first = self._process.stdout.readline()
        if not first:
            self._process.wait()
            raise RuntimeError(f"shaping proxy exited with status {self._process.returncode}")
        self.port = int(json.loads(first)["port"])
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop the proxy process."""
        process = self._process
        if process is None:
            return
        with contextlib.suppress(OSError):
            assert process.stdin is not None
            process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._process = None

    def _send(self, line: str) -> None:
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write(line.encode("ascii") + b"\n")
        self._process.stdin.flush()

    def stall(self, seconds: float) -> None:
        """Make the path silent for ``seconds`` from now."""
        self._send(f"stall {seconds}")

    def resume(self) -> None:
        """End a stall now."""
        self._send("resume")

    def down(self) -> None:
        """Close every connection and refuse new ones (closed at once) until :meth:`up`.

        Returns once the proxy has closed them.
        """
        self._send("down")
        assert self._process is not None and self._process.stdout is not None
        self._process.stdout.readline()

    def up(self) -> None:
        """Forward connections again after :meth:`down`."""
        self._send("up")

    def stats(self) -> dict[str, float]:
        """Return the proxy's bytes moved, connections and its own CPU seconds so far."""
        self._send("stats")
        assert self._process is not None and self._process.stdout is not None
        figures: dict[str, float] = json.loads(self._process.stdout.readline())
        return figures


@contextlib.contextmanager
def shaped_link(target_port: int, shape: LinkShape) -> Iterator[ShapedLink]:
    """Context-manager spelling of :class:`ShapedLink`."""
    with ShapedLink(target_port, shape) as link:
        yield link


def main(argv: list[str] | None = None) -> None:
    """``python -m cosmos_tui.sandbox.netshape --target HOST:PORT [--rtt-ms N] [--mbit N]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="HOST:PORT to forward to")
    parser.add_argument("--rtt-ms", type=float, default=0.0)
    parser.add_argument("--mbit", type=float, default=None)
    args = parser.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    if args.rtt_ms < 0 or (args.mbit is not None and args.mbit <= 0):
        parser.error("--rtt-ms must be >= 0 and --mbit > 0")
    asyncio.run(_serve(host or "127.0.0.1", int(port), LinkShape(args.rtt_ms, args.mbit)))


if __name__ == "__main__":
    main()
