"""``cosmos upscale`` and ``cosmos enhance``: queue the other run types."""

from __future__ import annotations

import click

from cosmos_tui.cli.context import CliContext, echo
from cosmos_tui.cli.options import Number
from cosmos_tui.cli.records import priority_option
from cosmos_tui.services.extra import ExtrasService

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
@priority_option()
@pass_cli
def enhance(
    ctx: CliContext, prompt_ids: tuple[str, ...], overwrite: bool, force: bool, priority: int
) -> None:
    """Queue prompt enhancement (Pixtral upsampler) of PROMPT_IDS; print the run ids.

    Several prompts share one container. When a run completes, the enhanced text becomes
    a new prompt linked to its parent, or replaces the text with --overwrite.
    """
    runs = ctx.run(
        lambda bench: ExtrasService.of(bench).create_enhance(
            list(prompt_ids), overwrite, force, priority
        )
    )
    for run in runs:
        echo(run.id)
