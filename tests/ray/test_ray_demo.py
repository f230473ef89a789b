"""`cosmos demo --cluster ray --headless`: the queue on a local Ray cluster, a node lost.

The whole demo through the real CLI: the sandbox (simulated GPU host) and a local Ray
cluster whose jobs run the sandbox's model; the scenario removes the node a run is on.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cosmos_tui.sandbox.scenario import mp4_is_valid

pytestmark = [pytest.mark.ray, pytest.mark.timeout(420)]


def test_the_cluster_demo_loses_a_node_and_every_run_completes(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    cosmos = Path(sys.executable).parent / "cosmos"
    result = subprocess.run(
        [str(cosmos), "demo", "--cluster", "ray", "--headless", "--speed", "20",
         "--workspace", str(workspace)],
        capture_output=True,
        text=True,
        timeout=400,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    out = result.stdout
    assert "scenario OK: 4 runs" in out and "one node lost" in out
    lost = [
        line for line in out.splitlines() if line.startswith("node ") and " lost while " in line
    ]
    assert len(lost) == 1
    node, victim = lost[0].split()[1], lost[0].split()[4]
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("rs_")}
    assert len(rows) == 4 and all(row[1] == "completed" for row in rows.values())
    outputs = sorted((workspace / "data" / "outputs").glob("rs_*/output.mp4"))
    assert len(outputs) == 4 and all(mp4_is_valid(path) for path in outputs)
    # The run the node was taken from came back as attempt 2 on the other node, its log
    # naming the node; any other run Ray had put there did the same.
    assert rows[victim][2] == "2" and rows[victim][3] != node
    log = (workspace / "data" / "outputs" / victim / "run.log").read_text()
    assert f"node {node} was lost during attempt 1; retry 2 of" in log
    for run_id, row in rows.items():  # (a run may have finished there before the loss)
        assert row[2] == "1" or (row[2] == "2" and row[3] != node)
        log = (workspace / "data" / "outputs" / run_id / "run.log").read_text()
        assert ("was lost during attempt 1; retry 2 of" in log) == (row[2] == "2")
