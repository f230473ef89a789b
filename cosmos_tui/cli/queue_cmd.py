"""``cosmos queue`` (plan, pause, resume, up, down, cancel, run) and ``cosmos stats``."""

from __future__ import annotations

from typing import Any

import click

from cosmos_tui.cli.context import CliContext, echo, echo_json
from cosmos_tui.cli.options import NEGATIVE_ARGS
from cosmos_tui.cli.records import parse_when
from cosmos_tui.cli.render import clip, short_time, table
from cosmos_tui.engine.cluster import PoolCluster
from cosmos_tui.services.queue import QueueService, QueueView
from cosmos_tui.store.metrics_store import RunStats
from cosmos_tui.store.queue_store import Claim

pass_cli = click.make_pass_decorator(CliContext)


def render_view(view: QueueView) -> str:
    """Render the queue's plan: containers in start order, active runs, open alerts."""
    lines = [f"queue: {'PAUSED (cosmos queue resume)' if view.paused else 'running'}"]
    where = {p.group.head.id: p for p in view.placements}
    why = {w.group.head.id: w.reason for w in view.waiting}
    rows = []
    for number, group in enumerate(view.groups, start=1):
        placement = where.get(group.head.id)
        if placement is not None:
            note = f"starts now on {placement.host} GPU {','.join(map(str, placement.gpus))}"
        elif group.head.id in why:
            note = why[group.head.id]
        elif group.target is not None:
            note = f"pinned to {group.target}"
        else:
            note = "-"
        kind = f"batch of {len(group.runs)}" if group.is_batch else "alone"
        prompt = clip(group.head.prompt_text, 30)
        ids = ", ".join(group.run_ids)
        rows.append([str(number), ids, kind, str(group.num_gpus), f"p{group.head.priority}",
                     prompt, note])  # fmt: skip
    if rows:
        headers = ["#", "RUNS", "CONTAINER", "GPUS", "PRIO", "PROMPT", "PLACEMENT"]
        lines.append(table(headers, rows))
        runs = sum(len(g.runs) for g in view.groups)
        lines.append(f"{runs} queued run(s) in {len(view.groups)} container(s)")
        if not view.live:
            lines.append("(placement needs live hosts: add --live)")
    else:
        lines.append("no queued runs")
    if view.active:
        lines.append("")
        lines.append("active:")
        active_rows = [
            [r.id, r.state.value, f"{r.host or '-'}:{','.join(map(str, r.gpus))}",
             r.batch_id or "-", short_time(r.started_at)]
            for r in view.active
        ]  # fmt: skip
        lines.append(table(["RUN", "STATE", "HOST:GPUS", "BATCH", "STARTED"], active_rows))
    if view.open_alerts:
        lines.append("")
        lines.append("alerts:")
        lines += [f"  {a.run_id}  {a.kind.value:<16} {a.message}" for a in view.open_alerts]
    return "\n".join(lines)


def view_json(view: QueueView) -> dict[str, Any]:
    """Return the JSON form of the plan."""
    where = {p.group.head.id: p for p in view.placements}
    why = {w.group.head.id: w.reason for w in view.waiting}
    return {
        "paused": view.paused,
        "live": view.live,
        "containers": [
            {
                "run_ids": list(g.run_ids),
                "batch": g.is_batch,
                "gpus": g.num_gpus,
                "priority": g.head.priority,
                "target": g.target,
                "host": where[g.head.id].host if g.head.id in where else None,
                "gpu_indices": list(where[g.head.id].gpus) if g.head.id in where else None,
                "waiting": why.get(g.head.id),
            }
            for g in view.groups
        ],
        "active": [
            {
                "id": r.id,
                "state": r.state.value,
                "host": r.host,
                "gpus": list(r.gpus),
                "batch_id": r.batch_id,
            }
            for r in view.active
        ],
        "alerts": [
            {
                "run_id": a.run_id,
                "kind": a.kind.value,
                "message": a.message,
                "raised_at": a.raised_at.isoformat(),
            }
            for a in view.open_alerts
        ],
    }


