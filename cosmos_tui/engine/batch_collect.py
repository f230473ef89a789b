"""Ending the members of a batch once its container has exited.

Whatever the exit status, every member whose sample is finished (``video_<i>/`` with
``output.mp4`` and ``prompt.txt``, matched by the saved prompt) gets its outputs downloaded
and verified, and completes. When the container exited 0, a member without a sample was
dropped by the guardrail (``blocked``). When it died, lines run one at a time (batch size
1, docs/cosmos.md "Transfer1 batch outputs and blocked prompts"), so:

- the member it died on (the last ``video_<i>/`` made, without a sample; with a larger
  ``--batch_size`` from a profile, every member of that chunk without a sample) ends with
  the container's classified failure: ``blocked`` for the guardrail, ``failed`` with its
  cause otherwise;
- members whose line never started go back in the queue (not a retry: they never ran);
  they are launched again only after this container has exited, so no member ever has
  two containers;
- when no line started at all (it died loading the model, or on the spec), the failure is
  the whole batch's and every member ends with it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cosmos_tui.config_parse import max_output_bytes
from cosmos_tui.domain import FailureKind, RunState
from cosmos_tui.engine.batch_outputs import (
    SAMPLE_PROMPT,
    SAMPLE_VIDEO,
    DeadBatch,
    SampleFate,
    SampleOutput,
    after_death,
    map_outputs,
    sample_index,
    slice_log,
)
from cosmos_tui.engine.failure_text import explain
from cosmos_tui.engine.failures import caveat_of
from cosmos_tui.engine.logs import CURSOR_SUFFIX
from cosmos_tui.engine.outputs import (
    fetch_outputs,
    plan_outputs,
    refused_failure,
)

if TYPE_CHECKING:
    from cosmos_tui.engine.batch_launch import BatchLauncher
    from cosmos_tui.engine.batching import BatchLine
    from cosmos_tui.engine.launch import RemoteLayout
    from cosmos_tui.remote.host import RemoteHost

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Death:
    """How a batch container ended when it exited non-zero.

    Attributes:
        container_id: The container.
        exit_code: Its exit status.
        log_lines: Its log (clean lines), for the classifier.
        batch_size: The model's ``--batch_size`` (1: the tool sends none).

    """

    container_id: str
    exit_code: int
    log_lines: Sequence[str]
    batch_size: int = 1


async def read_samples(host: RemoteHost, output_dir: str) -> list[SampleOutput]:
    """Return the ``video_<i>`` folders of a batch's output folder and their saved prompts."""
    samples = []
    for entry in await host.files.listdir(output_dir):
        if not entry.is_dir or sample_index(entry.name) is None:
            continue
        folder = f"{output_dir}/{entry.name}"
        names = {e.name for e in await host.files.listdir(folder) if not e.is_dir}
        if SAMPLE_PROMPT not in names or SAMPLE_VIDEO not in names:
            samples.append(SampleOutput(entry.name, None, finished=False))
            continue
        text = await host.files.read_text(f"{folder}/{SAMPLE_PROMPT}")
        samples.append(SampleOutput(entry.name, text))
    return samples


async def collect(
    launcher: BatchLauncher,
    host: RemoteHost,
    layout: RemoteLayout,
    batch_id: str,
    lines: Sequence[BatchLine],
    death: Death | None = None,
) -> None:
    """End every active member of a batch whose container exited (see the module doc).

    Args:
        launcher: The batch launcher (store, run folders, state helpers).
        host: The batch's host.
        layout: The batch's folders on the host.
        batch_id: The batch.
        lines: Every line of the batch, in JSONL order (ended members included: the
            line numbers matter).
        death: How the container died; None when it exited 0.

    """
    samples = await read_samples(host, layout.output_dir)
    outcome = map_outputs(lines, samples)
    folders = [s.folder for s in samples]
    await asyncio.to_thread(_slice_logs, launcher, batch_id, lines, outcome.folders, folders)
    dead = None
    if death is not None:
        dead = after_death(lines, samples, outcome, death.batch_size)
    for line in lines:
        run_id = line.run_id
        run = await launcher.ctx.store.get_run(run_id, with_events=False)
        if run.state.is_terminal or run.state == RunState.QUEUED:
            continue  # cancelled while the batch ran (its sample is not collected), or settled
        if outcome.fates[run_id] == SampleFate.PRODUCED:
            await download_member(launcher, host, layout, batch_id, run_id, outcome.folders[run_id])
        elif death is None or dead is None:
            await _end_dropped(launcher, batch_id, run_id, outcome.fates[run_id])
        elif run_id not in dead.not_started:
            await _end_after_death(launcher, batch_id, run_id, death, dead, len(lines))
    if dead is not None and dead.not_started:
        where = f"run {', '.join(dead.culprits)}" if dead.culprits else "a line before them"
        reason = f"batch {batch_id} died on {where} before this run's line started"
        await requeue(launcher, dead.not_started, f"{reason}; back in the queue")


