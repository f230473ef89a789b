"""What one new small input costs in round trips, over a shaped link, beside ``scp``.

Usage: ``python bench/wan_small.py [RTT_MS ...]`` (default 100). For each round-trip time,
a fresh 4 KiB input (new content each round, so nothing is skipped) is uploaded as a run
uploads it (sha256 recorded, verified on the host, renamed to its content's name) over a
connection that is already open, best and median of 7; beside it, ``scp`` of the same
file over the same shaped path (which pays its own SSH handshake) and ``ssh host true``
(the handshake alone), so that ``scp - ssh true`` is what the copy itself costs OpenSSH.
The figures back the "new small input" line in docs/remote.md. Needs root and ``scp``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _ssh_host import host_config, ssh_server
from wan import Anchors

from cosmos_tui.remote import RemoteHost
from cosmos_tui.sandbox.netshape import LinkShape, ShapedLink
from tests.fixtures.hosts import TEST_USER, SshServer

ROUNDS = 7
SIZE = 4096


async def ours(server: SshServer, port: int, tool: str, files: list[Path]) -> list[float]:
    """Upload each file as a new input on one open connection; the seconds of each."""
    host = RemoteHost(host_config(server, port=port, remote_tool_dir=tool))
    seconds = []
    try:
        await host.connect()
        await host.run(["mkdir", "-p", f"{tool}/inputs"])  # as after a first run
        for path in files:
            data = path.read_bytes()
            started = time.perf_counter()
            await host.upload_inputs([(path, hashlib.sha256(data).hexdigest(), len(data))])
            seconds.append(time.perf_counter() - started)
    finally:
        await host.close()
    return seconds


def fmt(values: list[float], rtt_s: float) -> str:
    """Best seconds, in round trips too, and the median in round trips."""
    best, median = min(values), statistics.median(values)
    return f"{best:.3f} s = {best / rtt_s:.1f} RTT (median {median / rtt_s:.1f})"


def main() -> None:
    """Measure and print one line per round-trip time."""
    rtts = [float(arg) for arg in sys.argv[1:]] or [100.0]
    work = Path(tempfile.mkdtemp(prefix="cosmos-bench-small-"))
    with ssh_server("small") as (server, root):
        tool = root / "tool"
        tool.mkdir()
        user = pwd.getpwnam(TEST_USER)
        os.chown(tool, user.pw_uid, user.pw_gid)
        (tool / "scp").mkdir()
        os.chown(tool / "scp", user.pw_uid, user.pw_gid)
        for rtt in rtts:
            files = []
            for index in range(ROUNDS):
                path = work / f"small-{rtt:g}-{index}.mp4"
                path.write_bytes(os.urandom(SIZE))
                files.append(path)
            with ShapedLink(server.port, LinkShape(rtt_ms=rtt, mbit=100.0)) as link:
                anchors = Anchors(server, link.port)
                ours_s = asyncio.run(ours(server, link.port, str(tool), files))
                scp_s = [anchors.scp([str(p)], anchors.remote(f"{tool}/scp/")) for p in files]
                true_s = [anchors.ssh_true() for _ in files]
            rtt_s = rtt / 1000
            print(
                f"RTT {rtt:g} ms, one new {SIZE} B input: ours {fmt(ours_s, rtt_s)} | scp "
                f"{fmt(scp_s, rtt_s)} | ssh host true {fmt(true_s, rtt_s)} | scp - ssh true "
                f"{(min(scp_s) - min(true_s)) / rtt_s:.1f} RTT"
            )


if __name__ == "__main__":
    main()
