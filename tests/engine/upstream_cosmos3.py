"""A transcription of Cosmos 3's sample-argument models, to hold cosmos-tui's samples against.

Transcribed from NVIDIA/cosmos-framework at commit 5eee9ed5 (2026-08-21), with pydantic as
upstream uses it: ``cosmos_framework/inference/args.py`` (``OmniSampleOverrides`` and its
bases, lines cited per field) and ``cosmos_framework/inference/common/args.py``
(``OverridesBase``: ``extra="forbid"``, :299-300; ``SampleOverrides``, :976-996). Fields a
sample file may carry but cosmos-tui never writes (action, sound, the reasoner's
sampling settings, prompt upsampling, Training-only) are left out, so a sample that uses
them fails here, which is what the tests want. Paths are checked by extension only (the
files live in the container).

:func:`build_check` adds the rules upstream applies while building a sample
(``_build_vision_data``, ``_build_transfer_data``) and the generation-time assertions on
hint weights (``transfer.py:181-189``), with the frame range as an error where upstream
only warns (cosmos-tui refuses it; docs/cosmos.md).

This is test data, not product code.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Literal, Self

import pydantic

Forbid = pydantic.ConfigDict(extra="forbid")
Levels = Literal["very_low", "low", "medium", "high", "very_high"]  # args.py:233-238
BlurLevels = Literal["none", "very_low", "low", "medium", "high", "very_high"]  # :241-247
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")  # common.py:53
VIDEO_EXTENSIONS = (".mp4",)  # common.py:54
MAX_NUM_FRAMES = {"256": 400, "480": 300, "720": 200, "768": 200}  # args.py:145-151
MIN_NUM_FRAMES = 24  # args.py:144
HINT_KEYS = ("edge", "blur", "depth", "seg", "wsm")  # args.py:225-230


class TransferOverrides(pydantic.BaseModel):  # args.py:274-281
    model_config = Forbid
    control_path: str | None = None
    weight: float | None = None


class EdgeTransferOverrides(TransferOverrides):  # args.py:288-290
    preset_edge_threshold: Levels | None = None


class BlurTransferOverrides(TransferOverrides):  # args.py:293-295
    preset_blur_strength: BlurLevels | None = None


class OmniSample(pydantic.BaseModel):
    """The sample fields cosmos-tui may write, with upstream's types."""

    model_config = Forbid
    # common.py:981-995
    model: str | None = None
    name: str | None = None
    seed: int | None = None
    # args.py:98-109
    num_steps: pydantic.PositiveInt | None = None
    guidance: Annotated[float, pydantic.Field(ge=0, le=7)] | None = None
    # args.py:326-333
    prompt_path: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    # args.py:443-482
    vision_path: str | None = None
    resolution: Literal["256", "480", "720", "768"] | None = None
    aspect_ratio: Literal["1,1", "4,3", "3,4", "16,9", "9,16"] | None = None
    fps: Annotated[int, pydantic.Field(ge=1)] | None = None
    num_frames: pydantic.PositiveInt | None = None
    # args.py:769-785
    control_guidance: Annotated[float, pydantic.Field(ge=0, le=10)] | None = None
    edge: EdgeTransferOverrides | None = None
    blur: BlurTransferOverrides | None = None
    depth: TransferOverrides | None = None
    seg: TransferOverrides | None = None
    wsm: TransferOverrides | None = None
    # args.py:954
    model_mode: (
        Literal[
            "text2image", "text2video", "image2image", "image2video", "video2video",
            "audio_image2video", "forward_dynamics", "inverse_dynamics", "wam", "reasoner",
        ]
        | None
    ) = None  # fmt: skip

    @pydantic.model_validator(mode="after")
    def _vision_extension(self) -> Self:  # args.py:382-395
        if self.vision_path is not None:
            suffix = PurePosixPath(self.vision_path).suffix.lower()
            if suffix not in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS:
                raise ValueError(f"Invalid vision extension: {suffix}")
        return self


def build_check(data: dict) -> OmniSample:
    """Validate ``data`` as upstream loads and builds it; raise ValueError when refused."""
    try:
        sample = OmniSample.model_validate(data)
    except pydantic.ValidationError as exc:  # common.py:1065-1070
        raise ValueError(f"Error validating parameters from '<file>' at sample 0\n{exc}") from exc
    hints = {k: getattr(sample, k) for k in HINT_KEYS if getattr(sample, k) is not None}
    mode = sample.model_mode
    frames = sample.num_frames
    if mode == "text2image" and frames not in (None, 1):
        raise ValueError("text2image makes one frame")  # args.py:185-186, 529-532
    if frames is not None and frames > 1:
        tier = sample.resolution or "480"
        if not MIN_NUM_FRAMES <= frames <= MAX_NUM_FRAMES[tier]:  # args.py:536-546
            raise ValueError(f"Number of frames {frames} is outside the recommended range")
    for key, hint in hints.items():  # args.py:897-900
        if sample.vision_path is None and hint.control_path is None:
            raise ValueError(
                f"transfer inference requires 'vision_path' or a pre-computed "
                f"'control_path' (hint: {key})"
            )
    weights = [1.0 if h.weight is None else h.weight for h in hints.values()]
    if hints and (any(w < 0 for w in weights) or sum(weights) <= 0):  # transfer.py:186-188
        raise ValueError(f"control_weights must all be non-negative, got {weights}")
    if mode in ("video2video", "image2video") and sample.vision_path is None:
        raise ValueError(f"{mode} requires vision_path")  # infer.md:170-171
    if mode == "reasoner" and not (sample.prompt or "").strip():  # args.py:726-727
        raise ValueError("Reasoner inference requires a non-empty 'prompt'.")
    return sample
