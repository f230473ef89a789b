"""The Cosmos 3 stand-in is a double of upstream: flags, sample validation, downloads, outputs.

It runs here under busybox sh (as in the test image, which has no python), from a folder
that holds a checkout's pyproject.toml like the container's /workspace. What it accepts
is held to what the profile writes; what it refuses uses upstream's messages and exit
codes (docs/cosmos.md, "Cosmos 3 contract"). Its logs feed the progress parser and the
failure classifier, as a real run's would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from cosmos_tui.domain import FailureKind
from cosmos_tui.engine.failures import classify
from cosmos_tui.engine.progress import parser_for
from cosmos_tui.sandbox.standin import cosmos3_standin_path

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
ENTRY = ["-m", "cosmos_framework.scripts.inference"]


class Host:
    """A folder standing for the container: /workspace, the HF cache, the run folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.workspace = root / "workspace"
        self.workspace.mkdir()
        (self.workspace / "pyproject.toml").write_text("[project]\nname='cosmos-framework'\n")
        self.hf_home = root / "hf"
        self.out = root / "out"
        (root / "in.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom a video")

    def run(
        self, sample: dict | str, *flags: str, launcher: tuple[str, ...] = ("python",),
        token: str | None = "hf_x", scenario: str = "ok",
    ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        path = self.root / "sample.json"
        path.write_text(sample if isinstance(sample, str) else json.dumps(sample))
        env = {"PATH": "/usr/bin:/bin", "HF_HOME": str(self.hf_home),
               "COSMOS_STANDIN_SPEED": "0", "COSMOS_STANDIN_SCENARIO": scenario}  # fmt: skip
        if token:
            env["HF_TOKEN"] = token
        argv = [BUSYBOX, "sh", str(cosmos3_standin_path()), *launcher, *ENTRY, "-i", str(path),
                "-o", str(self.out), *flags]  # fmt: skip
        return subprocess.run(
            argv, cwd=self.workspace, env=env, capture_output=True, text=True, timeout=60
        )


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


def lines_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    text = (result.stdout + result.stderr).replace("\r", "\n")
    return text.splitlines()


def test_a_transfer_sample_runs_and_writes_upstreams_layout(host: Host) -> None:
    sample = {"name": "rs_1", "model_mode": "video2video", "prompt": 'a "wet" street',
              "vision_path": str(host.root / "in.mp4"), "resolution": "480", "seed": 3,
              "edge": {"weight": 1.5, "preset_edge_threshold": "very_high"},
              "depth": {"weight": 0.5, "control_path": "in.mp4"}}  # fmt: skip
    result = host.run(sample, "--checkpoint-path", "Cosmos3-Nano", "--parallelism-preset=latency")
    assert result.returncode == 0, result.stderr
    folder = host.out / "rs_1"
    assert sorted(p.name for p in folder.iterdir()) == [
        "control_depth.mp4", "control_edge.mp4", "sample_args.json", "sample_outputs.json",
        "vision.mp4",
    ]  # fmt: skip
    assert (folder / "vision.mp4").read_bytes() == (host.root / "in.mp4").read_bytes()
    assert json.loads((folder / "sample_outputs.json").read_text())["status"] == "success"
    text = "\n".join(lines_of(result))
    assert "hf download --format=json nvidia/Cosmos3-Nano" in text  # the download phase
    assert "Computing edge control input on the fly" in text
    assert "Loaded pre-computed depth control from in.mp4" in text
    assert "Saved transfer outputs to" in text
    parser = parser_for("cosmos3")
    phases = []
    for line in lines_of(result):
        if parser.feed(line, 0.0):
            phases.append(parser.estimate(0.0, None).phase)
    assert "installing" in phases and "downloading checkpoints" in phases
    assert "generating" in phases and parser.estimate(0.0, None).percent == 99.0


def test_text2image_writes_a_jpeg_and_the_cache_is_reused_without_a_token(host: Host) -> None:
    sample = {"name": "img", "model_mode": "text2image", "prompt": "a red kite"}
    assert host.run(sample, "--no-guardrails").returncode == 0
    assert (host.out / "img" / "vision.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    again = host.run(sample, "--no-guardrails", token=None)  # the cache holds the weights
    assert again.returncode == 0 and "hf download" not in again.stdout


@pytest.mark.parametrize(
    ("sample", "says"),
    [
        ({"prompt": "x", "sampler": "edm"}, "sampler\n  Extra inputs are not permitted"),
        ({"prompt": "x", "resolution": "1080"}, "Input should be '256', '480', '720' or '768'"),
        ({"prompt": "x", "resolution": 480}, "input_type=number"),
        ({"prompt": "x", "aspect_ratio": "2,3"}, "Input should be '1,1'"),
        ({"prompt": "x", "num_frames": 0}, "greater than or equal to 1"),
        ({"prompt": "x", "guidance": 7.5}, "less than or equal to 7"),
        ({"prompt": "x", "model_mode": "v2v"}, "model_mode\n  Input should be 'text2image'"),
        ({"prompt": "x", "edge": {"weight": 1, "blur": 2}}, "edge.blur\n  Extra inputs"),
        ({"prompt": "x", "edge": {"preset_edge_threshold": "none"}}, "'very_low', 'low'"),
        ({"prompt": "x", "vision_path": "missing.mp4"}, "Path does not point to a file"),
        ({"prompt": "x", "seg": {"weight": 1}}, "requires 'vision_path' or a pre-computed"),
        ('{"prompt": "x",}', "JSONDecodeError"),
    ],
)
def test_bad_samples_fail_with_upstreams_message(host: Host, sample, says: str) -> None:
    result = host.run(sample, "--no-guardrails")
    assert result.returncode == 1
    assert says in result.stderr
    if says != "JSONDecodeError" and "requires" not in says:
        assert "Error validating parameters from '" in result.stderr
        assert "' at sample 0" in result.stderr
    assert not host.out.exists() or not any(host.out.iterdir())


def test_flags_are_tyros(host: Host) -> None:
    sample = {"prompt": "x"}
    bad = host.run(sample, "--num-steps", "3")
    assert bad.returncode == 2 and "Unrecognized options: --num-steps" in bad.stderr
    bad = host.run(sample, "--parallelism-preset", "fast")
    assert bad.returncode == 2 and "invalid choice: 'fast'" in bad.stderr
    bad = host.run(sample, "--checkpoint-path", "/nowhere/ckpt")
    assert bad.returncode == 1 and "Checkpoint directory does not exist" in bad.stderr
    odd = host.run(sample, "--no-guardrails", launcher=("torchrun", "--nproc-per-node=3"))
    assert odd.returncode == 1 and "must divide WORLD_SIZE(3)" in odd.stderr
    assert "ChildFailedError" in odd.stderr


def test_failures_are_diagnosed_from_the_standins_logs(host: Host) -> None:
    sample = {"name": "s", "prompt": "x"}
    gated = host.run(sample, token=None)
    failure = classify(gated.returncode, lines_of(gated), profile="cosmos3")
    assert failure.kind == FailureKind.DOWNLOAD and not failure.transient
    assert "HF_TOKEN" in failure.message or "licen" in failure.message.lower()
    oom = host.run(sample, "--no-guardrails", scenario="oom")
    failure = classify(oom.returncode, lines_of(oom), profile="cosmos3")
    assert failure.kind == FailureKind.GPU_OOM and "--dp-shard-size" in failure.message
    (host.workspace / "pyproject.toml").unlink()
    broken = host.run(sample, "--no-guardrails")
    failure = classify(broken.returncode, lines_of(broken), profile="cosmos3")
    assert failure.kind == FailureKind.ENVIRONMENT and "repo_dir" in failure.message
    (host.workspace / "pyproject.toml").write_text("[project]\n")
    nccl = host.run(sample, "--no-guardrails", launcher=("torchrun", "--nproc-per-node=2"),
                    scenario="nccl")  # fmt: skip
    assert nccl.returncode == 139
    failure = classify(nccl.returncode, lines_of(nccl), profile="cosmos3")
    assert failure.kind == FailureKind.ENVIRONMENT and "NCCL_NET_PLUGIN" in failure.message


def test_rank0_draws_the_bar_other_ranks_never_move_progress() -> None:
    parser = parser_for("cosmos3")
    assert parser.feed("[12-05 10:00:00|INFO|x.py:1:f] Loaded 2 samples", 0.0)
    assert not parser.feed("[12-05 10:00:01|INFO|x.py:1:f] [RANK 1] Saved sample outputs to 'a'", 0)
    assert parser.feed("Sampling:  50%|#####     | 10/20 [00:10<00:10,  1.00it/s]", 1.0)
    progress = parser.estimate(1.0, None)
    assert progress.percent == 25.0 and progress.phase == "generating sample 1/2"
    assert parser.feed("[12-05 10:00:02|SUCCESS|x.py:1:f] Saved sample outputs to 'a'", 2.0)
    assert parser.estimate(2.0, None).percent == 50.0


def test_cosmos_diagnose_knows_a_cosmos3_log() -> None:
    from cosmos_tui.engine.diagnose import guess_profile

    head = b"[12-05 10:00:00|INFO|cosmos_framework/scripts/inference.py:46:inference] Loaded"
    assert guess_profile(head) == "cosmos3"


# --- the reasoner (model_mode=reasoner): inference.py:1899-1986, args.py:700-735 ---------


@pytest.mark.parametrize(
    ("vision", "sentence"),
    [("in.mp4", "Seen in the video"), ("in.jpg", "Seen in the image"), (None, "From the text")],
)
def test_a_reasoner_sample_writes_its_text_and_upstreams_layout(
    host: Host, vision: str | None, sentence: str
) -> None:
    (host.root / "in.jpg").write_bytes(b"\xff\xd8\xff\xe0 an image")
    sample = {
        "name": "rs_r",
        "model_mode": "reasoner",
        "prompt": "Rewrite the prompt below.\nUser prompt: a red kite over dunes",
    }
    if vision:
        sample["vision_path"] = str(host.root / vision)
    result = host.run(sample, "--checkpoint-path", "Cosmos3-Edge", "--parallelism-preset=latency")
    assert result.returncode == 0, result.stderr
    folder = host.out / "rs_r"
    assert sorted(p.name for p in folder.iterdir()) == [
        "reasoner_text.txt", "sample_args.json", "sample_outputs.json"
    ]  # fmt: skip
    text = (folder / "reasoner_text.txt").read_text()
    assert text.startswith("a red kite over dunes") and sentence in text
    assert not text.endswith("\n")  # write_text(text), inference.py:1974-1975
    outputs = json.loads((folder / "sample_outputs.json").read_text())
    assert outputs["status"] == "success"
    assert outputs["outputs"][0]["content"] == {"reasoner_text": text}
    log = result.stdout
    assert "Loaded 1 samples" in log
    assert "Reasoner-only inputs detected; generation vision tokenizer will not be loaded" in log
    assert f"Saved reasoner outputs to '{folder}'" in log
    assert "Sampling" not in result.stderr and "Saved sample args" not in log


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"temperature": 0}, "temperature\n  Input should be greater than 0"),
        ({"temperature": 101}, "less than or equal to 100"),
        ({"top_p": 1.5}, "top_p\n  Input should be less than or equal to 1"),
        ({"max_new_tokens": 0}, "max_new_tokens\n  Input should be greater than 0"),
        ({"repetition_penalty": -1}, "repetition_penalty\n  Input should be greater than 0"),
        ({"do_sample": "maybe"}, "do_sample\n  Input should be a valid boolean"),
    ],
)
def test_bad_reasoner_values_fail_with_upstreams_message(host: Host, extra, says: str) -> None:
    sample = {"name": "r", "model_mode": "reasoner", "prompt": "describe", **extra}
    result = host.run(sample, "--no-guardrails")
    assert result.returncode == 1 and says in result.stderr, result.stderr
    assert "Error validating parameters from '" in result.stderr
    assert not host.out.exists() or not any(host.out.iterdir())


