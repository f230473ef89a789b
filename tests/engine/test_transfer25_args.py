"""Transfer2.5 sample files: every value checked locally with upstream's rules.

Each rule names the upstream line it mirrors (nvidia-cosmos/cosmos-transfer2.5 at commit
2ff49d07); tests/engine/upstream_transfer25.py transcribes upstream's pydantic models, and
every sample our builder writes must validate against that transcription.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from cosmos_tui.engine.profiles.transfer25 import parse_hint
from cosmos_tui.engine.profiles.transfer25_args import (
    HintOptions,
    Transfer25Options,
    build_sample,
    check_sample,
    chunk_count,
    pixel_size,
    validate_options,
)
from cosmos_tui.errors import ValidationError

from .upstream_transfer25 import upstream_validates


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Input files as the container sees them (upstream resolves paths from the spec dir)."""
    for name in ("in.mp4", "edge.mp4", "mask.mp4", "depth.mp4", "ctx.jpg"):
        (tmp_path / name).write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def opts(**changes: object) -> Transfer25Options:
    base = Transfer25Options(hints=(HintOptions("edge", 0.5),))
    return dataclasses.replace(base, **changes)


def sample(options: Transfer25Options, **kw: object) -> dict:
    return build_sample(kw.pop("name", "s0"), kw.pop("prompt", "a red car"), "in.mp4", options)


def test_default_sample_is_what_upstream_accepts(files: Path) -> None:
    data = sample(opts())
    assert upstream_validates(data) is None
    assert data["name"] == "s0" and data["video_path"] == "in.mp4"
    assert data["edge"] == {"control_weight": 0.5, "preset_edge_threshold": "medium"}
    # resolution and sigma_max are str fields (config.py:496, 498): never JSON numbers.
    assert data["resolution"] == "720"
    assert "sigma_max" not in data
    json.dumps(data)


# (field, value) at each boundary upstream accepts, with the upstream line.
ACCEPTED = [
    ("guidance", 0),  # config.py:308 ge=0
    ("guidance", 7),  # config.py:308 le=7
    ("num_steps", 1),  # config.py:502 PositiveInt
    ("num_steps", 1000),
    ("seed", 0),  # config.py:517 int
    ("seed", 2**63 - 1),
    ("num_video_frames_per_chunk", 1),  # config.py:500 PositiveInt
    ("num_conditional_frames", 0),  # config.py:493 Literal[0, 1, 2]
    ("num_conditional_frames", 2),
    ("max_frames", 1),  # config.py:484 PositiveInt | None
    ("sigma_max", 0.0),  # config.py:498-499 "Range from 0 to 200"
    ("sigma_max", 200.0),
    ("resolution", "480"),  # VIDEO_RES_SIZE_INFO keys, predict2/datasets/utils.py:44-67
    ("resolution", "1080"),
    ("preset_edge_threshold", "very_low"),  # config.py:425, 463
    ("preset_edge_threshold", "very_high"),
    ("context_frame_index", 1),  # config.py:487 PositiveInt
]


@pytest.mark.parametrize(("field", "value"), ACCEPTED)
def test_boundaries_upstream_accepts(files: Path, field: str, value: object) -> None:
    data = sample(opts(**{field: value}))
    assert upstream_validates(data) is None, data


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_weight_boundaries(files: Path, weight: float) -> None:
    data = sample(opts(hints=(HintOptions("edge", weight), HintOptions("depth", 1 - weight))))
    assert upstream_validates(data) is None
    assert data["edge"]["control_weight"] == weight


# (changes, field named, words the message must contain, upstream rejects it too)
REJECTED = [
    ({"guidance": 8}, "guidance", ["between 0 and 7"], True),  # config.py:308
    ({"guidance": -1}, "guidance", ["between 0 and 7"], True),
    ({"guidance": 3.5}, "guidance", ["whole number"], True),
    ({"num_steps": 0}, "num_steps", ["at least 1"], True),  # config.py:502
    ({"num_video_frames_per_chunk": 0}, "num_video_frames_per_chunk", ["at least 1"], True),
    ({"num_conditional_frames": 3}, "num_conditional_frames", ["0, 1 or 2"], True),
    ({"max_frames": 0}, "max_frames", ["at least 1"], True),
    ({"context_frame_index": 0}, "context_frame_index", ["at least 1"], True),
    ({"preset_blur_strength": "extreme"}, "preset_blur_strength", ["very_low"], True),
    ({"seed": -1}, "seed", ["0"], False),
    ({"seed": 2**63}, "seed", ["at most"], False),
    ({"sigma_max": 200.5}, "sigma_max", ["between 0 and 200"], False),
    ({"resolution": "2160"}, "resolution", ["720", "480"], False),
    ({"resolution": 720}, "resolution", ["text"], True),
    ({"hints": ()}, "hints", ["at least one"], True),  # config.py:540-541
]


