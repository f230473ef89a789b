"""The Transfer2.5 stand-in decides like upstream's examples/inference.py.

Upstream's command line is parsed here by tyro 0.9.35 (the version in upstream's uv.lock)
over the transcription of upstream's models in tests/engine/upstream_transfer25.py; sample
files by the same pydantic models. The stand-in (cosmos_tui/sandbox/transfer25_standin.sh)
must accept what they accept, refuse what they refuse with the same exit status, and name
the same fields with the same messages.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pydantic
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
from cosmos_tui.sandbox.standin import transfer25_standin_path

from .upstream_transfer25 import InferenceArguments, upstream_command_line

BUSYBOX = shutil.which("busybox")


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A folder with an input video, a control video and one good sample file."""
    (tmp_path / "in.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"v" * 64)
    (tmp_path / "edge.mp4").write_bytes(b"e" * 16)
    write(tmp_path / "s.json", {"name": "a", "prompt": "a car", "video_path": "in.mp4",
                                "edge": {"control_weight": 0.5}})  # fmt: skip
    return tmp_path


def write(path: Path, sample: object) -> None:
    path.write_text(json.dumps(sample))


def standin(work: Path, argv: list[str], shell: str = "sh", **env: str):
    shell_argv = [BUSYBOX or "busybox", "sh"] if shell == "busybox" else ["/bin/sh"]
    environ = {"PATH": os.environ["PATH"], "COSMOS_STANDIN_SPEED": "0",
               "HF_HOME": str(work / "hf"), "TMPDIR": str(work), **env}  # fmt: skip
    return subprocess.run(
        [*shell_argv, str(transfer25_standin_path()), "python", "examples/inference.py", *argv],
        cwd=work, env=environ, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


BASE = ["-i", "s.json", "-o", "out"]
ARGVS: list[list[str]] = [
    BASE,
    ["-o", "out"],
    ["-i", "s.json"],
    [*BASE, "--bogus"],
    [*BASE, "--guidance", "9"],
    [*BASE, "--guidance", "7"],
    [*BASE, "--guidance", "-1"],
    [*BASE, "--guidance", "abc"],
    [*BASE, "--seed", "1.5"],
    [*BASE, "--seed", "-5"],
    [*BASE, "--seed", "--no-keep-going"],
    [*BASE, "--num-steps", "0"],
    [*BASE, "--num-steps", "0", "--guidance", "8"],
    [*BASE, "--num_steps", "4"],
    [*BASE, "--num-steps=4"],
    [*BASE, "--model", "edge/distilled"],
    [*BASE, "--model", "vis"],
    [*BASE, "--model"],
    [*BASE, "--num-conditional-frames", "3"],
    [*BASE, "--num-conditional-frames", "2"],
    [*BASE, "--show-input"],
    [*BASE, "--show-input", "True"],
    [*BASE, "--show-input", "yes"],
    [*BASE, "--disable-guardrails", "--offload-guardrail-models", "--no-keep-going"],
    [*BASE, "--no-disable-guardrails", "--keep-going"],
    [*BASE, "--disable-guardrails", "True"],
    [*BASE, "--compile-tokenizer", "fast"],
    [*BASE, "--compile-tokenizer", "MODERATE"],
    [*BASE, "--parallel-tokenizer-grid", "2", "2"],
    [*BASE, "--resolution", "480", "--sigma-max", "80"],
    [*BASE, "--negative-prompt", "-blurry"],
    [*BASE, "control:depth"],
    [*BASE, "stray"],
    ["-i", "s.json", "s.json", "-o", "out"],
]


@pytest.mark.parametrize("argv", ARGVS, ids=[" ".join(a) or "empty" for a in ARGVS])
def test_command_line_decisions_match_upstream(work: Path, argv: list[str]) -> None:
    code, message = upstream_command_line(argv)
    done = standin(work, argv, COSMOS_STANDIN_STOP_AFTER="args")
    assert done.returncode == code, (done.stderr, message)
    if code == 2:
        flags = re.findall(r"(?:Argument |parsing |options: |required: )(\S+?)[:.\s]", message)
        assert flags, message
        assert flags[0] in done.stderr, (flags, done.stderr)
    if code == 1:
        assert pydantic_fields(message) == pydantic_fields(done.stderr)


def test_distilled_model_needs_the_experimental_flag(work: Path) -> None:
    argv = [*BASE, "--model", "edge/distilled"]
    assert upstream_command_line(argv, experimental=True)[0] == 0
    done = standin(work, argv, COSMOS_STANDIN_STOP_AFTER="args",
                   COSMOS_EXPERIMENTAL_CHECKPOINTS="1")  # fmt: skip
    assert done.returncode == 0, done.stderr


def pydantic_fields(text: str) -> list[tuple[str, str]]:
    """(location, message) of each error in pydantic's printed report."""
    lines = text.splitlines()
    pairs = []
    for i, line in enumerate(lines):
        match = re.match(r"^  (\S.*?) \[type=", line)
        if match:
            loc = lines[i - 1] if i and not lines[i - 1].startswith(" ") else ""
            if re.match(r"^\d+ validation errors? for ", loc):
                loc = ""
            pairs.append((loc, match.group(1)))
    return pairs


def upstream_sample_errors(sample: dict) -> list[tuple[str, str]]:
    try:
        InferenceArguments.model_validate(sample)
    except pydantic.ValidationError as error:
        return pydantic_fields(str(error))
    return []


GOOD = {"name": "a", "prompt": "a car", "video_path": "in.mp4", "edge": {"control_weight": 0.5}}
SAMPLES: list[dict] = [
    GOOD,
    {**GOOD, "edge": {"control_weight": 1.5}},
    {**GOOD, "edge": {"control_weight": 1}},
    {**GOOD, "edge": {"control_weight": 0}},
    {**GOOD, "edge": {"control_weight": -0.1}},
    {**GOOD, "guidence": 3},
    {**GOOD, "guidance": 3.5},
    {**GOOD, "guidance": 8},
    {**GOOD, "guidance": "abc"},
    {**GOOD, "num_steps": 0},
    {**GOOD, "num_video_frames_per_chunk": 0},
    {**GOOD, "num_conditional_frames": 3},
    {**GOOD, "resolution": 720},
    {**GOOD, "resolution": "480"},
    {**GOOD, "sigma_max": 80},
    {**GOOD, "sigma_max": "80"},
    {**GOOD, "context_frame_index": 0},
    {**GOOD, "max_frames": 1},
    {**GOOD, "video_path": "missing.mp4"},
    {**GOOD, "edge": {"control_path": "edge.mp4", "preset_edge_threshold": "x"}},
    {**GOOD, "edge": {"control_path": "nope.mp4"}},
    {**GOOD, "edge": {"unknown_inside": 1}},
    {**GOOD, "vis": "no"},
    {**GOOD, "vis": {"preset_blur_strength": "very_high"}},
    {**GOOD, "vis": {}, "image_context_path": "edge.mp4"},
    {"name": "a", "prompt": "p", "video_path": "in.mp4"},
    {"prompt": "p", "video_path": "in.mp4", "guidance": 3.5, "num_steps": 0, "edge": {}},
    {**GOOD, "show_input": True, "keep_input_resolution": False},
]


@pytest.mark.parametrize("sample", SAMPLES, ids=[json.dumps(s)[:60] for s in SAMPLES])
def test_sample_decisions_match_upstream(
    work: Path, sample: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(work)
    expected = upstream_sample_errors(sample)
    write(work / "s.json", sample)
    done = standin(work, BASE, COSMOS_STANDIN_STOP_AFTER="samples")
    if not expected:
        assert done.returncode == 0, done.stderr
        return
    assert done.returncode == 1
    assert "Error validating parameters from 's.json' at line 0" in done.stderr
    assert pydantic_fields(done.stderr) == expected


def test_jsonl_line_numbers_and_duplicate_names(work: Path) -> None:
    lines = [GOOD, {**GOOD, "name": "b"}, {**GOOD, "name": "c", "guidance": 9}]
    (work / "b.jsonl").write_text("".join(json.dumps(s) + "\n" for s in lines))
    done = standin(work, ["-i", "b.jsonl", "-o", "out"], COSMOS_STANDIN_STOP_AFTER="samples")
    assert done.returncode == 1
    assert "at line 2" in done.stderr  # config.py:372-377 counts from 0
    (work / "d.jsonl").write_text(json.dumps(GOOD) + "\n" + json.dumps(GOOD) + "\n")
    done = standin(work, ["-i", "d.jsonl", "-o", "out"], COSMOS_STANDIN_STOP_AFTER="samples")
    assert done.returncode == 1
    assert "Error: Inference samplename a is not unique" in done.stderr


def test_what_our_builders_write_the_standin_accepts(work: Path) -> None:
    options = Transfer25Options(
        hints=(HintOptions("edge", 1.0, control_path=str(work / "edge.mp4")),
               HintOptions("depth", 0.0)),
        guidance=7, num_steps=1, seed=0, resolution="480", sigma_max=200.0,
        num_video_frames_per_chunk=1, num_conditional_frames=2, negative_prompt="-blurry",
        num_gpus=2, offload_guardrail_models=True,
    )  # fmt: skip
    video = str(work / "in.mp4")
    (work / "batch.jsonl").write_text(build_batch([
        BatchItem("one", "a car", video, options),
        BatchItem("two", "a bus", video, dataclasses.replace(options, seed=5)),
    ]))  # fmt: skip
    argv = build_argv(options, LaunchPaths(("batch.jsonl",), "out"))
    assert argv[0] == "torchrun"
    script = argv.index("examples/inference.py")
    assert upstream_command_line(argv[script + 1 :])[0] == 0
    done = subprocess.run(
        ["/bin/sh", str(transfer25_standin_path()), *argv], cwd=work, capture_output=True,
        text=True, timeout=60, env={"PATH": os.environ["PATH"], "COSMOS_STANDIN_SPEED": "0",
        "COSMOS_STANDIN_STOP_AFTER": "samples", "TMPDIR": str(work)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("shell", ["sh", "busybox"])
def test_a_batch_run_downloads_once_and_writes_upstreams_layout(work: Path, shell: str) -> None:
    lines = [GOOD, {**GOOD, "name": "b", "prompt": "bad [standin:guardrail]"},
             {**GOOD, "name": "c"}]  # fmt: skip
    (work / "b.jsonl").write_text("".join(json.dumps(s) + "\n" for s in lines))
    argv = ["-i", "b.jsonl", "-o", "out"]
    done = standin(work, argv, shell, HF_TOKEN="hf_x", COSMOS_STANDIN_CHUNKS="2")
    assert done.returncode == 0, done.stderr
    log = done.stdout.splitlines() + done.stderr.replace("\r", "\n").splitlines()
    assert any("Downloading checkpoint" in line for line in log)
    files = sorted(p.name for p in (work / "out").iterdir())
    outcomes = collect_outputs(["a", "b", "c"], files, log, exit_code=0)
    assert [o.state for o in outcomes] == ["done", "blocked", "done"]
    assert (work / "out" / "a.mp4").read_bytes() == (work / "in.mp4").read_bytes()
    assert {"config.yaml", "console.log", "a.json", "a.txt", "a_control_edge.mp4"} <= set(files)
    parser = Transfer25Parser(chunks_per_sample=2)
    for i, line in enumerate(log):
        parser.feed(line, float(i))
    assert parser.estimate(0, None).percent > 90
    again = standin(work, argv, shell, HF_TOKEN="hf_x")
    assert "Downloading checkpoint" not in again.stdout  # the host cache holds them now


def test_first_download_without_a_token_is_the_gated_failure(work: Path) -> None:
    done = standin(work, BASE)
    assert done.returncode == 1
    assert "Cannot access gated repo" in done.stderr
    failure = classify(done.returncode, [*done.stdout.splitlines(), *done.stderr.splitlines()],
                       profile="transfer2.5")  # fmt: skip
    assert failure.kind == FailureKind.DOWNLOAD
    assert "HF_TOKEN" in failure.message and not failure.transient
    assert standin(work, [*BASE, "--disable-guardrails"]).returncode == 0


@pytest.mark.parametrize(("scenario", "kind"), [("oom", FailureKind.GPU_OOM),
                                                ("nccl", FailureKind.NCCL)])  # fmt: skip
def test_failure_scenarios_are_diagnosed(work: Path, scenario: str, kind: FailureKind) -> None:
    done = standin(work, BASE, HF_TOKEN="x", COSMOS_STANDIN_SCENARIO=scenario)
    assert done.returncode == 1
    failure = classify(1, [*done.stdout.splitlines(), *done.stderr.splitlines()],
                       profile="transfer2.5")  # fmt: skip
    assert failure.kind == kind


def test_spec_refusal_is_diagnosed_with_its_line(work: Path) -> None:
    write(work / "s.json", {**GOOD, "edge": {"control_weight": 1.5}})
    done = standin(work, BASE)
    failure = classify(done.returncode, done.stderr.splitlines(), profile="transfer2.5")
    assert failure.kind == FailureKind.SPEC_ERROR
    assert "line 0" in failure.detail and "edge.control_weight" in failure.detail


def test_an_image_context_is_read_like_upstream(work: Path) -> None:
    """utils.py:330-337: the image context's log line, and its extension checked at run time.

    Pydantic only asks for a file (config.py:489), so a ``.gif`` passes the sample check and
    fails later, in the sample's generation, with upstream's ValueError.
    """
    (work / "style.jpg").write_bytes(b"j")
    write(work / "s.json", {**GOOD, "image_context_path": "style.jpg"})
    done = standin(work, BASE, HF_TOKEN="x")
    assert done.returncode == 0, done.stderr
    assert f"Processing image context from: {work / 'style.jpg'}" in done.stdout
    write(work / "s.json", GOOD)
    assert "No image context provided." in standin(work, BASE, HF_TOKEN="x").stdout
    (work / "style.gif").write_bytes(b"g")
    write(work / "s.json", {**GOOD, "image_context_path": "style.gif"})
    shutil.rmtree(work / "out")
    done = standin(work, BASE, HF_TOKEN="x")
    assert done.returncode == 1
    assert (
        "ValueError: Invalid image context extension: .gif. Supported: ['.png', '.jpg', "
        "'.jpeg', '.mp4', '.avi', '.mov', '.mkv', '.webm']" in done.stderr
    )
    assert not (work / "out" / "a.mp4").exists()