def test_an_empty_reasoner_prompt_fails_after_loading(host: Host) -> None:
    result = host.run({"name": "r", "model_mode": "reasoner", "prompt": "  "}, "--no-guardrails")
    assert result.returncode == 1
    assert "ValueError: Reasoner inference requires a non-empty 'prompt'." in result.stderr
    assert "Loaded 1 samples" in result.stdout  # built after the model loads (script.py:60-63)


def test_a_blocked_reasoner_prompt_is_diagnosed_as_blocked(host: Host) -> None:
    sample = {"name": "r", "model_mode": "reasoner", "prompt": "a riot [standin:guardrail]"}
    blocked = host.run(sample)
    assert blocked.returncode == 1
    assert "Guardrail blocked prompt '" in blocked.stderr
    assert not (host.out / "r" / "reasoner_text.txt").exists()
    failure = classify(blocked.returncode, lines_of(blocked), profile="cosmos3")
    assert failure.kind == FailureKind.GUARDRAIL, failure
    unguarded = host.run(sample, "--no-guardrails")
    assert unguarded.returncode == 0 and (host.out / "r" / "reasoner_text.txt").exists()


def test_a_blocked_reasoner_prompt_with_keep_going_exits_0_and_is_blocked(host: Host) -> None:
    sample = {"name": "r", "model_mode": "reasoner", "prompt": "a riot [standin:guardrail]"}
    going = host.run(sample, "--keep-going")
    assert going.returncode == 0, going.stderr
    assert "|ERROR|cosmos_framework/inference/common/inference.py:266" in going.stdout
    assert "Error generating sample 'r': Guardrail blocked prompt '" in going.stdout
    assert not (host.out / "r" / "reasoner_text.txt").exists()
    assert classify(0, lines_of(going), profile="cosmos3").kind == FailureKind.GUARDRAIL


