"""Reading the GPUs Ray's agents report from the dashboard (untrusted shape, failures).

The dashboard here is a local HTTP server answering as told: an error, garbage, or
nothing at all; the real dashboard's reply is read in tests/ray/test_ray_gpu_use.py.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cosmos_tui.errors import ClusterUnreachable
from cosmos_tui.remote.ray_jobs import RayJobs, ReportedGpu, reported_gpus


def reply(*nodes: Any) -> dict[str, Any]:
    return {"result": True, "data": {"summary": list(nodes)}}


def node(node_id: Any, gpus: Any) -> dict[str, Any]:
    return {"raylet": {"nodeId": node_id}, "gpus": gpus}


def gpu(index: Any = 0, used: Any = 10, total: Any = 100, util: Any = 50) -> dict[str, Any]:
    return {
        "index": index,
        "name": "H100",
        "utilizationGpu": util,
        "memoryUsed": used,
        "memoryTotal": total,
    }


def test_each_nodes_gpus_are_read_in_index_order() -> None:
    found = reported_gpus(reply(node("n1", [gpu(1, util=None), gpu(0)]), node("n2", [])))
    assert found == {
        "n1": (
            ReportedGpu(0, "H100", 50.0, 10.0, 100.0),
            ReportedGpu(1, "H100", None, 10.0, 100.0),
        ),
        "n2": (),
    }


@pytest.mark.parametrize(
    "summary",
    [
        None,
        [],
        {"data": None},
        {"data": {"summary": "nodes"}},
        reply("not a node"),
        reply({"raylet": None, "gpus": [gpu()]}),
        reply(node(42, [gpu()])),
        reply(node("n1", "gpus")),
    ],
)
def test_a_reply_of_another_shape_gives_no_gpus(summary: Any) -> None:
    assert reported_gpus(summary) == {}


def test_a_gpu_without_numbers_is_left_out_and_names_are_kept_as_text() -> None:
    bad = [gpu(index="0"), gpu(used=None), gpu(total=True), "gpu", {**gpu(2), "name": 7}]
    found = reported_gpus(reply(node("n1", bad)))
    assert found == {"n1": (ReportedGpu(2, "", 50.0, 10.0, 100.0),)}


class _Dashboard(http.server.BaseHTTPRequestHandler):
    """A dashboard that answers /nodes as the server's ``reply`` says."""

    def do_GET(self) -> None:
        mode = self.server.reply  # type: ignore[attr-defined]
        if mode == "hang":
            time.sleep(3)
            return
        status, body = {"error": (500, b"boom"), "garbage": (200, b"<html>")}.get(
            mode, (200, json.dumps(reply(node("n1", [gpu()]))).encode())
        )
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def dashboard() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Dashboard)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("mode", ["error", "garbage", "hang"])
async def test_a_dashboard_that_fails_or_hangs_is_unreachable_not_stuck(
    dashboard: http.server.ThreadingHTTPServer, mode: str
) -> None:
    dashboard.reply = mode  # type: ignore[attr-defined]
    jobs = RayJobs("lab", f"http://127.0.0.1:{dashboard.server_address[1]}", timeout=0.5)
    began = time.monotonic()
    with pytest.raises(ClusterUnreachable) as caught:
        await jobs.gpu_usage()
    assert time.monotonic() - began < 2.5
    assert "lab" in caught.value.message


async def test_a_dashboard_that_answers_gives_each_nodes_gpus(
    dashboard: http.server.ThreadingHTTPServer,
) -> None:
    dashboard.reply = "ok"  # type: ignore[attr-defined]
    jobs = RayJobs("lab", f"http://127.0.0.1:{dashboard.server_address[1]}", timeout=0.5)
    assert await jobs.gpu_usage() == {"n1": (ReportedGpu(0, "H100", 50.0, 10.0, 100.0),)}


def test_others_gpus_leave_out_our_entrypoints_and_take_the_larger_source() -> None:
    from cosmos_tui.engine.ray_cluster import foreign_gpus
    from cosmos_tui.remote.ray_jobs import META_INSTALL, GpuHolder, RayJob

    ours = RayJob("rs_ours", "RUNNING", driver_node_id="n1", num_gpus=2.0,
                  metadata={META_INSTALL: "me"})  # fmt: skip
    theirs = RayJob("rs_theirs", "RUNNING", driver_node_id="n2", num_gpus=1.0,
                    metadata={META_INSTALL: "other"})  # fmt: skip
    plain = RayJob("raysubmit_1", "RUNNING", driver_node_id="n1")  # no metadata: 0 GPUs
    holders = [
        GpuHolder("n1", 2.0, "rs_ours"),  # our own entrypoint: not others'
        GpuHolder("n1", 1.0, "raysubmit_1"),  # someone's job
        GpuHolder("n1", 0.5),  # an actor or task, or a placement group's bundle
        GpuHolder("n2", 1.0, "rs_theirs"),  # the same job both sources see: once
    ]
    jobs = [ours, theirs, plain]
    assert foreign_gpus(jobs, holders, "me") == {"n1": 1.5, "n2": 1.0}
    # The state API did not answer: other installations' jobs still count.
    assert foreign_gpus(jobs, None, "me") == {"n2": 1.0}
    # Every holder gone (all ended): nothing is others'.
    assert foreign_gpus([ours], [], "me") == {}
