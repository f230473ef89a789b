"""Commands over recorded prompts and runs: create, list, show, search, rate, delete."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from cosmos_tui.cli.context import CliContext, echo, echo_json, fail
from cosmos_tui.cli.dry_run import show_dry_run
from cosmos_tui.cli.options import NEGATIVE_ARGS, Number
from cosmos_tui.cli.profile_options import profile_options, profile_overrides
from cosmos_tui.cli.render import prompt_detail, prompts_table, run_detail, runs_table
from cosmos_tui.cli.serialize import prompt_json, run_json
from cosmos_tui.domain import BLUR_LEVELS, RunState, RunType
from cosmos_tui.errors import ValidationError
from cosmos_tui.params import FLOAT_RANGES, INT_RANGES, PRIORITY_MAX, PRIORITY_MIN
from cosmos_tui.services import Workbench
from cosmos_tui.store.repositories import PromptFilter, RunFilter

pass_cli = click.make_pass_decorator(CliContext)

F = TypeVar("F", bound=Callable[..., Any])


def parse_when(text: str | None) -> datetime | None:
    """Parse ``2026-11-01``, an ISO datetime, or a relative age like ``3d``, ``12h``, ``30m``.

    Raises:
        click.BadParameter: For anything else.

    """
    if text is None:
        return None
    match = re.fullmatch(r"(\d{1,9})([smhdw])", text.strip())
    hint = "use 2026-11-01, 2026-11-01T09:30 or an age like 3d, 12h"
    try:
        if match:
            unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
            age = timedelta(**{unit[match.group(2)]: int(match.group(1))})
            return datetime.now(UTC) - age
        value = datetime.fromisoformat(text.strip())
        return value if value.tzinfo else value.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise click.BadParameter(f"'{text}' is not a usable date: {hint}") from exc


def priority_option() -> Callable[[F], F]:
    """The --priority option of every command that queues runs (a bounded integer)."""
    return click.option(
        "--priority",
        type=Number(int, PRIORITY_MIN, PRIORITY_MAX),
        default=0,
        show_default=True,
        help=f"Higher runs first ({PRIORITY_MIN}..{PRIORITY_MAX}).",
    )


def run_options(function: Any) -> Any:
    """Attach every generation parameter option (shared by create run and inference)."""

    def parsed(name: str) -> Number:
        """Parse only: the service checks the range and names the field (exit 1)."""
        if name in INT_RANGES:
            return Number(int, *INT_RANGES[name], enforce=False)
        return Number(float, *FLOAT_RANGES[name], enforce=False)

    def span(name: str) -> str:
        low, high = INT_RANGES.get(name) or FLOAT_RANGES[name]
        return f"{low:g}..{high:g}"

    options = [
        click.option(
            "--weights",
            nargs=4,
            type=Number(float, 0, 1, enforce=False),
            metavar="V E D S",
            help="Control weights for vis, edge, depth, seg, each 0..1 (0 turns it off).",
        ),
        click.option(
            "--steps", type=parsed("num_steps"), help=f"Diffusion steps, {span('num_steps')}."
        ),
        click.option("--guidance", type=parsed("guidance"), help=f"Guidance, {span('guidance')}."),
        click.option("--seed", type=parsed("seed"), help=f"Random seed, {span('seed')}."),
        click.option(
            "--sigma-max", type=parsed("sigma_max"), help="sigma_max (below 80 keeps the input)."
        ),
        click.option("--fps", type=parsed("fps"), help=f"Output frames per second, {span('fps')}."),
        click.option("--blur", type=click.Choice(BLUR_LEVELS), help="blur_strength of vis."),
        click.option("--canny", type=click.Choice(BLUR_LEVELS), help="canny_threshold of edge."),
        click.option(
            "--gpus", type=parsed("num_gpus"), help=f"Number of GPUs, {span('num_gpus')}."
        ),
        click.option(
            "--negative",
            help="Negative prompt for this run only (text starting with '-': --negative=-x).",
        ),
        priority_option(),
    ]
    for option in reversed(options):
        function = option(function)
    return profile_options(function)


def overrides_from(options: dict[str, Any]) -> dict[str, Any]:
    """Map CLI option values to GenerationParams field overrides (and the profile's)."""
    result: dict[str, Any] = {
        "num_steps": options.get("steps"),
        "guidance": options.get("guidance"),
        "seed": options.get("seed"),
        "sigma_max": options.get("sigma_max"),
        "fps": options.get("fps"),
        "blur_strength": options.get("blur"),
        "canny_threshold": options.get("canny"),
        "num_gpus": options.get("gpus"),
        "negative_prompt": options.get("negative"),
    }
    weights = options.get("weights")
    if weights:
        for hint, value in zip(("vis", "edge", "depth", "seg"), weights, strict=True):
            result[f"{hint}_weight"] = value
    shared = {k: v for k, v in result.items() if v is not None}
    try:
        return profile_overrides(options, shared)
    except ValidationError as exc:
        fail(exc.message)


@click.group()
def create() -> None:
    """Create a prompt or a run."""


@create.command("prompt")
@click.argument("text")
@click.argument("video_dir", type=click.Path(path_type=Path), required=False)
@click.option("--name", help="A short name to find the prompt by.")
@click.option("--negative", help="Negative prompt (default: the config's).")
@click.option(
    "--allow-mismatch",
    is_flag=True,
    help="Accept controls whose frame count or resolution differ from color.mp4 "
    "(the model resamples them).",
)
@click.option("--no-video", is_flag=True, help="A text-only prompt (Cosmos 3's text2video).")
@pass_cli
def create_prompt(
    ctx: CliContext,
    text: str,
    video_dir: Path | None,
    name: str | None,
    negative: str | None,
    allow_mismatch: bool,
    no_video: bool,
) -> None:
    """Create a prompt from TEXT and the videos in VIDEO_DIR; print its id.

    VIDEO_DIR must hold color.mp4; depth.mp4, segmentation.mp4 (or seg.mp4), edge.mp4
    and vis.mp4 are used as precomputed controls when present. Every video is probed:
    controls whose frame count or resolution differ from color.mp4 are refused unless
    --allow-mismatch. For Cosmos 3 it may hold only image.jpg (image2video); --no-video
    makes a text-only prompt (text2video).
    """
    if (video_dir is None) != no_video:
        raise click.UsageError(
            "Missing argument 'VIDEO_DIR' (or --no-video for a text-only prompt)"
            if video_dir is None
            else "give VIDEO_DIR or --no-video, not both"
        )
    if video_dir is None:
        prompt = ctx.run(lambda bench: bench.create_prompt(text, None, name, negative))
        echo(prompt.id)
        return
    folder = video_dir

    async def _create(bench: Workbench) -> Any:
        prompt = await bench.create_prompt(
            text, folder, name, negative, allow_mismatch=allow_mismatch
        )
        return prompt, await bench.inspect_inputs(folder)

    prompt, report = ctx.run(_create)
    for line in (*report.mismatches, *report.notes):
        echo(f"note: {line}", err=True)
    echo(prompt.id)


@create.command("run")
@click.argument("prompt_id")
@run_options
@click.option("--host", help="Pin it to this configured host or cluster (default: anywhere).")
@click.option("--dry-run", is_flag=True, help="Print what the run would send; record nothing.")
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: print it as JSON.")
@pass_cli
def create_run(
    ctx: CliContext,
    /,
    prompt_id: str,
    priority: int,
    host: str | None,
    dry_run: bool,
    as_json: bool,
    **options: Any,
) -> None:
    """Create a queued run of PROMPT_ID; print its id.

    The queue driver ('cosmos queue run') places it; with --host only there.
    """
    overrides = overrides_from(options)
    if dry_run:
        show_dry_run(ctx, [prompt_id], overrides, as_json, host=host, priority=priority)
        return
    run = ctx.run(
        lambda bench: bench.create_run(prompt_id, overrides, priority=priority, target=host)
    )
    echo(run.id)


@click.command("list")
@click.argument("what", type=click.Choice(["prompts", "runs"]))
@click.option("--state", "states", multiple=True, type=click.Choice([s.value for s in RunState]),
              help="Runs in this state (repeatable).")  # fmt: skip
@click.option("--type", "run_type", type=click.Choice([t.value for t in RunType]))
@click.option("--prompt", "prompt_id", help="Runs of this prompt.")
@click.option("--rating", "min_rating", type=click.IntRange(1, 5), help="Runs rated at least.")
@click.option("--since", help="Created at or after (2026-11-01, or an age: 3d, 12h).")
@click.option("--until", help="Created before.")
@click.option("--text", help="Prompt text or name contains.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0, 10**9), default=0, help="Skip this many.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (see docs/cli-json.md).")
@pass_cli
def list_cmd(ctx: CliContext, /, what: str, **opts: Any) -> None:
    """List prompts or runs, newest first."""
    since, until = parse_when(opts["since"]), parse_when(opts["until"])
    if what == "prompts":
        if opts["states"] or opts["run_type"] or opts["prompt_id"] or opts["min_rating"]:
            fail("--state, --type, --prompt and --rating filter runs; use 'cosmos list runs'")

        async def _prompts(bench: Workbench) -> Any:
            where = PromptFilter(text=opts["text"], since=since, until=until)
            return await bench.list_prompts(where, opts["offset"], opts["limit"])

        page = ctx.run(_prompts)
        if opts["as_json"]:
            echo_json({"total": page.total, "offset": page.offset,
                       "items": [prompt_json(p) for p in page.items]})  # fmt: skip
        else:
            echo(prompts_table(page))
        return

    async def _runs(bench: Workbench) -> Any:
        prompt_id = await bench.resolve(opts["prompt_id"], "prompt") if opts["prompt_id"] else None
        where = RunFilter(
            states=frozenset(RunState(s) for s in opts["states"]),
            type=RunType(opts["run_type"]) if opts["run_type"] else None,
            prompt_id=prompt_id,
            min_rating=opts["min_rating"],
            since=since,
            until=until,
            text=opts["text"],
        )
        return await bench.list_runs(where, opts["offset"], opts["limit"])

    page = ctx.run(_runs)
    if opts["as_json"]:
        echo_json({"total": page.total, "offset": page.offset,
                   "items": [run_json(r) for r in page.items]})  # fmt: skip
    else:
        echo(runs_table(page))


@click.command()
@click.argument("object_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (see docs/cli-json.md).")
@pass_cli
def show(ctx: CliContext, object_id: str, as_json: bool) -> None:
    """Show a prompt or run (id or unique prefix) in detail."""

    async def _show(bench: Workbench) -> Any:
        full_id = await bench.resolve(object_id)
        if full_id.startswith("ps_"):
            return await bench.get_prompt(full_id), None
        return await bench.get_run(full_id), await bench.runs.failure(full_id)

    item, failure = ctx.run(_show)
    is_prompt = item.id.startswith("ps_")
    if as_json:
        echo_json(prompt_json(item) if is_prompt else run_json(item))
    else:
        echo(prompt_detail(item) if is_prompt else run_detail(item, failure))


@click.command()
@click.argument("text")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_cli
def search(ctx: CliContext, text: str, limit: int, as_json: bool) -> None:
    """Find prompts (and their runs) whose text or name contains TEXT."""
    result = ctx.run(lambda bench: bench.search(text, limit))
    if as_json:
        echo_json(
            {
                "prompts": [prompt_json(p) for p in result.prompts.items],
                "runs": [run_json(r) for r in result.runs.items],
                "total_prompts": result.prompts.total,
                "total_runs": result.runs.total,
            }
        )
        return
    echo(prompts_table(result.prompts))
    echo()
    echo(runs_table(result.runs))


@click.command(context_settings=NEGATIVE_ARGS)
@click.argument("run_id")
@click.argument("rating", type=click.IntRange(0, 5))
@pass_cli
def rate(ctx: CliContext, run_id: str, rating: int) -> None:
    """Rate RUN_ID from 1 (worst) to 5 (best); 0 clears the rating."""
    run = ctx.run(lambda bench: bench.rate(run_id, rating or None))
    echo(f"{run.id} rated {rating}/5" if rating else f"{run.id} rating cleared")


@click.command()
@click.argument("object_id")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--keep-outputs", is_flag=True, help="Keep the local output folders.")
@pass_cli
def delete(ctx: CliContext, object_id: str, yes: bool, keep_outputs: bool) -> None:
    """Delete a prompt (with all its runs) or a run, after showing what goes."""

    async def _delete(bench: Workbench) -> tuple[Path, ...] | None:
        plan = await bench.plan_delete(object_id)
        echo(f"This deletes {plan.kind} {plan.id}")
        if plan.kind == "prompt":
            echo(f"  and its {len(plan.run_ids)} run(s): {', '.join(plan.run_ids) or '-'}")
        for folder in plan.output_dirs:
            verb = "keeps" if keep_outputs else "removes"
            echo(f"  {verb} outputs in {folder}")
        if not yes:
            try:
                confirmed = click.confirm("Delete?", default=False)
            except click.Abort:
                fail("not confirmed; pass --yes to delete without asking")
            if not confirmed:
                return None
        return await bench.delete(plan, keep_outputs=keep_outputs)

    left = ctx.run(_delete)
    if left is None:
        echo("nothing deleted")
        raise SystemExit(1)
    if left:
        fail(f"deleted, but could not remove {', '.join(map(str, left))}; remove it by hand")
    echo("deleted")
