"""Cosmos 3 (NVIDIA/cosmos-framework): the sample file, the command line and the container.

The contract is docs/cosmos.md, "Cosmos 3 contract". A run writes one sample JSON (named
after the run, so its outputs land in ``output/<run id>/``) and starts
``python -m cosmos_framework.scripts.inference`` on one GPU or ``torchrun
--nproc-per-node=N -m ...`` on several (infer.md:68-75, 105-116). Values left unset stay
with upstream's per-mode defaults (args.py:1095-1106), so transfer runs keep the tuned
guidance of their hint (args.py:853-866).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from cosmos_tui.domain import GenerationParams, Progress, Prompt, Run
from cosmos_tui.engine.profiles.base import MountSpec
from cosmos_tui.engine.profiles.cosmos3_rules import (
    HINTS,
    REASONER,
    SIZES,
    SUPER_MIN_GPU_GIB,
    SUPER_MIN_GPU_MIB,
    SUPER_MIN_GPUS,
    Cosmos3Options,
    validate_options,
)
from cosmos_tui.engine.profiles.hf_token import (
    CONTAINER_HF_HOME,
    CONTAINER_TOKEN,
    GUARDRAIL_MODEL,
    check_token,
    chosen_negative_prompt,
    hf_env,
)
from cosmos_tui.engine.progress import MAX_RUNNING_PERCENT, TqdmParser
from cosmos_tui.errors import ValidationError

if TYPE_CHECKING:
    from cosmos_tui.config import HostConfig, ProfileConfig
    from cosmos_tui.engine.launch import RemoteLayout
    from cosmos_tui.remote import RemoteHost

NAME = "cosmos3"
ENTRY_POINT = "cosmos_framework.scripts.inference"
CONTAINER_REPO = "/workspace"
# The prompt input role whose video is each hint's precomputed control (inputs.py roles).
HINT_ROLES = {"edge": "edge", "blur": "vis", "depth": "depth", "seg": "seg", "wsm": "wsm"}
SEED_LIMIT = 2**32 - 1
MAX_GPUS = 64
REASONER_TEXT = "reasoner_text.txt"  # inference.py:1974-1975
# What the reasoner is asked (its prompt is one user message, inference.py:1949-1961);
# the user's own prompt goes last, after USER_PROMPT.
USER_PROMPT = "User prompt: "
REASONER_ASKS = {
    "video": "Watch the attached video. ",
    "image": "Look at the attached image. ",
    "text": "",
}
REASONER_INSTRUCTION = (
    "{look}Rewrite the user prompt below as one detailed paragraph for a video generation "
    "model: subjects and their appearance, actions, setting, lighting, colours and camera "
    "motion{seen}. Keep every element of the user prompt and contradict nothing in it. "
    "Answer with the paragraph only.\n"
)


def default_settings() -> ProfileConfig:
    """The ``[profiles.cosmos3]`` settings when the config has none."""
    # lazy: config (~10 ms) stays out of 'cosmos diagnose', which loads this module for
    # Cosmos3Parser; base.settings_for, the one caller, has loaded it
    from cosmos_tui.config import ProfileConfig

    return ProfileConfig(script="", extra_args=[], entry_point=ENTRY_POINT)


def options_of(params: GenerationParams) -> Cosmos3Options:
    """Return the Cosmos 3 options stored with a run's parameters."""
    return Cosmos3Options.from_dict(params.options)


def size_option(text: str) -> str:
    """Map ``Edge``/``Nano``/``Super`` (any case) to the registered checkpoint name.

    Raises:
        ValidationError: For any other word.
    """
    key = text.strip().lower().removeprefix("cosmos3-")
    if key not in SIZES:
        raise ValidationError(
            f"size {text!r} is not a Cosmos 3 size; use Edge, Nano or Super "
            "(or --checkpoint /path/on/host)",
            field="checkpoint",
        )
    return SIZES[key]


