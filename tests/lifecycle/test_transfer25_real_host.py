"""Transfer2.5 commands on the real test host: sshd, dockerd and a busybox image.

The image's ``python`` and ``torchrun`` are the Transfer2.5 double; the sample file and
the command are what cosmos_tui/engine/profiles/transfer25.py builds; the container goes
through the remote layer (Docker over SSH) as a run's does. The whole lifecycle through
the queue is in tests/lifecycle/test_transfer25_lifecycle.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from cosmos_tui.domain import FailureKind
from cosmos_tui.engine.failures import classify
from cosmos_tui.engine.profiles.transfer25 import (
    BatchItem,
    LaunchPaths,
    build_argv,
    build_batch,
    collect_outputs,
)
from cosmos_tui.engine.profiles.transfer25_args import HintOptions, Transfer25Options
from cosmos_tui.engine.profiles.transfer25_progress import Transfer25Parser
from cosmos_tui.remote import ContainerSpec, Mount, RemoteHost
from cosmos_tui.sandbox.standin import transfer25_standin_path
from tests.remote.log_lines import all_lines

TAG = "cosmos-test/transfer25-standin:latest"
RUN = "/cosmos/run"


@pytest.fixture(scope="session")
def t25_image(build_image: Callable[..., str]) -> str:
    script = transfer25_standin_path().read_text()
    return build_image(TAG, {"/bin/python": script, "/bin/torchrun": script}, cmd=["python"])


async def put(host: RemoteHost, path: str, text: str) -> None:
    await host.run(["sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1"', "sh", path],
                   input_text=text)  # fmt: skip


async def launch(host: RemoteHost, image: str, gpus: int, **env: str) -> tuple[int, list, str]:
    run_dir = f"{await host.tool_dir()}/t25-{time.monotonic_ns()}"
    await put(host, f"{run_dir}/in.mp4", "a real enough video\n" * 50)
    options = Transfer25Options(hints=(HintOptions("edge", 0.5), HintOptions("depth", 0.2)),
                                num_gpus=gpus)  # fmt: skip
    await put(host, f"{run_dir}/batch.jsonl", build_batch([
        BatchItem("one", "a street at dusk", f"{RUN}/in.mp4", options),
        BatchItem("two", "blocked [standin:guardrail]", f"{RUN}/in.mp4", options),
        BatchItem("three", "a street at dawn", f"{RUN}/in.mp4", options),
    ]))  # fmt: skip
    argv = build_argv(options, LaunchPaths((f"{RUN}/batch.jsonl",), f"{RUN}/output"))
    spec = ContainerSpec(
        run_id=f"rs_t25{time.monotonic_ns() % 10**10}", image=image, command=tuple(argv),
        env={"COSMOS_STANDIN_SPEED": "0.01", "HF_HOME": f"{RUN}/hf", **env},
        mounts=(Mount(run_dir, RUN),),
    )  # fmt: skip
    docker = host.docker
    container = await docker.create(spec)
    await docker.start(container)
    code = await docker.wait(container, timeout=60)
    lines = [line.text for line in await all_lines(docker, container)]
    await docker.remove(container)
    return code, lines, run_dir


@pytest.mark.parametrize("gpus", [1, 2])
async def test_a_transfer25_batch_on_the_real_host(
    remote_host: RemoteHost, t25_image: str, gpus: int
) -> None:
    code, lines, run_dir = await launch(remote_host, t25_image, gpus, HF_TOKEN="hf_test")
    assert code == 0, lines[-10:]
    listing = await remote_host.run(["ls", f"{run_dir}/output"])
    files = listing.stdout.split()
    outcomes = collect_outputs(["one", "two", "three"], files, lines, exit_code=code)
    assert [o.state for o in outcomes] == ["done", "blocked", "done"]
    assert outcomes[0].controls == {
        "depth": "one_control_depth.mp4",
        "edge": "one_control_edge.mp4",
    }
    parser = Transfer25Parser()
    phases = []
    for i, line in enumerate(lines):
        if parser.feed(line, float(i)):
            phases.append(parser.estimate(float(i), None).phase)
    assert "downloading checkpoints" in phases
    assert any(p.startswith("sample 3/3") for p in phases)
    assert parser.estimate(0, None).percent > 95


async def test_no_token_on_an_empty_cache_is_the_gated_failure(
    remote_host: RemoteHost, t25_image: str
) -> None:
    code, lines, _ = await launch(remote_host, t25_image, 1)
    assert code == 1
    failure = classify(code, lines, profile="transfer2.5")
    assert failure.kind == FailureKind.DOWNLOAD and "HF_TOKEN" in failure.message
    assert failure.phase == "downloading checkpoints"
