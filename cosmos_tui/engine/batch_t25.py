"""Transfer2.5 batches: one JSONL of samples in, each member's own files out.

Upstream reads a ``.jsonl`` given to ``-i`` as one sample per line, all validated before
any runs (a bad line stops the whole process, config.py:372-378; each line is checked here
with upstream's rules first) and each named by its ``name`` (config.py:353-414 at
2ff49d07); only the setup arguments
(distilled checkpoint, GPU count, guardrail switches) are one command line for them all
(config.py:213-305), and the set of controls across the batch picks the model
(config.py:410-420, inference.py:64-72), so runs batch only when those agree. Every
member keeps its own prompt, video, control weights and videos, seed, guidance, steps
and resolution; its sample is named by its run id, and its outputs are
``output/<run id>.mp4`` (``.json``, ``.txt``, ``_control_<hint>.mp4``,
``_mask_<hint>.mp4``) in the one output folder (inference.py:185-343).

A member's end is read from what the process left (``collect_outputs`` in
profiles/transfer25.py): a sample with its video completes; a guardrail block skips to
the next sample (keep_going, config.py:238) and ends that member ``blocked``; any other
error ends the process, so the sample it died in fails with the classified cause and the
samples that never started go back in the queue (engine/batch_collect.py ``requeue``).
When no sample started (the gated download, a bad argument), the failure is every
member's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cosmos_tui.domain import FailureKind, InputFile, Prompt, Run, RunState
from cosmos_tui.engine.failure_text import explain
from cosmos_tui.engine.launch import run_inputs
from cosmos_tui.engine.profiles.transfer25 import (
    NAME,
    SECTION,
    SETUP_FIELDS,
    BatchItem,
    SampleOutcome,
    build_batch,
    collect_outputs,
)
from cosmos_tui.engine.profiles.transfer25_profile import (
    VIDEO_ROLE,
    options_of,
    sample_options,
)
from cosmos_tui.errors import ValidationError

if TYPE_CHECKING:
    from cosmos_tui.engine.batch_collect import Death
    from cosmos_tui.engine.batch_launch import BatchLauncher
    from cosmos_tui.engine.launch import RemoteLayout
    from cosmos_tui.remote.host import RemoteHost


def setup_of(run: Run) -> tuple[tuple[str, Any], ...]:
    """Return what every sample of one batch shares: the setup arguments and the controls.

    The controls are shared because upstream picks the model from the hint keys of the
    whole batch: one key loads that control's checkpoint, several load the multicontrol
    model for every sample, "not strictly equal to single control" (config.py:410-420,
    inference.py:64-72, :147-150). A run batched with runs of other controls would get
    another model than it would alone.
    """
    options = options_of(run.params)
    controls = tuple(sorted(h.hint for h in options.hints))
    return (*((name, getattr(options, name)) for name in SETUP_FIELDS), ("controls", controls))


def batchable(run: Run) -> bool:
    """False for a run that must have its container to itself.

    On several GPUs upstream checks the prompt guardrail on rank 0 only
    (inference.py:205-221): a blocked prompt sends rank 0 on to the next sample while the
    other ranks generate the blocked one, so the next member's video could be made of two
    samples. Such runs are started one container each.
    """
    options = options_of(run.params)
    return options.num_gpus <= 1 or options.disable_guardrails


def setup_differences(first: Run, second: Run) -> list[str]:
    """Name the setup arguments in which two Transfer2.5 runs differ."""
    return [
        name for (name, a), (_, b) in zip(setup_of(first), setup_of(second), strict=True) if a != b
    ]


@dataclass(frozen=True)
class Sample:
    """One member's line: its run, prompt text, input video and the sample object."""

    run_id: str
    prompt: str
    video: str
    sample: Mapping[str, Any]


def build_samples(
    members: Sequence[tuple[Run, Prompt]], container_path: Callable[[InputFile], str]
) -> list[Sample]:
    """Return each member's sample, as upstream reads one JSONL line.

    The sample is what the profile writes for a run alone (named by the run id, its own
    controls with their control videos), so a batch changes nothing a run asked for.

    Raises:
        ValidationError: A sample upstream would refuse, a prompt without its input
            video, or setup options that differ between the members.
    """
    items = []
    for run, prompt in members:
        inputs = {item.role: container_path(item) for item in run_inputs(run, prompt)}
        if VIDEO_ROLE not in inputs:
            raise ValidationError(
                f"run {run.id} has no input video; create it from a prompt with color.mp4",
                field="prompt",
            )
        items.append(
            BatchItem(run.id, prompt.text, inputs[VIDEO_ROLE], sample_options(run, inputs))
        )
    body = build_batch(items)  # upstream's batch rules: unique names, one setup
    return [
        Sample(item.name, item.prompt, item.video_path, json.loads(line))
        for item, line in zip(items, body.splitlines(), strict=True)
    ]