@pytest.mark.parametrize(("changes", "field", "words", "upstream_too"), REJECTED)
def test_rejected_values_say_what_to_change(
    files: Path, changes: dict, field: str, words: list[str], upstream_too: bool
) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_options(opts(**changes))
    assert caught.value.field == field
    for word in words:
        assert word in str(caught.value), caught.value
    if upstream_too:
        raw = {**sample(opts()), **{k: v for k, v in changes.items() if k != "hints"}}
        if "hints" in changes:
            raw.pop("edge")
        if field in ("preset_blur_strength",):
            raw = {**sample(opts()), "vis": {"preset_blur_strength": changes[field]}}
        assert upstream_validates(raw) is not None


@pytest.mark.parametrize("weight", [1.5, -0.1, float("nan")])
def test_weight_out_of_range(files: Path, weight: float) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_options(opts(hints=(HintOptions("edge", weight),)))
    assert caught.value.field == "edge_weight"
    assert "between 0 and 1" in str(caught.value)
    raw = {**sample(opts()), "edge": {"control_weight": weight}}
    assert upstream_validates(raw) is not None  # config.py:423


def test_unknown_hint_names_the_four() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_options(opts(hints=(HintOptions("canny", 0.5),)))
    assert "canny" in str(caught.value)
    assert "edge, vis, depth, seg" in str(caught.value)


def test_duplicate_hint_refused() -> None:
    with pytest.raises(ValidationError, match="twice"):
        validate_options(opts(hints=(HintOptions("edge", 0.5), HintOptions("edge", 0.2))))


def test_vis_with_image_context_conflicts(files: Path) -> None:
    bad = opts(hints=(HintOptions("vis", 0.5),), image_context_path="ctx.jpg")
    with pytest.raises(ValidationError, match="image context"):
        validate_options(bad)
    raw = {**sample(opts()), "vis": {}, "image_context_path": "ctx.jpg"}
    assert upstream_validates(raw) is not None  # config.py:543-546


def test_mask_path_and_mask_prompt_exclusive() -> None:
    hint = HintOptions("edge", 0.5, mask_path="mask.mp4", mask_prompt="car")
    with pytest.raises(ValidationError, match="mask"):
        validate_options(opts(hints=(hint,)))


def test_control_prompt_only_for_seg() -> None:
    with pytest.raises(ValidationError, match="seg"):
        validate_options(opts(hints=(HintOptions("edge", 0.5, control_prompt="car"),)))


def test_distilled_is_edge_only_with_four_steps(files: Path) -> None:
    # config.py:165-169: the only distilled checkpoint is edge/distilled.
    with pytest.raises(ValidationError, match="edge"):
        validate_options(opts(distilled=True, hints=(HintOptions("depth", 1.0),), num_steps=4))
    # docs/inference.md:142: the distilled model is trained with 4 steps.
    with pytest.raises(ValidationError, match="4"):
        validate_options(opts(distilled=True, num_steps=35))
    data = sample(opts(distilled=True, num_steps=4))
    assert upstream_validates(data) is None


def test_every_hint_with_paths_and_presets(files: Path) -> None:
    hints = (
        HintOptions("edge", 0.3, control_path="edge.mp4", mask_path="mask.mp4"),
        HintOptions("vis", 0.2, mask_prompt="road"),
        HintOptions("depth", 0.4, control_path="depth.mp4"),
        HintOptions("seg", 0.1, control_prompt="car building"),
    )
    data = sample(opts(hints=hints, preset_blur_strength="high", sigma_max=80.0,
                       negative_prompt="-blurry"))  # fmt: skip
    assert upstream_validates(data) is None
    assert data["edge"] == {"control_weight": 0.3, "control_path": "edge.mp4",
                            "mask_path": "mask.mp4", "preset_edge_threshold": "medium"}  # fmt: skip
    assert data["vis"]["preset_blur_strength"] == "high"
    assert data["seg"]["control_prompt"] == "car building"
    assert data["sigma_max"] == "80"
    assert data["negative_prompt"] == "-blurry"


