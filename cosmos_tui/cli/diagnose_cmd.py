"""``cosmos diagnose LOGFILE``: why a Cosmos run failed, from its log alone."""

from __future__ import annotations

from pathlib import Path

import click

from cosmos_tui.cli.context import echo_json, guard
from cosmos_tui.engine.diagnose import diagnose_file, failure_json

PROFILES = ("transfer1", "cosmos3", "transfer2.5", "predict2")


@click.command("diagnose")
@click.argument("logfile", type=click.Path(path_type=Path))
@click.option(
    "--exit-code",
    "exit_code",
    type=int,
    default=None,
    help="The exit status the run ended with (0: it wrote no video).",
)
@click.option(
    "--profile",
    type=click.Choice(PROFILES),
    default=None,
    help="The model family that wrote the log, which names its phases (default: guessed "
    "from the log, else transfer1).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the diagnosis as JSON.")
def diagnose_cmd(logfile: Path, exit_code: int | None, profile: str | None, as_json: bool) -> None:
    """Diagnose a Cosmos log: the cause, the fix, the deciding line, its rank and phase.

    Works on any log (a run of this tool, a terminal paste, a colleague's file); large
    files are streamed.
    """
    failure, lines = guard(lambda: diagnose_file(logfile, exit_code, profile))
    if as_json:
        echo_json(failure_json(failure, lines))
        return
    where = []
    if failure.error_line is not None:
        where.append(f"line {failure.error_line + 1}")
    if failure.rank is not None:
        where.append(f"rank {failure.rank}")
    click.echo(f"kind:      {failure.kind.value}" + ("" if failure.confident else " (guess)"))
    click.echo(f"fix:       {failure.message}")
    if failure.detail:
        suffix = f" ({', '.join(where)})" if where else ""
        click.echo(f"detail:    {failure.detail}{suffix}")
    click.echo(f"phase:     {failure.phase or 'not recognised'}")
    click.echo(f"transient: {'yes, worth retrying' if failure.transient else 'no'}")
    if failure.context:
        click.echo("context:")
        for line in failure.context:
            click.echo(f"  {line}")