@click.group(invoke_without_command=True)
@click.option("--live", is_flag=True, help="Connect to the hosts and show where runs start.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def queue(click_ctx: click.Context, live: bool, as_json: bool) -> None:
    """Show the plan of the queue: which runs share a container, in start order."""
    if click_ctx.invoked_subcommand is not None:
        return
    ctx = click_ctx.find_object(CliContext)
    assert ctx is not None  # the root group always sets one

    async def _view(bench: Any) -> QueueView:
        cluster = None
        if live:
            cluster = PoolCluster(bench.config, bench.hosts)
            await cluster.start()
        return await QueueService.of(bench).view(cluster)

    view = ctx.run(_view)
    if as_json:
        echo_json(view_json(view))
    else:
        echo(render_view(view))


@queue.command()
@pass_cli
def pause(ctx: CliContext) -> None:
    """Pause the queue: nothing new starts; running runs go on."""
    ctx.run(lambda bench: QueueService.of(bench).pause())
    echo("queue paused")


@queue.command()
@pass_cli
def resume(ctx: CliContext) -> None:
    """Resume the queue."""
    ctx.run(lambda bench: QueueService.of(bench).resume())
    echo("queue resumed")


def _move(ctx: CliContext, run_id: str, steps: int) -> None:
    order = ctx.run(lambda bench: QueueService.of(bench).move(run_id, steps))
    for number, item in enumerate(order, start=1):
        echo(f"{number:>3}  {item}")


@queue.command(context_settings=NEGATIVE_ARGS)
@click.argument("run_id")
@click.argument("places", type=click.IntRange(1), default=1)
@pass_cli
def up(ctx: CliContext, run_id: str, places: int) -> None:
    """Move a queued run PLACES (default 1) towards the front."""
    _move(ctx, run_id, -places)


@queue.command(context_settings=NEGATIVE_ARGS)
@click.argument("run_id")
@click.argument("places", type=click.IntRange(1), default=1)
@pass_cli
def down(ctx: CliContext, run_id: str, places: int) -> None:
    """Move a queued run PLACES (default 1) towards the back."""
    _move(ctx, run_id, places)


@queue.command("cancel")
@click.argument("run_ids", nargs=-1, required=True)
@pass_cli
def cancel(ctx: CliContext, run_ids: tuple[str, ...]) -> None:
    """Cancel queued runs that have not started."""
    runs = ctx.run(lambda bench: QueueService.of(bench).cancel(run_ids))
    for run in runs:
        echo(f"{run.id} cancelled")


@queue.command("run")
@click.option("--until-idle", is_flag=True, help="Stop once nothing runs and nothing can start.")
@pass_cli
def run_queue(ctx: CliContext, until_idle: bool) -> None:
    """Drive the queue: place, batch and launch runs as GPUs come free (Ctrl+C stops).

    Runs already started keep going on their hosts when this stops; the next
    'cosmos queue run' (or 'cosmos reconcile') picks them up.
    """

    def _claimed(claim: Claim) -> None:
        batch = f" batch {claim.batch_id}" if claim.batch_id else ""
        echo(
            f"start {', '.join(claim.run_ids)} on {claim.host} GPU "
            f"{','.join(map(str, claim.gpus))}{batch}"
        )

    async def _run(bench: Any) -> int:
        bench.runs.require_host()  # queued runs need somewhere to run
        service = QueueService.of(bench)
        scheduler = await service.drive(until_idle=until_idle, on_claim=_claimed)
        return len(scheduler.launched)

    launched = ctx.run(_run)
    echo(f"{launched} container(s) launched")


def render_stats(stats: RunStats) -> str:
    """Render ``cosmos stats``."""
    since = f"since {short_time(stats.since)}" if stats.since else "all time"
    lines = [f"runs {since}: {stats.total}"]
    if stats.by_state:
        lines.append("  " + ", ".join(f"{k} {v}" for k, v in sorted(stats.by_state.items())))
    if stats.mean_duration_by_profile:
        lines.append("mean duration of completed runs:")
        for key, seconds in sorted(stats.mean_duration_by_profile.items()):
            lines.append(f"  {key:<24} {seconds / 60:.1f} min")
    lines.append(f"GPU-hours: {stats.gpu_hours:.2f}   energy: {stats.energy_wh:.1f} Wh")
    if stats.failures_by_kind:
        lines.append("failures:")
        for kind, count in sorted(stats.failures_by_kind.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {kind:<20} {count}")
    if stats.open_alerts:
        lines.append(f"open alerts: {stats.open_alerts} (see 'cosmos queue')")
    return "\n".join(lines)


@click.command()
@click.option("--since", help="Runs created at or after (2026-11-01, or an age: 7d, 12h).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_cli
def stats(ctx: CliContext, since: str | None, as_json: bool) -> None:
    """Report runs per state, mean duration per profile, GPU-hours and failure kinds."""
    when = parse_when(since)
    result = ctx.run(lambda bench: QueueService.of(bench).stats(when))
    if as_json:
        echo_json(
            {
                "since": result.since.isoformat() if result.since else None,
                "total": result.total,
                "by_state": result.by_state,
                "mean_duration_seconds": result.mean_duration_by_profile,
                "gpu_hours": result.gpu_hours,
                "energy_wh": result.energy_wh,
                "failures": result.failures_by_kind,
                "open_alerts": result.open_alerts,
            }
        )
    else:
        echo(render_stats(result))
