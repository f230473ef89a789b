"""``cosmos host prune``: remove this installation's leftovers on hosts, listing them first."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from cosmos_tui.cli.context import CliContext, echo_json, guard
from cosmos_tui.engine.prune import PruneItem, PrunePlan, carry_out, parse_age, plan_prune

if TYPE_CHECKING:
    from cosmos_tui.services import Workbench

pass_cli = click.make_pass_decorator(CliContext)


@click.command("prune")
@click.argument("host", required=False)
@click.option(
    "--older-than",
    default="7d",
    show_default=True,
    help="Only what ended or was left at least this long ago (s, m, h, d, w).",
)
@click.option("--dry-run", is_flag=True, help="Only show what would be removed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_cli
def prune(cli: CliContext, host: str | None, older_than: str, dry_run: bool, as_json: bool) -> None:
    """Remove exited containers of ended runs, stale .part files and unused inputs.

    Only this installation's containers (its owner id, or legacy ones whose run this
    database knows) and files under the host's tool directory; running containers and
    other installations' containers are never touched (they are listed as foreign).
    What goes is listed first. Exit status 1 when something could not be removed or a
    host could not be reached.
    """
    age = guard(lambda: parse_age(older_than))
    config = cli.load_config()
    if host is not None:
        guard(lambda: config.host(host))
    names = [host] if host else [h.name for h in config.hosts]

    async def action(bench: Workbench) -> tuple[PrunePlan, list[tuple[PruneItem, str | None]]]:
        plan = await plan_prune(bench, names, age)
        if not as_json:
            click.echo(render_plan(plan, dry_run))
        done = [] if dry_run else await carry_out(bench, plan)
        return plan, done

    plan, done = cli.run(action)
    failed = [(item, error) for item, error in done if error]
    if as_json:
        echo_json(
            {
                "dry_run": dry_run,
                "remove": [_item_json(i) for i in plan.items],
                "foreign": [_item_json(i) for i in plan.foreign],
                "kept": [_item_json(i) for i in plan.skipped],
                "failed": [{**_item_json(i), "error": e} for i, e in failed],
                "unreachable": [{"host": h, "reason": r} for h, r in plan.unreachable],
            }
        )
    elif not dry_run:
        for item, error in failed:
            click.echo(f"could not remove {item.subject} on {item.host}: {error}", err=True)
        click.echo(f"removed {len(done) - len(failed)} of {len(plan.items)}")
    if failed or plan.unreachable:
        sys.exit(1)


def render_plan(plan: PrunePlan, dry_run: bool) -> str:
    """One line per thing that goes (or would go), per foreign container and kept file."""
    verb = "would remove" if dry_run else "removing"
    lines = [f"{verb:<12} {i.kind:<9} {i.host}: {i.subject} ({i.detail})" for i in plan.items]
    lines += [f"{'foreign':<12} container {i.host}: {i.detail}; left alone" for i in plan.foreign]
    lines += [f"{'kept':<12} {i.kind:<9} {i.host}: {i.detail}" for i in plan.skipped]
    lines += [f"{'unreachable':<12} {h}: {r}" for h, r in plan.unreachable]
    freed = sum(i.size or 0 for i in plan.items)
    lines.append(f"{len(plan.items)} item(s), {freed} bytes of files" if plan.items
                 else "nothing to remove")  # fmt: skip
    return "\n".join(lines)


def _item_json(item: PruneItem) -> dict[str, Any]:
    return {
        "host": item.host,
        "kind": item.kind,
        "subject": item.subject,
        "detail": item.detail,
        "size": item.size,
    }
