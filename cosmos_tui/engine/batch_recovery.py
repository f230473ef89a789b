"""Batches whose driving process died: taken over by the next queue driver.

A batch is orphaned when its runs are active and nobody holds their run locks (the
kernel drops a lock when its process ends). Runs that never got to running go back in the
queue, after any container the dead driver created is removed; a container still running
is followed again; an exited one is collected like any batch (engine/batch_collect.py:
finished samples collected, the member it died on ended, members never started
requeued); runs whose container vanished fail as ``container_gone``. Queue drivers look
at start and then every so often (:func:`sweep_orphans`), so a live TUI takes over from
a dead CLI.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from cosmos_tui.domain import ACTIVE_STATES, FailureKind, Run, RunState
from cosmos_tui.engine import launch
from cosmos_tui.engine.batch_collect import Death, whole_log
from cosmos_tui.engine.batching import BatchLine
from cosmos_tui.errors import CosmosError
from cosmos_tui.store.repositories import RunFilter

if TYPE_CHECKING:
    from cosmos_tui.engine.batch_launch import BatchLauncher

logger = logging.getLogger(__name__)


async def reattach_orphans(launcher: BatchLauncher) -> list[str]:
    """Pick up batches whose driving process died; return their ids.

    A batch is orphaned when its runs are active and nobody holds their run locks.
    Runs that never got a container go back in the queue; a container still running
    is followed again; an exited one is collected (outputs mapped by name); runs whose
    container vanished fail as ``container_gone``.
    """
    page = await launcher.ctx.store.list_runs(RunFilter(states=ACTIVE_STATES), 0, 10_000)
    batch_ids = sorted({r.batch_id for r in page.items if r.batch_id})
    picked = []
    for batch_id in batch_ids:
        members = [r for r in page.items if r.batch_id == batch_id]
        if not launcher.lock_all([r.id for r in members]):
            continue
        try:
            await reattach(launcher, batch_id, members)
            picked.append(batch_id)
        except CosmosError as exc:
            logger.warning("batch %s: cannot reattach now: %s", batch_id, exc.message)
        finally:
            launcher.release([r.id for r in members])
    return picked


async def sweep_orphans(launcher: BatchLauncher, interval: float) -> None:
    """Pick up orphaned batches every ``interval`` seconds until cancelled.

    A scheduler elsewhere may die (or be stopped) mid-batch while this process keeps
    driving the queue; its batches are taken over here instead of waiting for the
    next start of a queue driver.
    """
    while True:
        await asyncio.sleep(interval)
        try:
            picked = await reattach_orphans(launcher)
        except CosmosError as exc:
            logger.warning("looking for orphaned batches failed: %s", exc.message)
            continue
        if picked:
            logger.info("took over batch(es) %s", ", ".join(picked))


async def reattach(launcher: BatchLauncher, batch_id: str, members: list[Run]) -> None:
    """Follow, collect, requeue or fail the active runs of one orphaned batch."""
    ids = [r.id for r in members]
    if all(r.state in (RunState.UPLOADING, RunState.STARTING) for r in members):
        if members[0].host:
            # The driver may have died just after creating (or starting) the container:
            # remove it, or it would run on beside the runs' next placement.
            await remove_containers(launcher, members[0].host, batch_id)
        for run_id in ids:
            await launcher.move(run_id, RunState.QUEUED, f"batch {batch_id} never started")
        return
    host = launcher.ctx.hosts.get(members[0].host or "")
    home = await host.files.home()
    layout = launch.RemoteLayout(home, await host.tool_dir(), batch_id)
    manifest = await launcher.queue.batch_manifest(batch_id)
    # Every line, ended members included: where the model stopped is told by line number.
    lines = [BatchLine(item["run_id"], item["prompt"], None) for item in manifest.get("lines", [])]
    found = await host.docker.list({"cosmos.batch_id": batch_id})
    if not found or not any(line.run_id in ids for line in lines):
        message = f"the container of batch {batch_id} is gone"
        await launcher.fail_all(ids, FailureKind.CONTAINER_GONE, message)
        return
    info = found[0]
    starts = [r.started_at.timestamp() for r in members if r.started_at is not None]
    deadline = launcher.deadline(min(starts) if starts else None, len(lines))
    # Following an exited container drains the rest of its log, then ends.
    await launcher.follow(host, info.id, ids, deadline)
    exit_code = await host.docker.wait(info.id)
    # the whole log an earlier collect kept aside (the members' logs are sliced by then)
    log = await asyncio.to_thread(whole_log, launcher, batch_id, [line.run_id for line in lines])
    if log is None:
        log = await asyncio.to_thread(_read_log, launcher.log_path(ids[0]))
    death = None
    if exit_code != 0:
        death = Death(info.id, exit_code, log, launcher.batch_size(members[0]))
    await launcher.collect(host, layout, batch_id, lines, death, log)


def _read_log(path: Path) -> list[str]:
    """Return the lines of a member's local copy of the batch log (empty when missing)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []


async def remove_containers(launcher: BatchLauncher, host_name: str, batch_id: str) -> None:
    """Stop and remove every container of a batch on its host."""
    host = launcher.ctx.hosts.get(host_name)
    for info in await host.docker.list({"cosmos.batch_id": batch_id}):
        if info.running:
            await host.docker.stop(info.id, grace_s=launcher.ctx.config.timeouts.cancel_grace)
        await host.docker.remove(info.id, force=True)
