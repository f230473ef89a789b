"""How many input uploads to move at once: a prompt's five videos over a shaped link.

Usage: ``python bench/wan_at_once.py [RTT_MS] [MBIT] [MIB_EACH]`` (default 50 1000 40).
Prints, for 2, 3 and 5 uploads at once (``remote.sftp.TRANSFERS_AT_ONCE``), the best of
three rounds beside OpenSSH's ``scp`` of the same five files over the same shaped path.
This measured the setting in docs/remote.md ("Several files at once").
"""

from __future__ import annotations

import asyncio
import os
import pwd
import sys
import tempfile
import time
from pathlib import Path

from _ssh_host import host_config, ssh_server
from wan import Anchors, make_file, sha256_of

import cosmos_tui.remote.sftp as sftp
from cosmos_tui.remote import RemoteHost
from cosmos_tui.sandbox.netshape import LinkShape, ShapedLink
from tests.fixtures.hosts import TEST_USER, SshServer

VIDEOS = 5
ROUNDS = 3


async def upload_all(
    server: SshServer, port: int, tool: str, recorded: dict[Path, tuple[str, int]], at_once: int
) -> float:
    """Upload the videos as a run does (all at once, sha256 recorded); the wall time."""
    sftp.TRANSFERS_AT_ONCE = at_once  # read when the host's transfer layer is made
    host = RemoteHost(host_config(server, port=port, remote_tool_dir=tool))
    try:
        await host.connect()
        await host.run(["rm", "-rf", f"{tool}/inputs"])
        started = time.perf_counter()
        await host.upload_inputs([(path, *facts) for path, facts in recorded.items()])
        return time.perf_counter() - started
    finally:
        await host.close()


def main() -> None:
    """Measure and print."""
    given = [float(arg) for arg in sys.argv[1:4]]
    rtt, mbit, mib = given + [50.0, 1000.0, 40.0][len(given) :]
    work = Path(tempfile.mkdtemp(prefix="cosmos-bench-at-once-"))
    videos = [work / f"video{i}.mp4" for i in range(VIDEOS)]
    for path in videos:
        make_file(path, int(mib))
    recorded = {path: (sha256_of(path), path.stat().st_size) for path in videos}
    with ssh_server("at-once") as (server, root):
        tool = root / "tool"
        tool.mkdir()
        user = pwd.getpwnam(TEST_USER)
        os.chown(tool, user.pw_uid, user.pw_gid)
        with ShapedLink(server.port, LinkShape(rtt_ms=rtt, mbit=mbit)) as link:
            anchors = Anchors(server, link.port)
            seconds: dict[str, list[float]] = {"scp": [], "2": [], "3": [], "5": []}
            for _ in range(ROUNDS):
                seconds["scp"].append(
                    anchors.scp([str(p) for p in videos], anchors.remote(f"{tool}/"))
                )
                for at_once in (2, 3, 5):
                    took = asyncio.run(upload_all(server, link.port, str(tool), recorded, at_once))
                    seconds[str(at_once)].append(took)
    scp = min(seconds["scp"])
    print(f"{VIDEOS} files of {mib:g} MiB at {rtt:g} ms, {mbit:g} Mbit/s (best of {ROUNDS})")
    print(f"  scp: {scp:.2f} s")
    for at_once in ("2", "3", "5"):
        best = min(seconds[at_once])
        print(f"  ours, {at_once} at once: {best:.2f} s ({scp / best:.2f}x scp)")


if __name__ == "__main__":
    main()
