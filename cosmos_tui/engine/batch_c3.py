"""Cosmos 3 batches: one sample file per run in, each member's own folder out.

What upstream does with several ``-i`` files (docs/cosmos.md, "Cosmos 3 batches", read at
5eee9ed5; ``S`` script.py, ``CA`` common.py, ``CI`` common/inference.py, ``I``
inference.py):

- One model for every file (S:21-28); the files are sorted, so samples run in path order
  (CA:1090-1098): the files are named ``sample-<line>-<run id>.json``. Every sample is
  read and validated before the model loads (CA:1065-1070): each is checked here with
  upstream's rules first (the profile's ``check``), so one bad file cannot end the rest.
- The model comes from the setup alone (I:1175-1347; transfer uses the same model), so
  runs batch when the checkpoint, parallelism preset, GPU count and guardrails agree;
  their modes, prompts, videos, hints, seeds, steps, guidance and sizes are their own.
  Each sample is named by its run id and carries its own seed (a transfer sample without
  one would take one from its place in the process, T:480, N:215).
- ``--keep-going`` is sent: a handled error (a blocked prompt, a failed save) logs
  ``Error generating sample '<name>': ...`` and the next sample runs (CI:262-266). The
  generation step is not handled (I:1560-1564): an OOM ends the process.

A member's end is read from what the process left: ``<name>/sample_outputs.json``
completes it with its own folder; the handled error names it blocked (``Guardrail
blocked``) or failed; after the process died, the sample with ``sample_args.json`` and no
outputs is the one it died in (failed with the cause), and samples never started go back
in the queue. When no sample started (the gated download), the failure is every
member's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cosmos_tui.domain import FailureKind, InputFile, Prompt, Run, RunState, RunType
from cosmos_tui.engine.failure_text import explain
from cosmos_tui.engine.failures import classify
from cosmos_tui.engine.launch import run_inputs
from cosmos_tui.engine.logscan import CUTLASS_FAILED
from cosmos_tui.engine.profiles.cosmos3 import NAME, Cosmos3Profile, options_of
from cosmos_tui.errors import CosmosError, InvalidTransition

if TYPE_CHECKING:
    from cosmos_tui.engine.batch_collect import Death
    from cosmos_tui.engine.batch_launch import BatchLauncher
    from cosmos_tui.engine.launch import RemoteLayout
    from cosmos_tui.remote.host import RemoteHost

# A member's sample file in the batch folder: path order is line order (CA:1090-1098).
SAMPLE_FILE = "sample-{:06d}-{}.json"
# What a handled error of one sample logs (common/inference.py:262-266).
SAMPLE_ERROR = re.compile(r"Error generating sample '(?P<name>[^']+)': (?P<reason>.*)")
# A traceback frame of a sample's data being prepared (inference.py:642, 1124).
DATA_FRAME = re.compile(r'inference/inference\.py", line \d+, in (get_sample_data|__getitem__)')
# A sample's last line: its outputs saved (I:1812, 1889, 1981) or its handled error.
SAMPLE_END = re.compile(r"Saved (?:sample|transfer|reasoner) outputs to|Error generating sample '")
# The guardrail's critical verdict on a blocked prompt or video (presets.py:52, 68).
VERDICT = "GUARDRAIL BLOCKED:"
OUTPUTS = "sample_outputs.json"
ARGS = "sample_args.json"

logger = logging.getLogger(__name__)


def setup_of(run: Run) -> tuple[tuple[str, Any], ...]:
    """Return what every sample of one batch shares: the setup of the one command line."""
    options = options_of(run.params)
    return (
        ("checkpoint", options.checkpoint),
        ("parallelism", options.parallelism),
        ("guardrails", options.guardrails),
        ("num_gpus", run.params.num_gpus),
    )


def setup_differences(first: Run, second: Run) -> list[str]:
    """Name the setup arguments in which two Cosmos 3 runs differ."""
    return [
        name for (name, a), (_, b) in zip(setup_of(first), setup_of(second), strict=True) if a != b
    ]


def batchable(run: Run) -> bool:
    """False for a run that must have its container to itself.

    The throughput preset on several GPUs: each GPU is a replica and the samples are
    dealt out among them (I:1437, 2000-2014), so they run at once, a handled error on
    another rank is never logged (log.py:102-108) and one rank's OOM ends the samples of
    all. A reasoner run (an enhancement) batches with reasoner runs only: the run type is
    in the batch key, and an all-reasoner input loads another model (S:47-49).
    """
    options = options_of(run.params)
    return run.params.num_gpus <= 1 or options.parallelism != "throughput"


@dataclass(frozen=True)
class Sample:
    """One member's sample file: its run, prompt text and the sample object."""

    run_id: str
    prompt: str
    sample: dict[str, Any]

    @property
    def video(self) -> str | None:
        """The sample's input video or image (None: text2video)."""
        found = self.sample.get("vision_path")
        return str(found) if found is not None else None


