"""The Transfer1 stand-in accepts exactly what upstream's transfer.py accepts.

Upstream's command line is transcribed in tests/engine/upstream_transfer1.py (cited); its
spec checks are inference_utils.py:1197-1277 at commit 5005e823. A stand-in that accepts
an argv or a spec that upstream rejects would let launch bugs through the whole suite, so
these tests compare decisions and messages, not only exit codes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cosmos_tui.domain import GenerationParams
from cosmos_tui.engine.profiles.transfer1 import LaunchPaths, build_argv
from cosmos_tui.sandbox.standin import standin_script_path

from .upstream_transfer1 import upstream_accepts

SCRIPT = "cosmos_transfer1/diffusion/inference/transfer.py"
SPEC = ["--controlnet_specs", "spec.json"]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A checkout as mounted at /workspace: the script, an input video and a spec."""
    script = tmp_path / SCRIPT
    script.parent.mkdir(parents=True)
    script.write_text("# upstream's transfer.py\n")
    (tmp_path / "in.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"x" * 256)
    write_spec(tmp_path, {"prompt": "a cat", "input_video_path": "in.mp4",
                          "vis": {"control_weight": 0.5}})  # fmt: skip
    return tmp_path


def write_spec(root: Path, spec: object) -> None:
    (root / "spec.json").write_text(json.dumps(spec, indent=2))


def standin(root: Path, argv: list[str], torchrun: bool = False, shell: str = "sh", **env):
    """Run the stand-in as a container would: ``python transfer.py ARGV`` or via torchrun."""
    front = ["torchrun", "--nproc_per_node=1", "--nnodes=1", "--node_rank=0"] if torchrun else []
    environ = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(root),
        "COSMOS_STANDIN_SPEED": "0",
        "COSMOS_STANDIN_STOP_AFTER": "args",
        **env,
    }
    shell_argv = [shutil.which("busybox") or "busybox", "sh"] if shell == "busybox" else ["/bin/sh"]
    done = subprocess.run(
        [*shell_argv, str(standin_script_path()), *front, SCRIPT, *argv],
        cwd=root,
        env={k: v for k, v in environ.items() if v is not None},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done


def error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("transfer.py: error: ")]
    assert len(lines) == 1, stderr
    return lines[0].removeprefix("transfer.py: error: ")


ARGVS: list[list[str]] = [
    [*SPEC],
    [],
    ["--seed", "3"],
    [*SPEC, "--negative_prompt", "-blurry"],
    [*SPEC, "--negative_prompt=-blurry"],
    [*SPEC, "--negative_prompt", "-blurry, low quality"],
    [*SPEC, "--negative_prompt", "-5"],
    [*SPEC, "--prompt="],
    [*SPEC, "--prompt", "--seed", "3"],
    [*SPEC, "--unknown_flag", "1"],
    [*SPEC, "stray"],
    [*SPEC, "-x"],
    [*SPEC, "--blur_strength", "extreme"],
    [*SPEC, "--blur_strength", "very_high", "--canny_threshold", "very_low"],
    [*SPEC, "--canny_threshold=Low"],
    [*SPEC, "--num_input_frames", "2"],
    [*SPEC, "--num_input_frames", "1"],
    [*SPEC, "--seed", "x"],
    [*SPEC, "--seed", "1.5"],
    [*SPEC, "--seed", "-5"],
    [*SPEC, "--seed", "1_000"],
    [*SPEC, "--seed", " 7 "],
    [*SPEC, "--seed"],
    [*SPEC, "--num_steps", "35.0"],
    [*SPEC, "--guidance", "abc"],
    [*SPEC, "--guidance", "7.5", "--sigma_max", "80"],
    [*SPEC, "--guidance", "-1e3"],
    [*SPEC, "--guidance", "1e3", "--sigma_max", ".5"],
    [*SPEC, "--guidance", "nan"],
    [*SPEC, "--fps", "30", "--num_gpus", "2", "--batch_size", "4"],
    [*SPEC, "--num_gpu", "2"],
    [*SPEC, "--num_gpu=2"],
    [*SPEC, "--offload"],
    [*SPEC, "--offload_text_encoder_model", "--offload_guardrail_models", "--use_distilled"],
    [*SPEC, "--use_distilled=1"],
    [*SPEC, "--upsample_prompt", "--offload_prompt_upsampler", "--benchmark"],
    [*SPEC, "--checkpoint_dir", "/ckpt", "--video_save_folder", "out", "--video_save_name", "v"],
    [*SPEC, "--batch_input_path", "b.jsonl", "--tokenizer_dir", "tok", "--is_av_sample"],
    [*SPEC, "--save_input_noise", "--offload_diffusion_transformer", "--input_video_path", "x"],
    ["--controlnet_specs=spec.json", "--video_save_folder=out"],
    ["--controlnet", "spec.json"],
    [*SPEC, "--num_steps", "10", "--num_steps", "twenty"],
]