def parse_hint(text: str) -> tuple[str, dict[str, Any]]:
    """Parse ``--hint NAME[=WEIGHT[:PRESET]]`` (e.g. ``edge=0.5:high``).

    Raises:
        ValidationError: When the weight is not a number.
    """
    name, _, rest = text.partition("=")
    weight_text, _, preset = rest.partition(":")
    hint: dict[str, Any] = {"weight": 1.0}
    if weight_text.strip():
        try:
            hint["weight"] = float(weight_text)
        except ValueError:
            raise ValidationError(
                f"hint {text!r}: the weight {weight_text!r} is not a number "
                "(write NAME=WEIGHT, e.g. edge=0.5)",
                field="hints",
            ) from None
    if preset.strip():
        hint["preset"] = preset.strip()
    return name.strip(), hint


class Cosmos3Profile:
    """Cosmos 3 through the profile seam (engine/profiles/base.py)."""

    name = NAME
    # read by check/build_spec/build_command below; the rest is in params.options
    shared_params = frozenset({"seed", "num_gpus", "negative_prompt"})

    def check(self, params: GenerationParams, prompt: Prompt | None) -> GenerationParams:
        """Validate the shared parameters and the options; return them normalised.

        Without a mode the prompt decides: its video makes video2video, its image
        image2video, text alone text2video.
        """
        roles = frozenset(item.role for item in prompt.inputs) if prompt else frozenset()
        if "mode" not in params.options:
            mode = "video2video" if "color" in roles else "text2video"
            mode = "image2video" if "image" in roles and "color" not in roles else mode
            params = dataclasses.replace(params, options={**params.options, "mode": mode})
        options = options_of(params)
        if not 1 <= params.num_gpus <= MAX_GPUS:
            raise ValidationError(
                f"num_gpus must be from 1 to {MAX_GPUS}, not {params.num_gpus}", "num_gpus"
            )
        if not 0 <= params.seed <= SEED_LIMIT:
            raise ValidationError(f"seed must be from 0 to {SEED_LIMIT}", field="seed")
        validate_options(options, params.num_gpus, roles)
        return dataclasses.replace(params, options=options.to_dict())

    def local_files(self, params: GenerationParams) -> list[Path]:
        """None: every file this family sends is one of the prompt's inputs."""
        return []

    def wanted_roles(self, params: GenerationParams) -> set[str]:
        """The input video (video2video), the image (image2video) and hint controls."""
        options = options_of(params)
        if options.mode == REASONER:
            return {"color", "image"}  # the video when there is one, else the image
        roles = {HINT_ROLES[h] for h in options.hints if h in HINT_ROLES}
        if options.mode == "video2video":
            roles.add("color")
        elif options.mode == "image2video":
            roles.add("image")
        return roles

    def build_spec(
        self, run: Run, prompt: Prompt | None, container_inputs: Mapping[str, str]
    ) -> dict[str, Any]:
        """Return the run's sample (one OmniSampleOverrides, args.py:1048-1053)."""
        if prompt is None:
            raise ValidationError(f"run {run.id} has no prompt; create it from a prompt", "prompt")
        params = run.params
        options = options_of(params)
        if options.mode == REASONER:
            return reasoner_sample(run.id, prompt.text, container_inputs)
        sample: dict[str, Any] = {"name": run.id, "model_mode": options.mode}
        sample["prompt"] = prompt.text
        negative = chosen_negative_prompt(params)  # else neg_prompts.json's default
        if negative:
            sample["negative_prompt"] = negative
        vision_role = {"video2video": "color", "image2video": "image"}.get(options.mode)
        if vision_role is not None:
            if vision_role not in container_inputs:
                raise ValidationError(
                    f"{options.mode} needs the prompt's {vision_role} input", field="mode"
                )
            sample["vision_path"] = container_inputs[vision_role]
        sample["resolution"] = options.resolution
        sample["aspect_ratio"] = options.effective_aspect
        for key in ("num_frames", "fps", "num_steps", "guidance"):
            value = getattr(options, key)
            if value is not None:
                sample[key] = value
        sample["seed"] = params.seed
        for name in HINTS:
            hint = options.hints.get(name)
            if hint is None:
                continue
            entry: dict[str, Any] = {"weight": hint.weight}
            control = container_inputs.get(HINT_ROLES[name])
            if control is not None:
                entry["control_path"] = control
            if hint.preset is not None:
                key = "preset_edge_threshold" if name == "edge" else "preset_blur_strength"
                entry[key] = hint.preset
            sample[name] = entry
        return sample

    def build_command(self, run: Run, settings: ProfileConfig) -> list[str]:
        """Return ``python -m`` (one GPU) or ``torchrun --nproc-per-node=N -m`` argv."""
        # lazy: engine.launch pulls SQLAlchemy (~300 ms); 'cosmos diagnose' loads this module
        from cosmos_tui.engine.launch import CONTAINER_RUN, SPEC_NAME

        return command_for(run, settings, [f"{CONTAINER_RUN}/{SPEC_NAME}"])

    def mounts(
        self, host: HostConfig, layout: RemoteLayout, settings: ProfileConfig
    ) -> list[MountSpec]:
        """The checkout, the Hugging Face cache, the token file, inputs and run folder."""
        # lazy: engine.launch pulls SQLAlchemy (~300 ms); 'cosmos diagnose' loads this module
        from cosmos_tui.engine.launch import CONTAINER_INPUTS, CONTAINER_RUN

        mounts: list[MountSpec] = []
        if settings.repo_dir:
            mounts.append(MountSpec(layout.resolve(settings.repo_dir), CONTAINER_REPO))
        cache = settings.hf_cache_dir or host.hf_cache_dir
        if cache:
            mounts.append(MountSpec(layout.resolve(cache), CONTAINER_HF_HOME))
        if settings.token_file:
            mounts.append(MountSpec(layout.resolve(settings.token_file), CONTAINER_TOKEN, True))
        mounts.append(MountSpec(layout.inputs_dir, CONTAINER_INPUTS, read_only=True))
        mounts.append(MountSpec(layout.run_dir, CONTAINER_RUN))
        return mounts

    def env(
        self, host: HostConfig, settings: ProfileConfig, environ: Mapping[str, str]
    ) -> dict[str, str]:
        """The host's env table, ``HF_HOME`` and the token (see ``hf_token.hf_env``)."""
        return hf_env(host, settings, environ)

    async def preflight(
        self,
        run: Run,
        host: RemoteHost,
        layout: RemoteLayout,
        settings: ProfileConfig,
        environ: Mapping[str, str],
    ) -> None:
        """Refuse a run the host cannot serve, before anything is uploaded.

        The first run of a size downloads its weights from a gated repository
        (docs/cosmos.md, "Container"); without a token it would fail only after the
        container started. A token file must exist on the host. Super needs 80 GB GPUs
        (infer.md:77, 122-137): on smaller ones it would run out of memory after the
        weights were loaded.

        Raises:
            ValidationError: Saying where to put a token, or which GPUs are too small.
        """
        options = options_of(run.params)
        if options.size == "Cosmos3-Super":
            await check_super_gpus(run, host)
        # a local checkpoint folder (no size) needs no download; the guardrail models do,
        # unless they are off (the double downloads them as its own repository)
        models = [options.checkpoint] if options.size is not None else []
        if options.guardrails != "off":
            models.append(GUARDRAIL_MODEL)
        await check_token(host, layout, settings, environ, section="cosmos3", models=models)

    def run_env(self, run: Run) -> dict[str, str]:
        """None: every variable comes from the host and the profile settings."""
        return {}

    def run_mounts(self, run: Run) -> list[MountSpec]:
        """A local checkpoint: the host folder at the same path, read-only.

        ``--checkpoint-path`` then names it unchanged (common.py:657-683: a registered
        name or an existing folder); a folder missing on the host is refused before the
        container is made.
        """
        options = options_of(run.params)
        if options.size is not None:
            return []
        return [MountSpec(options.checkpoint, options.checkpoint, read_only=True, key="checkpoint")]

    def progress_parser(self) -> Cosmos3Parser:
        """Cosmos 3's parser (rank 0's lines only)."""
        return Cosmos3Parser()

    def has_output(self, names: Iterable[str]) -> bool:
        """A ``vision.mp4`` or ``vision.jpg`` (omni.py:1779-1785).

        A reasoner run's result is its text, which the lifecycle checks itself.
        """
        return any(PurePosixPath(n).name in ("vision.mp4", "vision.jpg") for n in names)


