"""Smart batching: which queued runs may share one container, and how they share it.

Cosmos-Transfer1's ``--batch_input_path`` loads the model once and then generates one
sample per JSONL line (COSMOS.md section 3). A line can only say ``visual_input``,
``prompt`` and ``control_overrides`` (per hint, merged over the spec's hint); everything
else (steps, guidance, seed, fps, sigma_max, blur and canny levels, the negative prompt,
the set of active controls, the GPU count) is shared by every line. So two runs are
batched only when all of those are identical, and every line carries the run's own
weights and control videos for every active hint: no run ever inherits another run's
setting, and nothing a run asked for is dropped.

Outputs are matched back to runs by the prompt saved next to each sample
(``video_<i>/prompt.txt``), never by position (engine/batch_outputs.py). For that to be
unambiguous, a batch never holds two lines with the same prompt text.

Transfer2.5 reads a JSONL of whole samples, each with its own settings and named by its
run id (engine/batch_t25.py): its runs batch whenever the setup arguments of the one
command line agree, and the same prompt text may appear twice (a seed sweep).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cosmos_tui.domain import CONTROL_HINTS, InputFile, Prompt, Run, RunType
from cosmos_tui.engine import batch_c3, batch_t25
from cosmos_tui.engine.batch_outputs import (  # noqa: F401 (re-exported)
    BatchOutcome,
    SampleFate,
    SampleOutput,
    map_outputs,
    sample_index,
    slice_log,
)
from cosmos_tui.engine.launch import SPEC_NAME
from cosmos_tui.engine.profiles.base import MountSpec
from cosmos_tui.engine.profiles.cosmos3 import reasoner_kind
from cosmos_tui.engine.profiles.transfer1 import build_spec
from cosmos_tui.errors import BatchError
from cosmos_tui.store.queue_store import Candidate

# Run types whose container can take several inputs at once.
BATCHABLE_TYPES = frozenset({RunType.TRANSFER, RunType.ENHANCE})
# Parameters shared by every line of a batch (they cannot differ per line).
SHARED_SCALARS = (
    "num_steps", "guidance", "seed", "sigma_max", "fps", "blur_strength", "canny_threshold",
    "num_gpus", "negative_prompt",
)  # fmt: skip


# Families whose batch lines are whole samples named by run id: Transfer2.5's JSONL
# (engine/batch_t25.py) and Cosmos 3's sample files (engine/batch_c3.py).
SAMPLE_FAMILIES: dict[str, Any] = {"transfer2.5": batch_t25, "cosmos3": batch_c3}
SAMPLE_PROFILES = frozenset(SAMPLE_FAMILIES)
# The JSONL a Transfer1 or Transfer2.5 batch reads (Cosmos 3 reads sample files).
JSONL_NAME = "batch.jsonl"


@dataclass(frozen=True)
class BatchKey:
    """Everything that must be identical for runs to share a container.

    Attributes:
        run_type: transfer or enhance.
        profile: The model profile (script, image).
        priority: Queue priority; batching never lets a run jump to another priority.
        shared: The shared scalar parameters, as sorted (name, value) pairs.
        active_controls: Hints with a weight above 0 (transfer runs).
        has_input_video: Whether the runs have an input video.
        target: The host or cluster they are pinned to (None: anywhere).

    """

    run_type: str
    profile: str
    priority: int
    shared: tuple[tuple[str, Any], ...]
    active_controls: tuple[str, ...]
    has_input_video: bool
    target: str | None = None


def active_controls(run: Run) -> tuple[str, ...]:
    """Return the hints a transfer run turns on (weight above 0), in spec order."""
    return tuple(h for h in CONTROL_HINTS if run.params.weight(h) > 0)


def batch_key(run: Run, prompt: Prompt | None) -> BatchKey | None:
    """Return the compatibility key of a queued run, or None when it is never batched.

    Args:
        run: The queued run.
        prompt: Its prompt (needed to know whether it has an input video).

    """
    if run.type not in BATCHABLE_TYPES or prompt is None:
        return None
    params = run.params
    if is_upsampler(run):
        return BatchKey(run.type.value, run.profile, run.priority, (), (), True, run.target)
    if run.profile in SAMPLE_PROFILES:
        family = SAMPLE_FAMILIES[run.profile]
        if not family.batchable(run):
            return None
        setup = family.setup_of(run)
        if run.type == RunType.ENHANCE:
            # Cosmos 3's reasoner: samples of one conditioning only (a model batch of
            # mixed kinds is refused once max_num_seqs is above 1, inference.py:1915-1928)
            kind = reasoner_kind(prompt.input("color") is not None,
                                 prompt.input("image") is not None)  # fmt: skip
            setup += (("conditioning", kind),)
        return BatchKey(run.type.value, run.profile, run.priority, setup, (), True, run.target)
    shared = tuple((name, getattr(params, name)) for name in SHARED_SCALARS)
    return BatchKey(
        run_type=run.type.value,
        profile=run.profile,
        priority=run.priority,
        shared=shared,
        active_controls=active_controls(run),
        has_input_video=prompt.input("color") is not None,
        target=run.target,
    )


def differences(first: Run, second: Run) -> list[str]:
    """Name what keeps two transfer runs out of one batch (empty when compatible)."""
    reasons: list[str] = []
    if first.type != second.type:
        reasons.append("type")
    if first.profile != second.profile:
        reasons.append("profile")
    if first.priority != second.priority:
        reasons.append("priority")
    if first.target != second.target:
        reasons.append("target")
    if first.profile in SAMPLE_PROFILES or second.profile in SAMPLE_PROFILES:
        if first.profile == second.profile:
            reasons += SAMPLE_FAMILIES[first.profile].setup_differences(first, second)
        return reasons
    for name in SHARED_SCALARS:
        if getattr(first.params, name) != getattr(second.params, name):
            reasons.append(name)
    if active_controls(first) != active_controls(second):
        reasons.append("active controls")
    return reasons


def is_upsampler(run: Run) -> bool:
    """True for a run of Transfer1's prompt upsampler (an enhancement not of Cosmos 3)."""
    return run.type == RunType.ENHANCE and run.profile != "cosmos3"


