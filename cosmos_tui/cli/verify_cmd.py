"""``cosmos verify [--fix]``: find (and safely repair) what no longer adds up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cosmos_tui.cli.context import CliContext, echo, echo_json
from cosmos_tui.engine.verify import VerifyReport, verify
from cosmos_tui.safe_text import one_line

pass_cli = click.make_pass_decorator(CliContext)


def render_report(report: VerifyReport, fix: bool) -> str:
    """Render the findings, one line each, and a summary."""
    lines = []
    for finding in report.findings:
        if finding.fixed:
            mark = "fixed"
        elif finding.fixable:
            mark = "fixable" if not fix else "NOT fixed"
        else:
            mark = "manual"
        where = f" [{finding.host}]" if finding.host else ""
        lines.append(
            f"{mark:<9} {finding.kind.value:<17} {one_line(finding.subject)}{one_line(where)}: "
            f"{one_line(finding.detail)}"
        )
    for host, reason in report.unreachable:
        lines.append(f"skipped   host {one_line(host)}: {one_line(reason)}")
    fixable = sum(1 for f in report.findings if f.fixable and not f.fixed)
    summary = (
        f"checked {report.checked_runs} completed run(s) and {report.checked_prompts} "
        f"prompt(s): {len(report.findings)} finding(s)"
    )
    if fixable and not fix:
        summary += f", {fixable} fixable with --fix"
    lines.append(summary)
    return "\n".join(lines)


@click.command("verify")
@click.option("--fix", is_flag=True, help="Repair what can be repaired safely.")
@click.option("--no-hosts", is_flag=True, help="Do not connect to hosts (local checks only).")
@click.option(
    "--search",
    "search",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Also look here for moved input videos (repeatable; must exist).",
)
@click.option("--deep", is_flag=True, help="Hash every input to find changed content.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_cli
def verify_cmd(
    ctx: CliContext, fix: bool, no_hosts: bool, search: tuple[Path, ...], deep: bool,
    as_json: bool,
) -> None:  # fmt: skip
    """Find missing outputs, moved inputs, orphan folders and containers.

    Completed runs whose outputs are missing, prompts whose input videos moved, output
    folders of unknown runs and containers of ended or unknown runs; --fix repairs what
    is safe to repair.

    Exit status 1 when something is left that needs attention.
    """

    async def _verify(bench: Any) -> VerifyReport:
        return await verify(bench, fix=fix, check_hosts=not no_hosts, search=search, deep=deep)

    report = ctx.run(_verify)
    if as_json:
        echo_json(
            {
                "findings": [
                    {"kind": f.kind.value, "subject": f.subject, "detail": f.detail,
                     "fixable": f.fixable, "fixed": f.fixed, "host": f.host}
                    for f in report.findings
                ],
                "unreachable": [{"host": h, "reason": r} for h, r in report.unreachable],
            }
        )  # fmt: skip
    else:
        echo(render_report(report, fix))
    if any(not f.fixed for f in report.findings):
        raise SystemExit(1)
