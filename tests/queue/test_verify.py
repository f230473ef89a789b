from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from cosmos_tui.cli import cli
from cosmos_tui.domain import RunState


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def out(result) -> str:
    return result.stdout.strip()


def test_verify_finds_and_fixes_local_problems(workspace: Path, make_video_dir, tmp_path) -> None:
    import asyncio

    from cosmos_tui.config import load_config
    from cosmos_tui.services import Workbench

    moved_from = make_video_dir("depth.mp4", name="moving")
    changed = make_video_dir(name="changing")
    moving = out(invoke("create", "prompt", "a prompt that moves", str(moved_from)))
    changing = out(invoke("create", "prompt", "a prompt that changes", str(changed)))
    run_id = out(invoke("create", "run", moving))
    assert moving and changing and run_id

    async def complete() -> Path:
        async with Workbench.open(load_config()) as bench:
            for state in (RunState.UPLOADING, RunState.STARTING, RunState.RUNNING,
                          RunState.DOWNLOADING):  # fmt: skip
                await bench.store.transition(run_id, state, "test")
            await bench.store.transition(
                run_id, RunState.COMPLETED, "test", outputs=("output.mp4", "run.log")
            )
            folder = bench.output_dir(run_id)
            folder.mkdir(parents=True)
            (folder / "run.log").write_text("log\n")
            orphan = bench.config.outputs_dir / "rs_0123456789ab"
            orphan.mkdir()
            (orphan / "output.mp4").write_bytes(b"left behind")
            return bench.config.outputs_dir

    outputs = asyncio.run(complete())
    new_home = tmp_path / "new-home"
    shutil.move(str(moved_from), str(new_home))
    (changed / "color.mp4").write_bytes(b"different")

    result = invoke("verify", "--no-hosts", "--json")
    assert result.exit_code == 1
    findings = {(f["kind"], f["subject"]): f for f in json.loads(result.stdout)["findings"]}
    # The run never had a host (made by hand here): nothing to download from again.
    assert findings[("missing_outputs", run_id)]["fixable"] is False
    assert "1 of 2 output file(s) missing" in findings[("missing_outputs", run_id)]["detail"]
    assert "no host" in findings[("missing_outputs", run_id)]["detail"]
    assert "--search" in findings[("input_moved", moving)]["detail"]
    assert findings[("input_changed", changing)]["fixable"] is False
    assert findings[("orphan_dir", "rs_0123456789ab")]["fixable"] is True

    result = invoke("verify", "--no-hosts", "--fix", "--search", str(new_home))
    assert result.exit_code == 1  # the changed input and the lost output need a person
    text = out(result)
    assert "fixed     input_moved" in text and "fixed     orphan_dir" in text
    assert not (outputs / "rs_0123456789ab").exists()
    assert (outputs / ".orphaned" / "rs_0123456789ab" / "output.mp4").is_file()
    prompt = json.loads(out(invoke("show", moving, "--json")))
    assert {Path(i["path"]).parent for i in prompt["inputs"]} == {new_home.resolve()}
    again = json.loads(invoke("verify", "--no-hosts", "--json").stdout)["findings"]
    assert sorted(f["kind"] for f in again) == ["input_changed", "missing_outputs"]


