"""Validation of generation parameters, before anything is sent to a host."""

from __future__ import annotations

import math

from cosmos_tui.domain import BLUR_LEVELS, CONTROL_HINTS, GenerationParams
from cosmos_tui.errors import ValidationError

MAX_STEPS = 1000
MAX_GPUS = 64
MAX_FPS = 240
MAX_PROMPT_CHARS = 10_000
# np.random.RandomState accepts seeds up to 2**32 - 1 (docs/cosmos.md, "Seeds").
SEED_LIMIT = 2**32 - 1
# Transfer1 generates 121-frame clips, each after the first conditioned on 1 frame of the
# one before: 120 new frames a clip (world_generation_pipeline.py:533-553).
CLIP_FRAMES = 121
CLIP_NEW_FRAMES = 120
# Queue priority: higher runs first. Bounded so that it always fits SQLite's INTEGER.
PRIORITY_MIN = -1_000_000
PRIORITY_MAX = 1_000_000
# (low, high) of each whole-number and decimal parameter, shared with the CLI's options.
INT_RANGES: dict[str, tuple[int, int]] = {
    "num_steps": (1, MAX_STEPS),
    "fps": (1, MAX_FPS),
    "seed": (0, SEED_LIMIT),
    "num_gpus": (1, MAX_GPUS),
}
FLOAT_RANGES: dict[str, tuple[float, float]] = {
    "guidance": (0.0, 100.0),
    "sigma_max": (0.0, 1000.0),
}


def validate_params(params: GenerationParams, has_input_video: bool = True) -> None:
    """Check every parameter; raise on the first one that the model would reject.

    Args:
        params: The parameters of a run.
        has_input_video: Whether the run has an input video (needed when sigma_max < 80).

    Raises:
        ValidationError: Naming the field and the accepted range.
    """
    for hint in CONTROL_HINTS:
        _check_unit(params.weight(hint), f"{hint}_weight", f"{hint} weight")
    if not any(params.weight(h) > 0 for h in CONTROL_HINTS):
        raise ValidationError(
            "all control weights are 0: turn at least one of vis, edge, depth, seg on "
            "(e.g. --weights 0.25 0.25 0.25 0.25)",
            field="vis_weight",
        )
    _check_unit(params.upscale_weight, "upscale_weight", "upscale weight")
    for name, (low, high) in INT_RANGES.items():
        _check_int(getattr(params, name), name, low, high)
    for name, (low_f, high_f) in FLOAT_RANGES.items():
        _check_float(getattr(params, name), name, low_f, high_f)
    for name in ("blur_strength", "canny_threshold"):
        value = getattr(params, name)
        if value not in BLUR_LEVELS:
            raise ValidationError(
                f"{name} must be one of {', '.join(BLUR_LEVELS)}, not {value!r}", field=name
            )
    if params.negative_prompt is not None:
        validate_prompt_text(params.negative_prompt, "negative prompt")
    if params.sigma_max < 80 and not has_input_video:
        raise ValidationError(
            "sigma_max below 80 needs an input video; add color.mp4 or set sigma_max to 80",
            field="sigma_max",
        )


def clip_count(frames: int) -> int:
    """Return how many clips Transfer1 generates for an input of ``frames`` frames.

    The input is padded up to ``1 + 120 * n`` frames, so ``n = ceil((frames - 1) / 120)``
    (at least 1).
    """
    return max(1, -(-(frames - 1) // CLIP_NEW_FRAMES))


def validate_seed_for_clips(seed: int, clips: int) -> None:
    """Check that every clip's seed (``seed + i`` for clip ``i``) is a valid RandomState seed.

    Raises:
        ValidationError: Naming the largest seed that fits a video of ``clips`` clips.
    """
    highest = SEED_LIMIT - (clips - 1)
    if seed > highest:
        raise ValidationError(
            f"seed {seed} is too large for this input: its {clips} clips of {CLIP_FRAMES} "
            f"frames are seeded {seed}..{seed + clips - 1}, and Transfer1's RandomState "
            f"accepts at most {SEED_LIMIT}; use a seed of at most {highest}",
            field="seed",
        )


def validate_priority(priority: int) -> int:
    """Return ``priority`` or raise when it is not a whole number in the allowed range.

    Raises:
        ValidationError: Naming the range (PRIORITY_MIN..PRIORITY_MAX).
    """
    _check_int(priority, "priority", PRIORITY_MIN, PRIORITY_MAX)
    return priority


def validate_prompt_text(text: str, label: str = "prompt") -> str:
    """Return the stripped text or raise when it is too long.

    Args:
        text: The prompt (or negative prompt) text.
        label: What the text is, for messages. Only the prompt itself must not be empty.

    Raises:
        ValidationError: Empty prompt, or more than MAX_PROMPT_CHARS characters.
    """
    stripped = text.strip()
    field = "text" if label == "prompt" else "negative_prompt"
    if not stripped and label == "prompt":
        raise ValidationError("the prompt text is empty; describe the video to generate", field)
    if len(stripped) > MAX_PROMPT_CHARS:
        raise ValidationError(
            f"the {label} is {len(stripped)} characters; shorten it to at most {MAX_PROMPT_CHARS}",
            field=field,
        )
    return stripped


def _check_unit(value: float, field: str, label: str) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
        raise ValidationError(f"{label} must be a number between 0 and 1", field=field)
    if not 0.0 <= value <= 1.0:
        raise ValidationError(f"{label} is {value:g}; it must be between 0 and 1", field=field)


def _check_int(value: int, field: str, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(f"{field} must be a whole number", field=field)
    if not low <= value <= high:
        raise ValidationError(f"{field} is {value}; it must be between {low} and {high}", field)


def _check_float(value: float, field: str, low: float, high: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
        raise ValidationError(f"{field} must be a number", field=field)
    if not low <= value <= high:
        raise ValidationError(
            f"{field} is {value:g}; it must be between {low:g} and {high:g}", field
        )