@pytest.mark.parametrize("prompt", ["\\n\\n", " \\t ", "\\r\\n "])  # JSON escapes
def test_a_whitespace_reasoner_prompt_is_empty_to_upstream(host: Host, prompt: str) -> None:
    sample = json.dumps({"name": "r", "model_mode": "reasoner"})[:-1] + f', "prompt": "{prompt}"}}'
    result = host.run(sample, "--no-guardrails")
    assert result.returncode == 1, result.stdout
    assert "Reasoner inference requires a non-empty 'prompt'." in result.stderr


def test_the_reasoners_text_file_holds_the_text_not_its_json_escapes(host: Host) -> None:
    said = 'un caf\u00e9 "noir", back\\slash, \u00fcber'
    # json.dumps escapes it as the lifecycle writes the sample (ASCII, \u00e9, \", \\)
    sample = {"name": "r", "model_mode": "reasoner", "prompt": f"User prompt: {said}"}
    result = host.run(json.dumps(sample), "--no-guardrails")
    assert result.returncode == 0, result.stderr
    text = (host.out / "r" / "reasoner_text.txt").read_text(encoding="utf-8")
    assert text.startswith(said + " From the text alone"), text
    content = json.loads((host.out / "r" / "sample_outputs.json").read_text())
    assert content["outputs"][0]["content"]["reasoner_text"] == text