async def test_verify_redownloads_outputs_and_removes_orphan_containers(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    import asyncio

    from cosmos_tui.engine.verify import FindingKind, verify
    from cosmos_tui.remote.docker import ContainerSpec
    from cosmos_tui.services.queue import QueueService
    from tests.conftest import write_video

    fake_gpu.set_variant("1gpu")
    bench = await bench_for(make_config())
    folder = tmp_path / "clip"
    write_video(folder / "color.mp4", b"the clip " * 300)
    prompt = await bench.create_prompt("a clip", folder)
    run = await bench.create_run(prompt.id)
    await asyncio.wait_for(QueueService.of(bench).drive(until_idle=True), 120)
    done = await bench.get_run(run.id)
    assert done.state == RunState.COMPLETED
    video = bench.output_dir(run.id) / "output.mp4"
    original = video.read_bytes()
    video.unlink()
    host = bench.hosts.get("testhost")
    stray = await host.docker.create(
        ContainerSpec(run_id="rs_ffffffffffff", image=host.config.docker_image, command=("true",))
    )
    await host.docker.start(stray)
    await host.docker.wait(stray)

    report = await verify(bench)
    kinds = {(f.kind, f.subject) for f in report.findings}
    assert (FindingKind.MISSING_OUTPUTS, run.id) in kinds
    assert (FindingKind.ORPHAN_CONTAINER, stray[:12]) in kinds
    assert not report.unreachable
    fixed = await verify(bench, fix=True)
    assert all(f.fixed for f in fixed.findings), fixed.findings
    assert video.read_bytes() == original
    assert stray not in {c.id for c in await host.docker.list()}
    assert (await verify(bench)).findings == ()


async def test_fix_leaves_the_folder_of_a_run_created_meanwhile_and_keeps_earlier_orphans(
    workspace: Path, make_video_dir
) -> None:
    from cosmos_tui.config import load_config
    from cosmos_tui.engine.verify import FindingKind, verify
    from cosmos_tui.services import Workbench

    async with Workbench.open(load_config()) as bench:
        prompt = await bench.create_prompt("a prompt", make_video_dir())
        outputs = bench.config.outputs_dir
        for content in (b"first", b"second"):
            orphan = outputs / "rs_0123456789ab"
            orphan.mkdir(parents=True)
            (orphan / "output.mp4").write_bytes(content)
            report = await verify(bench, fix=True, check_hosts=False)
            assert [f.kind for f in report.findings] == [FindingKind.ORPHAN_DIR]
        kept = sorted(p.name for p in (outputs / ".orphaned").iterdir())
        assert kept == ["rs_0123456789ab", "rs_0123456789ab.2"]
        assert (outputs / ".orphaned" / "rs_0123456789ab.2" / "output.mp4").read_bytes() == (
            b"second"
        )

        # Another process starts a run (its folder appears) while verify is under way.
        listing = bench.store.list_prompts
        started: list[str] = []

        async def list_prompts_while_a_run_starts(*args, **kwargs):
            if not started:
                run = await bench.create_run(prompt.id)
                bench.output_dir(run.id).mkdir(parents=True)
                (bench.output_dir(run.id) / "run.log").write_text("starting\n")
                started.append(run.id)
            return await listing(*args, **kwargs)

        bench.store.list_prompts = list_prompts_while_a_run_starts
        report = await verify(bench, fix=True, check_hosts=False)
        assert report.findings == ()
        assert (bench.output_dir(started[0]) / "run.log").read_text() == "starting\n"


async def test_verify_fix_never_follows_unsafe_names_or_host_links(
    bench_for, make_config, fake_gpu, tmp_path: Path
) -> None:
    """Issue 12: names recorded from a hostile host, and a host that swaps an output for a
    link, are reported and never used as paths by ``verify --fix``."""
    import asyncio
    import dataclasses
    import json
    import sqlite3

    from cosmos_tui.engine.verify import FindingKind, verify
    from cosmos_tui.services.queue import QueueService
    from tests.conftest import write_video

    fake_gpu.set_variant("1gpu")
    config = make_config()
    alone = dataclasses.replace(config.batching, enabled=False)  # one container per run
    bench = await bench_for(dataclasses.replace(config, batching=alone))
    runs = []
    for name in ("one", "two"):
        folder = tmp_path / name
        write_video(folder / "color.mp4", name.encode() * 300)
        prompt = await bench.create_prompt(f"clip {name}", folder)
        runs.append(await bench.create_run(prompt.id))
    await asyncio.wait_for(QueueService.of(bench).drive(until_idle=True), 120)
    one, two = [await bench.get_run(r.id) for r in runs]
    assert one.state == two.state == RunState.COMPLETED

    # run one: an older version recorded a traversal name from a hostile host
    canary = bench.output_dir(one.id).parents[1] / "canary.txt"
    hostile = [*one.outputs, "../../canary.txt"]
    with sqlite3.connect(bench.store.db_path) as db:
        db.execute("UPDATE runs SET outputs = ? WHERE id = ?", (json.dumps(hostile), one.id))
    # run two: its output is gone here and the host replaced it with a link
    (bench.output_dir(two.id) / "output.mp4").unlink()
    host = bench.hosts.get("testhost")
    remote = f"{await host.tool_dir()}/runs/{two.id}/output/output.mp4"
    await host.run(["rm", "-f", remote])
    await host.run(["ln", "-s", "/etc/passwd", remote])

    fixed = await verify(bench, fix=True)
    found = {(f.kind, f.subject): f for f in fixed.findings}
    unsafe = found[(FindingKind.UNSAFE_OUTPUT_NAME, one.id)]
    assert "not plain names" in unsafe.detail and not unsafe.fixed
    missing = found[(FindingKind.MISSING_OUTPUTS, two.id)]
    assert not missing.fixed and "gone from testhost" in missing.detail
    assert not canary.exists()
    assert not (bench.output_dir(two.id) / "output.mp4").exists()  # the link was not followed