@pytest.mark.parametrize("shell", ["sh", "busybox"])
@pytest.mark.parametrize("argv", ARGVS, ids=lambda a: " ".join(a) or "(none)")
def test_stand_in_decides_every_argv_as_upstream(repo: Path, argv: list[str], shell: str) -> None:
    accepted, message = upstream_accepts(argv)
    done = standin(repo, argv, shell=shell)
    if accepted:
        assert done.returncode == 0, done.stderr
    else:
        assert done.returncode == 2, (done.returncode, done.stderr)
        assert done.stderr.startswith("usage: transfer.py [-h] [--prompt PROMPT]")
        assert error_line(done.stderr) == message


def test_argv_errors_under_busybox_and_torchrun_end_in_torchruns_footer(repo: Path) -> None:
    argv = [*SPEC, "--negative_prompt", "-blurry"]
    done = standin(repo, argv, torchrun=True, shell="busybox")
    assert done.returncode == 1  # torchrun itself exits 1 when a worker failed
    assert error_line(done.stderr) == "argument --negative_prompt: expected one argument"
    assert "torch.distributed.elastic.multiprocessing.errors.ChildFailedError" in done.stderr
    assert "exitcode  : 2 (pid:" in done.stderr


@pytest.mark.parametrize(
    "params",
    [
        GenerationParams(),
        GenerationParams(negative_prompt="-blurry, --low quality", seed=2**32 - 2, num_gpus=2),
        GenerationParams(negative_prompt="-blurry", blur_strength="very_high", guidance=0.0),
        GenerationParams(sigma_max=80.0, canny_threshold="very_low", fps=30, num_steps=1),
    ],
)
def test_every_argv_the_tool_builds_is_accepted_by_both(repo: Path, params) -> None:
    for upscale in (False, True):
        paths = LaunchPaths(spec_path="spec.json", output_dir="out")
        argv = build_argv(params, paths, upscale=upscale)
        script_args = argv[argv.index(SCRIPT) + 1 :]
        assert upstream_accepts(script_args) == (True, "")
        done = standin(repo, script_args)
        assert done.returncode == 0, done.stderr
    assert upstream_accepts([*SPEC, "--negative_prompt", "-blurry"])[0] is False


def test_a_negative_prompt_starting_with_a_dash_arrives_whole(repo: Path) -> None:
    params = GenerationParams(negative_prompt="-blurry")
    argv = build_argv(params, LaunchPaths(spec_path="spec.json", output_dir="out"))
    assert "--negative_prompt=-blurry" in argv
    from .upstream_transfer1 import make_parser

    parsed = make_parser().parse_args(argv[argv.index(SCRIPT) + 1 :])
    assert parsed.negative_prompt == "-blurry"


# --- the spec: load_controlnet_specs and validate_controlnet_specs -----------------------


