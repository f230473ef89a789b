"""Transfer2.5 through the profile seam (``ModelProfile`` in engine/profiles/base.py).

A run writes one sample JSON named after the run (so its outputs are
``output/<run id>.mp4`` and friends) and starts ``python examples/inference.py`` on one GPU
or ``torchrun`` on several (docs/cosmos.md, "Transfer2.5 contract"). Options beyond the
shared parameters live in ``GenerationParams.options`` as :func:`options_to_dict` writes
them. The shared control weights (vis, edge, depth, seg) become the run's controls when
the options name none, so a Transfer1 prompt runs on Transfer2.5 unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from cosmos_tui.config import ProfileConfig
from cosmos_tui.domain import RUN_FILES, file_role
from cosmos_tui.engine.profiles.base import MountSpec
from cosmos_tui.engine.profiles.hf_token import (
    CONTAINER_HF_HOME,
    CONTAINER_TOKEN,
    GUARDRAIL_MODEL,
    check_token,
    chosen_negative_prompt,
    hf_env,
)
from cosmos_tui.engine.profiles.transfer25 import (
    NAME,
    SCRIPT,
    LaunchPaths,
    build_argv,
    build_env,
    options_from_dict,
    options_to_dict,
)
from cosmos_tui.engine.profiles.transfer25_args import (
    HINTS,
    SEED_MAX,
    HintOptions,
    Transfer25Options,
    build_sample,
    validate_options,
)
from cosmos_tui.engine.profiles.transfer25_progress import Transfer25Parser
from cosmos_tui.engine.video_probe import probe_video
from cosmos_tui.errors import ValidationError

if TYPE_CHECKING:
    from cosmos_tui.config import HostConfig
    from cosmos_tui.domain import GenerationParams, Prompt, Run
    from cosmos_tui.engine.launch import RemoteLayout
    from cosmos_tui.remote import RemoteHost

VIDEO_ROLE = "color"
# The Hugging Face model whose cache folder says the host has the weights (hub layout).
CHECKPOINT_MODEL = "Cosmos-Transfer2.5-2B"


def default_settings() -> ProfileConfig:
    """The ``[profiles.transfer2_5]`` settings when the config has none."""
    return ProfileConfig(script=SCRIPT, extra_args=[])


# The keys of a control that name a file of this machine, with what the form calls them.
LOCAL_FILE_KEYS = {
    "control_path": ("control", "control video"),
    "mask_path": ("mask", "mask video"),
}


def options_of(params: GenerationParams) -> Transfer25Options:
    """Return the Transfer2.5 options stored with a run's parameters."""
    stored = dict(getattr(params, "options", None) or {})
    stored.pop(RUN_FILES, None)  # the recorded local files (GenerationParams.run_files)
    return options_from_dict(stored)


def sample_options(run: Run, container_inputs: Mapping[str, str]) -> Transfer25Options:
    """Return a run's options with each control's files as the container sees them.

    A control's own video or mask (a file of this machine the run recorded) is named by
    its uploaded copy; a control without its own video takes the prompt's (``depth.mp4``
    for depth...), and one without either is computed by the model from the input video.
    """
    options = options_of(run.params)
    hints = []
    for hint in options.hints:
        found = {
            key: container_inputs[file_role(path)]
            for key in LOCAL_FILE_KEYS
            if (path := getattr(hint, key)) and file_role(path) in container_inputs
        }
        if not hint.control_path and hint.hint in container_inputs:
            found["control_path"] = container_inputs[hint.hint]
        hints.append(_with_paths(hint, found))
    style = options.image_context_path
    if style and file_role(style) in container_inputs:
        style = container_inputs[file_role(style)]
    return dataclasses.replace(options, hints=tuple(hints), image_context_path=style)


def local_hint_files(options: Transfer25Options) -> Transfer25Options:
    """Return the options with each local file as an absolute path of this machine.

    The local files are the controls' own videos and masks and the style image.

    Raises:
        ValidationError: A path that is not a file on this machine, naming its field
            (``depth_control``, ``depth_mask``, ``image_context_path``).
    """
    hints = []
    for hint in options.hints:
        found: dict[str, str] = {}
        for key, (suffix, what) in LOCAL_FILE_KEYS.items():
            text = getattr(hint, key)
            if text:
                field = f"{hint.hint}_{suffix}"
                found[key] = _local_file(text, f"the {hint.hint} {what}", "a video", field)
        hints.append(_with_paths(hint, found))
    style = options.image_context_path
    if style:
        style = _local_file(style, "the style image", "an image", "image_context_path")
    return dataclasses.replace(options, hints=tuple(hints), image_context_path=style)


