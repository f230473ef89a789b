from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cosmos_tui.cli import cli


@pytest.fixture
def cosmos(workspace: Path):
    runner = CliRunner()

    def _invoke(*args: str) -> Result:
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return _invoke


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout.strip()


def test_queue_shows_batches_and_is_paused_reordered_and_cancelled(cosmos, make_video_dir) -> None:
    lake = ok(cosmos("create", "prompt", "a lake", str(make_video_dir())))
    road = ok(cosmos("create", "prompt", "a road", str(make_video_dir())))
    first = ok(cosmos("create", "run", lake))
    second = ok(cosmos("create", "run", road, "--weights", "0.9", "0.1", "0.5", "0.5"))
    urgent = ok(cosmos("create", "run", lake, "--steps", "10", "--priority", "3"))
    plan = json.loads(ok(cosmos("queue", "--json")))
    assert [c["run_ids"] for c in plan["containers"]] == [[urgent], [first, second]]
    assert plan["containers"][1]["batch"] is True and plan["paused"] is False
    text = ok(cosmos("queue"))
    assert "batch of 2" in text and "3 queued run(s) in 2 container(s)" in text

    assert ok(cosmos("queue", "pause")) == "queue paused"
    assert "PAUSED" in ok(cosmos("queue"))
    assert json.loads(ok(cosmos("queue", "--json")))["paused"] is True
    ok(cosmos("queue", "resume"))

    order = ok(cosmos("queue", "up", second)).split()
    assert order[1::2] == [urgent, second, first]
    order = ok(cosmos("queue", "down", urgent, "5")).split()
    assert order[1::2] == [second, first, urgent]
    assert ok(cosmos("queue", "cancel", first)) == f"{first} cancelled"
    result = cosmos("queue", "cancel", first)
    assert result.exit_code == 1 and "not queued" in result.stderr


def test_stats_report_states_and_gpu_hours(cosmos, make_video_dir) -> None:
    prompt = ok(cosmos("create", "prompt", "a lake", str(make_video_dir())))
    for _ in range(2):
        ok(cosmos("create", "run", prompt))
    text = ok(cosmos("stats"))
    assert "runs all time: 2" in text and "queued 2" in text and "GPU-hours: 0.00" in text
    data = json.loads(ok(cosmos("stats", "--since", "1d", "--json")))
    assert data["total"] == 2 and data["by_state"] == {"queued": 2}
    assert "queue" in ok(cosmos("--help")) and "stats" in ok(cosmos("--help"))


def test_show_includes_gpu_metrics_and_the_enhanced_prompt(cosmos, make_video_dir) -> None:
    import asyncio

    from cosmos_tui.config import load_config
    from cosmos_tui.domain import RunMetrics
    from cosmos_tui.services import Workbench
    from cosmos_tui.store.metrics_store import MetricsStore

    prompt = ok(cosmos("create", "prompt", "a lake", str(make_video_dir())))
    run_id = ok(cosmos("create", "run", prompt))

    async def record() -> None:
        async with Workbench.open(load_config()) as bench:
            metrics = RunMetrics(samples=10, seconds=9.0, gpu_seconds=9.0, util_peak=97.0,
                                 util_mean=80.5, memory_peak_mib=30_000.0,
                                 temperature_peak_c=71.0, energy_wh=0.75)  # fmt: skip
            await MetricsStore(bench.store).save_metrics(run_id, metrics)
            await bench.store.update_run(run_id, result_prompt_id=prompt)

    asyncio.run(record())
    text = ok(cosmos("show", run_id))
    assert "util 80% mean, 97% peak" in text or "util 81% mean, 97% peak" in text
    assert "temp peak 71 C; 0.75 Wh" in text and f"result   prompt {prompt}" in text
    data = json.loads(ok(cosmos("show", run_id, "--json")))
    assert data["metrics"]["energy_wh"] == 0.75 and data["result_prompt_id"] == prompt
