"""``--dry-run`` of ``cosmos inference`` and ``cosmos create run``: print, send nothing.

The previews come from :mod:`cosmos_tui.services.dry_run`; this module only prints them,
as text for people or (``--json``) as the stable JSON of docs/cli-json.md.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

import click

from cosmos_tui.cli.context import CliContext, echo_json

DRY_RUN_HELP = (
    "Print what would be sent (argv, environment with secrets masked, mounts, working "
    "directory, spec, batch JSONL) without touching any host or recording a run."
)


def show_dry_run(
    ctx: CliContext,
    ids: Sequence[str],
    overrides: Mapping[str, Any],
    as_json: bool,
    host: str | None = None,
    batch: bool = False,
    priority: int = 0,
) -> None:
    """Build the previews of launching ``ids`` and print them."""
    # lazy: the dry-run planner pulls the batch launcher (~40 ms); records and runs import
    # this module for its help text
    from cosmos_tui.services.dry_run import dry_run

    previews = ctx.run(
        lambda bench: dry_run(bench, ids, overrides, host=host, batch=batch, priority=priority)
    )
    if as_json:
        echo_json({"dry_run": True, "containers": [p.to_json() for p in previews]})
        return
    for preview in previews:
        _print_text(preview.to_json())
    click.echo("dry run: nothing was sent to any host and no run was recorded")


def _print_text(data: Mapping[str, Any]) -> None:
    gpus = ",".join(str(g) for g in data["gpus"]) if data["gpus"] else "chosen at launch"
    click.echo(f"container {data['name']} on {data['host']} (image {data['image']})")
    click.echo(f"  runs:    {', '.join(data['run_ids'])}")
    click.echo(f"  gpus:    {gpus}")
    click.echo(f"  workdir: {data['workdir']}")
    click.echo(f"  argv:    {shlex.join(data['argv'])}")
    click.echo("  env:")
    for key, value in sorted(data["env"].items()):
        click.echo(f"    {key}={value}")
    click.echo("  mounts:")
    for mount in data["mounts"]:
        mode = "ro" if mount["read_only"] else "rw"
        click.echo(f"    {mount['source']} -> {mount['target']} ({mode})")
    for path, text in data["files"].items():
        click.echo(f"  {path}:")
        for line in text.splitlines():
            click.echo(f"    {line}")