def build_samples(
    members: Sequence[tuple[Run, Prompt]], container_path: Callable[[InputFile], str]
) -> list[Sample]:
    """Return each member's sample, as the profile writes it for the run alone.

    Raises:
        ValidationError: A sample the run cannot express (a mode without its input).
    """
    profile = Cosmos3Profile()
    samples = []
    for run, prompt in members:
        inputs = {item.role: container_path(item) for item in run_inputs(run, prompt)}
        samples.append(Sample(run.id, prompt.text, profile.build_spec(run, prompt, inputs)))
    return samples


def sample_files(samples: Sequence[Sample]) -> dict[str, str]:
    """Return the batch folder's sample files (name: JSON), named in line order."""
    return {
        SAMPLE_FILE.format(number, s.run_id): json.dumps(s.sample, indent=2) + "\n"
        for number, s in enumerate(samples)
    }


@dataclass(frozen=True)
class Outcome:
    """What the process left for one member.

    Attributes:
        name: The member's run id (its sample's name).
        state: ``done``, ``blocked``, ``failed`` (a handled error), ``started`` (it has
            its sample_args.json and nothing else: the process died in it) or
            ``not_run``.
        reason: The handled error's text.
    """

    name: str
    state: str
    reason: str = ""


def outcomes(
    run_ids: Sequence[str], files: dict[str, set[str]], log_lines: Sequence[str]
) -> list[Outcome]:
    """Read each member's end from its folder's files and the handled errors in the log.

    Args:
        run_ids: The members, in line order.
        files: The file names in each member's output folder (missing: none).
        log_lines: The container's whole log.
    """
    errors: dict[str, str] = {}
    for line in log_lines:
        found = SAMPLE_ERROR.search(line)
        if found is not None:
            errors.setdefault(found["name"], found["reason"])
    result = []
    for run_id in run_ids:
        names = files.get(run_id, set())
        if OUTPUTS in names:
            result.append(Outcome(run_id, "done"))
        elif run_id in errors:
            reason = errors[run_id]
            state = "blocked" if "Guardrail blocked" in reason else "failed"
            result.append(Outcome(run_id, state, reason))
        elif ARGS in names:
            result.append(Outcome(run_id, "started"))
        else:
            result.append(Outcome(run_id, "not_run"))
    return result