def slice_sections(lines: Sequence[str], name: str, header: str) -> list[str]:
    """Return one member's part of the batch log: the shared start and its own sample.

    Lines before the first ``[i/N] Processing sample`` (downloads, model load) are
    everyone's; from there on a line belongs to the sample whose section it is in.
    """
    kept = [header] if header else []
    owner: str | None = None
    for line in lines:
        section = SECTION.search(line)
        if section is not None:
            owner = section.group(3)
        if owner is None or owner == name:
            kept.append(line)
    return kept


def _owns(run_id: str, name: str) -> bool:
    """True when an output file name is one of ``run_id``'s (inference.py:185-343)."""
    stem, _, ext = name.rpartition(".")
    if not stem or ext not in ("mp4", "jpg", "json", "txt"):
        return False
    return stem == run_id or stem.startswith((f"{run_id}_control_", f"{run_id}_mask_"))


async def collect(
    launcher: BatchLauncher,
    host: RemoteHost,
    layout: RemoteLayout,
    batch_id: str,
    run_ids: Sequence[str],
    log_lines: Sequence[str],
    death: Death | None,
) -> None:
    """End every active member of a Transfer2.5 batch whose container exited.

    Args:
        launcher: The batch launcher (store, run folders, state helpers).
        host: The batch's host.
        layout: The batch's folders on the host.
        batch_id: The batch.
        run_ids: Every member, in JSONL order (their sample names).
        log_lines: The container's whole log (clean lines).
        death: How the container died; None when it exited 0.
    """
    # lazy: the collector and output download (~10 ms) are for queue drivers; the services
    # import this module (through engine.batching)
    from cosmos_tui.engine.batch_collect import requeue, slice_member_logs

    listing = await host.files.listdir(layout.output_dir)
    files = [entry.name for entry in listing if not entry.is_dir]
    exit_code = death.exit_code if death is not None else 0
    first = await launcher.ctx.store.get_run(run_ids[0], with_events=False)
    guardrails = not options_of(first.params).disable_guardrails
    outcomes = collect_outputs(run_ids, files, log_lines, exit_code, guardrails)
    await asyncio.to_thread(
        slice_member_logs, launcher, batch_id, run_ids, log_lines,
        lambda run_id: slice_sections(log_lines, run_id, ""),
    )  # fmt: skip
    started = [o for o in outcomes if o.state != "not_run"]
    culprits = [o.name for o in outcomes if o.state == "failed"]
    not_started = []
    for outcome in outcomes:
        run = await launcher.ctx.store.get_run(outcome.name, with_events=False)
        if run.state.is_terminal or run.state == RunState.QUEUED:
            continue  # cancelled while the batch ran, or settled by an earlier collect
        if outcome.state == "done":
            await _download(launcher, host, layout, batch_id, outcome)
        elif outcome.state == "blocked":
            message = explain(FailureKind.GUARDRAIL, f"{outcome.reason} (batch {batch_id})")
            await launcher.end(outcome.name, RunState.BLOCKED, message, FailureKind.GUARDRAIL)
        elif death is not None and (outcome.state == "failed" or not started):
            # the cause is read in the sample it died in (an earlier sample's guardrail
            # block is not it); the whole log when it died before any sample
            lines = slice_sections(log_lines, outcome.name, "") if started else log_lines
            await _end_with_death(launcher, outcome.name, death, lines, len(run_ids))
        elif outcome.state == "failed":
            message = f"{outcome.reason} (batch {batch_id})"
            await launcher.end(outcome.name, RunState.FAILED, message, FailureKind.UNKNOWN)
        elif death is not None:
            not_started.append(outcome.name)
        else:
            message = f"batch {batch_id} exited 0 without starting this run's sample"
            await launcher.end(outcome.name, RunState.FAILED, message, FailureKind.UNKNOWN)
    if not_started:
        where = f"run {', '.join(culprits)}" if culprits else "a sample before them"
        reason = f"batch {batch_id} died on {where} before this run's sample started"
        await requeue(launcher, not_started, f"{reason}; back in the queue")


async def _end_with_death(
    launcher: BatchLauncher, run_id: str, death: Death, lines: Sequence[str], size: int
) -> None:
    kind, message, code = launcher.failure(
        death.container_id, death.exit_code, list(lines), size, run_id, profile=NAME
    )
    target = RunState.BLOCKED if kind == FailureKind.GUARDRAIL else RunState.FAILED
    await launcher.end(run_id, target, message, kind, code)


async def _download(
    launcher: BatchLauncher, host: RemoteHost, layout: RemoteLayout, batch_id: str,
    outcome: SampleOutcome,
) -> None:  # fmt: skip
    """Download one member's files (only its own, from the shared folder) and complete it."""
    from cosmos_tui.engine.batch_collect import download_member  # lazy: see collect

    run_id = outcome.name
    await download_member(launcher, host, layout, batch_id, run_id, "",
                          keep=lambda name: _owns(run_id, name))  # fmt: skip