@dataclass(frozen=True)
class LaunchGroup:
    """Runs that start together in one container (a batch), or one run alone.

    Attributes:
        runs: The runs, in queue order; the first one is the group's place in the queue.
        key: Their shared compatibility key (None for a run that is never batched).

    """

    runs: tuple[Run, ...]
    key: BatchKey | None = None

    @property
    def is_batch(self) -> bool:
        """True when the runs start as a batch: several of them, or an upsampler's one.

        Transfer1's prompt upsampler always runs a batch container (its input is a list
        of prompts), so even one enhancement gets a batch id, a manifest and a reattach
        as a batch after its driver died.
        """
        return len(self.runs) > 1 or is_upsampler(self.head)

    @property
    def head(self) -> Run:
        """The earliest run of the group in queue order."""
        return self.runs[0]

    @property
    def target(self) -> str | None:
        """The host or cluster the runs are pinned to (every member shares it)."""
        return self.head.target

    @property
    def num_gpus(self) -> int:
        """GPUs the container needs (every member asks for the same number)."""
        return self.head.params.num_gpus

    @property
    def run_ids(self) -> tuple[str, ...]:
        """Ids of the member runs, in line order."""
        return tuple(r.id for r in self.runs)


def plan_groups(
    candidates: Sequence[Candidate],
    enabled: bool = True,
    max_size: int = 8,
    free_gpus: int | None = None,
) -> list[LaunchGroup]:
    """Group queued runs into containers, keeping queue order.

    Each run joins the earliest open group with its key that has room and no line with the
    same prompt text; otherwise it opens a group. Groups come out ordered by their first
    run, so a group starts when its earliest run's turn comes.

    When ``free_gpus`` is given and every group can start now, batches of one key are
    evened out (12 runs with max 8: 6 + 6, not 8 + 4); and while GPUs would stay idle, the
    largest batches are split in halves until every free GPU has work: a model load per
    extra container buys parallel samples, which shortens the makespan.

    Args:
        candidates: Queued runs in queue order (priority, then FIFO).
        enabled: False puts every run in its own group.
        max_size: Most runs per container.
        free_gpus: GPUs free now; None never splits.

    """
    groups: list[list[Candidate]] = []
    keys: list[BatchKey | None] = []
    open_by_key: dict[BatchKey, list[int]] = {}
    for candidate in candidates:
        key = batch_key(candidate.run, candidate.prompt) if enabled and max_size > 1 else None
        placed = False
        if key is not None:
            for index in open_by_key.get(key, []):
                members = groups[index]
                texts = {_norm(m.run.prompt_text) for m in members if _by_text(key)}
                if len(members) < max_size and _norm(candidate.run.prompt_text) not in texts:
                    members.append(candidate)
                    placed = True
                    break
        if not placed:
            groups.append([candidate])
            keys.append(key)
            if key is not None:
                open_by_key.setdefault(key, []).append(len(groups) - 1)
    result = [
        LaunchGroup(runs=tuple(m.run for m in members), key=key)
        for members, key in zip(groups, keys, strict=True)
    ]
    order = [c.run.id for c in candidates]
    if free_gpus is not None:
        if sum(g.num_gpus for g in result) <= free_gpus:
            # Everything starts now: make the longest container as short as possible.
            result = _balance(result, order)
        result = _spread(result, order, free_gpus)
    return result