async def collect(
    launcher: BatchLauncher,
    host: RemoteHost,
    layout: RemoteLayout,
    batch_id: str,
    run_ids: Sequence[str],
    log_lines: Sequence[str],
    death: Death | None,
) -> None:
    """End every active member of a Cosmos 3 batch whose container exited.

    Args:
        launcher: The batch launcher (store, run folders, state helpers).
        host: The batch's host.
        layout: The batch's folders on the host.
        batch_id: The batch.
        run_ids: Every member, in line order (their sample names).
        log_lines: The container's whole log (clean lines).
        death: How the container died; None when it exited 0.
    """
    # lazy: the collector and output download (~10 ms) are for queue drivers; the services
    # import this module (through engine.batching)
    from cosmos_tui.engine.batch_collect import download_member, requeue, slice_member_logs

    files = await _member_files(host, layout, run_ids)
    found = outcomes(run_ids, files, log_lines)
    await asyncio.to_thread(
        slice_member_logs, launcher, batch_id, run_ids, log_lines,
        lambda run_id: member_lines(log_lines, run_id, run_ids),
    )  # fmt: skip
    blamed = _blame(found, log_lines, run_ids) if death is not None else None
    if blamed is not None:
        found = [Outcome(o.name, "started") if o.name == blamed else o for o in found]
    started = [o for o in found if o.state != "not_run"]
    culprit = next((o.name for o in found if o.state == "started"), None)
    not_started = []
    for outcome in found:
        run = await launcher.ctx.store.get_run(outcome.name, with_events=False)
        if run.state.is_terminal or run.state == RunState.QUEUED:
            continue  # cancelled while the batch ran, or settled by an earlier collect
        if outcome.state == "done":
            finish = _keep_answer(launcher) if run.type == RunType.ENHANCE else None
            await download_member(launcher, host, layout, batch_id, outcome.name, "",
                                  keep=_folder_of(outcome.name), finish=finish)  # fmt: skip
        elif outcome.state == "blocked":
            message = explain(FailureKind.GUARDRAIL, f"{outcome.reason} (batch {batch_id})")
            await launcher.end(outcome.name, RunState.BLOCKED, message, FailureKind.GUARDRAIL)
        elif outcome.state == "failed":
            kind = classify(1, [outcome.reason], profile=NAME).kind
            message = f"{outcome.reason} (batch {batch_id})"
            await launcher.end(outcome.name, RunState.FAILED, message, kind)
        elif death is not None and (outcome.state == "started" or not started):
            # the cause is read in the member's own part of the log (its sample), or in
            # the whole log: when it died before any sample, or before the blamed
            # member's first line (its error then follows another sample's lines)
            own = bool(started) and outcome.name != blamed
            lines = member_lines(log_lines, outcome.name, run_ids) if own else log_lines
            await _end_with_death(launcher, outcome.name, death, lines, len(run_ids))
        elif death is not None:
            not_started.append(outcome.name)
        else:
            message = f"batch {batch_id} exited 0 without running this run's sample"
            await launcher.end(outcome.name, RunState.FAILED, message, FailureKind.UNKNOWN)
    if not_started:
        where = f"run {culprit}" if culprit else "a sample before them"
        reason = f"batch {batch_id} died on {where} before this run's sample started"
        await requeue(launcher, not_started, f"{reason}; back in the queue")


def _keep_answer(launcher: BatchLauncher) -> Callable[[str, list[str]], Awaitable[None]]:
    """Return how a reasoner member ends once its outputs are down: its answer kept."""

    async def keep(run_id: str, outputs: list[str]) -> None:
        # lazy: a cycle (reasoner_answer -> enhance_launch -> batching -> this module)
        from cosmos_tui.engine.reasoner_answer import keep_answer

        try:
            run = await launcher.ctx.store.get_run(run_id, with_events=False)
            await keep_answer(launcher.ctx, run, outputs, launcher.log_path(run_id))
        except InvalidTransition:
            logger.info("run %s of a reasoner batch changed meanwhile (cancelled?)", run_id)
        except (CosmosError, OSError) as exc:  # this member's alone: the others go on
            message = f"the reasoner's answer could not be kept: {exc}"
            await launcher.end(run_id, RunState.FAILED, message, FailureKind.UNKNOWN)

    return keep


def _folder_of(run_id: str) -> Callable[[str], bool]:
    """Return the filter of a member's own folder in the shared output folder."""
    return lambda name: name == run_id


def _blame(found: list[Outcome], log_lines: Sequence[str], run_ids: Sequence[str]) -> str | None:
    """Name the member a dead process died on when no sample was mid-run.

    A sample file upstream refused names itself (``Error validating parameters from
    '<file>'``, CA:1065-1070, every file read before any runs); an input that cannot be
    read ends the process while the next sample's data is prepared (its traceback passes
    through ``get_sample_data``), after the samples before it ended and before its
    ``sample_args.json`` (I:1471-1479, CI:141-151). Returns that member (None: a sample
    was mid-run, or the process died before any sample for another cause, and the
    failure stays every member's).
    """
    if any(o.state == "started" for o in found):
        return None
    refused = next(
        (name for line in log_lines if "Error validating parameters from" in line
         for name in run_ids if f"-{name}.json" in line),
        None,
    )  # fmt: skip
    if refused is not None:
        return refused
    # the next sample's data was being prepared: the traceback passes through it, or
    # samples before it had ended (done, blocked or failed with --keep-going)
    preparing = any(DATA_FRAME.search(line) for line in log_lines)
    if preparing or any(o.state != "not_run" for o in found):
        return next((o.name for o in found if o.state == "not_run"), None)
    return None