@pytest.mark.parametrize(
    ("spec", "argv", "exception"),
    [
        ({"prompt": "p", "vis": {"control_weight": 0.5}}, [],
         "ValueError: Must have 'input_video' specified if sigma_max < 80"),
        ({"prompt": "p", "sigma_max": 80, "vis": {"control_weight": 0.5}}, [],
         "ValueError: vis controlnet must have 'input_control' video specified if no "
         "'input_video' specified."),
        ({"prompt": "p", "vis": {"control_weight": 0.5}}, ["--sigma_max", "80"],
         "ValueError: vis controlnet must have 'input_control' video specified if no "
         "'input_video' specified."),
        ({"input_video_path": "in.mp4", "edge": {"control_weight": -0.1}}, [],
         "ValueError: Control weight for edge must be a valid non-negative float or a path "
         "to a .pt file."),
        ({"input_video_path": "in.mp4", "depth": {"control_weight": "heavy"}}, [],
         "ValueError: Control weight for depth must be a valid non-negative float or a path "
         "to a .pt file."),
        ({"input_video_path": "in.mp4", "seg": {"control_weight": None}}, [],
         "TypeError: float() argument must be a string or a real number, not 'NoneType'"),
        ({"input_video_path": "in.mp4", "colour": {"control_weight": 0.5}}, [],
         "ValueError: Invalid hint_key: colour. Must be one of"),
        ({"input_video_path": "in.mp4", "vis": {"control_weight": 0.5}}, ["--use_distilled"],
         "ValueError: No default distilled checkpoint for vis. Users must specify ckpt_path "
         "in config."),
        ({"input_video_path": "in.mp4", "seed": 4294967296, "vis": {}}, [],
         "ValueError: Seed must be between 0 and 2**32 - 1"),
        ([{"vis": {}}], [], "AttributeError: 'list' object has no attribute 'items'"),
    ],
)  # fmt: skip
def test_spec_errors_are_upstreams(repo: Path, spec, argv: list[str], exception: str) -> None:
    write_spec(repo, spec)
    done = standin(repo, [*SPEC, *argv], COSMOS_STANDIN_STOP_AFTER="spec")
    assert done.returncode == 1, done.stderr
    assert done.stderr.rstrip().splitlines()[-1].startswith(exception)
    assert done.stderr.startswith("Traceback (most recent call last):")


@pytest.mark.parametrize(
    ("spec", "argv"),
    [
        ({"input_video_path": "in.mp4", "edge": {"control_weight": "0.3"}}, []),
        ({"input_video_path": "in.mp4", "edge": {"control_weight": "masks/edge.pt"}}, []),
        ({"input_video_path": "in.mp4", "edge": {}}, []),  # warns and uses 0.5
        ({"sigma_max": 80, "edge": {"input_control": "in.mp4", "control_weight": 1}}, []),
        ({"edge": {"input_control": "in.mp4"}}, ["--sigma_max", "80"]),
        ({"input_video_path": "in.mp4", "edge": {"control_weight": 0.5}}, ["--use_distilled"]),
        ({"input_video_path": "in.mp4", "seed": 4294967296, "vis": {}}, ["--seed", "5"]),
        ({"input_video_path": "in.mp4", "regional_prompts": [{"prompt": "x"}], "vis": {}}, []),
    ],
)  # fmt: skip
def test_specs_upstream_accepts_pass(repo: Path, spec, argv: list[str]) -> None:
    write_spec(repo, spec)
    done = standin(repo, [*SPEC, *argv], COSMOS_STANDIN_STOP_AFTER="spec")
    assert done.returncode == 0, done.stderr


def test_missing_or_broken_spec_file(repo: Path) -> None:
    done = standin(repo, ["--controlnet_specs", "nope.json"], COSMOS_STANDIN_STOP_AFTER="spec")
    assert done.stderr.rstrip().endswith(
        "FileNotFoundError: [Errno 2] No such file or directory: 'nope.json'"
    )
    (repo / "spec.json").write_text('{"prompt": "p",\n "vis": }')
    done = standin(repo, SPEC, COSMOS_STANDIN_STOP_AFTER="spec")
    assert done.returncode == 1
    assert "json.decoder.JSONDecodeError: Expecting value: line 2" in done.stderr


