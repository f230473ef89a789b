"""Keypress-to-frame in the real TUI with its host a shaped link away, then a stall.

    python bench/wan_keypress.py [--rtt-ms 150] [--mbit 100] [--stall-s 10]
                                 [--presses 40] [--json]

The real app over the real Workbench (as ``cosmos tui`` builds it), its one host the
throwaway sshd (with the nvidia-smi stand-in) behind the shaping proxy. Three series
in one run: keys while the host is ``--rtt-ms`` away, keys while the link delivers
nothing for ``--stall-s`` seconds, and the anchor: the same keys in the same app with no
host at all (this machine's own frame cost). A key is a tab posted as the terminal
driver posts it, timed until the first frame after the focus moved (tests/wan/keys.py,
shared with tests/wan/test_tui_shaped.py). Needs root, like the tests. Run it on a quiet
machine: the figures are mostly this machine's frame cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

from _ssh_host import host_config, ssh_server

from cosmos_tui.config import Config, PathsConfig, TimeoutsConfig, UIConfig
from cosmos_tui.sandbox.netshape import LinkShape, ShapedLink
from tests.wan.keys import measure


def main() -> None:
    """Measure and print the three series (or JSON with ``--json``)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rtt-ms", type=float, default=150.0)
    parser.add_argument("--mbit", type=float, default=100.0)
    parser.add_argument("--stall-s", type=float, default=10.0)
    parser.add_argument("--presses", type=int, default=40)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="cosmos-bench-keys-"))
    with ssh_server("keys") as (server, _root):
        server.gpu.reset()
        with ShapedLink(server.port, LinkShape(rtt_ms=args.rtt_ms, mbit=args.mbit)) as link:
            # keepalive 3 x 15 s outlasts the stall: the link is silent, not dead
            config = Config(
                hosts=[host_config(server, port=link.port)],
                timeouts=TimeoutsConfig(connect=20.0, command=30.0, keepalive=15.0),
                paths=PathsConfig(data_dir=str(data)),
                ui=UIConfig(gpu_interval_ms=500),
            )
            figures = asyncio.run(measure(config, "bench", link, args.presses, args.stall_s))
    result = {
        "rtt_ms": args.rtt_ms,
        "mbit": args.mbit,
        "stall_s": args.stall_s,
        "load_average": os.getloadavg(),
        **figures.summary(),
        "stalled_shown": "stalled: no reading" in figures.stalled_text,
        "recovered": "connected" in figures.recovered_text
        and "stalled" not in figures.recovered_text,
    }
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return
    print(f"keypress-to-frame, host {args.rtt_ms:g} ms away at {args.mbit:g} Mbit/s")
    for name, label in (
        ("far", "host away"),
        ("during", f"during a {args.stall_s:g} s stall"),
        ("anchor", "anchor: same app, no host"),
    ):
        s = result[name]
        print(
            f"  {label:<28} p50 {s['p50_ms']:6.0f} ms  p95 {s['p95_ms']:6.0f} ms  "
            f"max {s['max_ms']:6.0f} ms  ({s['keys']} keys)"
        )
    print(f"  GPUs pane said stalled: {result['stalled_shown']}; live again: {result['recovered']}")
    print(f"  load average: {result['load_average']}")


if __name__ == "__main__":
    main()
