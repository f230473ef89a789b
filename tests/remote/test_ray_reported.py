"""Reading the GPUs Ray's agents report from the dashboard's reply (untrusted shape)."""

from __future__ import annotations

from typing import Any

import pytest

from cosmos_tui.remote.ray_jobs import ReportedGpu, reported_gpus


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