def test_sample_name_must_be_a_file_name() -> None:
    for bad in ("", "../x", "a/b", ".hidden", "x" * 200):
        with pytest.raises(ValidationError):
            build_sample(bad, "p", "in.mp4", opts())


def test_empty_prompt_refused() -> None:
    with pytest.raises(ValidationError, match="prompt"):
        build_sample("s", "   ", "in.mp4", opts())


def test_check_sample_mirrors_unknown_key_refusal(files: Path) -> None:
    data = {**sample(opts()), "guidence": 3}
    with pytest.raises(ValidationError) as caught:
        check_sample(data)
    assert "guidence" in str(caught.value) and "unknown" in str(caught.value)
    assert upstream_validates(data) is not None  # extra="forbid", config.py:314
    check_sample(sample(opts()))


def test_check_sample_needs_video_and_name(files: Path) -> None:
    for key in ("video_path", "name", "prompt"):
        data = sample(opts())
        data.pop(key)
        with pytest.raises(ValidationError, match=key):
            check_sample(data)


@pytest.mark.parametrize(
    ("frames", "per_chunk", "cond", "expected"),
    [(1, 93, 1, 1), (93, 93, 1, 1), (94, 93, 1, 2), (121, 93, 1, 2), (185, 93, 1, 2),
     (186, 93, 1, 3), (186, 93, 2, 3), (500, 1, 0, 1)],
)  # fmt: skip
def test_chunk_count_mirrors_pipeline(
    frames: int, per_chunk: int, cond: int, expected: int
) -> None:
    # inference_pipeline.py:262-281; docs/inference.md:30: 121 frames -> two chunks.
    assert chunk_count(frames, per_chunk, cond) == expected


def test_pixel_size() -> None:
    assert pixel_size("720", "16,9") == (1280, 704)  # utils.py:53
    assert pixel_size("480", "9,16") == (432, 768)  # utils.py:55
    with pytest.raises(ValidationError):
        pixel_size("720", "2,1")


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("edge", HintOptions("edge", 1.0)),
        ("edge=0.25", HintOptions("edge", 0.25)),
        ("depth=0.5,control=d.mp4,mask=m.mp4", HintOptions("depth", 0.5, "d.mp4", "m.mp4")),
        ("seg=1,prompt=car tree", HintOptions("seg", 1.0, control_prompt="car tree")),
        ("vis=0,mask_prompt=road", HintOptions("vis", 0.0, mask_prompt="road")),
    ],
)
def test_parse_hint(text: str, hint: HintOptions) -> None:
    assert parse_hint(text) == hint


@pytest.mark.parametrize(
    ("text", "words"),
    [("canny=0.5", "edge, vis, depth, seg"), ("edge=heavy", "number"), ("edge=1.5", "between"),
     ("edge=0.5,colour=x", "control=PATH")],
)  # fmt: skip
def test_parse_hint_errors(text: str, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        parse_hint(text)


@pytest.mark.parametrize("name", ["style.png", "style.JPG", "style.jpeg", "ref.mp4", "ref.webm"])
def test_an_image_context_of_a_kind_upstream_reads_is_accepted(files: Path, name: str) -> None:
    """utils.py:36-37 and :335-337: images (png, jpg, jpeg) or videos, any case."""
    (files / name).write_bytes(b"x")
    options = opts(image_context_path=name)
    validate_options(options)
    assert sample(options)["image_context_path"] == name
    assert upstream_validates(sample(options)) is None


@pytest.mark.parametrize("name", ["style.gif", "style.webp", "style.exr", "style"])
def test_an_image_context_upstream_cannot_read_is_refused(files: Path, name: str) -> None:
    (files / name).write_bytes(b"x")
    with pytest.raises(ValidationError) as caught:
        validate_options(opts(image_context_path=name))
    assert caught.value.field == "image_context_path"
    assert ".png, .jpg, .jpeg" in caught.value.message and name in caught.value.message


def test_an_image_context_and_a_context_frame_together_are_refused(files: Path) -> None:
    """inference_pipeline.py:515-517: a context frame index replaces the image silently."""
    with pytest.raises(ValidationError, match="frame of the input video") as caught:
        validate_options(opts(image_context_path="ctx.jpg", context_frame_index=3))
    assert caught.value.field == "image_context_path"
    validate_options(opts(context_frame_index=3))
    assert sample(opts(context_frame_index=3))["context_frame_index"] == 3
