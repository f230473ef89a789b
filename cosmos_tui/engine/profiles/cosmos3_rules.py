"""Cosmos 3's sample-argument rules, mirrored from upstream's pydantic models.

Upstream is NVIDIA/cosmos-framework at commit 5eee9ed5 (docs/cosmos.md, "Cosmos 3
contract"). Each constant names the line it mirrors, and :func:`validate_options` applies
them so a bad value is refused when a run is created, never by the model after the upload.
Where upstream only warns (frames outside the tier's range, a tier the checkpoint was not
trained on), cosmos-tui refuses, because the run would spend GPU hours on output upstream
itself calls degraded; the messages say so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cosmos_tui.errors import ValidationError

# args.py:157-170; cosmos-tui offers the four generation modes of infer.md:166-171.
MODES = ("video2video", "text2video", "image2video", "text2image")
# args.py:170: text about the prompt's video, image or text; cosmos-tui runs it only as a
# prompt enhancement (services/extra.py), where its answer becomes a prompt.
REASONER = "reasoner"
# What an enhancement does with the answer: a child prompt, or the prompt's own text.
ENHANCE_RESULTS = ("child", "overwrite")
IMAGE_MODES = frozenset({"text2image"})  # args.py:186: image-output modes emit one frame
# args.py:225-230
HINTS = ("edge", "blur", "depth", "seg", "wsm")
# args.py:233-247
EDGE_THRESHOLDS = ("very_low", "low", "medium", "high", "very_high")
BLUR_STRENGTHS = ("none", "very_low", "low", "medium", "high", "very_high")
# args.py:131 (inference tiers) and :136
RESOLUTIONS = ("256", "480", "720", "768")
ASPECT_RATIOS = ("1,1", "4,3", "3,4", "16,9", "9,16")
# args.py:144-151 (and docs/faq.md:191-201)
MIN_VIDEO_FRAMES = 24
MAX_VIDEO_FRAMES = {"256": 400, "480": 300, "720": 200, "768": 200}
# args.py:80 Guidance = Field(ge=0, le=7)
GUIDANCE_RANGE = (0.0, 7.0)
# args.py:98 PositiveInt (the upper bound is cosmos-tui's, as for every profile)
STEPS_RANGE = (1, 1000)
# args.py:377 Fps = Field(ge=1); upper bound cosmos-tui's
FPS_RANGE = (1, 240)
# common.py:721
PARALLELISM_PRESETS = ("latency", "throughput")
# common.py:849-853: guardrails on (default), off (--no-guardrails), or offloaded to CPU
GUARDRAILS = ("on", "offload", "off")
# args.py:1184-1211 registered checkpoints, by the size a user picks
SIZES = {"edge": "Cosmos3-Edge", "nano": "Cosmos3-Nano", "super": "Cosmos3-Super"}
DEFAULT_CHECKPOINT = "Cosmos3-Nano"  # args.py:1281
# Tiers each size was trained on, per the model cards quoted at args.py:460-470
# (Super's 768 tier is for images only).
SIZE_TIERS = {
    "Cosmos3-Edge": ("256", "480"),
    "Cosmos3-Nano": ("256", "480", "720"),
    "Cosmos3-Super": ("256", "480", "720"),
}
# infer.md:156-160: Super supports these modes only
SUPER_MODES = ("text2image", "text2video", "image2video")
# infer.md:77, 122-137: Super does not fit one 80 GB GPU; its recipes start at 4 GPUs
SUPER_MIN_GPUS = 4
SUPER_MIN_GPU_GIB = 80
# An "80 GB" card reports 79.6-80 GiB (81559 MiB on an H100 80GB): 80 * 10**9 bytes.
SUPER_MIN_GPU_MIB = SUPER_MIN_GPU_GIB * 10**9 // 2**20
# Pixel size (width, height) by tier and aspect ratio: data/generator/utils.py:8-23 (images)
# and :42-67 (video); the tiers cosmos-tui offers are the same in both tables.
PIXEL_SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "256": {"1,1": (256, 256), "4,3": (320, 256), "3,4": (256, 320),
            "16,9": (320, 192), "9,16": (192, 320)},
    "480": {"1,1": (640, 640), "4,3": (736, 544), "3,4": (544, 736),
            "16,9": (832, 480), "9,16": (480, 832)},
    "720": {"1,1": (960, 960), "4,3": (1104, 832), "3,4": (832, 1104),
            "16,9": (1280, 720), "9,16": (720, 1280)},
    "768": {"1,1": (1024, 1024), "4,3": (1184, 880), "3,4": (880, 1184),
            "16,9": (1360, 768), "9,16": (768, 1360)},
}  # fmt: skip
# Defaults of the built-in presets (defaults/<mode>/sample_args.json), shown to users.
DEFAULT_FRAMES = 189
DEFAULT_ASPECT = {"text2image": "1,1"}  # else "16,9"


@dataclass(frozen=True)
class Hint:
    """One transfer hint: its weight and (edge, blur) preset.

    Attributes:
        weight: Relative strength; weights are normalised by their sum
            (transfer.py:181-189).
        preset: ``preset_edge_threshold`` for edge, ``preset_blur_strength`` for blur.
    """

    weight: float = 1.0
    preset: str | None = None


@dataclass(frozen=True)
class Cosmos3Options:
    """The options of a Cosmos 3 run that Transfer1's parameters do not have.

    ``None`` leaves the value to upstream's per-mode defaults (args.py:1095-1106). Seed,
    negative prompt and GPU count are the run's shared parameters.
    """

    mode: str = "video2video"
    checkpoint: str = DEFAULT_CHECKPOINT
    hints: Mapping[str, Hint] = field(default_factory=dict)
    resolution: str = "480"
    aspect_ratio: str | None = None
    num_frames: int | None = None
    fps: int | None = None
    num_steps: int | None = None
    guidance: float | None = None
    parallelism: str = "latency"
    guardrails: str = "on"
    enhance: str | None = None
    """Reasoner runs only: ``child`` (a new prompt) or ``overwrite`` (the prompt's text)."""

    @property
    def size(self) -> str | None:
        """The registered checkpoint name, or None for a local checkpoint path."""
        return self.checkpoint if self.checkpoint in SIZE_TIERS else None

    @property
    def effective_aspect(self) -> str:
        """The aspect ratio the model uses (upstream's preset default when unset)."""
        return self.aspect_ratio or DEFAULT_ASPECT.get(self.mode, "16,9")

    @property
    def pixel_size(self) -> tuple[int, int]:
        """(width, height) of the output (data/generator/utils.py:8-67)."""
        return PIXEL_SIZES[self.resolution][self.effective_aspect]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form stored with the run's parameters."""
        data: dict[str, Any] = {
            k: getattr(self, k) for k in self.__dataclass_fields__ if k != "hints"
        }
        data["hints"] = {
            name: {"weight": h.weight, **({"preset": h.preset} if h.preset else {})}
            for name, h in self.hints.items()
        }
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cosmos3Options:
        """Build from the stored (or user-given) form; :func:`validate_options` checks it.

        Raises:
            ValidationError: When a key is unknown or a hint is not a table.
        """
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValidationError(
                f"unknown cosmos3 option(s): {', '.join(unknown)}", field=unknown[0]
            )
        raw_hints = data.get("hints") or {}
        if not isinstance(raw_hints, Mapping):
            raise ValidationError("hints must be a table of hint -> weight", field="hints")
        hints: dict[str, Hint] = {}
        for name, value in raw_hints.items():
            if isinstance(value, Mapping):
                hints[str(name)] = Hint(value.get("weight", 1.0), value.get("preset"))
            else:
                hints[str(name)] = Hint(value)
        kwargs = {k: v for k, v in data.items() if k != "hints"}
        return cls(hints=hints, **kwargs)


def _choice(value: object, allowed: tuple[str, ...], what: str, name: str, where: str) -> None:
    if value not in allowed:
        raise ValidationError(
            f"{what} {value!r} is not one Cosmos 3 offers; use one of {', '.join(allowed)} "
            f"({where})",
            field=name,
        )


def _int_in(value: object, low: int, high: int, what: str, name: str, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(
            f"{what} must be a whole number from {low} to {high}, not {value!r} ({where})",
            field=name,
        )


def _number(value: object, what: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"{what} must be a finite number, not {value!r}", field=name)
    return float(value)


def validate_options(options: Cosmos3Options, num_gpus: int, inputs: frozenset[str]) -> None:
    """Refuse what upstream would refuse (or only warn about) before anything is sent.

    Args:
        options: The run's Cosmos 3 options.
        num_gpus: The run's GPU count.
        inputs: Roles of the prompt's inputs (``color`` is its video, ``image`` its image,
            the hint names its precomputed controls).

    Raises:
        ValidationError: Naming the option, the allowed values and the upstream rule.
    """
    _choice(options.mode, (*MODES, REASONER), "mode", "mode", "args.py:157-170")
    if options.size is None and not options.checkpoint.startswith("/"):
        raise ValidationError(
            f"checkpoint {options.checkpoint!r} is neither a size (Edge, Nano, Super) nor an "
            "absolute path to a checkpoint folder on the host (common.py:584-587)",
            field="checkpoint",
        )
    _choice(options.guardrails, GUARDRAILS, "guardrails setting", "guardrails",
            "common.py:849-853")  # fmt: skip
    if options.mode == REASONER:
        _check_reasoner(options, num_gpus)
        return
    if options.enhance is not None:
        raise ValidationError(
            "enhance applies to the reasoner's prompt enhancement only", field="enhance"
        )
    _check_inputs(options.mode, inputs)
    _choice(options.resolution, RESOLUTIONS, "resolution tier", "resolution", "args.py:131")
    if options.aspect_ratio is not None:
        _choice(options.aspect_ratio, ASPECT_RATIOS, "aspect ratio", "aspect_ratio",
                "args.py:136")  # fmt: skip
    _check_frames(options)
    if options.fps is not None:
        _int_in(options.fps, *FPS_RANGE, "fps", "fps", "args.py:377")
    if options.num_steps is not None:
        _int_in(options.num_steps, *STEPS_RANGE, "steps", "num_steps", "args.py:98")
    if options.guidance is not None:
        value = _number(options.guidance, "guidance", "guidance")
        if not GUIDANCE_RANGE[0] <= value <= GUIDANCE_RANGE[1]:
            raise ValidationError(
                f"guidance must be from 0 to 7 for Cosmos 3, not {value:g} (args.py:80)",
                field="guidance",
            )
    _check_hints(options)
    _check_size(options, num_gpus)
    _choice(options.parallelism, PARALLELISM_PRESETS, "parallelism preset", "parallelism",
            "common.py:721")  # fmt: skip
    if options.parallelism == "latency" and num_gpus > 1 and num_gpus % 2:
        # latency: cfgp = min(2, N), cp = N // cfgp (args.py:1376-1392); cp*cfgp must
        # divide WORLD_SIZE (args.py:1331-1339), which an odd N > 1 never does.
        raise ValidationError(
            f"the latency preset splits each sample over pairs of GPUs, so {num_gpus} GPUs "
            f"fail upstream's check (cp_size*cfgp_size must divide WORLD_SIZE, "
            f"args.py:1331-1339); use an even count or --parallelism throughput",
            field="num_gpus",
        )


def _check_reasoner(options: Cosmos3Options, num_gpus: int) -> None:
    """A reasoner run: one GPU, any size but Super, what to do with the answer.

    The reasoner reads the prompt with its video, image or nothing (args.py:700-735);
    every generation option is unused by it (args.py:112-125, 498-511), and cosmos-tui
    sends none.
    """
    if options.enhance is None:
        raise ValidationError(
            "mode 'reasoner' writes text, not video: run it as a prompt enhancement "
            "('cosmos enhance PROMPT --profile cosmos3')",
            field="mode",
        )
    if options.size == "Cosmos3-Super":
        raise ValidationError(
            f"prompt enhancement runs on one GPU, and Cosmos3-Super (32B) needs at least "
            f"{SUPER_MIN_GPUS} GPUs of {SUPER_MIN_GPU_GIB} GB (infer.md:77, 122-137); use "
            "--size nano or --size edge (each carries a reasoner that reads images and "
            "video: inference/configs/model/Cosmos3-Nano.yaml:161-169, Cosmos3-Edge.yaml:"
            "145-154, args.py:663-683)",
            field="checkpoint",
        )
    if num_gpus != 1:
        raise ValidationError(
            f"prompt enhancement runs on one GPU, not {num_gpus}", field="num_gpus"
        )
    _choice(options.enhance, ENHANCE_RESULTS, "enhancement result", "enhance",
            "child prompt or overwrite")  # fmt: skip
    if options.hints:
        raise ValidationError("the reasoner takes no transfer hints", field="hints")


def _check_inputs(mode: str, inputs: frozenset[str]) -> None:
    has_video = "color" in inputs
    if mode in ("text2video", "text2image") and (has_video or "image" in inputs):
        raise ValidationError(
            f"{mode} takes only text, but this prompt has an input "
            f"{'video' if has_video else 'image'}; use --mode video2video (or image2video), "
            "or a prompt without inputs",
            field="mode",
        )
    if mode == "video2video" and not has_video:
        raise ValidationError(
            "video2video needs the prompt's input video (color.mp4) as vision_path "
            "(infer.md:171); use --mode text2video for a text-only prompt",
            field="mode",
        )
    if mode == "image2video" and "image" not in inputs:
        raise ValidationError(
            "image2video needs an input image (image.jpg or image.png in the prompt's "
            "folder) as vision_path (infer.md:170)",
            field="mode",
        )


def _check_frames(options: Cosmos3Options) -> None:
    frames = options.num_frames
    if options.mode in IMAGE_MODES:
        if frames not in (None, 1):
            raise ValidationError(
                f"{options.mode} makes one image, so frames must be 1, not {frames!r} "
                "(args.py:185-186, 529-532)",
                field="num_frames",
            )
        return
    if frames is None:
        return
    high = MAX_VIDEO_FRAMES[options.resolution]
    where = "args.py:144-151; upstream warns that quality degrades outside it"
    what = f"frames at the {options.resolution} tier"
    _int_in(frames, MIN_VIDEO_FRAMES, high, what, "num_frames", where)


def _check_hints(options: Cosmos3Options) -> None:
    if options.hints and options.mode != "video2video":
        raise ValidationError(
            f"transfer hints drive video2video transfer; {options.mode} takes none "
            "(use --mode video2video)",
            field="hints",
        )
    total = 0.0
    for name, hint in options.hints.items():
        if name not in HINTS:
            raise ValidationError(
                f"unknown hint {name!r}; Cosmos 3's hints are {', '.join(HINTS)} (args.py:225-230)",
                field="hints",
            )
        weight = _number(hint.weight, f"the {name} weight", "hints")
        if weight < 0:
            raise ValidationError(
                f"the {name} weight must not be negative, not {weight:g} "
                "(transfer.py:186 asserts every weight >= 0)",
                field="hints",
            )
        total += weight
        if name == "edge" and hint.preset is not None:
            _choice(hint.preset, EDGE_THRESHOLDS, "edge threshold", "hints", "args.py:233-238")
        elif name == "blur" and hint.preset is not None:
            _choice(hint.preset, BLUR_STRENGTHS, "blur strength", "hints", "args.py:241-247")
        elif hint.preset is not None:
            raise ValidationError(
                f"only edge (threshold) and blur (strength) take a preset, not {name} "
                "(args.py:266-271)",
                field="hints",
            )
    if options.hints and total <= 0:
        raise ValidationError(
            "the hint weights add up to 0; give at least one a positive weight "
            "(transfer.py:187-188 asserts a positive sum)",
            field="hints",
        )


def _check_size(options: Cosmos3Options, num_gpus: int) -> None:
    size = options.size
    if size is None:
        return
    tiers = SIZE_TIERS[size]
    image_tier = size == "Cosmos3-Super" and options.mode in IMAGE_MODES
    if options.resolution not in tiers and not (image_tier and options.resolution == "768"):
        raise ValidationError(
            f"{size} was trained on the {', '.join(tiers)} tiers, not {options.resolution} "
            "(model cards, args.py:460-470); pick one of those",
            field="resolution",
        )
    if size == "Cosmos3-Super":
        if options.mode not in SUPER_MODES:
            raise ValidationError(
                f"Cosmos3-Super supports {', '.join(SUPER_MODES)}, not {options.mode} "
                "(infer.md:156-160); use Nano or Edge",
                field="mode",
            )
        if num_gpus < SUPER_MIN_GPUS:
            raise ValidationError(
                f"Cosmos3-Super (32B) needs at least {SUPER_MIN_GPUS} GPUs of "
                f"{SUPER_MIN_GPU_GIB} GB; {num_gpus} would run out of memory "
                "(infer.md:77, 122-137); use --gpus 4 or more, or --size nano",
                field="num_gpus",
            )
