"""``cosmos upscale`` and ``cosmos enhance``: queue the other run types."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cosmos_tui.cli.context import CliContext, echo
from cosmos_tui.cli.options import Number
from cosmos_tui.cli.records import priority_option
from cosmos_tui.engine.profiles.cosmos3_rules import GUARDRAILS
from cosmos_tui.errors import ValidationError
from cosmos_tui.services.extra import ENHANCE_PROFILES, ExtrasService

if TYPE_CHECKING:
    from cosmos_tui.domain import Run
    from cosmos_tui.services.workbench import Workbench

pass_cli = click.make_pass_decorator(CliContext)


@click.command()
@click.argument("source")
@click.option(
    "--weight",
    type=Number(float, 0, 1, enforce=False),
    help="Upscale control weight, 0..1 (default 0.5).",
)
@click.option("--prompt", "use_prompt", is_flag=True, help="Guide it with the source's prompt.")
@click.option("--prompt-text", help="Guide it with this text instead.")
@priority_option()
@pass_cli
def upscale(
    ctx: CliContext,
    source: str,
    weight: float | None,
    use_prompt: bool,
    prompt_text: str | None,
    priority: int,
) -> None:
    """Queue a 4K upscale of SOURCE (a completed run's id, or an MP4 file); print its id.

    The run has type 'upscale' and is linked to its source run. Start it with
    'cosmos queue run'.
    """
    run = ctx.run(
        lambda bench: ExtrasService.of(bench).create_upscale(
            source, weight, prompt_text, use_prompt, priority
        )
    )
    echo(run.id)


@click.command()
@click.argument("prompt_ids", nargs=-1, required=True)
@click.option("--overwrite", is_flag=True, help="Replace the prompt's text instead of a child.")
@click.option("--force", is_flag=True, help="Overwrite even when the prompt has runs.")
@click.option(
    "--profile",
    type=click.Choice(ENHANCE_PROFILES),
    default="transfer1",
    show_default=True,
    help="transfer1: its Pixtral upsampler; cosmos3: Cosmos 3's reasoner.",
)
@click.option("--size", help="cosmos3: Edge or Nano (default).")
@click.option("--checkpoint", help="cosmos3: a checkpoint folder on the host instead.")
@click.option(
    "--guardrails",
    type=click.Choice(GUARDRAILS),
    help="cosmos3: guardrails on (default), offload (to CPU) or off.",
)
@priority_option()
@pass_cli
def enhance(
    ctx: CliContext,
    prompt_ids: tuple[str, ...],
    overwrite: bool,
    force: bool,
    profile: str,
    size: str | None,
    checkpoint: str | None,
    guardrails: str | None,
    priority: int,
) -> None:
    """Queue prompt enhancement of PROMPT_IDS; print the run ids.

    transfer1 (default): Transfer1's Pixtral upsampler describes the prompt's video;
    several prompts share one container. cosmos3: Cosmos 3's reasoner rewrites the prompt
    from its video, else its image, else its text alone; prompts seen the same way share
    one container. When a run
    completes, the enhanced text becomes a new prompt linked to its parent, or replaces
    the text with --overwrite.
    """

    async def queue(bench: Workbench) -> list[Run]:
        if size is not None and checkpoint is not None:
            raise ValidationError("give --size or --checkpoint, not both", field="checkpoint")
        if checkpoint is not None and not checkpoint.startswith("/"):
            raise ValidationError(
                f"--checkpoint {checkpoint!r}: give the absolute path of a checkpoint folder "
                "on the host (or --size edge|nano)",
                field="checkpoint",
            )
        return await ExtrasService.of(bench).create_enhance(
            list(prompt_ids), overwrite, force, priority, profile, size or checkpoint,
            guardrails,
        )  # fmt: skip

    runs = ctx.run(queue)
    for run in runs:
        echo(run.id)
