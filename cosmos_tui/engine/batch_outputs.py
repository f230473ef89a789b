"""What a batch container left behind: whose each ``video_<i>/`` is, and where it died.

Transfer1 writes ``video_<i>/output.mp4`` and then ``video_<i>/prompt.txt`` (the prompt
that was generated, no newline) per JSONL line (transfer.py:390-417 upstream); the folder
itself is made when the line starts, before preprocessing (transfer.py:309-310). So
``prompt.txt`` marks a finished sample, and a folder without it is a line that started and
never finished. Outputs are matched to runs by that saved prompt, never by position: with
``--batch_size`` above 1 a blocked prompt shifts the later outputs of its chunk. The tool
sends no ``--batch_size`` (the model's default, 1): lines run one after another, and the
first blocked prompt ends the process (docs/cosmos.md, "Transfer1 batch outputs and
blocked prompts"); :func:`after_death` then says which member the container died on
(which chunk, should a profile add a larger ``--batch_size``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

_SAMPLE_FOLDER = re.compile(r"^video_(\d+)$")
# The files a finished sample holds (transfer.py:393-394 upstream).
SAMPLE_VIDEO = "output.mp4"
SAMPLE_PROMPT = "prompt.txt"


class Line(Protocol):
    """One JSONL line of a batch (see :class:`~cosmos_tui.engine.batching.BatchLine`)."""

    @property
    def run_id(self) -> str: ...  # noqa: D102

    @property
    def prompt(self) -> str: ...  # noqa: D102


class SampleFate(enum.StrEnum):
    """What became of one line of a batch."""

    PRODUCED = "produced"
    BLOCKED = "blocked"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SampleOutput:
    """One ``video_<idx>`` folder written by a batch and the prompt saved in it.

    Attributes:
        folder: The folder's name.
        prompt_text: The text of its ``prompt.txt``; None when that could not be read.
        finished: False when the folder has no ``prompt.txt`` and ``output.mp4``: its
            line started and never finished (blocked, failed, or still running).

    """

    folder: str
    prompt_text: str | None
    finished: bool = True


@dataclass(frozen=True)
class BatchOutcome:
    """Which folder belongs to which run.

    Attributes:
        fates: Per run id, what became of its line.
        folders: Per run id, its output folder (only for produced lines).
        unmatched_folders: Finished folders that match no line (never given to any run).
        unfinished_folders: Folders of lines that started and never finished.

    """

    fates: Mapping[str, SampleFate]
    folders: Mapping[str, str]
    unmatched_folders: tuple[str, ...] = ()
    unfinished_folders: tuple[str, ...] = ()


def sample_index(folder: str) -> int | None:
    """Return ``idx`` of a ``video_<idx>`` folder name, or None for any other name."""
    match = _SAMPLE_FOLDER.match(folder)
    return int(match.group(1)) if match else None


def map_outputs(lines: Sequence[Line], samples: Sequence[SampleOutput]) -> BatchOutcome:
    """Match the sample folders of a batch to its runs by saved prompt text.

    A line whose prompt appears in no finished folder was dropped (blocked by the
    guardrail) when every finished folder was identified; when some finished folder has no
    readable prompt and the numbers do not add up, the lines without a match are UNKNOWN
    rather than guessed. Unfinished folders are never given to a run.

    Args:
        lines: The batch's lines, as built.
        samples: The ``video_<idx>`` folders found, in any order.

    """
    ordered = sorted(
        (s for s in samples if sample_index(s.folder) is not None),
        key=lambda s: sample_index(s.folder) or 0,
    )
    finished = [s for s in ordered if s.finished]
    by_text = {_norm(line.prompt): line.run_id for line in lines}
    folders: dict[str, str] = {}
    unmatched: list[str] = []
    unreadable: list[SampleOutput] = []
    for sample in finished:
        if sample.prompt_text is None:
            unreadable.append(sample)
            continue
        run_id = by_text.get(_norm(sample.prompt_text))
        if run_id is None or run_id in folders:
            unmatched.append(sample.folder)
        else:
            folders[run_id] = sample.folder
    if unreadable and len(finished) == len(lines) and not unmatched:
        # Nothing was dropped, so line i wrote video_i; use that only if every folder
        # that could be read agrees with it.
        consistent = all(
            s.prompt_text is None or folders.get(line.run_id) == s.folder
            for line, s in zip(lines, finished, strict=True)
        )
        if consistent:
            for line, sample in zip(lines, finished, strict=True):
                folders[line.run_id] = sample.folder
            unreadable = []
    fates: dict[str, SampleFate] = {}
    for line in lines:
        if line.run_id in folders:
            fates[line.run_id] = SampleFate.PRODUCED
        elif unreadable:
            fates[line.run_id] = SampleFate.UNKNOWN
        else:
            fates[line.run_id] = SampleFate.BLOCKED
    unmatched.extend(s.folder for s in unreadable)
    return BatchOutcome(
        fates=fates,
        folders=folders,
        unmatched_folders=tuple(unmatched),
        unfinished_folders=tuple(s.folder for s in ordered if not s.finished),
    )


@dataclass(frozen=True)
class DeadBatch:
    """Where a batch container that exited non-zero stopped.

    Attributes:
        started: False when no line started (it died loading the model, or on the spec):
            the failure is the whole batch's.
        culprits: The members of the chunk it was generating when it died (with batch
            size 1, the one line it was on) that have no finished sample.
        not_started: Members whose line never started: they go back in the queue.
        dropped: Members of an earlier chunk left without a sample: the guardrail dropped
            them (only with a batch size above 1, where that does not end the process).
        unknown: Members of an earlier line that left no sample that can be told apart
            (batch size 1, where a dropped line would have ended the process).

    """

    started: bool
    culprits: tuple[str, ...] = ()
    not_started: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()


def after_death(
    lines: Sequence[Line],
    samples: Sequence[SampleOutput],
    outcome: BatchOutcome,
    batch_size: int = 1,
) -> DeadBatch:
    """Say which members a dead batch container died on and which never started.

    The model makes ``video_<n>/`` for every line of a chunk when the chunk starts and
    runs the chunks in order (transfer.py:295-310 upstream), so the folder with the
    highest number is in the chunk it was on; every line after that chunk never started.

    Args:
        lines: The batch's lines, in JSONL order.
        samples: The ``video_<idx>`` folders found.
        outcome: :func:`map_outputs` of the same.
        batch_size: The model's ``--batch_size`` (1 unless a profile adds it).

    """
    started = [i for s in samples if (i := sample_index(s.folder)) is not None]
    if not started:
        return DeadBatch(started=False)
    size = max(1, batch_size)
    chunk_start = max(started) // size * size
    chunk_end = chunk_start + size
    culprits: list[str] = []
    not_started: list[str] = []
    dropped: list[str] = []
    unknown: list[str] = []
    for number, line in enumerate(lines):
        fate = outcome.fates[line.run_id]
        if fate == SampleFate.PRODUCED:
            continue
        if number >= chunk_end:
            not_started.append(line.run_id)
        elif number >= chunk_start:
            culprits.append(line.run_id)
        elif size > 1 and fate == SampleFate.BLOCKED:
            dropped.append(line.run_id)
        else:
            unknown.append(line.run_id)
    return DeadBatch(True, tuple(culprits), tuple(not_started), tuple(dropped), tuple(unknown))


def batch_size_in(argv: Sequence[str]) -> int:
    """Return the ``--batch_size`` an argv gives the model (its default, 1, when none)."""
    size = "1"
    for index, item in enumerate(argv):
        if item == "--batch_size" and index + 1 < len(argv):
            size = argv[index + 1]
        elif item.startswith("--batch_size="):
            size = item.partition("=")[2]
    try:
        return max(1, int(size))
    except ValueError:
        return 1


def _norm(text: str | None) -> str:
    return (text or "").strip()


def slice_log(
    lines: Sequence[str], run_id: str, batch_id: str, line_number: int, total: int,
    own_folder: str | None, folders: Sequence[str],
) -> list[str]:  # fmt: skip
    """Return one run's slice of its batch's log.

    Transfer1 logs a batch phase by phase for all prompts at once, so the shared lines
    stay; lines that name another run's sample folder (``video_<idx>/``) are left out.
    The slice starts with a header saying where the run sat in the batch.

    Args:
        lines: The batch container's whole log.
        run_id: The run.
        batch_id: Its batch.
        line_number: Its 0-based JSONL line.
        total: Lines in the batch.
        own_folder: Its output folder, None when its prompt was dropped.
        folders: Every output folder of the batch.

    """
    others = [f for f in folders if f != own_folder]
    patterns = [re.compile(rf"(^|[/\s]){re.escape(f)}(/|\s|$)") for f in others]
    where = f"output {own_folder}" if own_folder else "no output"
    header = (
        f"[cosmos-tui] run {run_id}: line {line_number + 1} of {total} of batch {batch_id}, {where}"
    )
    kept = [line for line in lines if not any(p.search(line) for p in patterns)]
    return [header, *kept]