@pytest.mark.parametrize(("scenario", "answer"), [("empty", "User prompt: x"), ("echo", "x")])
def test_a_reasoner_with_nothing_new_to_say(host: Host, scenario: str, answer: str) -> None:
    # empty: nothing generated, upstream keeps the prompt (omni_mot_model.py:5311-5314);
    # echo: a model that repeats the user's text.
    sample = {"name": "r", "model_mode": "reasoner", "prompt": "User prompt: x"}
    result = host.run(sample, "--no-guardrails", scenario=scenario)
    assert result.returncode == 0, result.stderr
    assert (host.out / "r" / "reasoner_text.txt").read_text() == answer


def test_a_generation_run_blocked_by_cosmos3s_guardrail_is_blocked(host: Host) -> None:
    # Upstream without --keep-going: the verdict, then the sample error it causes
    # (common/inference.py:262-264, 280), as the stand-in prints them for the reasoner.
    sample = {"name": "rs_1", "model_mode": "reasoner", "prompt": "[standin:guardrail]"}
    blocked = host.run(sample)
    lines = lines_of(blocked)
    assert any(line.startswith("ValueError: Guardrail blocked prompt") for line in lines)
    assert any("ValueError: Error generating sample 'rs_1'" in line for line in lines)
    assert classify(1, lines, profile="cosmos3").kind == FailureKind.GUARDRAIL
    video = [
        "[12-05 10:00:00|INFO|cosmos_framework/scripts/inference.py:46:inference] Loaded 1 samples",
        "Traceback (most recent call last):",
        "ValueError: Guardrail blocked video 'rs_1': unsafe content",
    ]
    assert classify(1, video, profile="cosmos3").kind == FailureKind.GUARDRAIL


