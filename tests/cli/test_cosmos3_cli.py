"""``--profile cosmos3`` on the CLI: the dry run's sample file, config, and bad input.

The host is on TEST-NET-1 (never routed), so nothing here reaches a host: every refusal
happens before anything is uploaded. Each sample a dry run prints is held against the
transcription of upstream's models (tests/engine/upstream_cosmos3.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import write_video
from tests.engine.upstream_cosmos3 import build_check

SECRET = "hf_cosmos3_secret_token_value"


@pytest.fixture
def hosted(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = workspace / "config.toml"
    config.write_text(
        config.read_text()
        + '[[hosts]]\nname = "gpu1"\nhostname = "192.0.2.1"\nuser = "me"\n'
        + '[profiles.cosmos3]\nimage = "nvcr.io/nvidia/cosmos3:latest"\n'
        + 'repo_dir = "cosmos-framework"\nhf_cache_dir = "hf-cache"\n'
        + 'token_env = "MY_HF"\nextra_args = ["--max-num-seqs=1"]\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("MY_HF", SECRET)
    return workspace


def ok(result) -> str:
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout


def dry(cosmos, *args: str) -> dict:
    out = ok(cosmos("inference", *args, "--profile", "cosmos3", "--dry-run", "--json"))
    assert SECRET not in out
    [box] = json.loads(out)["containers"]
    return box


def test_video2video_transfer_dry_run(cosmos, hosted, make_video_dir) -> None:
    folder = make_video_dir("edge.mp4")
    pid = ok(cosmos("create", "prompt", "a rainy street, photoreal", str(folder))).strip()
    box = dry(cosmos, pid, "--hint", "edge=0.7:high", "--hint", "depth=0.3", "--frames", "24",
              "--resolution", "720", "--aspect", "9,16", "--seed", "4294967295",
              "--guidance", "7", "--steps", "1", "--negative", "-blurry")  # fmt: skip
    assert box["image"] == "nvcr.io/nvidia/cosmos3:latest"
    assert box["argv"][:3] == ["python", "-m", "cosmos_framework.scripts.inference"]
    assert box["argv"][-1] == "--max-num-seqs=1"
    assert box["env"] == {"HF_TOKEN": "********", "HF_HOME": "/root/.cache/huggingface"}
    targets = {m["target"]: m["source"] for m in box["mounts"]}
    assert targets["/workspace"] == "~/cosmos-framework"
    assert targets["/root/.cache/huggingface"] == "~/hf-cache"
    sample = box["spec"]
    build_check(sample)
    assert sample["model_mode"] == "video2video" and sample["negative_prompt"] == "-blurry"
    assert sample["edge"]["preset_edge_threshold"] == "high"
    assert sample["edge"]["control_path"].startswith("/cosmos-tui/inputs/")
    assert "control_path" not in sample["depth"]  # computed from vision_path upstream
    assert (sample["resolution"], sample["aspect_ratio"], sample["num_frames"]) == (
        "720", "9,16", 24,
    )  # fmt: skip
    assert (sample["seed"], sample["guidance"], sample["num_steps"]) == (4294967295, 7, 1)
    assert json.loads(box["files"]["/cosmos-tui/run/spec.json"]) == sample


def test_text2video_dry_run_and_the_run_keeps_its_options(cosmos, hosted) -> None:
    pid = ok(cosmos("create", "prompt", "a cat surfing", "--no-video")).strip()
    box = dry(cosmos, pid, "--gpus", "4", "--size", "super", "--parallelism", "throughput")
    assert box["argv"][:4] == ["torchrun", "--nproc-per-node=4", "-m",
                               "cosmos_framework.scripts.inference"]  # fmt: skip
    assert "--checkpoint-path" in box["argv"] and "Cosmos3-Super" in box["argv"]
    sample = build_check(box["spec"])
    assert sample.model_mode == "text2video" and sample.vision_path is None
    run_id = ok(cosmos("create", "run", pid, "--profile", "cosmos3", "--frames", "300")).strip()
    shown = json.loads(ok(cosmos("show", run_id, "--json")))
    assert shown["profile"] == "cosmos3"
    again = json.loads(ok(cosmos("inference", run_id, "--dry-run", "--json")))["containers"][0]
    assert again["spec"]["num_frames"] == 300 and again["spec"]["model_mode"] == "text2video"
    for gpus in ("1", "3"):  # Super on fewer than 4 GPUs: refused before anything is sent
        result = cosmos("inference", pid, "--profile", "cosmos3", "--size", "Super",
                        "--gpus", gpus, "--parallelism", "throughput", "--dry-run")  # fmt: skip
        assert result.exit_code == 1 and "at least 4 GPUs of 80 GB" in result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--hint", "canny=1"], "unknown hint 'canny'"),
        (["--hint", "edge=1.5", "--hint", "seg=-1"], "seg weight must not be negative"),
        (["--hint", "edge=heavy"], "is not a number"),
        (["--resolution", "1080"], "'1080' is not one Cosmos 3 offers; use one of 256, 480"),
        (["--aspect", "2,3"], "'2,3' is not one of"),
        (["--frames", "301"], "from 24 to 300"),
        (["--resolution", "720", "--frames", "201"], "from 24 to 200"),
        (["--mode", "text2video"], "takes only text"),
        (["--size", "Mega"], "not a Cosmos 3 size"),
        (["--gpus", "3"], "even count"),
        (["--weights", "1", "0", "0", "0"], "--weights apply to transfer1"),
        (["--guidance", "7.5"], "from 0 to 7"),
    ],
)
def test_bad_input_is_refused_before_anything_is_sent(
    cosmos, hosted, make_video_dir, args: list[str], says: str
) -> None:
    pid = ok(cosmos("create", "prompt", "a street", str(make_video_dir()))).strip()
    for command in (["inference", pid, "--dry-run"], ["create", "run", pid]):
        result = cosmos(*command, "--profile", "cosmos3", *args)
        output = result.output + result.stderr
        assert result.exit_code in (1, 2), output
        assert says in output and "Traceback" not in output
    listed = json.loads(ok(cosmos("list", "runs", "--json")))
    assert listed["total"] == 0


def test_cosmos3_flags_need_the_profile(cosmos, hosted, make_video_dir) -> None:
    pid = ok(cosmos("create", "prompt", "a street", str(make_video_dir()))).strip()
    result = cosmos("create", "run", pid, "--hint", "edge=1")
    assert result.exit_code == 1 and "--hint apply to --profile cosmos3" in result.stderr


def test_image_prompt_makes_image2video(cosmos, hosted, tmp_path: Path) -> None:
    folder = tmp_path / "still"
    folder.mkdir()
    (folder / "image.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"jpeg body" * 20)
    pid = ok(cosmos("create", "prompt", "the scene comes alive", str(folder))).strip()
    sample = build_check(dry(cosmos, pid)["spec"])
    assert sample.model_mode == "image2video" and sample.vision_path.endswith(".jpg")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "image.jpg").write_bytes(b"not an image at all")
    result = cosmos("create", "prompt", "x", str(tmp_path / "bad"))
    assert result.exit_code == 1 and "not a JPEG, PNG or WebP image" in result.stderr
    write_video(tmp_path / "bad" / "color.mp4", b"video")
    assert ok(cosmos("create", "prompt", "x", str(tmp_path / "bad"))).startswith("ps_")


def test_cosmos3_runs_get_the_host_checks_not_transfer1s_files(hosted, capsys) -> None:
    # The host checks (SSH, Docker, image, disk) run before a Cosmos 3 run as before a
    # Transfer1 one; Transfer1's checkout and checkpoint files are never asked of it.
    from cosmos_tui.cli.preflight import refuse_unless_ready
    from cosmos_tui.config import load_config

    config = load_config(hosted / "config.toml")
    with pytest.raises(SystemExit) as exited:
        refuse_unless_ready(config, None, "cosmos3")
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "gpu1: SSH login and host key" in err and "--skip-checks" in err
    assert "Checkpoints" not in err and "checkout" not in err


def test_a_batch_dry_run_shows_one_sample_file_a_run_in_line_order(
    cosmos, hosted, make_video_dir
) -> None:
    ids = []
    for text, seed, video in (("a street", "3", True), ("a cat surfing", "4", False)):
        source = [str(make_video_dir())] if video else ["--no-video"]
        pid = ok(cosmos("create", "prompt", text, *source)).strip()
        run = cosmos("create", "run", pid, "--profile", "cosmos3", "--seed", seed)
        ids.append(ok(run).strip())
    out = ok(cosmos("inference", *ids, "--dry-run", "--batch", "--json"))
    assert SECRET not in out
    [box] = json.loads(out)["containers"]
    assert box["spec"] is None and box["jsonl"] is None
    names = [f"/cosmos-tui/run/sample-{i:06d}-{run_id}.json" for i, run_id in enumerate(ids)]
    assert list(box["files"]) == names  # sorted by upstream: path order is line order
    samples = [json.loads(box["files"][name]) for name in names]
    assert [s["name"] for s in samples] == ids and [s["seed"] for s in samples] == [3, 4]
    assert [s["model_mode"] for s in samples] == ["video2video", "text2video"]
    for sample in samples:
        build_check(sample)  # upstream's models accept each (raises when refused)
    argv = box["argv"]
    start = argv.index("-i") + 1
    assert argv[start : start + 2] == names and argv[start + 2] == "-o"
    # the batch's own flags come after the configured extra_args (the last one wins)
    assert argv[-4:] == [
        "--max-num-seqs=1", "--max-num-seqs=1", "--keep-going", "--no-skip-invalid-samples"
    ]  # fmt: skip
