"""Cosmos-Transfer2.5 sample arguments: options, local validation and the sample dict.

Upstream reads each sample from a JSON (or JSONL) file into pydantic models that forbid
unknown keys (docs/cosmos.md, "Transfer2.5 contract"; config.py:311-593 at commit
2ff49d07). A value upstream rejects only fails after the upload and the model download,
so every rule is checked here first, with a message that says what to change. A few
values upstream takes as free text but fails on later (a resolution that is not a key of
``VIDEO_RES_SIZE_INFO`` raises ``KeyError`` once the video is read) are checked too.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from cosmos_tui.errors import ValidationError

HINTS: tuple[str, ...] = ("edge", "vis", "depth", "seg")  # CONTROL_KEYS, config.py:477
THRESHOLDS: tuple[str, ...] = ("very_low", "low", "medium", "high", "very_high")  # :425
GUIDANCE_MAX = 7  # config.py:308 Guidance = Field(ge=0, le=7), an int
SIGMA_MAX_LIMIT = 200.0  # config.py:498-499 "Range from 0 to 200"
SEED_MAX = 2**63 - 1  # upstream takes any int (config.py:517); SQLite INTEGER holds this
DISTILLED_STEPS = 4  # docs/inference.md:142
DISTILLED_FRAMES = 93  # inference.py:298-303, docs/inference.md:142
MAX_NAME = 100
# What upstream reads as an image context (_src/transfer2/inference/utils.py:36-37,
# :335-337): an image, or a video whose first frame is used; the extension decides.
IMAGE_CONTEXT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".mp4", ".avi", ".mov", ".mkv", ".webm")
# predict2/datasets/utils.py:44-67 VIDEO_RES_SIZE_INFO: (width, height) per aspect ratio.
RESOLUTIONS: dict[str, dict[str, tuple[int, int]]] = {
    "1080": {"1,1": (1024, 1024), "4,3": (1440, 1056), "3,4": (1056, 1440),
             "16,9": (1920, 1056), "9,16": (1056, 1920)},
    "1024": {"1,1": (1024, 1024), "4,3": (1280, 1024), "3,4": (1024, 1280),
             "16,9": (1280, 768), "9,16": (768, 1280)},
    "720": {"1,1": (960, 960), "4,3": (960, 704), "3,4": (704, 960),
            "16,9": (1280, 704), "9,16": (704, 1280)},
    "512": {"1,1": (512, 512), "4,3": (640, 512), "3,4": (512, 640),
            "16,9": (640, 384), "9,16": (384, 640)},
    "480": {"1,1": (480, 480), "4,3": (640, 480), "3,4": (480, 640),
            "16,9": (768, 432), "9,16": (432, 768)},
    "480p": {"1,1": (640, 640), "4,3": (640, 480), "3,4": (480, 640),
             "16,9": (832, 480), "9,16": (480, 832)},
    "720p": {"1,1": (960, 960), "4,3": (960, 720), "3,4": (720, 960),
             "16,9": (1280, 720), "9,16": (720, 1280)},
    "720robocasa": {"1,1": (720, 720), "4,3": (960, 720), "3,4": (720, 960),
                    "16,9": (1280, 720), "9,16": (720, 1280)},
    "256": {"1,1": (256, 256), "4,3": (320, 256), "3,4": (256, 320),
            "16,9": (320, 192), "9,16": (192, 320)},
}  # fmt: skip
# The keys InferenceArguments accepts (config.py:317-533), for check_sample.
SAMPLE_KEYS = frozenset({
    "name", "prompt_path", "prompt", "negative_prompt", "seed", "guidance", "video_path",
    "max_frames", "context_frame_index", "image_context_path", "num_conditional_frames",
    "resolution", "sigma_max", "num_video_frames_per_chunk", "num_steps",
    "show_control_condition", "show_input", "keep_input_resolution", "edge", "depth", "vis",
    "seg", "guided_generation_mask", "guided_generation_step_threshold",
    "guided_generation_foreground_labels",
})  # fmt: skip
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class HintOptions:
    """One control of a sample (config.py:428-474).

    Attributes:
        hint: edge, vis, depth or seg.
        weight: 0..1, how strongly the output follows the control.
        control_path: A precomputed control video; None computes it from the input video.
        mask_path: A binary spatiotemporal mask video (white: apply the control).
        mask_prompt: Words SAM2 segments into a mask instead (only one of the two masks).
        control_prompt: seg only: what to segment when the control is computed.
    """

    hint: str
    weight: float = 1.0
    control_path: str | None = None
    mask_path: str | None = None
    mask_prompt: str | None = None
    control_prompt: str | None = None


@dataclass(frozen=True)
class Transfer25Options:
    """Everything a Transfer2.5 run can set (sample file and command line).

    Sample fields follow ``InferenceArguments`` (config.py:480-533); ``distilled``,
    ``num_gpus``, ``disable_guardrails`` and ``offload_guardrail_models`` are setup
    arguments that only the command line takes (config.py:213-305).
    """

    hints: tuple[HintOptions, ...]
    guidance: int = 3
    num_steps: int = 35
    seed: int = 2025
    resolution: str = "720"
    sigma_max: float | None = None
    num_video_frames_per_chunk: int = 93
    num_conditional_frames: int = 1
    max_frames: int | None = None
    negative_prompt: str | None = None
    preset_edge_threshold: str = "medium"
    preset_blur_strength: str = "medium"
    keep_input_resolution: bool = True
    show_control_condition: bool = False
    show_input: bool = False
    image_context_path: str | None = None
    context_frame_index: int | None = None
    distilled: bool = False
    num_gpus: int = 1
    disable_guardrails: bool = False
    offload_guardrail_models: bool = False

    def hint(self, name: str) -> HintOptions | None:
        """Return the options of hint ``name``, or None when the run does not use it."""
        return next((h for h in self.hints if h.hint == name), None)


def validate_options(options: Transfer25Options) -> None:
    """Check every option against upstream's rules; raise on the first bad one.

    Raises:
        ValidationError: Naming the field, the accepted values and what to change.
    """
    if not options.hints:
        raise ValidationError(
            "a Transfer2.5 run needs at least one control: add edge, vis, depth or seg "
            "(e.g. --hint edge=1.0)",
            field="hints",
        )
    seen: set[str] = set()
    for hint in options.hints:
        check_hint(hint)
        if hint.hint in seen:
            raise ValidationError(f"the {hint.hint} control is given twice; keep one", "hints")
        seen.add(hint.hint)
    _int(options.guidance, "guidance", 0, GUIDANCE_MAX)
    _int(options.num_steps, "num_steps", 1, None)
    _int(options.seed, "seed", 0, SEED_MAX)
    _int(options.num_video_frames_per_chunk, "num_video_frames_per_chunk", 1, None)
    if options.num_conditional_frames not in (0, 1, 2) or isinstance(
        options.num_conditional_frames, bool
    ):
        raise ValidationError(
            f"num_conditional_frames is {options.num_conditional_frames!r}; it must be 0, 1 "
            "or 2 (frames of the previous chunk that condition the next)",
            field="num_conditional_frames",
        )
    for name in ("max_frames", "context_frame_index"):
        value = getattr(options, name)
        if value is not None:
            _int(value, name, 1, None)
    _check_resolution(options.resolution)
    if options.sigma_max is not None:
        _number(options.sigma_max, "sigma_max", 0.0, SIGMA_MAX_LIMIT)
    for name in ("preset_edge_threshold", "preset_blur_strength"):
        value = getattr(options, name)
        if value not in THRESHOLDS:
            raise ValidationError(
                f"{name} is {value!r}; use one of {', '.join(THRESHOLDS)}", field=name
            )
    if options.image_context_path:
        _check_image_context(options)
    _int(options.num_gpus, "num_gpus", 1, 64)
    if options.distilled:
        _check_distilled(options)


def _check_image_context(options: Transfer25Options) -> None:
    """Check the style image: a kind upstream reads, alone as the style.

    Raises:
        ValidationError: A vis control too (config.py:543-546), a context frame too
            (the frame silently replaces the image, inference_pipeline.py:515-517), or an
            extension upstream refuses at run time (utils.py:335-337).
    """
    path = str(options.image_context_path)
    if options.hint("vis") is not None:
        raise ValidationError(
            "the vis control and an image context both set the style and upstream refuses "
            "both together; drop the vis control or the image context",
            field="image_context_path",
        )
    if options.context_frame_index is not None:
        raise ValidationError(
            "give a style image or a frame of the input video as the style, not both "
            "(upstream would use the frame and ignore the image)",
            field="image_context_path",
        )
    name = path.rsplit("/", 1)[-1].lstrip(".")
    extension = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension not in IMAGE_CONTEXT_EXTENSIONS:
        raise ValidationError(
            f"the style image {path} is not a kind upstream reads; give a "
            f"{', '.join(IMAGE_CONTEXT_EXTENSIONS[:3])} image (or a "
            f"{', '.join(IMAGE_CONTEXT_EXTENSIONS[3:])} video)",
            field="image_context_path",
        )


def check_hint(hint: HintOptions) -> None:
    """Check one control: a known hint, a weight of 0..1, one mask, seg's prompt.

    Raises:
        ValidationError: Naming the control and what to change.
    """
    if hint.hint not in HINTS:
        raise ValidationError(
            f"unknown control {hint.hint!r}; Transfer2.5 offers {', '.join(HINTS)}",
            field="hints",
        )
    field = f"{hint.hint}_weight"
    value = hint.weight
    if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
        raise ValidationError(f"the {hint.hint} weight must be a number between 0 and 1", field)
    if not 0.0 <= value <= 1.0:
        raise ValidationError(
            f"the {hint.hint} weight is {value:g}; it must be between 0 and 1", field
        )
    if hint.mask_path and hint.mask_prompt:
        raise ValidationError(
            f"the {hint.hint} control has both a mask video and a mask prompt; give only one",
            field=f"{hint.hint}_mask",
        )
    if hint.control_prompt is not None and hint.hint != "seg":
        raise ValidationError(
            "a control prompt (what to segment) only applies to the seg control; remove it "
            f"from {hint.hint}",
            field=f"{hint.hint}_control_prompt",
        )


def _check_distilled(options: Transfer25Options) -> None:
    if [h.hint for h in options.hints] != ["edge"]:
        raise ValidationError(
            "the distilled Transfer2.5 model exists only for the edge control; use edge "
            "alone or turn distilled off",
            field="distilled",
        )
    if options.num_steps != DISTILLED_STEPS:
        raise ValidationError(
            f"the distilled model is trained for {DISTILLED_STEPS} steps, not "
            f"{options.num_steps}; set num_steps to {DISTILLED_STEPS}",
            field="num_steps",
        )


def _check_resolution(value: object) -> None:
    if not isinstance(value, str):
        raise ValidationError(
            f'resolution must be text such as "720" (upstream\'s field is a string), not {value!r}',
            field="resolution",
        )
    if value not in RESOLUTIONS:
        raise ValidationError(
            f"resolution {value!r} is not offered; use one of {', '.join(RESOLUTIONS)} "
            "(the model is trained at 720)",
            field="resolution",
        )


def pixel_size(resolution: str, aspect_ratio: str) -> tuple[int, int]:
    """Return the (width, height) upstream generates at (utils.py:44-67).

    Raises:
        ValidationError: For a resolution or an aspect ratio upstream does not offer.
    """
    _check_resolution(resolution)
    table = RESOLUTIONS[resolution]
    if aspect_ratio not in table:
        raise ValidationError(
            f"aspect ratio {aspect_ratio!r} is not offered; use one of {', '.join(table)}",
            field="aspect_ratio",
        )
    return table[aspect_ratio]


def chunk_count(frames: int, per_chunk: int = 93, conditional: int = 1) -> int:
    """Return how many chunks upstream generates (inference_pipeline.py:262-281)."""
    if per_chunk == 1 or frames <= per_chunk:
        return 1
    generated = frames - per_chunk
    step = per_chunk - conditional
    return 1 + generated // step + (1 if generated % step else 0)


def check_name(name: str) -> str:
    """Return ``name`` when it is a safe sample name (it becomes ``<output_dir>/<name>.*``).

    Raises:
        ValidationError: For an empty name, a path, a leading dot or an overlong name.
    """
    if not _NAME.match(name or "") or len(name) > MAX_NAME:
        raise ValidationError(
            f"sample name {name!r} must be 1-{MAX_NAME} letters, digits, '_', '.' or '-' "
            "and start with a letter or digit (it names the output files)",
            field="name",
        )
    return name


def build_sample(
    name: str, prompt: str, video_path: str, options: Transfer25Options
) -> dict[str, Any]:
    """Return the sample dict of one run, as upstream's ``InferenceArguments`` reads it.

    Only values that differ from upstream's defaults are left out where a default is the
    same; resolution and sigma_max are strings because upstream's fields are ``str``
    (config.py:496-498, pydantic does not turn numbers into text).

    Raises:
        ValidationError: On any option upstream would reject, an empty prompt or a bad name.
    """
    validate_options(options)
    check_name(name)
    if not prompt.strip():
        raise ValidationError("the prompt text is empty; describe the video to generate", "text")
    data: dict[str, Any] = {
        "name": name,
        "prompt": prompt.strip(),
        "video_path": video_path,
        "seed": options.seed,
        "guidance": options.guidance,
        "num_steps": options.num_steps,
        "resolution": options.resolution,
        "num_video_frames_per_chunk": options.num_video_frames_per_chunk,
        "num_conditional_frames": options.num_conditional_frames,
        "keep_input_resolution": options.keep_input_resolution,
    }
    if options.negative_prompt:
        data["negative_prompt"] = options.negative_prompt
    if options.sigma_max is not None:
        data["sigma_max"] = f"{options.sigma_max:g}"
    for key in ("max_frames", "context_frame_index", "image_context_path"):
        if getattr(options, key) is not None:
            data[key] = getattr(options, key)
    if options.show_control_condition:
        data["show_control_condition"] = True
    if options.show_input:
        data["show_input"] = True
    for hint in options.hints:
        block: dict[str, Any] = {"control_weight": hint.weight}
        for key in ("control_path", "mask_path", "mask_prompt", "control_prompt"):
            if getattr(hint, key) is not None:
                block[key] = getattr(hint, key)
        if hint.hint == "edge":
            block["preset_edge_threshold"] = options.preset_edge_threshold
        elif hint.hint == "vis":
            block["preset_blur_strength"] = options.preset_blur_strength
        data[hint.hint] = block
    return data


def check_sample(data: dict[str, Any]) -> None:
    """Check a sample dict the way upstream's models would (config.py:311-546).

    Raises:
        ValidationError: For an unknown key (upstream forbids them, config.py:314), a
            missing name, prompt or video, or a value out of range.
    """
    unknown = sorted(set(data) - SAMPLE_KEYS)
    if unknown:
        raise ValidationError(
            f"unknown key {unknown[0]!r} in the sample: upstream refuses unknown keys; "
            f"remove it or use one of {', '.join(sorted(SAMPLE_KEYS))}",
            field=unknown[0],
        )
    for key in ("name", "video_path"):
        if not data.get(key):
            raise ValidationError(f"the sample has no {key}; add one", field=key)
    if not data.get("prompt") and not data.get("prompt_path"):
        raise ValidationError("the sample has no prompt; add prompt or prompt_path", "prompt")
    hints = []
    for hint in HINTS:
        block = data.get(hint)
        if block is None:
            continue
        if not isinstance(block, dict):
            raise ValidationError(f"{hint} must be an object of control settings", field=hint)
        hints.append(
            HintOptions(
                hint,
                block.get("control_weight", 1.0),
                block.get("control_path"),
                block.get("mask_path"),
                block.get("mask_prompt"),
                block.get("control_prompt"),
            )
        )
    sigma = data.get("sigma_max")
    try:
        sigma_value = None if sigma is None else float(sigma)
    except ValueError:
        raise ValidationError(f"sigma_max {sigma!r} is not a number", "sigma_max") from None
    options = Transfer25Options(
        hints=tuple(hints),
        guidance=data.get("guidance", 3),
        num_steps=data.get("num_steps", 35),
        seed=data.get("seed", 2025),
        resolution=data.get("resolution", "720"),
        sigma_max=sigma_value,
        num_video_frames_per_chunk=data.get("num_video_frames_per_chunk", 93),
        num_conditional_frames=data.get("num_conditional_frames", 1),
        max_frames=data.get("max_frames"),
        image_context_path=data.get("image_context_path"),
        context_frame_index=data.get("context_frame_index"),
        preset_edge_threshold=(data.get("edge") or {}).get("preset_edge_threshold", "medium"),
        preset_blur_strength=(data.get("vis") or {}).get("preset_blur_strength", "medium"),
    )
    validate_options(options)
    check_name(str(data["name"]))


def _int(value: object, field: str, low: int, high: int | None) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(f"{field} is {value!r}; it must be a whole number", field)
    if high is not None and high <= 1000 and not low <= value <= high:
        raise ValidationError(f"{field} is {value}; it must be between {low} and {high}", field)
    if value < low:
        raise ValidationError(f"{field} is {value}; it must be at least {low}", field)
    if high is not None and value > high:
        raise ValidationError(f"{field} is {value}; it must be at most {high}", field)


def _number(value: object, field: str, low: float, high: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
        raise ValidationError(f"{field} must be a number between {low:g} and {high:g}", field)
    if not low <= value <= high:
        raise ValidationError(
            f"{field} is {value:g}; it must be between {low:g} and {high:g}", field
        )
