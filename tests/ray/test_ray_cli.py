"""The CLI with a cluster and no SSH host: ``cosmos inference`` and ``cosmos cancel``.

With only ``[[clusters]]`` configured (or ``--host CLUSTER``) a started run is left to
the queue: ``cosmos inference`` starts a detached queue driver that places it on a node
and exits once idle, and shows the run's progress like any other.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomlkit

from cosmos_tui.config import Config
from cosmos_tui.remote.ray_jobs import RayJobs
from tests.conftest import write_video

pytestmark = pytest.mark.ray


def write_toml(config: Config, path: Path) -> Path:
    """The cluster config the tests build, as the TOML file a user would write."""
    cluster = config.clusters[0]
    document = tomlkit.document()
    document["paths"] = {"data_dir": str(config.data_dir)}
    document["retry"] = {"max_attempts": 2, "backoff_base": 0.1, "backoff_max": 0.5}
    entry = {
        "name": cluster.name,
        "address": cluster.address,
        "docker_image": cluster.docker_image,
        "docker_socket": cluster.docker_socket,
        "gpu_request": cluster.gpu_request,
        "shared_dir": cluster.shared_dir,
        "remote_repo_dir": cluster.remote_repo_dir,
        "checkpoints_dir": cluster.checkpoints_dir,
        "python": cluster.python,
        "env": dict(cluster.env),
    }
    tables = tomlkit.aot()
    tables.append(tomlkit.item(entry))
    document["clusters"] = tables
    path.write_text(tomlkit.dumps(document), encoding="utf-8")
    return path


def cosmos(config: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    return subprocess.run(
        [sys.executable, "-m", "cosmos_tui", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def new_prompt(config: Path, tmp_path: Path, name: str) -> str:
    folder = tmp_path / "videos" / name
    write_video(folder / "color.mp4", name.encode())
    made = cosmos(config, "create", "prompt", f"a robot arm, {name}", str(folder))
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().split()[-1]


def test_inference_on_a_cluster_runs_through_a_detached_queue_driver(
    make_cluster_config: Callable[..., Config], tmp_path: Path, local_ray: Any
) -> None:
    config = make_cluster_config(speed="0.05")
    path = write_toml(config, tmp_path / "config.toml")
    prompt = new_prompt(path, tmp_path, "first")
    # No --skip-checks: the host checks are for SSH hosts; a cluster run goes by.
    result = cosmos(path, "inference", prompt, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    runs = json.loads(result.stdout[result.stdout.index("[") :])
    assert runs[0]["state"] == "completed"
    assert runs[0]["host"].startswith("ray/")
    log = (config.data_dir / "queue-driver.log").read_text()
    assert "container(s) launched" in log
    assert f"{runs[0]['id']} queued for the cluster" in result.stdout


def test_cancel_from_the_cli_stops_a_cluster_run(
    make_cluster_config: Callable[..., Config], tmp_path: Path, local_ray: Any
) -> None:
    config = make_cluster_config(speed="1")
    path = write_toml(config, tmp_path / "config.toml")
    prompt = new_prompt(path, tmp_path, "second")
    started = cosmos(path, "inference", prompt, "--skip-checks", "--detach", "--host", "ray")
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.split()[0]
    deadline = time.monotonic() + 120
    while True:
        shown = json.loads(cosmos(path, "show", run_id, "--json").stdout)
        if shown["state"] == "running":
            break
        assert time.monotonic() < deadline, shown
        time.sleep(0.5)
    cancelled = cosmos(path, "cancel", run_id)
    assert cancelled.returncode == 0, cancelled.stderr
    jobs = RayJobs("ray", config.clusters[0].address)
    deadline = time.monotonic() + 60
    while True:
        job = asyncio.run(jobs.job(run_id))
        if job is not None and job.status == "STOPPED":
            break
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    final = json.loads(cosmos(path, "show", run_id, "--json").stdout)
    assert final["state"] == "cancelled"
