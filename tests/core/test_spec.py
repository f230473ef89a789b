from __future__ import annotations

import dataclasses

import pytest

from cosmos_tui.domain import GenerationParams
from cosmos_tui.engine.profiles.transfer1 import (
    LaunchPaths,
    build_argv,
    build_spec,
    build_upscale_spec,
)
from cosmos_tui.errors import ValidationError

PATHS = LaunchPaths(spec_path="/t/runs/rs_1/spec.json", output_dir="/t/runs/rs_1/out")


def params(**changes: object) -> GenerationParams:
    return dataclasses.replace(GenerationParams(negative_prompt="blurry"), **changes)


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_every_parameter_reaches_spec_and_command_line() -> None:
    p = params(
        vis_weight=0.1, edge_weight=0.2, depth_weight=0.3, seg_weight=0.4, num_steps=17,
        guidance=6.5, seed=99, sigma_max=75.0, fps=12, blur_strength="low",
        canny_threshold="very_high", num_gpus=2,
    )  # fmt: skip
    spec = build_spec("a cat", p, "/t/inputs/abc.mp4", {"depth": "/t/inputs/d.mp4"})
    assert spec["prompt"] == "a cat"
    assert spec["negative_prompt"] == "blurry"
    assert spec["input_video_path"] == "/t/inputs/abc.mp4"
    assert (spec["num_steps"], spec["guidance"], spec["seed"]) == (17, 6.5, 99)
    assert (spec["sigma_max"], spec["fps"]) == (75.0, 12)
    assert (spec["blur_strength"], spec["canny_threshold"]) == ("low", "very_high")
    assert spec["vis"] == {"control_weight": 0.1}
    assert spec["edge"] == {"control_weight": 0.2}
    assert spec["depth"] == {"control_weight": 0.3, "input_control": "/t/inputs/d.mp4"}
    assert spec["seg"] == {"control_weight": 0.4}

    argv = build_argv(p, PATHS)
    assert argv[:4] == ["torchrun", "--nproc_per_node=2", "--nnodes=1", "--node_rank=0"]
    assert flag(argv, "--num_gpus") == "2"
    assert flag(argv, "--num_steps") == "17"
    assert flag(argv, "--guidance") == "6.5"
    assert flag(argv, "--seed") == "99"
    assert flag(argv, "--fps") == "12"
    assert flag(argv, "--sigma_max") == "75.0"
    assert flag(argv, "--blur_strength") == "low"
    assert flag(argv, "--canny_threshold") == "very_high"
    assert "--negative_prompt=blurry" in argv  # one item: a text may start with "-"
    assert flag(argv, "--controlnet_specs") == PATHS.spec_path
    assert flag(argv, "--video_save_folder") == PATHS.output_dir
    assert "--offload_text_encoder_model" in argv
    assert "--batch_input_path" not in argv


def test_zero_weight_leaves_control_out() -> None:
    spec = build_spec("x", params(vis_weight=0, seg_weight=0), "/v.mp4", {"seg": "/s.mp4"})
    assert "vis" not in spec and "seg" not in spec
    assert set(spec) & {"edge", "depth"} == {"edge", "depth"}


def test_batch_path_and_upscale() -> None:
    argv = build_argv(params(), LaunchPaths("/s.json", "/o", batch_input_path="/b.jsonl"))
    assert flag(argv, "--batch_input_path") == "/b.jsonl"
    up = build_argv(params(num_steps=35), PATHS, upscale=True)
    assert flag(up, "--num_steps") == "10"
    spec = build_upscale_spec("/in.mp4", params(upscale_weight=0.7), "sharp")
    assert spec == {
        "input_video_path": "/in.mp4",
        "upscale": {"control_weight": 0.7},
        "prompt": "sharp",
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"vis_weight": 1.7}, "vis_weight"),
        ({"seg_weight": -0.1}, "seg_weight"),
        ({"vis_weight": 0, "edge_weight": 0, "depth_weight": 0, "seg_weight": 0}, "vis_weight"),
        ({"blur_strength": "extreme"}, "blur_strength"),
        ({"canny_threshold": "MEDIUM"}, "canny_threshold"),
        ({"num_steps": 0}, "num_steps"),
        ({"num_gpus": 0}, "num_gpus"),
        ({"fps": -1}, "fps"),
        ({"guidance": float("nan")}, "guidance"),
        ({"upscale_weight": 2.0}, "upscale_weight"),
    ],
)
def test_invalid_parameters_are_rejected_before_anything_is_built(changes, field) -> None:
    with pytest.raises(ValidationError) as info:
        build_spec("x", params(**changes), "/v.mp4", {})
    assert info.value.field == field


def test_without_input_video_every_active_control_needs_its_video() -> None:
    with pytest.raises(ValidationError, match="sigma_max below 80 needs an input video"):
        build_spec("x", params(sigma_max=70.0), None, {"depth": "/d.mp4"})
    with pytest.raises(ValidationError, match="add vis, edge, seg control videos") as info:
        build_spec("x", params(sigma_max=80.0), None, {"depth": "/d.mp4"})
    assert info.value.field == "vis_weight"
    only_depth = params(sigma_max=80.0, vis_weight=0, edge_weight=0, seg_weight=0)
    spec = build_spec("x", only_depth, None, {"depth": "/d.mp4"})
    assert "input_video_path" not in spec
    assert spec["depth"] == {"control_weight": 0.25, "input_control": "/d.mp4"}