def _check_style_frame(options: Transfer25Options, prompt: Prompt | None) -> None:
    """Check that the style frame is a frame of the prompt's input video.

    Upstream reads the whole video and takes ``frames[index]`` (counted from 0,
    ``_src/transfer2/inference/utils.py:339-347``): an index past the end is an
    IndexError after the upload and the model's load.

    Raises:
        ValidationError: An index at or past the video's frame count.
    """
    index = options.context_frame_index
    if index is None or prompt is None:
        return
    video = prompt.input(VIDEO_ROLE)
    if video is None:
        return
    info = probe_video(video.path)  # None when unreadable: the upload checks the file
    if info is not None and info.frames <= 1:
        raise ValidationError(
            f"{video.path.name} has {info.frames} frame; upstream's style frame counts "
            "from 0 and refuses 0, so it has none to offer: leave the style frame empty",
            field="context_frame_index",
        )
    if info is not None and index >= info.frames:
        raise ValidationError(
            f"the style frame is {index}, but {video.path.name} has {info.frames} frames, "
            f"counted from 0 (upstream refuses 0): give 1 to {info.frames - 1}",
            field="context_frame_index",
        )


def _local_file(text: str, what: str, kind: str, field: str) -> str:
    """Return ``text`` as an absolute path of a file of this machine.

    Raises:
        ValidationError: For ``field`` when there is no such file here.
    """
    path = Path(text).expanduser().absolute()
    if not path.exists():
        raise ValidationError(
            f"{what} {text} is not on this machine; give the path of {kind} here (it is "
            "uploaded with the run), or leave it empty",
            field=field,
        )
    if not path.is_file():
        raise ValidationError(f"{what} {text} is not a file; give the path of {kind}", field)
    return str(path)


def _with_paths(hint: HintOptions, paths: Mapping[str, str]) -> HintOptions:
    """Return ``hint`` with its control and mask paths replaced where ``paths`` has them."""
    return dataclasses.replace(
        hint,
        control_path=paths.get("control_path", hint.control_path),
        mask_path=paths.get("mask_path", hint.mask_path),
    )


def command_for(run: Run, settings: ProfileConfig, input_files: tuple[str, ...]) -> list[str]:
    """Return the argv that runs ``input_files`` (a run's sample, or a batch's JSONL).

    The setup arguments are ``run``'s (every member of a batch shares them).
    """
    # lazy: engine.launch pulls SQLAlchemy (~300 ms); the doctor loads this module
    from cosmos_tui.engine.launch import CONTAINER_RUN, OUTPUT_DIR_NAME

    options = dataclasses.replace(options_of(run.params), num_gpus=run.params.num_gpus)
    paths = LaunchPaths(input_files, f"{CONTAINER_RUN}/{OUTPUT_DIR_NAME}")
    script = settings.script if settings.script.endswith("inference.py") else SCRIPT
    return build_argv(options, paths, script=script, extra_args=settings.extra_args)


