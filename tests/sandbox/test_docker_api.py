"""The sandbox's Docker Engine API, driven with aiodocker as the remote layer does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiodocker
import pytest

from cosmos_tui.sandbox import Sandbox
from cosmos_tui.sandbox.options import SANDBOX_IMAGE

ASSETS = Path(__file__).resolve().parents[2] / "cosmos_tui" / "sandbox" / "assets"


@pytest.fixture
async def docker(sandbox: Sandbox) -> AsyncIterator[aiodocker.Docker]:
    client = aiodocker.Docker(url=f"unix://{sandbox.docker_socket}")
    try:
        yield client
    finally:
        await client.close()


def shell(script: str, **labels: str) -> dict:
    return {"Image": SANDBOX_IMAGE, "Cmd": ["sh", "-c", script], "Labels": labels}


async def test_ping_version_and_images(docker: aiodocker.Docker):
    version = await docker.version()
    assert version["ApiVersion"] and version["Os"] == "linux"
    image = await docker.images.inspect(SANDBOX_IMAGE)
    assert image["RepoTags"] == [SANDBOX_IMAGE]
    with pytest.raises(aiodocker.DockerError) as missing:
        await docker.images.inspect("nvcr.io/nvidia/other:latest")
    assert missing.value.status == 404


async def test_create_start_wait_and_multiplexed_logs(docker: aiodocker.Docker):
    container = await docker.containers.create(
        shell("echo one; echo two >&2; echo three; exit 4"), name="cosmos-r1"
    )
    await container.start()
    result = await container.wait()
    assert result["StatusCode"] == 4
    out = await container.log(stdout=True)
    err = await container.log(stderr=True)
    assert out == ["one\n", "three\n"]
    assert err == ["two\n"]
    info = await container.show()
    assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 4
    assert info["Name"] == "/cosmos-r1" and info["Config"]["Tty"] is False
    with pytest.raises(aiodocker.DockerError) as conflict:
        await docker.containers.create(shell("true"), name="cosmos-r1")
    assert conflict.value.status == 409


async def test_missing_image_is_404(docker: aiodocker.Docker):
    with pytest.raises(aiodocker.DockerError) as error:
        await docker.containers.create({"Image": "nope:1", "Cmd": ["true"]})
    assert error.value.status == 404 and "No such image" in error.value.message


async def test_logs_timestamps_since_tail_and_follow(docker: aiodocker.Docker):
    container = await docker.containers.create(
        shell("for i in 1 2 3 4 5; do echo line$i; sleep 0.1; done")
    )
    await container.start()
    followed = [line async for line in container.log(stdout=True, follow=True, timestamps=True)]
    assert [line.split(" ", 1)[1] for line in followed] == [f"line{i}\n" for i in range(1, 6)]
    stamp = followed[2].split(" ", 1)[0]
    assert stamp.endswith("Z") and len(stamp) == len("2026-01-01T00:00:00.123456789Z")
    # since = the third line's time: that line and later ones come back, as Docker does.
    seconds = time.mktime(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    since = f"{int(seconds)}.{stamp[20:29]}"
    later = await container.log(stdout=True, since=since)
    assert later == ["line3\n", "line4\n", "line5\n"]
    assert await container.log(stdout=True, tail=2) == ["line4\n", "line5\n"]


async def test_list_filters_by_label_and_status(docker: aiodocker.Docker):
    mine = await docker.containers.create(shell("sleep 5", **{"cosmos.run_id": "r_1"}))
    other = await docker.containers.create(shell("sleep 5", **{"cosmos.run_id": "r_2"}))
    await mine.start()
    await other.start()
    found = await docker.containers.list(filters=json.dumps({"label": ["cosmos.run_id=r_1"]}))
    assert [c.id for c in found] == [mine.id]
    labelled = await docker.containers.list(all=True, filters={"label": ["cosmos.run_id"]})
    assert {c.id for c in labelled} == {mine.id, other.id}
    await other.kill()
    running = await docker.containers.list(filters={"label": ["cosmos.run_id"]})
    assert [c.id for c in running] == [mine.id]
    await mine.delete(force=True)


async def test_stop_kill_and_delete(docker: aiodocker.Docker):
    container = await docker.containers.create(shell("sleep 30"))
    await container.start()
    await container.stop(t=1)
    assert (await container.show())["State"]["ExitCode"] == 143
    stubborn = await docker.containers.create(
        shell("trap '' TERM; echo ready; sleep 30 & wait; sleep 30")
    )
    await stubborn.start()
    async with contextlib.aclosing(stubborn.log(stdout=True, follow=True)) as lines:
        async for line in lines:
            if line == "ready\n":  # the trap is set: TERM is ignored from now on
                break
    started = time.monotonic()
    await stubborn.stop(t=0.3)
    assert time.monotonic() - started < 3
    assert (await stubborn.show())["State"]["ExitCode"] == 137
    running = await docker.containers.create(shell("sleep 30"))
    await running.start()
    with pytest.raises(aiodocker.DockerError) as busy:
        await running.delete()
    assert busy.value.status == 409
    await running.delete(force=True)
    with pytest.raises(aiodocker.DockerError) as gone:
        await running.show()
    assert gone.value.status == 404


def model_run(sandbox: Sandbox, run_id: str, prompt: str = "a street at dusk") -> dict:
    """Lay out a run as the lifecycle does and return the container body."""
    tool = sandbox.home / ".cosmos-tui"
    (tool / "inputs").mkdir(parents=True, exist_ok=True)
    video = tool / "inputs" / "abc.mp4"
    video.write_bytes((ASSETS / "street.mp4").read_bytes())
    run_dir = tool / "runs" / run_id
    (run_dir / "output").mkdir(parents=True)
    spec = {
        "prompt": prompt,
        "input_video_path": f"/cosmos/inputs/{video.name}",
        "vis": {"control_weight": 0.5},
    }
    (run_dir / "spec.json").write_text(json.dumps(spec))
    argv = [
        "torchrun",
        "--nproc_per_node=1",
        "--nnodes=1",
        "--node_rank=0",
        "cosmos_transfer1/diffusion/inference/transfer.py",
        "--checkpoint_dir",
        "checkpoints",
        "--video_save_folder",
        f"/cosmos/runs/{run_id}/output",
        "--controlnet_specs",
        f"/cosmos/runs/{run_id}/spec.json",
        "--num_gpus",
        "1",
    ]
    return {
        "Image": SANDBOX_IMAGE,
        "Cmd": argv,
        "Env": ["PYTHONPATH=/workspace"],  # as every launch sets it (docs/cosmos.md)
        "WorkingDir": "/workspace",
        "Labels": {"cosmos.run_id": run_id},
        "HostConfig": {
            "Binds": [f"{sandbox.home / 'cosmos-transfer1'}:/workspace", f"{tool}:/cosmos"],
            "DeviceRequests": [{"Driver": "nvidia", "DeviceIDs": ["1"], "Capabilities": [["gpu"]]}],
        },
    }


async def test_a_model_run_writes_outputs_through_the_mounts(
    sandbox: Sandbox, docker: aiodocker.Docker
):
    container = await docker.containers.create(model_run(sandbox, "r_ok"))
    await container.start()
    assert (await container.wait())["StatusCode"] == 0
    output = sandbox.home / ".cosmos-tui" / "runs" / "r_ok" / "output"
    assert (output / "output.mp4").read_bytes() == (ASSETS / "street.mp4").read_bytes()
    assert (output / "output.txt").read_text().strip() == "a street at dusk"
    logs = "".join(await container.log(stdout=True, stderr=True))
    assert "Saved video to" in logs
    # the client's spec is left as it was written
    spec = json.loads((output.parent / "spec.json").read_text())
    assert spec["input_video_path"].startswith("/cosmos/")


async def test_an_injected_oom_has_the_real_signature(sandbox: Sandbox, docker: aiodocker.Docker):
    sandbox.faults.force_oom()
    container = await docker.containers.create(model_run(sandbox, "r_oom"))
    await container.start()
    assert (await container.wait())["StatusCode"] != 0
    logs = "".join(await container.log(stdout=True, stderr=True))
    assert "torch.OutOfMemoryError: CUDA out of memory" in logs


async def test_gpu_load_follows_a_running_container(sandbox: Sandbox, docker: aiodocker.Docker):
    sandbox.faults.stall_streams()  # stall the client's streams, not the container
    sandbox.faults.resume_streams()
    body = model_run(sandbox, "r_gpu")
    container = await docker.containers.create(body)
    await container.start()
    for _ in range(200):
        readings = sandbox.gpus.read()
        if readings[1].memory_used > 10_000:
            break
        await asyncio.sleep(0.02)
    assert readings[1].memory_used > 10_000
    assert readings[0].memory_used == 0 and readings[0].utilization == 0
    assert [p[0] for p in sandbox.gpus.processes()] == [(await container.show())["State"]["Pid"]]
    await container.wait()
    assert sandbox.gpus.read()[1].utilization == 0


async def test_a_container_killed_behind_the_clients_back(
    sandbox: Sandbox, docker: aiodocker.Docker
):
    container = await docker.containers.create(shell("sleep 30", **{"cosmos.run_id": "r_k"}))
    await container.start()
    await sandbox.kill_container("r_k", oom_killed=True)
    info = await container.show()
    assert info["State"]["ExitCode"] == 137 and info["State"]["OOMKilled"] is True


async def test_docker_down_and_up(sandbox: Sandbox, docker: aiodocker.Docker):
    await sandbox.docker_down()
    with pytest.raises(aiodocker.DockerError):
        await docker.version()
    await sandbox.docker_up()
    assert (await docker.version())["ApiVersion"]


async def test_a_gpu_the_host_lacks_fails_at_start(docker: aiodocker.Docker):
    body = shell("true")
    body["HostConfig"] = {
        "DeviceRequests": [{"Driver": "nvidia", "DeviceIDs": ["5"], "Capabilities": [["gpu"]]}]
    }
    container = await docker.containers.create(body)
    with pytest.raises(aiodocker.DockerError) as error:
        await container.start()
    assert error.value.status == 500 and "unknown device" in error.value.message


async def test_the_prompt_upsampler_script_runs_the_upsampler_stand_in(
    sandbox: Sandbox, docker: aiodocker.Docker
):
    from cosmos_tui.engine.profiles import upsampler

    run_dir = sandbox.home / ".cosmos-tui" / "runs" / "bs_1"
    (run_dir / "output").mkdir(parents=True)
    (run_dir / upsampler.SCRIPT_NAME).write_text(upsampler.SCRIPT)
    lines = [
        upsampler.EnhanceLine("rs_a", "a red car", "/cosmos-tui/inputs/x.mp4"),
        upsampler.EnhanceLine("rs_b", "a blue boat", "/cosmos-tui/inputs/y.mp4"),
    ]
    (run_dir / upsampler.INPUT_NAME).write_text(upsampler.input_jsonl(lines))
    container = await docker.containers.create(
        {
            "Image": SANDBOX_IMAGE,
            "Cmd": upsampler.build_argv("/cosmos-tui/run", len(lines)),
            "Env": ["PYTHONPATH=/workspace"],  # as every launch sets it (docs/cosmos.md)
            "WorkingDir": "/workspace",
            "HostConfig": {
                "Binds": [
                    f"{run_dir}:/cosmos-tui/run",
                    f"{sandbox.home / 'cosmos-transfer1'}:/workspace",
                ]
            },
        }
    )
    await container.start()
    status = (await container.wait())["StatusCode"]
    assert status == 0, await container.log(stdout=True, stderr=True)
    output = (run_dir / "output" / upsampler.OUTPUT_NAME).read_text()
    found = upsampler.parse_output(output, ["rs_a", "rs_b"])
    assert found["rs_a"].startswith("a red car") and len(found["rs_a"]) > len("a red car")
    assert "Upsampled prompt for rs_b\n" in await container.log(stdout=True)


async def test_a_model_run_without_pythonpath_dies_at_import(
    sandbox: Sandbox, docker: aiodocker.Docker
):
    body = model_run(sandbox, "r_nopath")
    del body["Env"]
    container = await docker.containers.create(body)
    await container.start()
    assert (await container.wait())["StatusCode"] == 1
    logs = "".join(await container.log(stdout=True, stderr=True))
    assert "ModuleNotFoundError: No module named 'cosmos_transfer1'" in logs
    assert not (
        sandbox.home / ".cosmos-tui" / "runs" / "r_nopath" / "output" / "output.mp4"
    ).exists()