def run_files(host: Host, samples: dict[str, dict], *flags: str, scenario: str = "ok"):
    """Run the stand-in on several sample files (given by name, in that order)."""
    paths = []
    for name, sample in samples.items():
        path = host.root / name
        path.write_text(json.dumps(sample))
        paths.append(str(path))
    env = {"PATH": "/usr/bin:/bin", "HF_HOME": str(host.hf_home), "HF_TOKEN": "hf_x",
           "COSMOS_STANDIN_SPEED": "0", "COSMOS_STANDIN_SCENARIO": scenario}  # fmt: skip
    argv = [BUSYBOX, "sh", str(cosmos3_standin_path()), "python", *ENTRY, "-i", *paths,
            "-o", str(host.out), *flags]  # fmt: skip
    return subprocess.run(argv, cwd=host.workspace, env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def text2video(name: str, prompt: str = "a calm lake") -> dict:
    return {"name": name, "model_mode": "text2video", "prompt": prompt, "num_steps": 2}


def test_several_files_run_in_path_order_with_one_model(host: Host) -> None:
    # given b then a, upstream runs sorted(set(files)): a first (common.py:1090-1098)
    result = run_files(host, {"b.json": text2video("second"), "a.json": text2video("first")})
    assert result.returncode == 0, result.stderr
    lines = lines_of(result)
    assert any(line.endswith("Loaded 2 samples") for line in lines)
    saved = [line for line in lines if "Saved sample outputs to" in line]
    assert ["/first/" in saved[0], "/second/" in saved[1]] == [True, True]
    assert sum("hf download" in line and "Cosmos3-Nano" in line for line in lines) == 1
    for name in ("first", "second"):
        assert (host.out / name / "sample_outputs.json").is_file()


def test_one_bad_file_ends_the_process_before_any_sample_runs(host: Host) -> None:
    bad = {**text2video("bad"), "colour": 1}
    result = run_files(host, {"a.json": text2video("good"), "b.json": bad})
    assert result.returncode == 1
    assert "Extra inputs are not permitted" in result.stderr and "b.json" in result.stderr
    assert not host.out.exists() or not any(host.out.iterdir())


def test_a_blocked_prompt_ends_only_its_sample_with_keep_going(host: Host) -> None:
    samples = {"a.json": text2video("one"), "b.json": text2video("two", "x [standin:guardrail]"),
               "c.json": text2video("three")}  # fmt: skip
    going = run_files(host, samples, "--keep-going")
    assert going.returncode == 0, going.stderr
    lines = lines_of(going)
    assert any("Error generating sample 'two': Guardrail blocked prompt" in ln for ln in lines)
    assert (host.out / "two" / "sample_args.json").is_file()
    assert not (host.out / "two" / "vision.mp4").exists()
    assert not (host.out / "two" / "sample_outputs.json").exists()  # logged, not written
    assert (host.out / "three" / "sample_outputs.json").is_file()
    shutil.rmtree(host.out)
    stopped = run_files(host, samples)  # upstream's default: the error ends the process
    assert stopped.returncode == 1
    assert classify(1, lines_of(stopped), profile="cosmos3").kind == FailureKind.GUARDRAIL
    assert (host.out / "one" / "sample_outputs.json").is_file()
    assert not (host.out / "three").exists()
    # transfer outputs are not guardrailed (inference.py:1826-1896)
    transfer = {"name": "t", "model_mode": "video2video", "prompt": "[standin:guardrail]",
                "vision_path": str(host.root / "in.mp4"), "edge": {"weight": 0.5}}  # fmt: skip
    assert run_files(host, {"t.json": transfer}).returncode == 0


def test_an_oom_in_one_sample_ends_the_process_even_with_keep_going(host: Host) -> None:
    samples = {"a.json": text2video("one"), "b.json": text2video("two", "x [standin:oom]"),
               "c.json": text2video("three")}  # fmt: skip
    result = run_files(host, samples, "--keep-going")
    assert result.returncode == 1
    assert classify(1, lines_of(result), profile="cosmos3").kind == FailureKind.GPU_OOM
    assert (host.out / "one" / "sample_outputs.json").is_file()
    assert (host.out / "two" / "sample_args.json").is_file()
    assert not (host.out / "two" / "sample_outputs.json").exists()
    assert not (host.out / "three").exists()
