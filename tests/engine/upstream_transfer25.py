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

import contextlib
import enum
import io
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

import pydantic
import tyro

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
            raise ValueError(
                "vis control and image_context_path are both used to transfer style. Using "
                "these modes together leads to conflicts. Please only provide one"
            )


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


# --- The command line: examples/inference.py:36-61 and config.py:213-305, 595-604 ---------


class CompileMode(str, enum.Enum):  # noqa: UP042 (as upstream declares it)
    """config.py:137-140."""

    NONE = "none"
    MODERATE = "moderate"
    AGGRESSIVE = "aggressive"


def _overrides_model() -> type[pydantic.BaseModel]:
    """config.py:65-84 ``get_overrides_cls``: every field optional, default None."""
    fields: dict[str, Any] = {}
    for name, info in InferenceArguments.model_fields.items():
        if name in ("name", *CONTROL_KEYS):
            continue
        fields[name] = (Optional[info.rebuild_annotation()], pydantic.Field(default=None))  # noqa: UP045
    return pydantic.create_model("InferenceArgumentsOverrides", **fields)


def make_args(experimental: bool) -> type[pydantic.BaseModel]:
    """Return upstream's ``Args`` model as built at import time.

    ``--model`` choices are fixed when config.py is imported (config.py:165-188, 197-206):
    edge/distilled only exists with COSMOS_EXPERIMENTAL_CHECKPOINTS=1.
    """
    models = MODELS + (EXPERIMENTAL_MODELS if experimental else ())
    setup_fields: dict[str, Any] = {
        "output_dir": (Annotated[Path, tyro.conf.arg(aliases=("-o",))], ...),
        "model": (Literal[models], "edge"),  # type: ignore[valid-type]
        "checkpoint_path": (Optional[str], None),  # noqa: UP045
        "experiment": (Optional[str], None),  # noqa: UP045
        "config_file": (str, ""),
        "context_parallel_size": (Optional[pydantic.PositiveInt], None),  # noqa: UP045
        "disable_guardrails": (bool, False),
        "offload_guardrail_models": (bool, False),
        "keep_going": (bool, True),
        "profile": (bool, False),
        "benchmark": (bool, False),
        "compile_tokenizer": (CompileMode, CompileMode.NONE),
        "enable_parallel_tokenizer": (bool, False),
        "parallel_tokenizer_grid": (tuple[int, int], (-1, -1)),
    }
    setup = pydantic.create_model(
        "SetupArguments",
        __config__=pydantic.ConfigDict(extra="forbid", frozen=True),
        **setup_fields,
    )
    control_union = Annotated[
        Union[  # noqa: UP007
            Annotated[EdgeConfig, tyro.conf.subcommand("edge")],
            Annotated[DepthConfig, tyro.conf.subcommand("depth")],
            Annotated[BlurConfig, tyro.conf.subcommand("vis")],
            Annotated[SegConfig, tyro.conf.subcommand("seg")],
        ],
        tyro.conf.ConsolidateSubcommandArgs,
    ]
    return pydantic.create_model(
        "Args",
        __config__=pydantic.ConfigDict(extra="forbid"),
        input_files=(Annotated[list[Path], tyro.conf.arg(aliases=("-i",))], ...),
        setup=(setup, ...),
        overrides=(_overrides_model(), ...),
        control=(control_union, EdgeConfig()),
    )


def upstream_command_line(argv: list[str], experimental: bool = False) -> tuple[int, str]:
    """Parse ``argv`` as examples/inference.py does; return (exit status, stderr text).

    Status 0: accepted. tyro's own refusals exit 2 (its error box on stderr); a pydantic
    refusal of a value exits 1 with pydantic's message (config.py:97-103).
    """
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            tyro.cli(make_args(experimental), args=argv, prog="inference.py",
                     config=(tyro.conf.OmitArgPrefixes,))  # fmt: skip
    except SystemExit as done:
        return int(done.code or 0), err.getvalue()
    except Exception as error:  # mirrors handle_tyro_exception (config.py:97-103)
        root: BaseException = error
        while root.__cause__ is not None or root.__context__ is not None:
            root = root.__cause__ or root.__context__  # type: ignore[assignment]
        if isinstance(root, pydantic.ValidationError):
            return 1, str(root)
        raise
    return 0, err.getvalue()
