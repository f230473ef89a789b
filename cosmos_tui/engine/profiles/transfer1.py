"""Cosmos-Transfer1: the controlnet spec JSON and the torchrun command line.

The contract is docs/cosmos.md, "Transfer1 contract" (cited from upstream): always launch
through torchrun; scalar keys of the spec override the command line unless ``--<key>`` is
itself an argv item (transfer.py:183-185), so every parameter is written both into the
spec and as a flag, and the two always agree. The negative prompt is sent as one item,
``--negative_prompt=<text>``, so a text that starts with ``-`` is never taken for an
option; the spec carries the same text (it wins in that form, and it is the same).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cosmos_tui.domain import CONTROL_HINTS, GenerationParams
from cosmos_tui.engine.params import validate_params
from cosmos_tui.errors import ValidationError

NAME = "transfer1"
SCRIPT = "cosmos_transfer1/diffusion/inference/transfer.py"
DEFAULT_EXTRA_ARGS = ("--offload_text_encoder_model", "--offload_guardrail_models")
UPSCALE_STEPS = 10


@dataclass(frozen=True)
class LaunchPaths:
    """Container-side paths of one launch.

    Attributes:
        spec_path: Where the spec JSON is inside the container.
        output_dir: The ``--video_save_folder`` inside the container.
        checkpoint_dir: The ``--checkpoint_dir`` inside the container.
        batch_input_path: The JSONL of a batch, when batching.
    """

    spec_path: str
    output_dir: str
    checkpoint_dir: str = "checkpoints"
    batch_input_path: str | None = None


def build_spec(
    prompt_text: str,
    params: GenerationParams,
    input_video_path: str | None,
    control_paths: Mapping[str, str],
) -> dict[str, Any]:
    """Return the controlnet spec for a transfer run.

    Args:
        prompt_text: The positive prompt.
        params: Validated parameters; a control with weight 0 is left out.
        input_video_path: The input video's path as the container sees it.
        control_paths: Precomputed control videos by hint, as the container sees them;
            a hint without one is computed by the model.

    Raises:
        ValidationError: When the parameters are invalid.
    """
    validate_params(params, has_input_video=input_video_path is not None)
    if input_video_path is None:
        missing = [h for h in CONTROL_HINTS if params.weight(h) > 0 and h not in control_paths]
        if missing:
            raise ValidationError(
                f"without an input video every active control needs its own video; "
                f"add {', '.join(missing)} control videos or set their weights to 0",
                field=f"{missing[0]}_weight",
            )
    spec: dict[str, Any] = {"prompt": prompt_text}
    if params.negative_prompt:
        spec["negative_prompt"] = params.negative_prompt
    if input_video_path is not None:
        spec["input_video_path"] = input_video_path
    spec.update(_scalars(params))
    for hint in CONTROL_HINTS:
        weight = params.weight(hint)
        if weight <= 0:
            continue
        control: dict[str, Any] = {"control_weight": weight}
        if hint in control_paths:
            control["input_control"] = control_paths[hint]
        spec[hint] = control
    return spec


def build_upscale_spec(
    input_video_path: str, params: GenerationParams, prompt_text: str | None = None
) -> dict[str, Any]:
    """Return the spec of a 4K upscale of ``input_video_path``."""
    validate_params(params)
    spec: dict[str, Any] = {
        "input_video_path": input_video_path,
        "upscale": {"control_weight": params.upscale_weight},
    }
    if prompt_text:
        spec["prompt"] = prompt_text
    return spec


def build_argv(
    params: GenerationParams,
    paths: LaunchPaths,
    script: str = SCRIPT,
    extra_args: tuple[str, ...] | list[str] = DEFAULT_EXTRA_ARGS,
    upscale: bool = False,
) -> list[str]:
    """Return the container command (an argv list) for one launch.

    Args:
        params: The run's parameters; ``num_gpus`` sets torchrun's nproc and --num_gpus.
        paths: Container-side paths.
        script: The inference script of the profile.
        extra_args: Flags added after the generated ones (offload flags by default).
        upscale: Use the upscaler's step count and send only ``--fps`` (the source's
            frame rate) of the other parameters.
    """
    steps = UPSCALE_STEPS if upscale else params.num_steps
    argv = [
        "torchrun",
        f"--nproc_per_node={params.num_gpus}",
        "--nnodes=1",
        "--node_rank=0",
        script,
        "--checkpoint_dir",
        paths.checkpoint_dir,
        "--video_save_folder",
        paths.output_dir,
        "--controlnet_specs",
        paths.spec_path,
        "--num_gpus",
        str(params.num_gpus),
        "--num_steps",
        str(steps),
    ]
    if upscale:
        # The upscaled video is saved at --fps (transfer.py:404-411); default 24 otherwise.
        argv += ["--fps", str(params.fps)]
    else:
        scalars = _scalars(params)
        for key in ("guidance", "seed", "fps", "sigma_max", "blur_strength", "canny_threshold"):
            argv += [f"--{key}", str(scalars[key])]
        if params.negative_prompt:
            # One argv item: argparse would take a separate "-blurry" for an option.
            argv.append(f"--negative_prompt={params.negative_prompt}")
    if paths.batch_input_path:
        argv += ["--batch_input_path", paths.batch_input_path]
    argv += list(extra_args)
    return argv


def _scalars(params: GenerationParams) -> dict[str, Any]:
    return {
        "num_steps": params.num_steps,
        "guidance": params.guidance,
        "seed": params.seed,
        "fps": params.fps,
        "sigma_max": params.sigma_max,
        "blur_strength": params.blur_strength,
        "canny_threshold": params.canny_threshold,
    }