# --- PYTHONPATH -----------------------------------------------------------------------------


@pytest.mark.parametrize("pythonpath", [None, "", "/nonexistent", "cosmos_transfer1"])
def test_without_the_repo_on_pythonpath_every_rank_dies_at_import(
    repo: Path, pythonpath: str | None
) -> None:
    done = standin(repo, SPEC, torchrun=True, shell="busybox", PYTHONPATH=pythonpath,
                   COSMOS_STANDIN_STOP_AFTER=None)  # fmt: skip
    assert done.returncode == 1
    assert "ModuleNotFoundError: No module named 'cosmos_transfer1'" in done.stderr
    assert "import cosmos_transfer1.utils.fix_vllm_registration" in done.stderr
    assert "ChildFailedError" in done.stderr
    assert not (repo / "out").exists() and "Saved video" not in done.stdout


@pytest.mark.parametrize("pythonpath", ["{root}", ".", ":", "/opt/lib:{root}", "{root}/"])
def test_repo_on_pythonpath_in_any_spelling_imports(repo: Path, pythonpath: str) -> None:
    done = standin(repo, SPEC, PYTHONPATH=pythonpath.format(root=repo))
    assert done.returncode == 0, done.stderr


def test_a_missing_script_fails_like_python(repo: Path) -> None:
    (repo / SCRIPT).unlink()
    done = standin(repo, SPEC)
    assert done.returncode == 2
    assert f"can't open file '{repo / SCRIPT}': [Errno 2] No such file or directory" in done.stderr


# --- several GPUs ---------------------------------------------------------------------------


def test_multi_gpu_logs_have_rank_prefixes_and_a_bar_per_rank(repo: Path) -> None:
    argv = [*SPEC, "--num_gpus", "2", "--video_save_folder", "out"]
    front = ["torchrun", "--nproc_per_node=2", "--nnodes=1", "--node_rank=0", SCRIPT]
    environ = {"PATH": os.environ["PATH"], "PYTHONPATH": str(repo), "COSMOS_STANDIN_SPEED": "0",
               "COSMOS_STANDIN_SCENARIO": "oom", "COSMOS_STANDIN_FAIL_RANK": "1"}  # fmt: skip
    done = subprocess.run(["/bin/sh", str(standin_script_path()), *front, *argv], cwd=repo,
                          env=environ, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert "[RANK 0]Initialized distributed training with local rank 0" in done.stdout
    assert "[RANK 1]Initialized distributed training with local rank 1" in done.stdout
    assert "[rank1]: torch.OutOfMemoryError: CUDA out of memory." in done.stderr
    assert "[rank1]: Traceback (most recent call last):" in done.stderr
    assert "rank      : 1 (local_rank: 1)" in done.stderr
    assert done.stderr.count("  0%|          | 0/1") == 2  # one tqdm bar per rank


def test_seed_plus_clip_index_past_the_limit_crashes_at_sampling(repo: Path) -> None:
    argv = [*SPEC, "--seed", str(2**32 - 1), "--video_save_folder", "out"]
    ok = standin(repo, argv, COSMOS_STANDIN_STOP_AFTER=None, COSMOS_STANDIN_CLIPS="1")
    assert ok.returncode == 0, ok.stderr
    crash = standin(repo, argv, COSMOS_STANDIN_STOP_AFTER=None, COSMOS_STANDIN_CLIPS="2")
    assert crash.returncode == 1
    assert "Starting diffusion sampling" in crash.stdout
    assert crash.stderr.rstrip().endswith("ValueError: Seed must be between 0 and 2**32 - 1")
