"""A transcription of Cosmos-Transfer2.5's inference arguments, to hold our code against.

Transcribed from nvidia-cosmos/cosmos-transfer2.5 at commit 2ff49d07 (2026-06-07):

- the sample models of ``cosmos_transfer2/config.py:308-593`` (``CommonInferenceArguments``,
  ``ControlConfig`` and its four subclasses, ``InferenceArguments``), as pydantic models
  with upstream's field types, defaults, ranges and validators. Two simplifications,
  both stricter-or-equal for what tests feed them: ``ResolvedFilePath`` is a plain
  ``Path`` that must exist (pydantic's ``FilePath``), and ``prompt_path`` is left out
  (our builder always writes ``prompt``).
- the command line of ``examples/inference.py:47-61`` as tyro builds it with
  ``OmitArgPrefixes`` (examples/inference.py:85-90): every flag of ``SetupArguments``
  (config.py:213-305) and ``InferenceOverrides`` (config.py:595-604) in kebab case.

This is test data, not product code.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pydantic

Threshold = Literal["very_low", "low", "medium", "high", "very_high"]  # config.py:425
ControlWeight = Annotated[float, pydantic.Field(ge=0.0, le=1.0)]  # config.py:423
Guidance = Annotated[int, pydantic.Field(ge=0, le=7)]  # config.py:308
CONTROL_KEYS = ["edge", "vis", "depth", "seg"]  # config.py:477


class ControlConfig(pydantic.BaseModel):
    """config.py:428-438 (no extra="forbid": unknown keys inside a hint are ignored)."""

    model_config = pydantic.ConfigDict()
    control_path: pydantic.FilePath | None = None
    control_weight: ControlWeight = 1.0
    mask_path: pydantic.FilePath | None = None
    mask_prompt: str | None = None


class DepthConfig(ControlConfig):
    """config.py:441-445."""


class BlurConfig(ControlConfig):
    """config.py:448-454."""

    preset_blur_strength: Threshold = "medium"


class EdgeConfig(ControlConfig):
    """config.py:457-464."""

    preset_edge_threshold: Threshold = "medium"


class SegConfig(ControlConfig):
    """config.py:467-474."""

    control_prompt: str | None = None


class InferenceArguments(pydantic.BaseModel):
    """config.py:311-332 and 480-546 merged (extra="forbid" at config.py:314)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    name: str
    prompt: str
    negative_prompt: str = "default"
    seed: int = 2025
    guidance: Guidance = 3
    video_path: pydantic.FilePath
    max_frames: pydantic.PositiveInt | None = None
    context_frame_index: pydantic.PositiveInt | None = None
    image_context_path: pydantic.FilePath | None = None
    num_conditional_frames: Literal[0, 1, 2] = 1
    resolution: str = "720"
    sigma_max: str | None = None
    num_video_frames_per_chunk: pydantic.PositiveInt = 93
    num_steps: pydantic.PositiveInt = 35
    show_control_condition: bool = False
    show_input: bool = False
    keep_input_resolution: bool = True
    edge: EdgeConfig | None = None
    depth: DepthConfig | None = None
    vis: BlurConfig | None = None
    seg: SegConfig | None = None
    guided_generation_mask: pydantic.FilePath | None = None
    guided_generation_step_threshold: int = 25
    guided_generation_foreground_labels: list[int] | None = None

    def model_post_init(self, __context: Any) -> None:
        """config.py:539-546."""
        keys = [k for k in CONTROL_KEYS if getattr(self, k) is not None]
        if not keys:
            raise ValueError(
                "No controls provided, please provide at least one control key "
                "(edge, blur, depth, seg)"
            )
        if "vis" in keys and self.image_context_path:
            raise ValueError("vis control and image_context_path are both used")


def upstream_validates(sample: dict[str, Any]) -> str | None:
    """Return None when upstream accepts ``sample``, else pydantic's message."""
    try:
        InferenceArguments.model_validate(sample)
    except pydantic.ValidationError as error:
        return str(error)
    return None


# Flags of examples/inference.py (tyro, OmitArgPrefixes): name -> kind. "value" takes one
# item, "flag" is a boolean that tyro also offers as --no-<name>, "multi" takes one or more.
SETUP_FLAGS: dict[str, str] = {
    "output-dir": "value",  # config.py:219 (alias -o)
    "model": "value",  # config.py:224, 305
    "checkpoint-path": "value",  # config.py:226
    "experiment": "value",  # config.py:228
    "config-file": "value",  # config.py:230
    "context-parallel-size": "value",  # config.py:232
    "disable-guardrails": "flag",  # config.py:234
    "offload-guardrail-models": "flag",  # config.py:236
    "keep-going": "flag",  # config.py:238
    "profile": "flag",  # config.py:240
    "benchmark": "flag",  # config.py:242
    "compile-tokenizer": "value",  # config.py:244
    "enable-parallel-tokenizer": "flag",  # config.py:246
    "parallel-tokenizer-grid": "multi",  # config.py:248
}
OVERRIDE_FLAGS: tuple[str, ...] = (
    # InferenceArguments' fields less name and the four hints (config.py:595-604).
    "prompt-path", "prompt", "negative-prompt", "seed", "guidance", "video-path",
    "max-frames", "context-frame-index", "image-context-path", "num-conditional-frames",
    "resolution", "sigma-max", "num-video-frames-per-chunk", "num-steps",
    "show-control-condition", "show-input", "keep-input-resolution",
    "guided-generation-mask", "guided-generation-step-threshold",
    "guided-generation-foreground-labels",
)  # fmt: skip
MODELS = ("edge", "depth", "seg", "vis")  # config.py:158-164, 190, 305
EXPERIMENTAL_MODELS = ("edge/distilled",)  # config.py:165-169 (COSMOS_EXPERIMENTAL_CHECKPOINTS)
