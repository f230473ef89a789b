"""Commands that run things: inference, logs, cancel, reconcile, and the internal worker.

``cosmos inference`` never drives a run itself: it hands each run to a detached
``cosmos worker RUN_ID`` process (its own session, output in the run's worker.log) and
then only watches. So Ctrl+C, a closed terminal or ``--detach`` leave the run going,
and ``cosmos logs -f`` / ``cosmos show`` / the TUI can follow it from anywhere.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from cosmos_tui.cli.context import CliContext, echo, echo_json, fail
from cosmos_tui.cli.dry_run import DRY_RUN_HELP, show_dry_run
from cosmos_tui.cli.records import overrides_from, run_options
from cosmos_tui.cli.render import progress_line
from cosmos_tui.cli.serialize import run_json
from cosmos_tui.domain import Run, RunState
from cosmos_tui.errors import RunBusy
from cosmos_tui.params import validate_priority
from cosmos_tui.safe_text import one_line
from cosmos_tui.services import Workbench

pass_cli = click.make_pass_decorator(CliContext)

# A waiting 'cosmos inference' gives up when no process has driven the run this long
# (longer than a worker takes to start).
STALL_SECONDS = 15.0


@click.command()
@click.argument("ids", nargs=-1, required=True)
@run_options
@click.option("--host", help="Run on this configured host (default: the first).")
@click.option("--detach", is_flag=True, help="Return at once; the run continues.")
@click.option("--json", "as_json", is_flag=True, help="Print the final runs as JSON.")
@click.option("--dry-run", is_flag=True, help=DRY_RUN_HELP)
@click.option(
    "--batch", is_flag=True, help="With --dry-run: show the IDs as the queue's one batch."
)
@click.option(
    "--skip-checks", is_flag=True, help="Start without the doctor's quick checks of the host."
)
@pass_cli
def inference(
    ctx: CliContext,
    /,
    ids: tuple[str, ...],
    priority: int,
    host: str | None,
    detach: bool,
    as_json: bool,
    dry_run: bool,
    batch: bool,
    skip_checks: bool,
    **options: Any,
) -> None:
    """Run inference for each ID: a prompt (a new run) or a run (that run again).

    A prompt id makes a run with the defaults or the given flags. Each run is driven
    by a detached worker process; this command shows its progress and waits. Ctrl+C
    stops waiting, not the run. --dry-run prints what would be sent instead.
    Unless --skip-checks, the doctor's quick checks (SSH, Docker, image, checkout,
    checkpoints, token, disk) run first on the host(s) a run may use; a failure refuses
    with its fix, before any GPU time is spent.
    """
    overrides = overrides_from(options)
    if batch and not dry_run:
        raise click.UsageError(
            "--batch goes with --dry-run; the queue batches runs by itself ('cosmos queue run')"
        )
    if dry_run:
        show_dry_run(ctx, ids, overrides, as_json, host=host, batch=batch, priority=priority)
        return

    async def _check(bench: Workbench) -> set[str]:
        """What can be refused without a host (ids, parameters) is refused first.

        Returns the profiles of the runs to start (a run given by id keeps its own).
        """
        bench.runs.require_host(host)
        profiles = set()
        for text_id in ids:
            full_id = await bench.resolve(text_id)
            if full_id.startswith("ps_"):
                bench.run_params(await bench.get_prompt(full_id), overrides)
                validate_priority(priority)
                profiles.add(overrides.get("profile") or "transfer1")
            elif overrides:
                fail("parameter flags apply to new runs; give a prompt id to use them")
            else:
                profiles.add((await bench.get_run(full_id)).profile)
        return profiles

    if not skip_checks:
        # lazy: the doctor pulls asyncssh and aiodocker (~350 ms); 'logs' and 'cancel' skip it
        from cosmos_tui.cli.preflight import refuse_unless_ready

        for profile in sorted(ctx.run(_check)):
            refuse_unless_ready(ctx.load_config(), host, profile)

    async def _launch(bench: Workbench) -> list[tuple[Run, bool]]:
        bench.runs.require_host(host)  # before anything is recorded
        report = await bench.runs.reconcile(detached=True, scan_all_hosts=False)
        if report.dispatched or report.failed:
            echo(
                f"reconciled earlier runs: resumed {', '.join(report.dispatched) or '-'}; "
                f"container gone {', '.join(report.failed) or '-'}"
            )
        runs = []
        for text_id in ids:
            full_id = await bench.resolve(text_id)
            if full_id.startswith("ps_"):
                run = await bench.create_run(full_id, overrides, priority=priority)
            else:
                if overrides:
                    fail("parameter flags apply to new runs; give a prompt id to use them")
                run = await bench.get_run(full_id)
            queued = bench.runs.goes_to_queue(host, run.host)
            runs.append((await bench.runs.start(run.id, detach=True, host=host), queued))
        return runs

    launched = ctx.run(_launch)
    runs = [run for run, _queued in launched]
    config = ctx.load_config()
    for run, queued in launched:
        if queued:
            where = config.data_dir / "queue-driver.log"
            echo(f"{run.id} queued for the cluster (queue driver log: {where})")
        else:
            echo(f"{run.id} started (worker log: {config.outputs_dir / run.id / 'worker.log'})")
    if detach:
        echo("detached: follow with 'cosmos logs -f RUN_ID', stop with 'cosmos cancel RUN_ID'")
        return
    finals = _wait(ctx, [r.id for r in runs])
    if as_json:
        echo_json([run_json(r) for r in finals])
    bad = [r for r in finals if r.state != RunState.COMPLETED]
    for run in bad:
        echo(f"error: run {run.id} {run.state.value}: {run.failure_message or ''}", err=True)
    if bad:
        sys.exit(1)


def _wait(ctx: CliContext, run_ids: list[str]) -> list[Run]:
    """Show progress until every run ends; Ctrl+C detaches (the runs continue)."""
    tty = sys.stdout.isatty()

    async def _watch(bench: Workbench) -> list[Run]:
        finals: list[Run] = []
        for run_id in run_ids:
            final = None
            async for run in bench.runs.watch(run_id, interval=0.5, stall_after=STALL_SECONDS):
                line = one_line(progress_line(run))
                if tty:  # the carriage return redraws the line; the line itself is escaped
                    click.echo("\r" + line.ljust(79)[:79], nl=False)
                else:
                    echo(line)
                final = run
            if tty:
                echo()
            assert final is not None
            finals.append(final)
        return finals

    try:
        return ctx.run(_watch)
    except SystemExit as exc:
        if exc.code == 130:
            echo(
                "\ndetached: the run(s) continue on the host; follow with "
                f"'cosmos logs -f {run_ids[0]}', stop with 'cosmos cancel {run_ids[0]}'",
                err=True,
            )
        raise


@click.command()
@click.argument("run_id")
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the run ends.")
@click.option("--tail", type=click.IntRange(0), help="Only the last N lines first.")
@pass_cli
def logs(ctx: CliContext, run_id: str, follow: bool, tail: int | None) -> None:
    """Print the log of RUN_ID (the local copy, complete even after a lost link)."""

    async def _logs(bench: Workbench) -> None:
        async for batch in bench.runs.follow_log(run_id, tail=tail, follow=follow):
            echo("\n".join(batch.lines))

    try:
        ctx.run(_logs)
    except BrokenPipeError:
        sys.exit(0)


@click.command()
@click.argument("run_id")
@pass_cli
def cancel(ctx: CliContext, run_id: str) -> None:
    """Cancel RUN_ID: SIGTERM to its container, SIGKILL after the grace period."""
    run = ctx.run(lambda bench: bench.runs.cancel(run_id))
    echo(f"{run.id} {run.state.value}")


@click.command()
@click.option("--json", "as_json", is_flag=True)
@pass_cli
def reconcile(ctx: CliContext, as_json: bool) -> None:
    """Match active runs with their containers: reattach, finish or fail them.

    Runs of a batch are left to 'cosmos queue run', which reattaches whole batches.
    Containers of ours still running after their runs were cancelled are stopped; other
    containers with our labels that no active run accounts for are listed as orphans
    (never killed).
    """
    report = ctx.run(lambda bench: bench.runs.reconcile(detached=True))
    if as_json:
        echo_json(
            {
                "dispatched": list(report.dispatched),
                "failed": list(report.failed),
                "busy": list(report.busy),
                "batched": list(report.batched),
                "unreachable": [{"host": h, "reason": r} for h, r in report.unreachable],
                "orphans": [_orphan_json(o) for o in report.orphans],
                "stopped": [_orphan_json(o) for o in report.stopped],
                "foreign": [_orphan_json(o) for o in report.foreign],
            }
        )
        return
    for label, items in (
        ("reattached or resumed", report.dispatched),
        ("failed (container disappeared)", report.failed),
        ("driven by another process", report.busy),
        ("in a batch, left to 'cosmos queue run'", report.batched),
    ):
        if items:
            echo(f"{label}: {', '.join(items)}")
    for host, reason in report.unreachable:
        echo(f"host {host} unreachable: {reason}")
    for leftover in report.stopped:
        echo(
            f"stopped container {one_line(leftover.container_id[:12])} "
            f"({one_line(leftover.name)}) on "
            f"{leftover.host}: {leftover.reason}"
        )
    for orphan in report.orphans:
        echo(
            f"orphan container {one_line(orphan.container_id[:12])} ({one_line(orphan.name)}) on "
            f"{orphan.host}: "
            f"{orphan.reason}; remove it with 'docker rm -f {orphan.container_id[:12]}' on the "
            "host if it is not needed"
        )
    for item in report.foreign:
        click.echo(
            f"foreign container {item.container_id[:12]} ({item.name}) on {item.host}: "
            f"{item.reason}; left alone"
        )
    if not any(
        (
            report.dispatched,
            report.failed,
            report.busy,
            report.orphans,
            report.batched,
            report.stopped,
        )
    ):
        echo("nothing to reconcile")


def _orphan_json(orphan: Any) -> dict[str, Any]:
    return {
        "host": orphan.host,
        "container_id": orphan.container_id,
        "name": orphan.name,
        "run_id": orphan.run_id,
        "status": orphan.status,
        "reason": orphan.reason,
    }


@click.command(hidden=True)
@click.argument("run_id")
@pass_cli
def worker(ctx: CliContext, run_id: str) -> None:
    """Drive RUN_ID to its end in this process (started by 'cosmos inference')."""

    async def _drive(bench: Workbench) -> Run | None:
        try:
            return await bench.runs.drive(run_id)
        except RunBusy as exc:
            echo(exc.message, err=True)
            return None

    run = ctx.run(_drive)
    if run is not None:
        echo(f"{run.id} {run.state.value}")
