"""Cosmos-Transfer1: the controlnet spec JSON and the torchrun command line.

The contract is docs/cosmos.md, "Transfer1 contract" (cited from upstream): always launch
through torchrun; scalar keys of the spec override the command line unless ``--<key>`` is
itself an argv item (transfer.py:183-185), so every parameter is written both into the
spec and as a flag, and the two always agree. The negative prompt is sent as one item,
``--negative_prompt=<text>``, so a text that starts with ``-`` is never taken for an
option; the spec carries the same text (it wins in that form, and it is the same).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cosmos_tui.domain import CONTROL_HINTS, GenerationParams, Prompt, Run, RunType
from cosmos_tui.engine.launch import (
    CONTAINER_RUN,
    OUTPUT_DIR_NAME,
    SPEC_NAME,
    RemoteLayout,
    container_env,
    mounts_for,
)
from cosmos_tui.engine.progress import ProgressParser, parser_for
from cosmos_tui.engine.video_probe import probe_video
from cosmos_tui.errors import ValidationError
from cosmos_tui.params import clip_count, validate_params, validate_seed_for_clips

if TYPE_CHECKING:
    from pathlib import Path

    from cosmos_tui.config import HostConfig, ProfileConfig
    from cosmos_tui.engine.profiles.base import MountSpec
    from cosmos_tui.remote import RemoteHost

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


class Transfer1Profile:
    """Cosmos-Transfer1 through the profile seam (engine/profiles/base.py)."""

    name = NAME
    # every shared parameter is Transfer1's own (transfer.py's argparse)
    shared_params = frozenset(GenerationParams.__dataclass_fields__) - {"options"}

    def check(self, params: GenerationParams, prompt: Prompt | None) -> GenerationParams:
        """Validate the Transfer1 parameters (and the seed against the input's clips)."""
        if params.options:
            raise ValidationError(
                "transfer1 takes no profile options (mode, size, hints); drop them or use "
                "--profile cosmos3",
                field="profile",
            )
        has_video = prompt is None or prompt.input("color") is not None
        validate_params(params, has_input_video=has_video)
        color = prompt.input("color") if prompt is not None else None
        if color is not None:
            info = probe_video(color.path)  # reads only the MP4's moov box
            validate_seed_for_clips(params.seed, clip_count(info.frames) if info else 1)
        return params

    def local_files(self, params: GenerationParams) -> list[Path]:
        """None: every file this family sends is one of the prompt's inputs."""
        return []

    def wanted_roles(self, params: GenerationParams) -> set[str]:
        """The color video and each active control's precomputed video."""
        return {"color"} | {h for h in CONTROL_HINTS if params.weight(h)}

    def build_spec(
        self, run: Run, prompt: Prompt | None, container_inputs: Mapping[str, str]
    ) -> dict[str, Any]:
        """Return the controlnet spec (or the upscale spec) of a run.

        Raises:
            ValidationError: When the run cannot be expressed as a spec, or its seed would
                overflow on a later clip of its input (docs/cosmos.md, "Seeds").
        """
        video = container_inputs.get("color")
        if run.type == RunType.UPSCALE:
            if video is None:
                raise ValidationError("an upscale run needs an input video", field="input")
            return build_upscale_spec(video, run.params, prompt.text if prompt else None)
        if prompt is None:
            raise ValidationError(f"run {run.id} has no prompt; create it from a prompt", "prompt")
        color_item = prompt.input("color")
        info = probe_video(color_item.path) if color_item is not None else None
        if info is not None:  # runs recorded before the seed bound existed are checked here
            validate_seed_for_clips(run.params.seed, clip_count(info.frames))
        controls = {role: path for role, path in container_inputs.items() if role != "color"}
        return build_spec(prompt.text, run.params, video, controls)

    def build_command(self, run: Run, settings: ProfileConfig) -> list[str]:
        """Return torchrun's argv for the run (the upscaler's for an upscale run)."""
        paths = LaunchPaths(
            spec_path=f"{CONTAINER_RUN}/{SPEC_NAME}",
            output_dir=f"{CONTAINER_RUN}/{OUTPUT_DIR_NAME}",
            checkpoint_dir="checkpoints",
        )
        return build_argv(
            run.params,
            paths,
            script=settings.script,
            extra_args=settings.extra_args,
            upscale=run.type == RunType.UPSCALE,
        )

    def mounts(
        self, host: HostConfig, layout: RemoteLayout, settings: ProfileConfig
    ) -> list[MountSpec]:
        """The repository, checkpoints, Hugging Face cache, inputs and the run's folder."""
        return mounts_for(host, layout)

    def env(
        self, host: HostConfig, settings: ProfileConfig, environ: Mapping[str, str]
    ) -> dict[str, str]:
        """The host's env table plus HF_TOKEN and PYTHONPATH (engine/launch.py)."""
        return container_env(host, environ)

    async def preflight(
        self,
        run: Run,
        host: RemoteHost,
        layout: RemoteLayout,
        settings: ProfileConfig,
        environ: Mapping[str, str],
    ) -> None:
        """Nothing: the doctor checks Transfer1's checkpoints and token."""

    def run_env(self, run: Run) -> dict[str, str]:
        """None: every variable comes from the host and the profile settings."""
        return {}

    def run_mounts(self, run: Run) -> list[MountSpec]:
        """None: the family's own mounts serve every run."""
        return []

    def progress_parser(self) -> ProgressParser:
        """Transfer1's phase parser."""
        return parser_for(NAME)

    def has_output(self, names: Iterable[str]) -> bool:
        """A run's result is a video."""
        return any(name.endswith(".mp4") for name in names)