def command_for(
    run: Run, settings: ProfileConfig, input_files: Sequence[str], keep_going: bool = False
) -> list[str]:
    """Return the argv that runs ``input_files`` (a run's sample, or a batch's files).

    The setup arguments are ``run``'s (every member of a batch shares them);
    ``keep_going`` (a batch) makes a handled error end only its sample
    (common/inference.py:262-266), after the configured ``extra_args``.
    """
    # lazy: engine.launch pulls SQLAlchemy (~300 ms); 'cosmos diagnose' loads this module
    from cosmos_tui.engine.launch import CONTAINER_RUN, OUTPUT_DIR_NAME

    options = options_of(run.params)
    gpus = run.params.num_gpus
    entry = settings.entry_point or ENTRY_POINT
    if gpus > 1:
        argv = ["torchrun", f"--nproc-per-node={gpus}", "-m", entry]
    else:
        argv = ["python", "-m", entry]
    argv += ["-i", *input_files, "-o", f"{CONTAINER_RUN}/{OUTPUT_DIR_NAME}"]
    argv += ["--checkpoint-path", options.checkpoint]
    argv.append(f"--parallelism-preset={options.parallelism}")
    if options.parallelism == "latency" and gpus > 1:
        argv.append("--dp-shard-size=1")  # infer.md:105, 183
    if options.guardrails == "off":
        argv.append("--no-guardrails")
    elif options.guardrails == "offload":
        argv.append("--offload-guardrail-models")
    argv += list(settings.extra_args)
    if keep_going:
        # A batch's own flags come last (the last of a repeated flag wins): one sample a
        # model batch (several need equal sampling, I:1568-1573, and transfer refuses
        # them, I:1529), a handled error ends only its sample, and no sample is skipped
        # as invalid (its "skip" outputs would look like a result).
        argv += ["--max-num-seqs=1", "--keep-going", "--no-skip-invalid-samples"]
    return argv