async def _member_files(
    host: RemoteHost, layout: RemoteLayout, run_ids: Sequence[str]
) -> dict[str, set[str]]:
    """Return the file names in each member's output folder (one round trip for all)."""
    top = {entry.name for entry in await host.files.listdir(layout.output_dir) if entry.is_dir}
    present = [run_id for run_id in run_ids if run_id in top]
    listings = await asyncio.gather(
        *(host.files.listdir(f"{layout.output_dir}/{run_id}") for run_id in present)
    )
    return {
        run_id: {entry.name for entry in listing if not entry.is_dir}
        for run_id, listing in zip(present, listings, strict=True)
    }


async def _end_with_death(
    launcher: BatchLauncher, run_id: str, death: Death, lines: Sequence[str], size: int
) -> None:
    kind, message, code = launcher.failure(
        death.container_id, death.exit_code, list(lines), size, run_id, profile=NAME
    )
    target = RunState.BLOCKED if kind == FailureKind.GUARDRAIL else RunState.FAILED
    await launcher.end(run_id, target, message, kind, code)


def member_lines(log_lines: Sequence[str], run_id: str, run_ids: Sequence[str]) -> list[str]:
    """Return one member's part of the batch log (the shared start included).

    Lines are given to members as :class:`Sections` reads them; the lines of no sample
    (the downloads, the model load) are every member's, and so is a CUTLASS kernel's
    failure warning wherever it falls. A guardrail verdict before any line names a
    sample is the first named sample's.
    """
    sections = Sections(run_ids)
    owners = [sections.owner_of(line) for line in log_lines]
    # A guardrail verdict before any line names a sample is the first reasoner sample's
    # (its handled error, which names it, comes next): never another member's evidence.
    pending: list[int] = []
    for index, (line, owner) in enumerate(zip(log_lines, owners, strict=True)):
        if CUTLASS_FAILED in line and sample_named(line, run_ids) is None:
            # the warning of a kernel that failed to start is the GPU's, not one sample's:
            # every member's outputs are suspect, wherever it falls (cosmos-framework#42);
            # an exception naming a kernel ("no kernel image") stays with its sample
            owners[index] = None
        elif owner is None and VERDICT in line:
            pending.append(index)
        elif owner is not None:
            for waiting in pending:
                owners[waiting] = owner
            pending = []
    return [line for line, owner in zip(log_lines, owners, strict=True) if owner in (None, run_id)]


class Sections:
    """Which member each line of a Cosmos 3 batch log is about, read in order.

    Samples run one after another in path order (CA:1090-1098). A line naming a sample
    (its folder ``output/<name>/`` or its quoted name) is that sample's, and so are the
    unnamed lines after it (a traceback). A sample's last line ends it: its outputs saved
    (``Saved sample|transfer|reasoner outputs to``, I:1812, 1889, 1981) or its handled
    error (``Error generating sample '<name>'``, CI:262-266); the lines after it are the
    next sample's, which matters for the reasoner, whose samples log nothing before their
    end (sample_args.json is written without a line, I:1941): its guardrail verdict or
    the traceback it died with come before any line names it. Before the first named
    line no sample is known (None: every member's).
    """

    def __init__(self, run_ids: Sequence[str]) -> None:
        self.run_ids = list(run_ids)
        self.owner: str | None = None

    def owner_of(self, line: str) -> str | None:
        """Return the member ``line`` is about (None: before any sample)."""
        error = SAMPLE_ERROR.search(line)  # its reason may quote another sample's path
        named = error["name"] if error is not None else None
        if named not in self.run_ids:
            named = sample_named(line, self.run_ids)
        if named is None:
            return self.owner
        self.owner = named
        if SAMPLE_END.search(line):
            after = self.run_ids.index(named) + 1
            if after < len(self.run_ids):
                self.owner = self.run_ids[after]
        return named


def sample_named(line: str, run_ids: Sequence[str]) -> str | None:
    """Return the member a log line names: its folder, or its name quoted.

    A folder is ``/<name>/``, or ``/<name>'`` where a quoted path ends (the reasoner's
    ``Saved reasoner outputs to '<output_dir>'``, I:1981).
    """
    return next(
        (n for n in run_ids if f"/{n}/" in line or f"/{n}'" in line or f"'{n}'" in line), None
    )