def _balance(groups: list[LaunchGroup], order: list[str]) -> list[LaunchGroup]:
    """Even out the sizes of batches that share a key (12 runs, max 8: 6 + 6, not 8 + 4).

    The same runs, the same number of containers and model loads, so the same GPU time,
    but the longest container is shorter. Runs are dealt out in queue order; a split that
    would put two equal prompts together is left as it was.
    """
    position = {run_id: index for index, run_id in enumerate(order)}
    by_key: dict[BatchKey, list[LaunchGroup]] = {}
    for group in groups:
        if group.key is not None:
            by_key.setdefault(group.key, []).append(group)
    replaced: dict[int, LaunchGroup] = {}
    for same in by_key.values():
        if len(same) < 2:
            continue
        runs = sorted((r for g in same for r in g.runs), key=lambda r: position[r.id])
        count = len(same)
        base, extra = divmod(len(runs), count)
        sizes = [base + (1 if i < extra else 0) for i in range(count)]
        chunks: list[tuple[Run, ...]] = []
        start = 0
        for size in sizes:
            chunks.append(tuple(runs[start : start + size]))
            start += size
        by_text = all(_by_text(g.key) for g in same)
        if by_text and any(len({_norm(r.prompt_text) for r in c}) < len(c) for c in chunks):
            continue
        for old, chunk in zip(same, chunks, strict=True):
            replaced[id(old)] = LaunchGroup(runs=chunk, key=old.key)
    balanced = [replaced.get(id(g), g) for g in groups]
    balanced.sort(key=lambda g: position[g.head.id])
    return balanced


def _spread(groups: list[LaunchGroup], order: list[str], free_gpus: int) -> list[LaunchGroup]:
    """Split the largest batches until the groups use ``free_gpus`` GPUs (see plan_groups)."""
    position = {run_id: index for index, run_id in enumerate(order)}
    while groups and sum(g.num_gpus for g in groups) < free_gpus:
        largest = max(groups, key=lambda g: (len(g.runs), -position[g.head.id]))
        if len(largest.runs) < 2:
            break
        half = (len(largest.runs) + 1) // 2
        first = LaunchGroup(runs=largest.runs[:half], key=largest.key)
        second = LaunchGroup(runs=largest.runs[half:], key=largest.key)
        groups = [g for g in groups if g is not largest] + [first, second]
        groups.sort(key=lambda g: position[g.head.id])
    return groups