class Transfer25Profile:
    """Transfer2.5 through the profile seam."""

    name = NAME
    # read by check below (the weights become controls); the rest is in params.options
    shared_params = frozenset(
        {"vis_weight", "edge_weight", "depth_weight", "seg_weight", "num_steps", "seed",
         "num_gpus", "negative_prompt"}
    )  # fmt: skip

    def check(self, params: GenerationParams, prompt: Prompt | None) -> GenerationParams:
        """Validate the shared parameters and the options; return them normalised.

        Raises:
            ValidationError: For a prompt without an input video (upstream's video_path is
                required, config.py:481) or any value upstream refuses.
        """
        roles = {item.role for item in prompt.inputs} if prompt is not None else set()
        if prompt is not None and VIDEO_ROLE not in roles:
            raise ValidationError(
                "Transfer2.5 needs the prompt's input video (color.mp4): it transfers a "
                "video, it does not generate from text alone; add the video or use cosmos3",
                field="profile",
            )
        # the shared parameters win over the options' own (they are validated together)
        raw = dict(getattr(params, "options", None) or {})
        # the recorded files are the service's to make from the checked paths, never given
        raw.pop(RUN_FILES, None)
        raw.update(seed=params.seed, num_steps=params.num_steps, num_gpus=params.num_gpus)
        negative = chosen_negative_prompt(params)
        if negative:
            raw["negative_prompt"] = negative
        options = options_from_dict(raw)
        if not options.hints:
            hints = tuple(HintOptions(h, params.weight(h)) for h in HINTS if params.weight(h) > 0)
            options = dataclasses.replace(options, hints=hints)
        options = dataclasses.replace(
            options,
            seed=params.seed,
            num_steps=params.num_steps,
            num_gpus=params.num_gpus,
            negative_prompt=negative or options.negative_prompt,
        )
        if not 0 <= params.seed <= SEED_MAX:
            raise ValidationError(f"seed must be from 0 to {SEED_MAX}", field="seed")
        validate_options(options)
        _check_style_frame(options, prompt)
        options = local_hint_files(options)
        return dataclasses.replace(params, options=options_to_dict(options))

    def local_files(self, params: GenerationParams) -> list[Path]:
        """Each control's own video and mask, and the style image (checked local paths)."""
        options = options_of(params)
        paths = [
            Path(path)
            for hint in options.hints
            for key in LOCAL_FILE_KEYS
            if (path := getattr(hint, key))
        ]
        if options.image_context_path:
            paths.append(Path(options.image_context_path))
        return paths

    def wanted_roles(self, params: GenerationParams) -> set[str]:
        """The input video and a precomputed control video per control."""
        return {VIDEO_ROLE, *(h.hint for h in options_of(params).hints)}

    def build_spec(
        self, run: Run, prompt: Prompt | None, container_inputs: Mapping[str, str]
    ) -> dict[str, Any]:
        """Return the run's sample; a control without its video is computed upstream."""
        if prompt is None or VIDEO_ROLE not in container_inputs:
            raise ValidationError(
                f"run {run.id} has no input video; create it from a prompt with color.mp4",
                field="prompt",
            )
        options = sample_options(run, container_inputs)
        return build_sample(run.id, prompt.text, container_inputs[VIDEO_ROLE], options)

    def build_command(self, run: Run, settings: ProfileConfig) -> list[str]:
        """Return ``python examples/inference.py -i ... -o ...`` (torchrun for N GPUs)."""
        # lazy: engine.launch pulls SQLAlchemy (~300 ms); the doctor loads this module
        from cosmos_tui.engine.launch import CONTAINER_RUN, SPEC_NAME

        return command_for(run, settings, (f"{CONTAINER_RUN}/{SPEC_NAME}",))

    def mounts(
        self, host: HostConfig, layout: RemoteLayout, settings: ProfileConfig
    ) -> list[MountSpec]:
        """The checkout, the Hugging Face cache, the token file, inputs and run folder."""
        # lazy: engine.launch pulls SQLAlchemy (~300 ms); the doctor loads this module
        from cosmos_tui.engine.launch import CONTAINER_INPUTS, CONTAINER_REPO, CONTAINER_RUN

        mounts = []
        repo = getattr(settings, "repo_dir", None)
        if repo:
            mounts.append(MountSpec(layout.resolve(repo), CONTAINER_REPO))
        cache = getattr(settings, "hf_cache_dir", None) or getattr(host, "hf_cache_dir", None)
        if cache:
            mounts.append(MountSpec(layout.resolve(cache), CONTAINER_HF_HOME))
        token_file = getattr(settings, "token_file", None)
        if token_file:
            mounts.append(MountSpec(layout.resolve(token_file), CONTAINER_TOKEN, True))
        mounts.append(MountSpec(layout.inputs_dir, CONTAINER_INPUTS, read_only=True))
        mounts.append(MountSpec(layout.run_dir, CONTAINER_RUN))
        return mounts

    def env(
        self, host: HostConfig, settings: ProfileConfig, environ: Mapping[str, str]
    ) -> dict[str, str]:
        """The host's env table, ``HF_HOME`` when the cache is mounted, the token."""
        return hf_env(host, settings, environ)

    async def preflight(
        self,
        run: Run,
        host: RemoteHost,
        layout: RemoteLayout,
        settings: ProfileConfig,
        environ: Mapping[str, str],
    ) -> None:
        """Refuse a run with no token while the host's cache lacks the checkpoints.

        The first run on a host downloads nvidia/Cosmos-Transfer2.5-2B and the gated
        nvidia/Cosmos-Guardrail1 into ``HF_HOME`` (docs/cosmos.md, "How it is started").

        Raises:
            ValidationError: Saying where to put a token.
        """
        models = [CHECKPOINT_MODEL]
        if not options_of(run.params).disable_guardrails:
            models.append(GUARDRAIL_MODEL)  # skipped with --disable-guardrails
        await check_token(host, layout, settings, environ, section="transfer2_5",
                          models=models)  # fmt: skip

    def run_env(self, run: Run) -> dict[str, str]:
        """The run's own variables (the distilled checkpoint's flag)."""
        return build_env(options_of(run.params))

    def run_mounts(self, run: Run) -> list[MountSpec]:
        """None: the family's own mounts serve every run."""
        return []

    def progress_parser(self) -> Transfer25Parser:
        """Transfer2.5's parser (downloads, samples, chunks, bars)."""
        return Transfer25Parser()

    def has_output(self, names: Iterable[str]) -> bool:
        """A result is a ``<name>.mp4`` or ``.jpg`` that is not a control or mask video."""
        for name in names:
            base = PurePosixPath(name).name
            if base.endswith((".mp4", ".jpg")) and "_control_" not in base and "_mask_" not in base:
                return True
        return False
