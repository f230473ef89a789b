"""Windows and channels at a high bandwidth-delay product: how each setting fills the link.

Usage: ``python bench/wan_windows.py [RTT_MS] [MBIT] [MIB]`` (default 150 1000 256).
Over one shaped path, beside ``scp`` of the same file in the same run:

- uploads with 1, 2, 4 and 6 channels (``sftp.UPLOAD_CHANNELS``; the extra ones come
  from free session slots, so a lone upload gets at most five);
- downloads with a 16, 32 and 64 MiB receive window (``ssh.RECEIVE_WINDOW_BYTES``, read
  when a connection opens) and 4, 6 and 10 reads in flight (``sftp_io.READS_IN_FLIGHT``).

- plain TCP through the same proxy (a socket that sends the bytes to a sink): what the
  shaping proxy itself lets through, and its CPU for it.

Each line has the seconds, the share of the link and where the CPU went (bench/_cpu.py).
This measured the settings in docs/remote.md ("Over a real network"). Needs root, scp.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import sys
import tempfile
from pathlib import Path

from _cpu import CpuMeter
from _ssh_host import host_config, load_average, ssh_server
from wan import Anchors, make_file, sha256_of

import cosmos_tui.remote.sftp as sftp_module
import cosmos_tui.remote.sftp_io as sftp_io
import cosmos_tui.remote.ssh as ssh_module
from cosmos_tui.remote import RemoteHost
from cosmos_tui.sandbox.netshape import LinkShape, ShapedLink
from tests.fixtures.hosts import TEST_USER, SshServer

UPLOAD_CHANNELS = (1, 2, 4, 6)
DOWNLOAD_SETTINGS = ((16, 4), (32, 6), (64, 10))  # (window MiB, reads in flight)


def line(label: str, spent: dict[str, float], mib: int, mbit: float) -> str:
    """One figure: seconds, link share, CPU."""
    share = mib * 1048576 / spent["wall_s"] / (mbit * 125000)
    return (
        f"{label:<34} {spent['wall_s']:7.2f} s  link {share:4.2f}  CPU: client "
        f"{spent['client_cpu_s']} s, proxy {spent['proxy_cpu_s']} s, sshd and rest "
        f"{spent['sshd_and_rest_cpu_s']} s ({spent['cores_busy']} cores busy)"
    )


async def uploads(
    server: SshServer, port: int, tool: Path, big: Path, meter: CpuMeter, mib: int, mbit: float
) -> None:
    """Upload ``big`` as a run does, once per channel count."""
    recorded = (sha256_of(big), big.stat().st_size)
    host = RemoteHost(host_config(server, port=port, remote_tool_dir=str(tool)))
    try:
        await host.connect()
        for channels in UPLOAD_CHANNELS:
            sftp_module.UPLOAD_CHANNELS = channels  # read at each upload
            await host.run(["rm", "-rf", f"{tool}/inputs"])
            before = meter.read()
            await host.upload_inputs([(big, *recorded)])
            print(line(f"upload, up to {channels} channel(s)", meter.spent(before, meter.read()),
                       mib, mbit), flush=True)  # fmt: skip
    finally:
        await host.close()


async def download(
    server: SshServer, port: int, tool: Path, into: Path, window_mib: int, reads: int,
    meter: CpuMeter,
) -> dict[str, float]:  # fmt: skip
    """Download the host's copy with sha256, on a connection opened with this window.

    Returns what the download itself cost (the connection is opened before).
    """
    ssh_module.RECEIVE_WINDOW_BYTES = window_mib << 20  # read when the connection opens
    sftp_io.READS_IN_FLIGHT = reads
    host = RemoteHost(host_config(server, port=port, remote_tool_dir=str(tool)))
    try:
        await host.connect()
        await host.run(["true"])
        before = meter.read()
        await host.download(str(tool), "big.bin", into, verify_hash=True)
        return meter.spent(before, meter.read())
    finally:
        await host.close()


def raw_tcp(shape: LinkShape, mib: int, meter_of: type[CpuMeter]) -> dict[str, float]:
    """Send ``mib`` MiB of plain TCP through a proxy of ``shape`` to a local sink."""
    import socket
    import threading

    sink = socket.create_server(("127.0.0.1", 0))

    def drain() -> None:
        peer, _ = sink.accept()
        with peer:
            while peer.recv(1 << 20):
                pass
            peer.sendall(b"k")

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    with ShapedLink(sink.getsockname()[1], shape) as link:
        meter = meter_of(lambda: float(link.stats()["cpu_s"]))
        block = os.urandom(1 << 20)
        before = meter.read()
        with socket.create_connection(("127.0.0.1", link.port)) as sender:
            for _ in range(mib):
                sender.sendall(block)
            sender.shutdown(socket.SHUT_WR)
            sender.recv(1)
        spent = meter.spent(before, meter.read())
    reader.join(timeout=10)
    sink.close()
    return spent


def main() -> None:
    """Measure and print."""
    given = [float(arg) for arg in sys.argv[1:4]]
    rtt, mbit, mib = given + [150.0, 1000.0, 256.0][len(given) :]
    work = Path(tempfile.mkdtemp(prefix="cosmos-bench-windows-"))
    big = work / "big.bin"
    make_file(big, int(mib))
    try:
        with ssh_server("windows") as (server, root):
            tool = root / "tool"
            tool.mkdir()
            user = pwd.getpwnam(TEST_USER)
            os.chown(tool, user.pw_uid, user.pw_gid)
            shutil.copy(big, tool / "big.bin")
            os.chown(tool / "big.bin", user.pw_uid, user.pw_gid)
            (tool / "scp").mkdir()
            os.chown(tool / "scp", user.pw_uid, user.pw_gid)
            with ShapedLink(server.port, LinkShape(rtt_ms=rtt, mbit=mbit)) as link:
                meter = CpuMeter(lambda: float(link.stats()["cpu_s"]))
                anchors = Anchors(server, link.port)
                print(f"RTT {rtt:g} ms, {mbit:g} Mbit/s, {mib:g} MiB")
                before = meter.read()
                anchors.scp([str(big)], anchors.remote(f"{tool}/scp/"))
                print(line("upload, scp", meter.spent(before, meter.read()), int(mib), mbit))
                asyncio.run(uploads(server, link.port, tool, big, meter, int(mib), mbit))
                into = work / "down"
                into.mkdir()
                before = meter.read()
                anchors.scp([anchors.remote(f"{tool}/big.bin")], str(into) + "/")
                print(line("download, scp", meter.spent(before, meter.read()), int(mib), mbit))
                for window, reads in DOWNLOAD_SETTINGS:
                    shutil.rmtree(into)
                    into.mkdir()
                    spent = asyncio.run(
                        download(server, link.port, tool, into, window, reads, meter)
                    )
                    label = f"download, {window} MiB window, {reads} reads"
                    print(line(label, spent, int(mib), mbit), flush=True)
        spent = raw_tcp(LinkShape(rtt_ms=rtt, mbit=mbit), int(mib), CpuMeter)
        print(line("plain TCP through the proxy", spent, int(mib), mbit))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(load_average("at the end"))


if __name__ == "__main__":
    main()
