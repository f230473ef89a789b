"""Containers on the real dockerd: typed read-only mounts, private IPC, a user, no greetings."""

from __future__ import annotations

import dataclasses
import json
import pwd
import subprocess
from pathlib import Path
from typing import Any

from cosmos_tui.domain import RunState
from tests.fixtures.hosts import TEST_USER, stand_in_checkout


def _inspect(docker_daemon: Any, container_id: str) -> dict[str, Any]:
    return json.loads(docker_daemon.cli("inspect", container_id).stdout)[0]


async def test_repo_and_checkpoints_are_read_only_ipc_is_private(
    make_config, bench_for, video_dir, docker_daemon, ssh_server
) -> None:
    config = make_config()
    repo = stand_in_checkout(ssh_server.root / "repo:with:colons")  # ':' broke legacy Binds
    user = pwd.getpwnam(TEST_USER)
    host = dataclasses.replace(
        config.hosts[0],
        remote_repo_dir=str(repo),
        checkpoints_dir=str(repo / "checkpoints"),
        shm_size="256m",
        container_user=f"{user.pw_uid}:{user.pw_gid}",
    )
    bench = await bench_for(dataclasses.replace(config, hosts=[host]))
    prompt = await bench.create_prompt("a robot arm stacks cubes", video_dir)
    run = await bench.runs.drive((await bench.create_run(prompt.id)).id)
    assert run.state == RunState.COMPLETED, run.failure_message
    data = _inspect(docker_daemon, run.container_id)
    mounts = {m["Destination"]: m for m in data["Mounts"]}
    assert mounts["/workspace"]["Source"] == str(repo) and not mounts["/workspace"]["RW"]
    assert not mounts["/cosmos-tui/inputs"]["RW"]
    writable = [target for target, m in mounts.items() if m["RW"]]
    assert writable == ["/cosmos-tui/run"]
    assert data["HostConfig"]["IpcMode"] == "private"
    assert data["HostConfig"]["ShmSize"] == 256 * 1024 * 1024
    assert data["HostConfig"]["Binds"] in (None, [])
    assert data["Config"]["User"] == f"{user.pw_uid}:{user.pw_gid}"
    assert data["Config"]["Labels"]["cosmos.owner"].startswith("ow_")


async def test_a_missing_repo_is_an_error_naming_it_and_is_never_created(
    make_config, bench_for, video_dir, ssh_server
) -> None:
    config = make_config()
    missing = ssh_server.root / "no-such-repo"
    host = dataclasses.replace(config.hosts[0], remote_repo_dir=str(missing),
                               checkpoints_dir=str(missing / "checkpoints"))  # fmt: skip
    bench = await bench_for(dataclasses.replace(config, hosts=[host]))
    prompt = await bench.create_prompt("a robot arm stacks cubes", video_dir)
    run = await bench.runs.drive((await bench.create_run(prompt.id)).id)
    assert run.state == RunState.FAILED
    assert f"remote_repo_dir {missing} does not exist" in (run.failure_message or "")
    assert "never created" in (run.failure_message or "")
    assert not missing.exists()
    assert run.container_id is None


async def test_the_real_sshd_host_folder_with_hostile_entries_is_contained(
    make_config, bench_for, video_dir, ssh_server, tmp_path: Path
) -> None:
    """A host-side folder prepared here (as root) holds what a malicious image writes."""
    from cosmos_tui.engine.outputs import fetch_outputs, plan_outputs
    from cosmos_tui.sandbox.hostile import plant_outputs

    config = make_config()
    bench = await bench_for(config)
    host = bench.hosts.get(config.hosts[0].name)
    home = Path(config.hosts[0].remote_tool_dir)
    run_dir = home / "runs" / "rs_hostile"
    plant_outputs(run_dir, home)  # symlinks, a real /dev/zero device, 50 GB sparse, escapes
    (run_dir / "output" / "output.mp4").write_bytes(b"video")
    (run_dir / "output" / "video_0").mkdir()
    (run_dir / "output" / "video_0" / "inner.mp4").write_bytes(b"inner")
    (run_dir / "output" / "video_0" / "link").symlink_to("/etc/passwd")
    subprocess.run(["chown", "-R", TEST_USER, str(run_dir)], check=True)
    plan = await plan_outputs(host, f"{run_dir}/output", 10**9)
    reasons = {r.name: r.reason for r in plan.refused}
    assert reasons["secret.mp4"].startswith("a symbolic link")
    assert reasons["home"].startswith("a symbolic link")
    assert reasons["video_0/link"].startswith("a symbolic link")
    assert reasons["device.mp4"].startswith("a device")
    assert reasons["huge.mp4"].startswith("50000000000 bytes, over max_output_size")
    assert any("control characters" in r for r in reasons.values())
    local = tmp_path / "outputs" / "rs_hostile"
    fetched = await fetch_outputs(host, f"{run_dir}/output", plan, local)
    assert sorted(fetched) == ["output.mp4", "video_0/inner.mp4"]
    found = sorted(str(p.relative_to(local)) for p in local.rglob("*"))
    assert found == ["output.mp4", "video_0", "video_0/inner.mp4"]


async def test_an_output_folder_replaced_by_a_symlink_is_not_listed(
    make_config, bench_for, ssh_server
) -> None:
    from cosmos_tui.engine.outputs import plan_outputs

    config = make_config()
    bench = await bench_for(config)
    host = bench.hosts.get(config.hosts[0].name)
    run_dir = Path(config.hosts[0].remote_tool_dir) / "runs" / "rs_swapped"
    run_dir.mkdir(parents=True)
    (run_dir / "output").symlink_to(ssh_server.root)  # the host's files, not outputs
    plan = await plan_outputs(host, f"{run_dir}/output", 10**9)
    assert plan.files == ()
    assert [str(r) for r in plan.refused] == ["'output' (a symbolic link (never followed))"]


async def test_ipc_host_is_an_opt_in_the_container_gets(
    make_config, bench_for, video_dir, docker_daemon
) -> None:
    config = make_config()
    host = dataclasses.replace(config.hosts[0], ipc_host=True)
    bench = await bench_for(dataclasses.replace(config, hosts=[host]))
    prompt = await bench.create_prompt("a robot arm stacks cubes", video_dir)
    run = await bench.runs.drive((await bench.create_run(prompt.id)).id)
    assert run.state == RunState.COMPLETED, run.failure_message
    assert _inspect(docker_daemon, run.container_id)["HostConfig"]["IpcMode"] == "host"


async def test_a_missing_checkpoints_dir_alone_is_named_and_never_created(
    make_config, bench_for, video_dir, ssh_server
) -> None:
    config = make_config()
    repo = stand_in_checkout(ssh_server.root / "repo-without-checkpoints")
    missing = ssh_server.root / "elsewhere" / "checkpoints"
    host = dataclasses.replace(config.hosts[0], remote_repo_dir=str(repo),
                               checkpoints_dir=str(missing))  # fmt: skip
    bench = await bench_for(dataclasses.replace(config, hosts=[host]))
    prompt = await bench.create_prompt("a robot arm stacks cubes", video_dir)
    run = await bench.runs.drive((await bench.create_run(prompt.id)).id)
    assert run.state == RunState.FAILED
    assert f"checkpoints_dir {missing} does not exist" in (run.failure_message or "")
    assert not missing.exists() and not missing.parent.exists()
    assert run.container_id is None
