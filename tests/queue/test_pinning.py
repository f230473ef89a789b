"""Pinning a run to one host or cluster: recorded on the run, kept by the queue.

Placement itself is tested in test_queue.py; a pinned run on a real Ray cluster beside a
real SSH host in tests/ray/test_ray_queue_driver.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cosmos_tui.cli import cli
from cosmos_tui.config import load_config
from cosmos_tui.errors import ConfigError
from cosmos_tui.services.queue import QueueService
from cosmos_tui.services.workbench import Workbench

CONFIG = """
[[hosts]]
name = "gpu-a"
hostname = "127.0.0.1"
port = 1

[[clusters]]
name = "lab"
address = "http://127.0.0.1:1"
shared_dir = "/srv/shared"
"""


@pytest.fixture
def cosmos(workspace: Path):
    (workspace / "config.toml").write_text(CONFIG, encoding="utf-8")
    runner = CliRunner()

    def _invoke(*args: str) -> Result:
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return _invoke


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout.strip()


def test_create_run_pins_to_a_cluster_or_host_and_the_queue_shows_it(
    cosmos, make_video_dir
) -> None:
    prompt = ok(cosmos("create", "prompt", "a lake", str(make_video_dir())))
    on_lab = ok(cosmos("create", "run", prompt, "--host", "lab"))
    on_a = ok(cosmos("create", "run", prompt, "--host", "gpu-a"))
    anywhere = ok(cosmos("create", "run", prompt))
    plan = json.loads(ok(cosmos("queue", "--json")))
    targets = {c["run_ids"][0]: c["target"] for c in plan["containers"]}
    # Same settings, yet never one batch: each goes where it was sent.
    assert targets == {on_lab: "lab", on_a: "gpu-a", anywhere: None}
    text = ok(cosmos("queue"))
    assert "pinned to lab" in text and "pinned to gpu-a" in text
    shown = json.loads(ok(cosmos("show", on_lab, "--json")))
    assert shown["target"] == "lab"


def test_create_run_refuses_a_name_that_is_neither_host_nor_cluster(cosmos, make_video_dir) -> None:
    prompt = ok(cosmos("create", "prompt", "a lake", str(make_video_dir())))
    result = cosmos("create", "run", prompt, "--host", "lab/abc")
    assert result.exit_code != 0
    assert "lab/abc" in result.stderr and "gpu-a" in result.stderr and "lab" in result.stderr
    assert json.loads(ok(cosmos("queue", "--json")))["containers"] == []


async def test_starting_a_run_on_a_cluster_pins_it_and_a_retry_keeps_the_pin(
    workspace: Path, make_video_dir
) -> None:
    (workspace / "config.toml").write_text(CONFIG, encoding="utf-8")
    async with Workbench.open(load_config()) as bench:
        prompt = await bench.create_prompt("a lake", make_video_dir())
        run = await bench.create_run(prompt.id)
        assert run.target is None
        started = await bench.runs.start(run.id, host="lab")
        assert started.target == "lab"
        assert (await bench.get_run(run.id)).target == "lab"
        # Cancelled, then started again with no host: it stays pinned (a retry goes where
        # the first try went).
        await QueueService.of(bench).cancel([run.id])
        again = await bench.runs.start(run.id)
        assert again.state.value == "queued" and again.target == "lab"
        # A pin the config no longer knows is refused with the names it does know.
        await QueueService.of(bench).cancel([run.id])
        await bench.store.update_run(run.id, target="gone")
        with pytest.raises(ConfigError, match="no host or cluster named 'gone'"):
            await bench.runs.start(run.id)
