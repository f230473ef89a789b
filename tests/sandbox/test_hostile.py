"""A hostile simulated host: lying names, planted links and devices, greetings, big files."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cosmos_tui.config import Config, PathsConfig, RetryConfig
from cosmos_tui.containment import contained_path, name_problem, shown
from cosmos_tui.domain import FailureKind, RunState
from cosmos_tui.errors import OutsideFolder
from cosmos_tui.sandbox import Sandbox, SandboxOptions
from cosmos_tui.sandbox.hostile import ESCAPE_NAME, GREETING, HUGE_NAME
from cosmos_tui.services import Workbench
from tests.conftest import write_video


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../../../../..", "holds '..'"),
        ("..", "an empty or dot name"),
        ("", "an empty or dot name"),
        ("/etc/passwd", "an absolute path"),
        ("a/b", "a path, not a plain name"),
        ("a\\b", "a path, not a plain name"),
        ("-rf", "starts with '-'"),
        ("evil\nname.mp4", "holds control characters"),
        ("x\x1b]0;owned\x07.mp4", "holds control characters"),
        ("rtl\u202egnp.mp4", "holds control characters"),
        ("n" * 256, "longer than 255 bytes"),
        (b"bytes", "not a text name"),
    ],
)
def test_names_that_are_not_plain_are_refused_with_a_reason(name: object, problem: str):
    assert name_problem(name) == problem


@pytest.mark.parametrize("name", ["output.mp4", "video_0", "a.b.c", "e\u0301t\u00e9.mp4"])
def test_plain_names_pass(name: str):
    assert name_problem(name) is None


def test_contained_path_refuses_symlinks_and_escapes(tmp_path: Path):
    root = tmp_path / "outputs" / "rs_1"
    root.mkdir(parents=True)
    assert contained_path(root, "sub", "f.mp4") == root.resolve() / "sub" / "f.mp4"
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(OutsideFolder, match="symbolic link"):
        contained_path(root, "link", "f.mp4")
    with pytest.raises(OutsideFolder, match=r"holds '\.\.'"):
        contained_path(root, "../..", "x")
    assert "\x1b" not in shown("a\x1b[2Jb") and "\\x1b" in shown("a\x1b[2Jb")


@pytest.fixture
async def hostile(tmp_path: Path) -> AsyncIterator[Sandbox]:
    options = SandboxOptions(gpus=1, time_scale=0.02)
    async with Sandbox.running(options, tmp_path / "client") as sandbox:
        yield sandbox


def _config(sandbox: Sandbox, data: Path) -> Config:
    retry = RetryConfig(max_attempts=2, backoff_base=0.05, backoff_max=0.2)
    return Config(hosts=[sandbox.host_config()], retry=retry, paths=PathsConfig(str(data)))


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for path in folder.rglob("*"):
        stat = path.lstat()
        found[str(path.relative_to(folder))] = (stat.st_size, stat.st_mtime_ns)
    return found


async def test_hostile_outputs_are_refused_and_nothing_lands_outside_the_run(
    hostile: Sandbox, tmp_path: Path
):
    hostile.faults.hostile_names = True
    hostile.faults.hostile_outputs = True
    hostile.faults.greeting = GREETING
    workspace = tmp_path / "ws"
    canary = workspace / "canary.txt"
    write_video(workspace / "videos" / "color.mp4")
    canary.write_text("untouched\n")
    data = workspace / "data"
    async with Workbench.open(_config(hostile, data)) as bench:
        prompt = await bench.create_prompt("a robot", workspace / "videos")
        before = _snapshot(workspace)
        run = await bench.runs.drive((await bench.create_run(prompt.id)).id)
    assert run.state == RunState.FAILED, run.failure_message
    assert run.failure_kind == FailureKind.REFUSED_OUTPUT
    message = run.failure_message or ""
    for expected in (
        "'../../../../..'",
        "'/tmp/cosmos-owned'",
        "'secret.mp4' (a symbolic link",
        "'home' (a symbolic link",
        "'device.mp4' (a device, FIFO or socket",
        f"'{HUGE_NAME}' (50000000000 bytes, over max_output_size",
        "not a plain name: holds control characters",
        "not a plain name: holds '..'",
    ):
        assert expected in message, message
    assert "\x1b" not in message and "\n" not in message
    assert ESCAPE_NAME not in message
    run_dir = data / "outputs" / run.id
    assert "output.mp4" in run.outputs and "secret.mp4" not in run.outputs
    assert all(name_problem(part) is None for name in run.outputs for part in name.split("/"))
    assert (run_dir / "output.mp4").is_file() and not (run_dir / "output.mp4").is_symlink()
    after = _snapshot(workspace)
    changed = {
        name
        for name in set(before) | set(after)
        if before.get(name) != after.get(name)
        and not name.startswith(("data/outputs/" + run.id, "data/cosmos.db"))
        and name not in ("data/outputs", "data", "data/owner-id")
    }
    assert changed == set(), changed
    assert canary.read_text() == "untouched\n"
    for ancestor in list(run_dir.parents)[:6]:
        assert not (ancestor / ".bashrc").exists() or ancestor == Path.home()
    assert not Path("/tmp/cosmos-owned").exists()


async def test_a_greeting_on_every_command_does_not_corrupt_paths_or_hashes(
    hostile: Sandbox, tmp_path: Path
):
    hostile.faults.greeting = GREETING
    write_video(tmp_path / "videos" / "color.mp4")
    async with Workbench.open(_config(hostile, tmp_path / "data")) as bench:
        prompt = await bench.create_prompt("a robot", tmp_path / "videos")
        run = await bench.runs.drive((await bench.create_run(prompt.id)).id)
        host = bench.hosts.get(hostile.host_config().name)
        assert await host.files.home() == str(hostile.home)
        assert (await host.run(["echo", "hi"])).stdout.startswith("Welcome")  # it is there
    assert run.state == RunState.COMPLETED, run.failure_message
    assert (hostile.home / ".cosmos-tui" / "runs" / run.id / "spec.json").is_file()


async def test_spec_write_never_follows_a_planted_part_symlink(hostile: Sandbox, tmp_path: Path):
    async with Workbench.open(_config(hostile, tmp_path / "data")) as bench:
        host = bench.hosts.get(hostile.host_config().name)
        run_dir = hostile.home / ".cosmos-tui" / "runs" / "rs_planted"
        run_dir.mkdir(parents=True)
        victim = hostile.home / ".profile"
        victim.write_text("the user's profile\n")
        (run_dir / "spec.json.part").symlink_to(victim)
        await host.files.write_text(f"{run_dir}/spec.json", '{"ok": true}\n')
    assert victim.read_text() == "the user's profile\n"
    assert (run_dir / "spec.json").read_text() == '{"ok": true}\n'
    assert not (run_dir / "spec.json").is_symlink()
    assert not os.path.lexists(run_dir / "spec.json.part")


def test_open_play_and_json_only_use_contained_plain_files(tmp_path: Path):
    import dataclasses
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from cosmos_tui.cli.serialize import run_json
    from cosmos_tui.containment import output_file, safe_outputs
    from cosmos_tui.domain import GenerationParams, Run, RunType
    from cosmos_tui.ui.facade import FacadeAdapter

    outputs = tmp_path / "outputs"
    folder = outputs / "rs_1"
    folder.mkdir(parents=True)
    (tmp_path / "evil.mp4").write_bytes(b"outside")
    (folder / "link.mp4").symlink_to(tmp_path / "evil.mp4")
    (folder / "good.mp4").write_bytes(b"video")
    recorded = ("../evil.mp4", "link.mp4", "/etc/passwd", "a/b/c.mp4", "good.mp4")
    assert safe_outputs(recorded) == ["link.mp4", "good.mp4"]
    assert [output_file(folder, name) for name in recorded[:4]] == [None] * 4
    assert output_file(folder, "good.mp4") == folder.resolve() / "good.mp4"
    now = datetime.now(UTC)
    run = Run(id="rs_1", prompt_id=None, type=RunType.TRANSFER, profile="transfer1",
              state=RunState.COMPLETED, params=GenerationParams(), created_at=now,
              updated_at=now, outputs=recorded)  # fmt: skip
    bench = SimpleNamespace(output_dir=lambda run_id: outputs / run_id)
    adapter = FacadeAdapter(bench)  # type: ignore[arg-type]
    assert adapter.output_path(run) == folder.resolve() / "good.mp4"
    only_bad = dataclasses.replace(run, outputs=recorded[:4])
    assert adapter.output_path(only_bad) is None
    assert run_json(run)["outputs"] == ["link.mp4", "good.mp4"]


async def test_the_simulated_docker_checks_typed_mounts_as_docker_does(hostile: Sandbox):
    from cosmos_tui.config import TimeoutsConfig
    from cosmos_tui.errors import DockerError
    from cosmos_tui.remote.docker import ContainerSpec, Mount
    from cosmos_tui.remote.host import RemoteHost

    host = RemoteHost(hostile.host_config(), TimeoutsConfig(connect=5))
    repo = str(hostile.home / "cosmos-transfer1")
    base = ContainerSpec(run_id="rs_mounts", image=hostile.options.docker_image, command=("true",))
    try:
        missing = Mount(str(hostile.home / "no-such-dir"), "/workspace", True)
        with pytest.raises(DockerError, match="bind source path does not exist"):
            await host.docker.create(dataclasses.replace(base, mounts=(missing,)))
        relative = Mount(repo, "workspace", True)
        with pytest.raises(DockerError, match="mount path must be absolute"):
            await host.docker.create(dataclasses.replace(base, mounts=(relative,)))
        twice = (Mount(repo, "/w", True), Mount(repo, "/w", False))
        with pytest.raises(DockerError, match="Duplicate mount point"):
            await host.docker.create(dataclasses.replace(base, mounts=twice))
        spec = dataclasses.replace(base, mounts=(Mount(repo, "/workspace", True),), user="1:1")
        container_id = await host.docker.create(spec)
        made = hostile.runtime.find(container_id)
        assert made.mounts[0].read_only and made.host_config["IpcMode"] == "private"
        assert made.config["User"] == "1:1" and "Binds" not in made.host_config
    finally:
        await host.close()
    assert not (hostile.home / "no-such-dir").exists()


async def test_a_foreign_container_with_our_run_id_is_never_adopted_or_removed(
    hostile: Sandbox, tmp_path: Path
):
    write_video(tmp_path / "videos" / "color.mp4")
    async with Workbench.open(_config(hostile, tmp_path / "data")) as bench:
        prompt = await bench.create_prompt("a robot", tmp_path / "videos")
        run = await bench.create_run(prompt.id)
        labels = {"cosmos.managed": "true", "cosmos.run_id": run.id, "cosmos.owner": "ow_them1234"}
        body = {"Image": hostile.options.docker_image, "Cmd": ["true"], "Labels": labels}
        theirs = hostile.runtime.create(body, "their-copy")
        await hostile.runtime.start(theirs)
        await theirs.exited.wait()
        final = await bench.runs.drive(run.id)  # would adopt an exited "earlier attempt"
    assert final.state == RunState.COMPLETED, final.failure_message
    assert final.container_id != theirs.id
    assert hostile.runtime.find(theirs.id).status == "exited"  # still there, untouched


async def test_small_reads_skip_fifos_and_links(hostile: Sandbox):
    from cosmos_tui.config import TimeoutsConfig
    from cosmos_tui.remote.host import RemoteHost

    folder = hostile.home / "small"
    folder.mkdir()
    (folder / "output.txt").write_text("a prompt\n")
    os.mkfifo(folder / "fifo.txt")
    (folder / "link.txt").symlink_to(folder / "output.txt")
    host = RemoteHost(hostile.host_config(), TimeoutsConfig(connect=5))
    try:
        assert await host.files.read_text(f"{folder}/output.txt") == "a prompt\n"
        assert await host.files.read_text(f"{folder}/fifo.txt") is None  # would never end
        assert await host.files.read_text(f"{folder}/link.txt") is None
        assert await host.files.read_text(f"{folder}/missing.txt") is None
    finally:
        await host.close()


async def test_a_token_the_image_prints_into_its_log_is_masked(hostile: Sandbox, tmp_path: Path):
    """An image that dumps its environment: the HF token never reaches run.log or logs."""
    token = "hf_LeakedByTheImage0123456789"
    hostile.faults.leak_secrets = True
    workspace = tmp_path / "ws"
    write_video(workspace / "videos" / "color.mp4")
    config = _config(hostile, workspace / "data")
    host = dataclasses.replace(config.hosts[0], env={"HF_TOKEN": "$COSMOS_TEST_HF", "N": "1"})
    config = dataclasses.replace(config, hosts=[host])
    os.environ["COSMOS_TEST_HF"] = token
    try:
        async with Workbench.open(config) as bench:
            prompt = await bench.create_prompt("a robot", workspace / "videos")
            run = await bench.runs.drive((await bench.create_run(prompt.id)).id)
    finally:
        del os.environ["COSMOS_TEST_HF"]
    assert run.state == RunState.COMPLETED, run.failure_message
    log = (workspace / "data" / "outputs" / run.id / "run.log").read_text()
    assert "HF_TOKEN=***" in log  # the line is kept, the value masked
    assert token not in log