async def download_member(
    launcher: BatchLauncher, host: RemoteHost, layout: RemoteLayout, batch_id: str,
    run_id: str, folder: str, keep: Callable[[str], bool] | None = None,
    finish: Callable[[str, list[str]], Awaitable[object]] | None = None,
) -> None:  # fmt: skip
    """Download one member's outputs and complete it (or fail it for refused entries).

    Args:
        launcher: The batch launcher.
        host: The batch's host.
        layout: The batch's folders on the host.
        batch_id: The batch.
        run_id: The member.
        folder: Its folder in the batch's output folder ('' for the output folder itself).
        keep: Which names there are the member's (a folder the members share).
        finish: Ends the member from its run id and downloaded outputs instead of
            completing it (a reasoner's answer is kept as a prompt, or fails it).
    """
    await launcher.move(run_id, RunState.DOWNLOADING, f"outputs in {folder or 'output'}")
    remote_folder = f"{layout.output_dir}/{folder}" if folder else layout.output_dir
    plan = await plan_outputs(host, remote_folder, max_output_bytes(host.config), keep=keep)
    outputs = await fetch_outputs(host, remote_folder, plan, launcher.ctx.run_dir(run_id))
    if plan.refused:
        run = await launcher.ctx.store.get_run(run_id, with_events=False)
        failure = refused_failure(run, plan.refused_text(), outputs)
        await launcher.move(run_id, failure.state, failure.message, outputs=tuple(outputs),
                            failure_kind=failure.kind,
                            failure_message=failure.message)  # fmt: skip
        return
    if finish is not None:
        await finish(run_id, outputs)
        return
    outputs.append(launcher.log_path(run_id).name)
    await launcher.ctx.store.update_run(
        run_id, progress_phase="done", progress_percent=100.0, eta_seconds=0.0
    )
    where = folder or "output"
    caveat = await caveat_of(launcher.log_path(run_id))
    await launcher.move(run_id, RunState.COMPLETED,
                        f"{len(outputs) - 1} output file(s) from {where} of {batch_id}{caveat}",
                        outputs=tuple(outputs))  # fmt: skip


async def _end_dropped(
    launcher: BatchLauncher, batch_id: str, run_id: str, fate: SampleFate
) -> None:
    """End a member without a sample of a batch that exited 0."""
    if fate == SampleFate.BLOCKED:
        message = explain(FailureKind.GUARDRAIL, f"the guardrail dropped this prompt in {batch_id}")
        await launcher.end(run_id, RunState.BLOCKED, message, FailureKind.GUARDRAIL)
    else:
        message = f"cannot tell which output of batch {batch_id} is this run's"
        await launcher.end(run_id, RunState.FAILED, message, FailureKind.UNKNOWN)


