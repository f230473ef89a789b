"""The Cosmos stand-in script, run the way a container runs it (argv from the profile)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from cosmos_tui.domain import FailureKind, GenerationParams
from cosmos_tui.engine.failures import classify
from cosmos_tui.engine.profiles.transfer1 import LaunchPaths, build_argv, build_spec
from cosmos_tui.sandbox.standin import standin_script_path

SHELLS = ["/bin/sh", "busybox-sh"]


def shell_argv(shell: str) -> list[str]:
    if shell == "busybox-sh":
        busybox = shutil.which("busybox")
        assert busybox, "busybox is needed (apt-get install busybox-static)"
        return [busybox, "sh"]
    return [shell]


def workspace(tmp_path: Path, prompt: str = "a robot arm", batch: list[dict] | None = None):
    script = tmp_path / "cosmos_transfer1" / "diffusion" / "inference" / "transfer.py"
    script.parent.mkdir(parents=True)  # the repo checkout, as mounted at /workspace
    script.write_text("# upstream's transfer.py\n")
    (tmp_path / "inputs").mkdir()
    video = tmp_path / "inputs" / "abc.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2048))
    spec = build_spec(prompt, GenerationParams(), "inputs/abc.mp4", {"depth": "inputs/abc.mp4"})
    (tmp_path / "spec.json").write_text(json.dumps(spec, indent=2))
    batch_path = None
    if batch is not None:
        batch_path = "batch.jsonl"
        (tmp_path / batch_path).write_text("".join(json.dumps(b) + "\n" for b in batch))
    paths = LaunchPaths(spec_path="spec.json", output_dir="out", batch_input_path=batch_path)
    return video, build_argv(GenerationParams(), paths)


def run_standin(tmp_path: Path, argv: list[str], shell: str = "/bin/sh", **env: str):
    environ = {**os.environ, "COSMOS_STANDIN_SPEED": "0", "PYTHONPATH": str(tmp_path), **env}
    return subprocess.run(
        [*shell_argv(shell), str(standin_script_path()), *argv],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        timeout=60,
    )


@pytest.mark.parametrize("shell", SHELLS)
def test_ok_run_writes_outputs_and_every_phase(tmp_path: Path, shell: str) -> None:
    video, argv = workspace(tmp_path)
    done = run_standin(tmp_path, argv, shell, COSMOS_STANDIN_SPEED="0.001")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    assert (out / "output.mp4").read_bytes() == video.read_bytes()
    assert (out / "output.txt").read_text().strip() == "a robot arm"
    # depth had an input_control; vis, edge and seg are auto-computed
    assert sorted(p.name for p in out.glob("*_input_control.mp4")) == [
        "edge_input_control.mp4",
        "seg_input_control.mp4",
        "vis_input_control.mp4",
    ]
    stdout = done.stdout.decode()
    for marker in (
        "final args:",
        "Start creating base model",
        "running preprocessor",
        "Running guardrail checks on all prompts",
        "Completed T5 compute",
        "Starting diffusion sampling",
        "Completed VAE decode",
        "Saved video to out/output.mp4",
        "Saved prompt to out/output.txt",
    ):
        assert marker in stdout
    assert "\r100%|" in done.stderr.decode()


@pytest.mark.parametrize(
    ("scenario", "kind"),
    [
        ("oom", FailureKind.GPU_OOM),
        ("host_oom", FailureKind.HOST_OOM),
        ("missing_ckpt", FailureKind.MISSING_CHECKPOINT),
        ("guardrail", FailureKind.GUARDRAIL),
        ("spec_error", FailureKind.SPEC_ERROR),
        ("crash", FailureKind.UNKNOWN),
    ],
)
def test_failure_scenarios_print_their_signatures(tmp_path: Path, scenario: str, kind) -> None:
    _, argv = workspace(tmp_path)
    done = run_standin(tmp_path, argv, "busybox-sh", COSMOS_STANDIN_SCENARIO=scenario)
    assert done.returncode == 1
    lines = (done.stdout + done.stderr).decode().splitlines()
    assert classify(done.returncode, lines).kind == kind
    assert not (tmp_path / "out" / "output.mp4").exists()


def test_marker_in_prompt_selects_the_scenario(tmp_path: Path) -> None:
    _, argv = workspace(tmp_path, prompt="a robot [standin:oom]")
    done = run_standin(tmp_path, argv)
    assert done.returncode == 1 and b"CUDA out of memory" in done.stderr


def test_flood_prints_the_requested_lines_then_finishes(tmp_path: Path) -> None:
    _, argv = workspace(tmp_path)
    done = run_standin(tmp_path, argv, COSMOS_STANDIN_SCENARIO="flood",
                       COSMOS_STANDIN_FLOOD_LINES="5000")  # fmt: skip
    assert done.returncode == 0
    assert done.stdout.decode().count("flood line") == 5000
    assert (tmp_path / "out" / "output.mp4").exists()


@pytest.mark.parametrize("ignore", [False, True])
def test_hang_ends_on_sigterm_unless_told_to_ignore_it(tmp_path: Path, ignore: bool) -> None:
    _, argv = workspace(tmp_path)
    env = {**os.environ, "COSMOS_STANDIN_SPEED": "0", "COSMOS_STANDIN_SCENARIO": "hang",
           "PYTHONPATH": str(tmp_path),
           "COSMOS_STANDIN_IGNORE_TERM": "1" if ignore else "0"}  # fmt: skip
    proc = subprocess.Popen([*shell_argv("busybox-sh"), str(standin_script_path()), *argv],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)  # fmt: skip
    assert proc.stdout is not None
    for raw in proc.stdout:
        if b"Starting diffusion sampling" in raw:
            break
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    if ignore:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=0.5)
        proc.kill()
        proc.wait(timeout=5)
    else:
        assert proc.wait(timeout=5) == 143