def sent_text(sample: Mapping[str, Any]) -> str:
    """The user's own prompt text inside a reasoner sample (after USER_PROMPT)."""
    prompt = str(sample.get("prompt", ""))
    return prompt.rsplit(USER_PROMPT, 1)[-1] if USER_PROMPT in prompt else prompt


def reasoner_kind(has_video: bool, has_image: bool) -> str:
    """What a reasoner sample is conditioned on: ``video``, ``image`` or ``text`` alone."""
    return "video" if has_video else ("image" if has_image else "text")


def reasoner_sample(name: str, text: str, container_inputs: Mapping[str, str]) -> dict[str, Any]:
    """The reasoner sample of a prompt enhancement (args.py:700-735).

    The prompt's video, else its image, is the ``vision_path`` (a video is sampled at
    2 fps, inference.py:579-608); a text-only prompt sends none. No sampling settings:
    upstream's defaults decode greedily, 1024 new tokens at most
    (defaults/reasoner/sample_args.json).
    """
    vision = container_inputs.get("color") or container_inputs.get("image")
    kind = reasoner_kind("color" in container_inputs, "image" in container_inputs)
    seen = "" if kind == "text" else f" as they appear in the {kind}"
    instruction = REASONER_INSTRUCTION.format(look=REASONER_ASKS[kind], seen=seen)
    sample: dict[str, Any] = {"name": name, "model_mode": REASONER}
    sample["prompt"] = f"{instruction}{USER_PROMPT}{text}"
    if vision is not None:
        sample["vision_path"] = vision
    return sample


