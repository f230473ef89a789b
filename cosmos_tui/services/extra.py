"""Other run types of the facade: 4K upscale and prompt enhancement.

Both are queued runs like any other, started by the queue (``cosmos queue run``).

- Upscale: a run of type ``upscale`` linked to its source run (``source_run_id``), or of
  any local video. Its input video travels as the ``color`` input of a small carrier
  prompt named ``upscale of <source>`` (a child of the source's prompt), so the run
  lifecycle uploads it like any other input; its text is the guiding prompt, or empty.
- Enhance: a run of type ``enhance`` of a prompt; when it completes, the upsampled text
  becomes a new child prompt (``parent_id``) or, with overwrite, replaces the prompt's
  text (refused when the prompt has runs, unless forced).
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from cosmos_tui.containment import output_file
from cosmos_tui.domain import GenerationParams, Prompt, Run, RunState, RunType
from cosmos_tui.engine.inputs import fingerprint, in_thread
from cosmos_tui.engine.video_probe import probe_video
from cosmos_tui.errors import NotFound, ValidationError
from cosmos_tui.ids import check_id_text, kind_of
from cosmos_tui.params import MAX_FPS, validate_params, validate_priority

if TYPE_CHECKING:
    from cosmos_tui.services.workbench import Workbench

ENHANCE_OVERWRITE = "overwrite"
ENHANCE_PROFILES = ("transfer1", "cosmos3")
ENHANCE_FORCE = "force"


class ExtrasService:
    """Upscale and enhance operations over an open Workbench."""

    def __init__(self, bench: Workbench) -> None:
        self.bench = bench

    @classmethod
    def of(cls, bench: Workbench) -> ExtrasService:
        """Return the service of ``bench``."""
        return cls(bench)

    async def create_upscale(
        self,
        source: str,
        weight: float | None = None,
        prompt_text: str | None = None,
        use_source_prompt: bool = False,
        priority: int = 0,
    ) -> Run:
        """Queue a 4K upscale of a completed run's video or of a local video file.

        Args:
            source: A run id (or unique prefix) or the path of a local MP4 file.
            weight: The upscale control weight (0..1; default from the config).
            prompt_text: Text to guide the upscaler.
            use_source_prompt: Guide it with the source run's prompt instead.
            priority: Queue priority.

        Raises:
            ValidationError: A source run that did not complete or has no video, a file
                that is not an MP4, a weight out of range.
            NotFound: An unknown run id.

        """
        validate_priority(priority)
        if use_source_prompt and prompt_text is not None:
            raise ValidationError(
                "give either --prompt (the source run's prompt) or --prompt-text, not both",
                field="prompt",
            )
        if weight is not None and weight == 0:
            raise ValidationError(
                "an upscale weight of 0 turns the upscaler off; give a weight above 0 (e.g. 0.5)",
                field="upscale_weight",
            )
        source_run: Run | None = None
        path = Path(source).expanduser()
        if path.is_file():
            video = path
        elif _looks_like_run_id(source):
            source_run = await self.bench.get_run(source)
            video = self._output_video(source_run)
        else:
            raise ValidationError(
                f"'{source}' is neither a run id nor a video file; give a completed run's id "
                "or the path of an MP4",
                field="source",
            )
        text = prompt_text or ""
        if use_source_prompt:
            if source_run is None or not source_run.prompt_text:
                raise ValidationError("--prompt needs a source run with a prompt", "prompt")
            text = source_run.prompt_text
        params = self.bench.config.defaults
        if weight is not None:
            params = dataclasses.replace(params, upscale_weight=weight)
        # The upscale plays at the source's frame rate: the source run's, or the file's.
        if source_run is not None:
            params = dataclasses.replace(params, fps=source_run.params.fps)
        else:
            info = await asyncio.to_thread(probe_video, video)
            if info is not None:
                params = dataclasses.replace(params, fps=min(info.fps, MAX_FPS))
        validate_params(params)
        item = await in_thread(lambda cancelled: fingerprint("color", video, cancelled))
        label = source_run.id if source_run else video.name
        carrier = await self.bench.store.add_prompt(
            text,
            [item],
            name=f"upscale of {label}"[:200],
            parent_id=source_run.prompt_id if source_run else None,
            video_dir=video.parent,
        )
        return await self.bench.store.add_run(
            carrier.id,
            params,
            RunType.UPSCALE,
            priority=priority,
            source_run_id=source_run.id if source_run else None,
            reason=f"upscale of {label} queued",
        )

    def _output_video(self, run: Run) -> Path:
        if run.state != RunState.COMPLETED:
            raise ValidationError(
                f"run {run.id} is {run.state.value}; only a completed run's video can be upscaled",
                field="source",
            )
        folder = self.bench.output_dir(run.id)
        for name in run.outputs:
            path = output_file(folder, name)
            if name.endswith(".mp4") and "input_control" not in name and path is not None:
                return path
        raise ValidationError(
            f"run {run.id} has no output video in {folder}; see 'cosmos verify'", field="source"
        )

    async def create_enhance(
        self, prompt_ids: list[str], overwrite: bool = False, force: bool = False,
        priority: int = 0, profile: str = "transfer1", checkpoint: str | None = None,
        guardrails: str | None = None,
    ) -> list[Run]:  # fmt: skip
        """Queue prompt enhancement runs.

        ``transfer1`` is Transfer1's Pixtral upsampler on the prompt's video (compatible
        runs share one container); ``cosmos3`` is Cosmos 3's reasoner on the prompt's
        video, else its image, else its text alone (those that see the same kind share one
        container). Every prompt
        and setting is checked before any run is queued, so a bad id, value or refused
        overwrite queues nothing.

        Args:
            prompt_ids: The prompts to enhance.
            overwrite: Replace each prompt's text instead of making a child prompt.
            force: Overwrite even a prompt that has runs.
            priority: Queue priority.
            profile: ``transfer1`` or ``cosmos3``.
            checkpoint: Cosmos 3 only: a size (Edge, Nano) or a checkpoint folder on the
                host; Nano when None.
            guardrails: Cosmos 3 only: on (default), offload or off.

        Raises:
            ValidationError: Overwrite of a prompt that has runs, without ``force``;
                ``force`` without ``overwrite``; another profile, or Cosmos 3 settings
                that upstream or one GPU cannot take.
            NotFound: An unknown prompt, or (Transfer1) one without an input video.

        """
        validate_priority(priority)
        if force and not overwrite:
            raise ValidationError("--force only applies with --overwrite", field="force")
        if profile not in ENHANCE_PROFILES:
            raise ValidationError(
                f"prompt enhancement runs on transfer1 (its Pixtral upsampler) or cosmos3 "
                f"(its reasoner), not {profile!r}",
                field="profile",
            )
        if profile != "cosmos3" and (checkpoint is not None or guardrails is not None):
            raise ValidationError(
                "--size, --checkpoint and --guardrails apply to --profile cosmos3 (the "
                "reasoner); Transfer1's upsampler has no such settings",
                field="profile",
            )
        prompts = [await self.bench.get_prompt(text_id) for text_id in prompt_ids]
        mode = ENHANCE_OVERWRITE if overwrite else "child"
        params: dict[str, GenerationParams] = {}
        for prompt in prompts:
            if overwrite and prompt.run_count and not force:
                raise ValidationError(
                    f"prompt {prompt.id} has {prompt.run_count} run(s); overwriting its text "
                    "would misdescribe them. Enhance into a new child prompt (drop "
                    "--overwrite) or add --force",
                    field="overwrite",
                )
            if profile == "cosmos3":
                params[prompt.id] = self._reasoner_params(prompt, mode, checkpoint, guardrails)
            elif prompt.input("color") is None:
                raise NotFound(f"prompt {prompt.id} has no input video to describe")
        runs = []
        for prompt in prompts:
            runs.append(
                await self.bench.store.add_run(
                    prompt.id,
                    params.get(prompt.id, self.bench.config.defaults),
                    RunType.ENHANCE,
                    profile=profile,
                    priority=priority,
                    reason=f"prompt enhancement queued ({mode})",
                )
            )
            if overwrite and profile != "cosmos3":  # Cosmos 3 keeps it in its options
                await self.bench.store.update_run(runs[-1].id, spec={"mode": mode})
        return runs

    def _reasoner_params(
        self, prompt: Prompt, mode: str, checkpoint: str | None, guardrails: str | None
    ) -> GenerationParams:
        """The validated parameters of a Cosmos 3 reasoner run on ``prompt``."""
        # lazy: profiles.cosmos3 (~12 ms) is for Cosmos 3 runs; the services import this module
        from cosmos_tui.engine.profiles.cosmos3 import size_option

        if not prompt.text.strip():
            raise ValidationError(
                f"prompt {prompt.id} has no text: the reasoner needs one (args.py:726-727)",
                field="text",
            )
        chosen = checkpoint or "nano"
        options = {
            "mode": "reasoner",
            "checkpoint": chosen if chosen.startswith("/") else size_option(chosen),
            "guardrails": guardrails or "on",
            "enhance": mode,
        }
        return self.bench.run_params(
            prompt, {"profile": "cosmos3", "options": options, "num_gpus": 1}
        )


def _looks_like_run_id(text: str) -> bool:
    try:
        cleaned = check_id_text(text)
    except ValidationError:
        return False
    return kind_of(cleaned) in (None, "run")
