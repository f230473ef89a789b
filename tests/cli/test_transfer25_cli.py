"""``--profile transfer2.5`` on the CLI: the dry run's sample and argv, held against upstream.

The host is on TEST-NET-1 (never routed): nothing here reaches a host. Each sample and
command line a dry run prints goes through the transcription of upstream's pydantic
models and its tyro parser (tests/engine/upstream_transfer25.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.engine.upstream_transfer25 import upstream_command_line, upstream_validates

SECRET = "hf_t25_secret_token_value"


@pytest.fixture
def hosted(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = workspace / "config.toml"
    config.write_text(
        config.read_text()
        + '[[hosts]]\nname = "gpu1"\nhostname = "192.0.2.1"\nuser = "me"\n'
        + '[hosts.env]\nNCCL_P2P_DISABLE = "1"\n'
        + '[profiles.transfer2_5]\nimage = "nvcr.io/nvidia/cosmos-transfer2.5:latest"\n'
        + 'hf_cache_dir = "hf-cache"\ntoken_env = "MY_HF"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("MY_HF", SECRET)
    return workspace


def ok(result) -> str:
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout


def dry(cosmos, *args: str) -> dict:
    out = ok(cosmos("inference", *args, "--profile", "transfer2.5", "--dry-run", "--json"))
    assert SECRET not in out
    [box] = json.loads(out)["containers"]
    return box


def as_on_the_host(sample: dict, tmp_path: Path) -> dict:
    """Return the sample with its container paths pointing at a real file (pydantic checks)."""
    video = tmp_path / "in.mp4"
    video.write_bytes(b"x")
    assert sample["video_path"].startswith("/cosmos-tui/inputs/")
    return {**sample, "video_path": str(video)}


def test_an_edge_and_depth_transfer_dry_run(cosmos, hosted, make_video_dir, tmp_path) -> None:
    folder = make_video_dir()
    pid = ok(cosmos("create", "prompt", "a rainy street, photoreal", str(folder))).strip()
    box = dry(cosmos, pid, "--hint", "edge=0.7", "--hint", "depth=0.3", "--resolution", "720",
              "--seed", "7", "--steps", "12", "--negative", "-blurry")  # fmt: skip
    assert box["image"] == "nvcr.io/nvidia/cosmos-transfer2.5:latest"
    assert box["env"]["HF_TOKEN"] == "********"
    assert box["env"]["NCCL_P2P_DISABLE"] == "1"
    assert box["env"]["HF_HOME"] == "/root/.cache/huggingface"
    sample = box["spec"]
    assert upstream_validates(as_on_the_host(sample, tmp_path)) is None
    assert sample["edge"]["control_weight"] == 0.7 and sample["depth"]["control_weight"] == 0.3
    assert sample["seed"] == 7 and sample["num_steps"] == 12
    assert sample["negative_prompt"] == "-blurry"
    argv = box["argv"]
    assert argv[:2] == ["python", "examples/inference.py"]
    code, err = upstream_command_line(argv[2:])
    assert code == 0, err


def test_shared_weights_pick_the_controls(cosmos, hosted, make_video_dir, tmp_path) -> None:
    folder = make_video_dir()
    pid = ok(cosmos("create", "prompt", "a street", str(folder))).strip()
    box = dry(cosmos, pid, "--weights", "0", "0", "0.5", "0")
    assert set(box["spec"]) & {"edge", "depth", "seg", "vis"} == {"depth"}
    assert upstream_validates(as_on_the_host(box["spec"], tmp_path)) is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--size", "Nano"), "--size do not apply to --profile transfer2.5"),
        (("--blur", "extreme"), "extreme"),
        (("--chunk-frames", "0"), "num_video_frames_per_chunk"),
        (("--distilled", "--hint", "depth=0.5", "--steps", "4"), "only for the edge control"),
        (("--distilled", "--hint", "edge=0.5"), "set num_steps to 4"),
        (("--guardrails", "maybe"), "maybe"),
        (("--hint", "edge", "--hint", "edge=0.2"), "hint 'edge' is given twice"),
        (("--hint", "wsm=0.5"), "wsm"),
        (("--hint", "edge=1.5"), "0"),
        (("--fps", "24"), "--fps does not apply to --profile transfer2.5"),
        (("--hint", "edge", "--weights", "0", "1", "0", "0"), "--hint or --weights"),
        (("--guidance", "2.5"), "guidance is a whole number from 0 to 7"),
        (("--guidance", "9"), "guidance"),
        (("--resolution", "4k"), "resolution '4k' is not offered"),
    ],
)
def test_bad_flags_are_refused_with_what_to_change(
    cosmos, hosted, make_video_dir, args, message
) -> None:
    folder = make_video_dir()
    pid = ok(cosmos("create", "prompt", "a street", str(folder))).strip()
    result = cosmos("inference", pid, "--profile", "transfer2.5", "--dry-run", *args)
    assert result.exit_code != 0
    assert message in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_a_text_only_prompt_is_refused(cosmos, hosted) -> None:
    pid = ok(cosmos("create", "prompt", "a cat", "--no-video")).strip()
    result = cosmos("inference", pid, "--profile", "transfer2.5", "--dry-run")
    assert result.exit_code != 0
    assert "needs the prompt's input video" in result.stderr


def test_guidance_sigma_and_resolution_reach_the_sample(
    cosmos, hosted, make_video_dir, tmp_path
) -> None:
    folder = make_video_dir()
    pid = ok(cosmos("create", "prompt", "a street", str(folder))).strip()
    box = dry(cosmos, pid, "--guidance", "5", "--sigma-max", "70", "--resolution", "480")
    sample = box["spec"]
    assert (sample["guidance"], sample["sigma_max"], sample["resolution"]) == (5, "70", "480")
    assert upstream_validates(as_on_the_host(sample, tmp_path)) is None
    default = dry(cosmos, pid)["spec"]
    assert default["guidance"] == 3 and default["resolution"] == "720"  # upstream's defaults


def test_a_batch_dry_run_shows_one_sample_a_line_that_upstream_accepts(
    cosmos, hosted, make_video_dir, tmp_path
) -> None:
    ids = []
    for text, seed in (("a street", "3"), ("a road", "4")):
        pid = ok(cosmos("create", "prompt", text, str(make_video_dir()))).strip()
        run = cosmos("create", "run", pid, "--profile", "transfer2.5", "--seed", seed)
        ids.append(ok(run).strip())
    out = ok(cosmos("inference", *ids, "--dry-run", "--batch", "--json"))
    assert SECRET not in out
    [box] = json.loads(out)["containers"]
    assert box["spec"] is None  # no shared spec: each line is a whole sample
    samples = [json.loads(line) for line in box["jsonl"].splitlines()]
    assert [s["name"] for s in samples] == ids and [s["seed"] for s in samples] == [3, 4]
    for sample in samples:
        assert upstream_validates(as_on_the_host(sample, tmp_path)) is None
    argv = box["argv"]
    assert argv[argv.index("-i") + 1] == "/cosmos-tui/run/batch.jsonl"
    code, err = upstream_command_line(argv[2:])
    assert code == 0, err
    assert box["env"]["HF_TOKEN"] == "********"  # the profile's environment, not Transfer1's


def test_a_batch_dry_run_of_runs_with_other_controls_is_refused(
    cosmos, hosted, make_video_dir
) -> None:
    ids = []
    for text, hint in (("a street", "edge=1.0"), ("a road", "depth=1.0")):
        pid = ok(cosmos("create", "prompt", text, str(make_video_dir()))).strip()
        run = cosmos("create", "run", pid, "--profile", "transfer2.5", "--hint", hint)
        ids.append(ok(run).strip())
    result = cosmos("inference", *ids, "--dry-run", "--batch")
    assert result.exit_code != 0
    assert "differ in controls" in result.stderr


def test_the_doctor_knows_transfer25_and_its_image(hosted) -> None:
    from cosmos_tui.config import load_config
    from cosmos_tui.doctor.runner import check_profile, profile_image

    config = load_config(hosted / "config.toml")
    check_profile(config, "transfer2.5")  # configured as [profiles.transfer2_5]
    image = profile_image(config, "transfer2.5", "host/image:1")
    assert image == "nvcr.io/nvidia/cosmos-transfer2.5:latest"


def test_a_controls_own_video_and_mask_show_where_they_go_up(
    cosmos, hosted, make_video_dir, tmp_path
) -> None:
    import hashlib

    from tests.conftest import write_video

    folder = make_video_dir()
    pid = ok(cosmos("create", "prompt", "a car on a coast road", str(folder))).strip()
    control = write_video(tmp_path / "passes" / "depth.mp4", b"my own depth ")
    mask = write_video(tmp_path / "passes" / "mask.mp4", b"the car only ")
    box = dry(cosmos, pid, "--hint", f"depth=0.4,control={control},mask={mask}",
              "--hint", "edge=0.6,mask_prompt=the car")  # fmt: skip
    sample = box["spec"]
    for key, path in (("control_path", control), ("mask_path", mask)):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert sample["depth"][key] == f"/cosmos-tui/inputs/{digest}.mp4"
    assert sample["edge"] == {**sample["edge"], "mask_prompt": "the car"}
    result = cosmos("inference", pid, "--profile", "transfer2.5", "--dry-run",
                    "--hint", f"depth=0.4,control={tmp_path / 'gone.mp4'}")  # fmt: skip
    assert result.exit_code != 0 and "Traceback" not in result.output + result.stderr
    assert "gone.mp4" in result.stderr and "on this machine" in result.stderr


def test_presets_chunking_distilled_and_guardrails_reach_the_sample_and_argv(
    cosmos, hosted, make_video_dir, tmp_path
) -> None:
    # Transfer1's --canny and --blur levels are Transfer2.5's edge threshold and blur
    # strength (config.py:425, :453, :463); --chunk-frames its num_video_frames_per_chunk
    folder = make_video_dir()
    pid = ok(cosmos("create", "prompt", "a rainy street", str(folder))).strip()
    box = dry(cosmos, pid, "--hint", "edge=0.6", "--hint", "vis=0.3", "--canny", "high",
              "--blur", "very_low", "--chunk-frames", "61", "--guardrails", "offload")  # fmt: skip
    sample = box["spec"]
    assert sample["edge"]["preset_edge_threshold"] == "high"
    assert sample["vis"]["preset_blur_strength"] == "very_low"
    assert sample["num_video_frames_per_chunk"] == 61
    assert upstream_validates(as_on_the_host(sample, tmp_path)) is None
    argv = box["argv"]
    assert "--offload-guardrail-models" in argv and "--disable-guardrails" not in argv
    assert upstream_command_line(argv[2:])[0] == 0
    off = dry(cosmos, pid, "--hint", "edge=0.6", "--guardrails", "off")["argv"]
    assert "--disable-guardrails" in off
    distilled = dry(cosmos, pid, "--hint", "edge=1", "--steps", "4", "--distilled")
    assert distilled["env"]["COSMOS_EXPERIMENTAL_CHECKPOINTS"] == "1"
    model = distilled["argv"].index("--model")
    assert distilled["argv"][model + 1] == "edge/distilled"
    code, err = upstream_command_line(distilled["argv"][2:], experimental=True)
    assert code == 0, err
    plain = dry(cosmos, pid, "--hint", "edge=0.6")
    assert plain["spec"]["edge"]["preset_edge_threshold"] == "medium"  # upstream's default


def test_a_style_image_or_a_style_frame_reaches_the_sample(
    cosmos, hosted, make_video_dir, tmp_path
) -> None:
    """``--style-image`` is upstream's image_context_path, ``--style-frame`` its
    context_frame_index (config.py:487-491): one or the other, never both."""
    import hashlib

    folder = make_video_dir()
    pid = ok(cosmos("create", "prompt", "a coast road at dusk", str(folder))).strip()
    style = tmp_path / "refs" / "sunset.png"
    style.parent.mkdir()
    style.write_bytes(b"\x89PNG a sunset")
    sample = dry(cosmos, pid, "--hint", "edge=0.6", "--style-image", str(style))["spec"]
    digest = hashlib.sha256(style.read_bytes()).hexdigest()
    assert sample["image_context_path"] == f"/cosmos-tui/inputs/{digest}.png"
    # the test videos have 3 frames: indexes 1 and 2 (upstream counts from 0, refuses 0)
    sample = dry(cosmos, pid, "--hint", "edge=0.6", "--style-frame", "2")["spec"]
    assert sample["context_frame_index"] == 2 and "image_context_path" not in sample
    assert upstream_validates(as_on_the_host(sample, tmp_path)) is None
    refusals = [
        (["--profile", "transfer2.5", "--hint", "edge=1", "--style-image", str(style),
          "--style-frame", "3"], "frame of the input video"),
        (["--profile", "transfer2.5", "--hint", "vis=1", "--style-image", str(style)],
         "vis control"),
        (["--profile", "transfer2.5", "--hint", "edge=1", "--style-frame", "0"],
         "context_frame_index"),
        (["--profile", "transfer2.5", "--hint", "edge=1", "--style-frame", "3"],
         "has 3 frames, counted from 0"),
        (["--profile", "transfer2.5", "--hint", "edge=1", "--style-image",
          str(tmp_path / "none.png")], "not on this machine"),
        (["--style-image", str(style)], "--style-image apply to --profile transfer2.5"),
        (["--profile", "cosmos3", "--style-frame", "3"], "--style-frame apply to"),
    ]  # fmt: skip
    for args, words in refusals:
        result = cosmos("inference", pid, "--dry-run", *args)
        assert result.exit_code != 0, args
        assert "Traceback" not in result.output + result.stderr
        assert words in result.stderr, (args, result.stderr)
