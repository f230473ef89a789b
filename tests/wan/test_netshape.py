"""The shaping proxy itself: delay, bandwidth, stalls and byte-exact forwarding.

Each test runs the proxy in its own process (as the suite and the benchmarks use it) in
front of a small TCP echo/sink server on loopback.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from cosmos_tui.sandbox.netshape import LinkShape, ShapedLink


class EchoServer:
    """A threaded TCP server that echoes every byte back (one thread per connection)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.sock.close()


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    parts: list[bytes] = []
    got = 0
    while got < size:
        part = sock.recv(min(1 << 20, size - got))
        if not part:
            raise ConnectionError(f"closed after {got} of {size} bytes")
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _round_trip_s(sock: socket.socket) -> float:
    started = time.perf_counter()
    sock.sendall(b"x")
    _recv_exactly(sock, 1)
    return time.perf_counter() - started


@pytest.mark.parametrize("rtt_ms", [20, 150])
def test_round_trip_adds_the_configured_delay(echo: EchoServer, rtt_ms: int) -> None:
    with ShapedLink(echo.port, LinkShape(rtt_ms=rtt_ms)) as link, _connect(link.port) as sock:
        _round_trip_s(sock)  # connection set-up out of the way
        samples = sorted(_round_trip_s(sock) for _ in range(5))
    median_ms = samples[2] * 1000
    assert rtt_ms <= median_ms < rtt_ms + 15, f"median round trip {median_ms:.1f} ms"


def test_without_shaping_adds_next_to_no_delay(echo: EchoServer) -> None:
    with ShapedLink(echo.port, LinkShape()) as link, _connect(link.port) as sock:
        _round_trip_s(sock)
        median_ms = sorted(_round_trip_s(sock) for _ in range(5))[2] * 1000
    assert median_ms < 5


def test_bandwidth_cap_limits_throughput(echo: EchoServer) -> None:
    size = 2 * 1024 * 1024  # at 100 Mbit/s each way: about 0.17 s per direction
    payload = os.urandom(size)
    with ShapedLink(echo.port, LinkShape(rtt_ms=2, mbit=100)) as link, _connect(link.port) as sock:
        started = time.perf_counter()
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        received = _recv_exactly(sock, size)
        sender.join()
        elapsed = time.perf_counter() - started
    assert received == payload
    ideal = size * 8 / 100e6  # both directions pipeline, so one transfer time plus a bit
    assert ideal * 0.9 < elapsed < ideal * 1.6 + 0.1, f"{elapsed:.3f} s vs ideal {ideal:.3f} s"


def test_connections_share_the_bandwidth_cap(echo: EchoServer) -> None:
    """A link is one bottleneck: two connections at once get the cap together, not each
    (a tool that opens a second connection must not find a second link)."""
    size = 2 * 1024 * 1024
    payloads = [os.urandom(size), os.urandom(size)]
    with ShapedLink(echo.port, LinkShape(rtt_ms=2, mbit=100)) as link:
        socks = [_connect(link.port), _connect(link.port)]
        received: list[bytes] = [b"", b""]

        def one(index: int) -> None:
            sender = threading.Thread(target=socks[index].sendall, args=(payloads[index],))
            sender.start()
            received[index] = _recv_exactly(socks[index], size)
            sender.join()

        started = time.perf_counter()
        workers = [threading.Thread(target=one, args=(i,)) for i in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
        for sock in socks:
            sock.close()
    assert received == payloads
    ideal = 2 * size * 8 / 100e6  # both connections' bytes through one 100 Mbit/s link
    assert ideal * 0.9 < elapsed < ideal * 1.6 + 0.1, f"{elapsed:.3f} s vs ideal {ideal:.3f} s"


def test_bytes_arrive_exactly_in_both_directions_under_backpressure(echo: EchoServer) -> None:
    payload = os.urandom(24 * 1024 * 1024)  # more than the delay line holds
    with ShapedLink(echo.port, LinkShape(rtt_ms=10)) as link, _connect(link.port) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        received = _recv_exactly(sock, len(payload))
        sender.join()
        stats = link.stats()
    assert received == payload
    assert stats["bytes"] == 2 * len(payload)
    assert stats["connections"] == 1


def test_stall_holds_every_byte_then_delivers_them(echo: EchoServer) -> None:
    with ShapedLink(echo.port, LinkShape(rtt_ms=10)) as link, _connect(link.port) as sock:
        _round_trip_s(sock)
        link.stall(1.0)
        time.sleep(0.05)
        started = time.perf_counter()
        sock.sendall(b"during the stall")
        assert _recv_exactly(sock, 16) == b"during the stall"
        waited = time.perf_counter() - started
        assert 0.8 < waited < 1.5, f"{waited:.2f} s"
        assert _round_trip_s(sock) < 0.1  # the path is back


def test_resume_ends_a_stall_early(echo: EchoServer) -> None:
    with ShapedLink(echo.port, LinkShape()) as link, _connect(link.port) as sock:
        link.stall(30)
        time.sleep(0.05)
        sock.sendall(b"y")
        time.sleep(0.2)
        link.resume()
        started = time.perf_counter()
        assert _recv_exactly(sock, 1) == b"y"
        assert time.perf_counter() - started < 0.5


def test_down_closes_every_connection_and_each_new_one_until_up(echo: EchoServer) -> None:
    with ShapedLink(echo.port, LinkShape()) as link, _connect(link.port) as sock:
        _round_trip_s(sock)
        link.down()
        assert sock.recv(1) == b""  # the open connection is closed
        with _connect(link.port) as refused:
            assert refused.recv(1) == b""  # and so is a new one
        link.up()
        with _connect(link.port) as again:
            assert _round_trip_s(again) < 0.5


def test_an_unreachable_target_closes_the_client() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = int(unused.getsockname()[1])  # bound, never listening: connections refused
    with ShapedLink(port, LinkShape()) as link, _connect(link.port) as sock:
        assert sock.recv(1) == b""


def test_bad_shape_is_a_usage_error() -> None:
    with pytest.raises(RuntimeError, match="exited with status 2"):
        ShapedLink(1, LinkShape(rtt_ms=-1)).__enter__()