async def _end_after_death(
    launcher: BatchLauncher, batch_id: str, run_id: str, death: Death, dead: DeadBatch,
    size: int,
) -> None:  # fmt: skip
    """End a member without a sample of a dead batch whose line started."""
    if run_id in dead.dropped:
        await _end_dropped(launcher, batch_id, run_id, SampleFate.BLOCKED)
        return
    if run_id in dead.unknown:
        message = f"cannot tell which output of batch {batch_id} is this run's"
        await launcher.end(run_id, RunState.FAILED, message, FailureKind.UNKNOWN, death.exit_code)
        return
    # A member of the chunk it died on, or (no line started) every member.
    kind, message, code = launcher.failure(
        death.container_id, death.exit_code, list(death.log_lines), size, run_id
    )
    target = RunState.BLOCKED if kind == FailureKind.GUARDRAIL else RunState.FAILED
    await launcher.end(run_id, target, message, kind, code)


async def requeue(launcher: BatchLauncher, run_ids: Sequence[str], reason: str) -> None:
    """Put members that never ran back in the queue together, free of batch and container.

    Their ``run.log`` (the dead container's log, about other runs) is removed first: the
    next launch writes its own. Their run locks are let go right after the move, so a
    scheduler can launch them again at once.
    """
    for run_id in run_ids:
        log = launcher.log_path(run_id)
        for path in (log, log.with_name(log.name + CURSOR_SUFFIX)):
            await asyncio.to_thread(path.unlink, missing_ok=True)
    moved = await launcher.queue.requeue_unstarted(run_ids, reason)
    launcher.release(moved)
    if moved:
        logger.info("%s back in the queue: %s", ", ".join(moved), reason)


def _slice_logs(
    launcher: BatchLauncher,
    batch_id: str,
    lines: Sequence[BatchLine],
    own: Mapping[str, str],
    folders: Sequence[str],
) -> None:
    """Rewrite each member's run.log as its slice of the batch log."""
    for number, line in enumerate(lines):
        path = launcher.log_path(line.run_id)
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
        if text and text[0].startswith(f"[cosmos-tui] run {line.run_id}: line "):
            continue  # sliced already (a driver that died while collecting)
        kept = slice_log(text, line.run_id, batch_id, number, len(lines),
                         own.get(line.run_id), folders)  # fmt: skip
        path.write_text("\n".join(kept) + "\n", encoding="utf-8")


# The whole container log of a batch whose members' logs were cut into their samples,
# kept beside the first member's run.log: a driver that dies while collecting leaves it
# for the next one (engine/batch_recovery.py).
BATCH_LOG = "batch-{}.log"


def whole_log(launcher: BatchLauncher, batch_id: str, run_ids: Sequence[str]) -> list[str] | None:
    """Return the whole log kept by an earlier collect of the batch, None when none was."""
    for run_id in run_ids:
        path = launcher.log_path(run_id).with_name(BATCH_LOG.format(batch_id))
        if path.is_file():
            return path.read_text(encoding="utf-8", errors="replace").splitlines()
    return None


def slice_member_logs(
    launcher: BatchLauncher,
    batch_id: str,
    run_ids: Sequence[str],
    log_lines: Sequence[str],
    part: Callable[[str], list[str]],
) -> None:
    """Write each member's run.log as its part of the batch log (again, if need be).

    The whole log is kept first, whole or not at all (written aside, then renamed), and
    each member's log cursor is dropped: the slice is no longer the container's log up
    to a position.

    Args:
        launcher: The batch launcher (run folders).
        batch_id: The batch.
        run_ids: Its members, in line order.
        log_lines: The container's whole log.
        part: A member's own lines of it (its family's slicing).
    """
    kept_whole = launcher.log_path(run_ids[0]).with_name(BATCH_LOG.format(batch_id))
    if not kept_whole.is_file() and kept_whole.parent.is_dir():
        aside = kept_whole.with_name(kept_whole.name + ".part")
        aside.write_text("\n".join(log_lines) + "\n", encoding="utf-8")
        os.replace(aside, kept_whole)
    for number, run_id in enumerate(run_ids):
        path = launcher.log_path(run_id)
        if not path.is_file():
            continue
        where = f"sample {number + 1} of {len(run_ids)} of batch {batch_id}"
        kept = [f"[cosmos-tui] run {run_id}: {where}", *part(run_id)]
        path.write_text("\n".join(kept) + "\n", encoding="utf-8")
        path.with_name(path.name + CURSOR_SUFFIX).unlink(missing_ok=True)