_OTHER_RANK = re.compile(r"\[RANK [1-9]\d*\]")
_HF_DOWNLOAD = re.compile(r"\bhf download\b")
_LOADED = re.compile(r"Loaded (\d+) samples")
_SAVED = re.compile(r"Saved (?:sample|transfer|reasoner) outputs to")
_INSTALL = re.compile(r"^(?:Resolved|Prepared|Installed|Audited) \d+ package")


class Cosmos3Parser:
    """Phases and percent from Cosmos 3's log (docs/cosmos.md, "Log lines").

    Phases: installing (entrypoint.sh's ``uv pip install``), downloading checkpoints (the
    logged ``hf download`` command), loading, then each sample's ``Sampling`` bar; a
    ``Saved ... outputs`` line ends a sample, so a batch of N shows sample i of N. Lines
    from other ranks (``[RANK r]``, log.py:102-108) never move progress: only rank 0
    draws the bar (utils/progress_bar.py:47-59).
    """

    def __init__(self) -> None:
        self.bar = TqdmParser(default_phase="generating")
        self.phase = "starting"
        self.samples = 1
        self.done = 0
        self.sampling = False

    def feed(self, line: str, now: float) -> bool:
        """Read one clean log line; True when the phase or percent moved."""
        if _OTHER_RANK.search(line):
            return False
        if _INSTALL.search(line.strip()):
            self.phase = "installing"
            return True
        if _HF_DOWNLOAD.search(line):
            self.phase = "downloading checkpoints"
            return True
        loaded = _LOADED.search(line)
        if loaded:
            self.samples = max(1, int(loaded.group(1)))
            self.phase = "loading models"
            return True
        if _SAVED.search(line):
            self.done = min(self.samples, self.done + 1)
            self.bar.fraction = 0.0
            self.sampling = False
            return True
        if self.bar.feed(line, now) and self.bar.phase.lower().startswith("sampling"):
            self.sampling = True
            self.phase = "generating"
            return True
        return False

    def estimate(self, now: float, expected_total: float | None) -> Any:
        """Percent over the batch's samples (within the current sample's bar)."""
        fraction = self.bar.fraction if self.sampling else 0.0
        overall = (self.done + fraction) / self.samples
        phase = self.phase
        if self.samples > 1 and phase == "generating":
            phase = f"generating sample {min(self.done + 1, self.samples)}/{self.samples}"
        eta = self.bar.remaining if self.sampling and self.samples == 1 else None
        return Progress(phase=phase, percent=min(MAX_RUNNING_PERCENT, 100.0 * overall),
                        eta_seconds=eta)  # fmt: skip


async def check_super_gpus(run: Run, host: RemoteHost) -> None:
    """Refuse Cosmos3-Super on GPUs of less than 80 GB (the run's own, else the host's).

    A host whose GPUs cannot be read is left to the run (the GPUs pane says why).

    Raises:
        ValidationError: Naming each GPU that is too small and its memory.
    """
    # lazy: remote.gpu loads asyncssh, aiodocker and aiohttp (~0.3 s), which neither the
    # services nor 'cosmos diagnose' load (both import this module)
    from cosmos_tui.remote.gpu import query_gpus

    reading = await query_gpus(host.ssh)
    chosen = [s for s in reading.samples if not run.gpus or s.index in run.gpus]
    small = [
        s
        for s in chosen
        if s.memory_total_mib is not None and s.memory_total_mib < SUPER_MIN_GPU_MIB
    ]
    if small:
        listed = ", ".join(
            f"GPU {s.index} ({s.name}) has {(s.memory_total_mib or 0) * 2**20 / 10**9:.0f} GB"
            for s in small
        )
        raise ValidationError(
            f"Cosmos3-Super (32B) needs GPUs of {SUPER_MIN_GPU_GIB} GB (infer.md:77, "
            f"122-137); on {host.name} {listed}: it would run out of memory; use --size nano, "
            f"or a host with {SUPER_MIN_GPUS} or more {SUPER_MIN_GPU_GIB} GB GPUs",
            field="checkpoint",
        )
