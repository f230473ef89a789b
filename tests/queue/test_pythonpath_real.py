"""Every container the tool starts can import cosmos_transfer1 (real sshd and dockerd).

Upstream's commands all run ``PYTHONPATH=$(pwd) torchrun ...`` and its Dockerfile sets no
PYTHONPATH (docs/cosmos.md, "Container environment"). The stand-ins in the test image die
with ``ModuleNotFoundError: No module named 'cosmos_transfer1'`` without it, as upstream
does; these tests show that they do, and that each launch path (transfer, batch, upscale,
enhance) sets it.
"""

from __future__ import annotations

import dataclasses
import json
import pwd
from pathlib import Path

from cosmos_tui.domain import RunState
from tests.fixtures.hosts import TEST_USER
from tests.queue.test_extra_real import drain, enhance_image, videos  # noqa: F401

SCRIPT = "cosmos_transfer1/diffusion/inference/transfer.py"


def run_container(docker_daemon, image: str, *argv: str, env: tuple[str, ...] = ()):
    repo = Path(pwd.getpwnam(TEST_USER).pw_dir) / "cosmos-transfer1"
    args = ["run", "--rm", "--network", "none", "-v", f"{repo}:/workspace", "-w", "/workspace"]
    for item in env:
        args += ["-e", item]
    return docker_daemon.cli(*args, image, *argv, check=False)


def test_without_pythonpath_the_model_and_the_upsampler_die_at_import(
    docker_daemon,
    enhance_image,  # noqa: F811
    host_config,
) -> None:
    torchrun = ["torchrun", "--nproc_per_node=1", "--nnodes=1", "--node_rank=0"]
    bare = run_container(docker_daemon, enhance_image, *torchrun, SCRIPT,
                         "--controlnet_specs", "spec.json")  # fmt: skip
    assert bare.returncode == 1
    assert b"ModuleNotFoundError: No module named 'cosmos_transfer1'" in bare.stderr
    assert b"ChildFailedError" in bare.stderr
    # With PYTHONPATH the import passes: the next error is the missing spec file.
    fixed = run_container(docker_daemon, enhance_image, *torchrun, SCRIPT, "--controlnet_specs",
                          "spec.json", env=("PYTHONPATH=/workspace",))  # fmt: skip
    assert b"ModuleNotFoundError" not in fixed.stderr
    assert b"No such file or directory: 'spec.json'" in fixed.stderr
    upsample = [*torchrun, "/tmp/cosmos_tui_upsample.py", "--input", "i", "--output", "o"]
    bare = run_container(docker_daemon, enhance_image, *upsample)
    assert bare.returncode == 1
    assert b"ModuleNotFoundError: No module named 'cosmos_transfer1'" in bare.stderr


async def test_transfer_batch_upscale_and_enhance_containers_all_set_pythonpath(
    bench_for,
    make_config,
    fake_gpu,
    enhance_image,  # noqa: F811
    docker_daemon,
    tmp_path,
) -> None:
    fake_gpu.set_variant("1gpu")
    config = make_config()
    host = dataclasses.replace(config.hosts[0], docker_image=enhance_image)
    bench = await bench_for(dataclasses.replace(config, hosts=[host]))
    prompts = [
        await bench.create_prompt(text, videos(tmp_path, name))
        for name, text in (("a", "a quay at dawn"), ("b", "a mill in fog"), ("c", "a pier"))
    ]
    batched = [await bench.create_run(p.id) for p in prompts[:2]]
    single = await bench.create_run(
        prompts[2].id, {"seed": 7, "negative_prompt": "-blurry", "fps": 30}
    )
    enhance = await bench.extras.create_enhance([prompts[0].id])
    await drain(bench)
    upscale = await bench.extras.create_upscale(single.id)
    await drain(bench)
    runs = [await bench.get_run(r.id) for r in (*batched, single, *enhance, upscale)]
    assert [r.state for r in runs] == [RunState.COMPLETED] * 5, [r.failure_message for r in runs]
    assert runs[0].container_id == runs[1].container_id  # the batch shared one container
    for run in runs:
        assert run.container_id is not None
        inspect = json.loads(docker_daemon.cli("inspect", run.container_id).stdout)[0]
        env = dict(item.split("=", 1) for item in inspect["Config"]["Env"])
        assert env["PYTHONPATH"].split(":")[0] == "/workspace", (run.type, env)
        assert inspect["Config"]["WorkingDir"] == "/workspace"
    single_argv = json.loads(docker_daemon.cli("inspect", runs[2].container_id).stdout)[0]
    assert "--negative_prompt=-blurry" in single_argv["Config"]["Cmd"]
    # The upscale plays at the source run's frame rate.
    upscale_argv = json.loads(docker_daemon.cli("inspect", runs[4].container_id).stdout)[0]
    cmd = upscale_argv["Config"]["Cmd"]
    assert runs[4].params.fps == 30 and cmd[cmd.index("--fps") + 1] == "30"


async def test_a_dry_run_shows_exactly_what_the_launch_then_sends(
    bench_for, make_config, fake_gpu, docker_daemon, tmp_path
) -> None:
    from cosmos_tui.services.dry_run import dry_run

    fake_gpu.set_variant("1gpu")
    bench = await bench_for(make_config())
    prompt = await bench.create_prompt("a lock at noon", videos(tmp_path, "lock"))
    run = await bench.create_run(prompt.id, {"negative_prompt": "-grainy", "seed": 11})
    [preview] = await dry_run(bench, [run.id])
    done = await bench.runs.drive(run.id)
    assert done.state == RunState.COMPLETED, done.failure_message
    inspect = json.loads(docker_daemon.cli("inspect", done.container_id).stdout)[0]
    shown = preview.to_json()
    assert inspect["Config"]["Cmd"] == shown["argv"]
    assert inspect["Config"]["WorkingDir"] == shown["workdir"]
    sent_env = set(inspect["Config"]["Env"])
    assert {f"{k}={v}" for k, v in preview.spec.env.items()} <= sent_env
    home = pwd.getpwnam(TEST_USER).pw_dir
    mounts = [
        (m["source"].replace("~", home, 1), m["target"], m["read_only"]) for m in shown["mounts"]
    ]
    sent = [
        (m["Source"], m["Target"], bool(m.get("ReadOnly"))) for m in inspect["HostConfig"]["Mounts"]
    ]
    assert sent == mounts  # typed mounts (docs/security.md), never legacy Binds
    assert inspect["HostConfig"]["Binds"] in (None, [])
    assert inspect["HostConfig"]["IpcMode"] == shown["create_body"]["HostConfig"]["IpcMode"]
    assert done.spec == shown["spec"]
    labels = inspect["Config"]["Labels"]
    assert {k: labels[k] for k in shown["create_body"]["Labels"]} == {
        **shown["create_body"]["Labels"],
        "cosmos.gpus": labels["cosmos.gpus"],
    }