@dataclass(frozen=True)
class BatchLine:
    """One JSONL line of a batch and the run it belongs to."""

    run_id: str
    prompt: str
    visual_input: str | None
    control_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # A whole sample (Transfer2.5), written as the line instead of the fields above.
    sample: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the object written on the line (keys Cosmos reads)."""
        if self.sample is not None:
            return dict(self.sample)
        line: dict[str, Any] = {"prompt": self.prompt}
        if self.visual_input is not None:
            line["visual_input"] = self.visual_input
        if self.control_overrides:
            line["control_overrides"] = {k: dict(v) for k, v in self.control_overrides.items()}
        return line


@dataclass(frozen=True)
class BatchPlan:
    """What one batch container needs, from the kind of batch it is.

    The model's batches (Transfer1, Transfer2.5) are planned by
    :meth:`~cosmos_tui.engine.batch_launch.BatchLauncher._plan_model`, Transfer1's prompt
    upsampler by :func:`~cosmos_tui.engine.enhance_launch.plan_enhance`; both then go
    through the one sequence of
    :meth:`~cosmos_tui.engine.batch_launch.BatchLauncher._run_batch`.

    Attributes:
        members: The runs that still take part, with their prompts, in line order.
        command: The container's argv.
        lines: One line per member (kept as the batch's manifest, for a reattach).
        files: Files written into the batch's folder before the start (name: text).
        specs: What each member records as its spec (none: left as it is).
        profile: The family whose mounts and environment the container gets.
        labels: Labels beside the batch's id and members.
        run_env: Variables of the run's own (``ModelProfile.run_env``).
        run_mounts: Host folders of the run's own (``ModelProfile.run_mounts``).

    """

    members: list[tuple[Run, Prompt]]
    command: list[str]
    lines: Sequence[BatchLine]
    files: dict[str, str] = field(default_factory=dict)
    specs: dict[str, dict[str, Any]] = field(default_factory=dict)
    profile: str = "transfer1"
    labels: dict[str, str] = field(default_factory=dict)
    run_env: dict[str, str] = field(default_factory=dict)
    run_mounts: list[MountSpec] = field(default_factory=list)

    @property
    def run_ids(self) -> list[str]:
        """The member runs in line order."""
        return [run.id for run, _ in self.members]

    def manifest(self) -> dict[str, Any]:
        """Return what is kept with the batch to map outputs back after a restart."""
        return {"lines": [{"run_id": ln.run_id, "prompt": ln.prompt} for ln in self.lines]}


@dataclass(frozen=True)
class BatchInput:
    """What one batched container gets: the shared spec and one line per run."""

    spec: dict[str, Any]
    lines: tuple[BatchLine, ...]
    profile: str = "transfer1"

    def files(self) -> dict[str, str]:
        """Return the files the container reads, by name in the batch's folder.

        Transfer1: its shared spec and the JSONL; Transfer2.5: the JSONL of samples;
        Cosmos 3: one sample file per line, named in line order (engine/batch_c3.py).
        """
        if self.profile == "cosmos3":
            return batch_c3.sample_files(
                [batch_c3.Sample(ln.run_id, ln.prompt, dict(ln.sample or {})) for ln in self.lines]
            )
        files = {}
        if self.spec:
            files[SPEC_NAME] = json.dumps(self.spec, indent=2) + "\n"
        files[JSONL_NAME] = self.jsonl()
        return files

    def jsonl(self) -> str:
        """Return the ``--batch_input_path`` file: one object a line, no blank lines."""
        return "".join(json.dumps(line.to_json(), sort_keys=True) + "\n" for line in self.lines)

    def manifest(self) -> dict[str, Any]:
        """Return what is kept with the batch to map outputs back after a restart."""
        return {"lines": [{"run_id": ln.run_id, "prompt": ln.prompt} for ln in self.lines]}

    @property
    def run_ids(self) -> tuple[str, ...]:
        """The member runs in line order."""
        return tuple(ln.run_id for ln in self.lines)

    def spec_for(self, run_id: str) -> dict[str, Any]:
        """Return what a member records as its spec: its own sample, else the shared spec."""
        line = next(ln for ln in self.lines if ln.run_id == run_id)
        return dict(line.sample) if line.sample is not None else self.spec


def build_batch_input(
    members: Sequence[tuple[Run, Prompt]], container_path: Callable[[InputFile], str]
) -> BatchInput:
    """Build the spec and JSONL lines of a transfer batch (or of Cosmos 3's reasoner).

    Every line names every active hint with the run's own ``control_weight`` and its own
    precomputed ``input_control`` (or ``null``: computed by the model), so the spec's
    hint values never leak from one run into another.

    Args:
        members: Runs and their prompts, in line order.
        container_path: Where an input file is, as the container sees it.

    Raises:
        BatchError: For an empty batch, a type that cannot batch, runs that differ in a
            shared setting or in having an input video, or two lines with the same prompt
            text.

    """
    if not members:
        raise BatchError("a batch needs at least one run")
    first_run, first_prompt = members[0]
    reasoner = first_run.type == RunType.ENHANCE and first_run.profile == "cosmos3"
    if first_run.type != RunType.TRANSFER and not reasoner:
        raise BatchError(f"run {first_run.id} is a {first_run.type.value} run; not a transfer")
    for run, prompt in members:
        diff = differences(first_run, run)
        if diff:
            raise BatchError(
                f"runs {first_run.id} and {run.id} differ in {', '.join(diff)}; "
                "a batch cannot express that, launch them separately"
            )
        if run.prompt_id != prompt.id:
            raise BatchError(f"run {run.id} belongs to prompt {run.prompt_id}, not {prompt.id}")
    if first_run.profile in SAMPLE_PROFILES:
        samples = SAMPLE_FAMILIES[first_run.profile].build_samples(members, container_path)
        return BatchInput(
            spec={},
            lines=tuple(BatchLine(s.run_id, s.prompt, s.video, sample=s.sample) for s in samples),
            profile=first_run.profile,
        )
    seen: dict[str, str] = {}
    for run, prompt in members:
        if (prompt.input("color") is None) != (first_prompt.input("color") is None):
            # A line without visual_input would take the spec's (another run's) video.
            raise BatchError(
                f"runs {first_run.id} and {run.id} differ in having an input video; "
                "a batch cannot express that, launch them separately"
            )
        text = _norm(prompt.text)
        if text in seen:
            raise BatchError(
                f"runs {seen[text]} and {run.id} have the same prompt text; outputs could "
                "not be told apart, launch them separately"
            )
        seen[text] = run.id
    hints = active_controls(first_run)
    base_video = first_prompt.input("color")
    spec = build_spec(
        first_prompt.text,
        first_run.params,
        container_path(base_video) if base_video else None,
        {h: container_path(item) for h in hints if (item := first_prompt.input(h)) is not None},
    )
    lines = []
    for run, prompt in members:
        overrides: dict[str, dict[str, Any]] = {}
        for hint in hints:
            control = prompt.input(hint)
            overrides[hint] = {
                "control_weight": run.params.weight(hint),
                "input_control": container_path(control) if control else None,
            }
        video = prompt.input("color")
        lines.append(
            BatchLine(
                run_id=run.id,
                prompt=prompt.text,
                visual_input=container_path(video) if video else None,
                control_overrides=overrides,
            )
        )
    return BatchInput(spec=spec, lines=tuple(lines))


def _norm(text: str | None) -> str:
    return (text or "").strip()


def _by_text(key: BatchKey | None) -> bool:
    """True when a batch's outputs are matched by prompt text (one text per batch)."""
    return key is None or key.profile not in SAMPLE_PROFILES
