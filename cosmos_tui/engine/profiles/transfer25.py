"""Cosmos-Transfer2.5: command line, environment, batch input and the outputs of a run.

The contract is docs/cosmos.md, "Transfer2.5 contract" (nvidia-cosmos/cosmos-transfer2.5
at commit 2ff49d07). Every sample setting goes into the sample file (JSON, or JSONL for a
batch); the command line carries only the setup arguments, which upstream takes from the
command line alone (config.py:213-305): ``-i`` files, ``-o`` folder, ``--model`` for the
distilled checkpoint and the guardrail switches. One GPU is a plain ``python`` run; more go
through ``torchrun``, whose WORLD_SIZE becomes the context-parallel size.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cosmos_tui.engine.profiles.transfer25_args import (
    HintOptions,
    Transfer25Options,
    build_sample,
    check_hint,
    validate_options,
)
from cosmos_tui.errors import ValidationError

NAME = "transfer2.5"
SCRIPT = "examples/inference.py"
MASTER_PORT = 12341  # docs/inference.md:58
DISTILLED_MODEL = "edge/distilled"  # config.py:150-152, docs/inference.md:142
TOKEN_ENV = "HF_TOKEN"  # noqa: S105 (a variable name) docs/setup.md:92-99
# Setup options a whole batch shares (one process, one command line).
SETUP_FIELDS = ("distilled", "num_gpus", "disable_guardrails", "offload_guardrail_models")
# "[i/N] Processing sample <name>" as upstream's generate() logs it (inference.py:167): the
# line ends there, so a prompt that quotes such a line (a guardrail echo) never matches.
SECTION = re.compile(r"generate\] \[(\d+)/(\d+)\] Processing sample (\S+)\s*$")
# A prompt block (inference.py:216, :229) or the guardrail's own verdict, which also comes
# for a blocked video (presets.py:58, :74 under _src/imaginaire/auxiliary/guardrail/common).
_BLOCKED = re.compile(
    r"Guardrail blocked (?:generation|video2world generation)[^\n]*|GUARDRAIL BLOCKED: [^\n]*"
)


@dataclass(frozen=True)
class LaunchPaths:
    """Container-side paths of one launch.

    Attributes:
        input_files: The sample files (``-i``): one JSON per run, or one JSONL for a batch.
        output_dir: The ``-o`` folder; every sample writes ``<output_dir>/<name>.*``.
    """

    input_files: tuple[str, ...]
    output_dir: str


def build_argv(
    options: Transfer25Options,
    paths: LaunchPaths,
    script: str = SCRIPT,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """Return the container command (an argv list) of one launch.

    Raises:
        ValidationError: When an option is invalid or no input file is given.
    """
    validate_options(options)
    if not paths.input_files:
        raise ValidationError("a Transfer2.5 launch needs at least one sample file", "input")
    if options.num_gpus > 1:
        front = ["torchrun", f"--nproc_per_node={options.num_gpus}", f"--master_port={MASTER_PORT}"]
    else:
        front = ["python"]
    argv = [*front, script, "-i", *paths.input_files, "-o", paths.output_dir]
    if options.distilled:
        argv += ["--model", DISTILLED_MODEL]
    if options.disable_guardrails:
        argv.append("--disable-guardrails")
    if options.offload_guardrail_models:
        argv.append("--offload-guardrail-models")
    return argv + list(extra_args)


def build_env(options: Transfer25Options, hf_home: str | None = None) -> dict[str, str]:
    """Return the environment a launch adds (never the token: the caller passes it).

    The distilled checkpoint is registered only with COSMOS_EXPERIMENTAL_CHECKPOINTS
    (config.py:165-169, flags.py:50; tests/docs_test/distilled_edge.sh:16). ``HF_HOME``
    points the download cache at the host's mounted cache (docs/setup.md:117).
    """
    env: dict[str, str] = {}
    if options.distilled:
        env["COSMOS_EXPERIMENTAL_CHECKPOINTS"] = "1"
    if hf_home:
        env["HF_HOME"] = hf_home
    return env


@dataclass(frozen=True)
class BatchItem:
    """One run of a batch: its sample name, prompt, input video and own options."""

    name: str
    prompt: str
    video_path: str
    options: Transfer25Options


def build_batch(items: Sequence[BatchItem]) -> str:
    """Return the JSONL batch file: one sample per line, each with its own settings.

    Raises:
        ValidationError: For an empty batch, a name used twice (config.py:408-414), a
            sample upstream would reject, or setup options that differ between samples
            (they are one command line).
    """
    if not items:
        raise ValidationError("the batch has no samples; add at least one run", "batch")
    first = items[0].options
    names: set[str] = set()
    lines = []
    for item in items:
        if item.name in names:
            raise ValidationError(
                f"sample name {item.name!r} is used twice in the batch; upstream needs "
                "unique names (they name the output files)",
                field="name",
            )
        names.add(item.name)
        for key in SETUP_FIELDS:
            if getattr(item.options, key) != getattr(first, key):
                raise ValidationError(
                    f"{key} differs between the runs of one batch ({item.name!r}); upstream "
                    "takes it once on the command line: batch these runs separately",
                    field=key,
                )
        sample = build_sample(item.name, item.prompt, item.video_path, item.options)
        lines.append(json.dumps(sample, ensure_ascii=True))
    return "\n".join(lines) + "\n"


def mixed_hints(items: Sequence[BatchItem]) -> bool:
    """True when the batch's samples use different controls.

    Upstream then loads the multicontrol model for every sample (examples/inference.py:
    51-54, inference.py:64-72), which is "not strictly equal to single control"
    (inference.py:147-150): worth a warning before launching.
    """
    return len({tuple(sorted(h.hint for h in i.options.hints)) for i in items}) > 1


@dataclass(frozen=True)
class SampleOutcome:
    """What one sample of a run left behind.

    Attributes:
        name: The sample name.
        state: ``done`` (video written), ``blocked`` (a guardrail refused it),
            ``failed`` (the process died in it) or ``not_run`` (it never started).
        video: The output video (or image) file name in the output folder.
        controls: Control videos written beside it, by hint.
        masks: Mask videos written beside it, by hint.
        reason: Why it has no video, when it has none.
    """

    name: str
    state: str
    video: str | None = None
    controls: dict[str, str] = field(default_factory=dict)
    masks: dict[str, str] = field(default_factory=dict)
    reason: str = ""


def collect_outputs(
    names: Sequence[str],
    files: Iterable[str],
    log_lines: Iterable[str],
    exit_code: int | None,
    guardrails: bool = True,
) -> list[SampleOutcome]:
    """Match each sample to its files in the output folder (inference.py:185-350).

    Upstream writes ``<name>.mp4`` (``.jpg`` for one frame), ``<name>.json``,
    ``<name>.txt``, ``<name>_control_<hint>.mp4`` and ``<name>_mask_<hint>.mp4``. A
    guardrail block with keep_going (the default, config.py:238) skips to the next
    sample; any other error ends the process. So a sample without a video was blocked
    when a later sample started or the process exited 0, failed when the process died
    in it, and not run when it never started. Upstream saves the video and then the
    prompt (inference.py:336-342): in the sample the process died in, a video without its
    ``<name>.txt`` may be cut short and is not a result. With the guardrails off, a
    sample without a video was not blocked: it failed.

    Args:
        names: The sample names in batch order.
        files: File names in the output folder (anything with a path separator is ignored).
        log_lines: The run's clean log lines.
        exit_code: The process's exit status (None when unknown).
        guardrails: Whether the guardrails ran (``--disable-guardrails`` not given).
    """
    present = {f for f in files if "/" not in f and "\\" not in f}
    started: dict[str, int] = {}
    blocked: dict[str, str] = {}
    current: str | None = None
    order = 0
    for line in log_lines:
        section = SECTION.search(line)
        if section is not None:
            current = section.group(3)
            started.setdefault(current, order)
            order += 1
            continue
        match = _BLOCKED.search(line)
        if match is not None and current is not None:
            blocked.setdefault(current, match.group(0)[:200])
    last = max(started, key=lambda n: started[n]) if started else None
    outcomes = []
    for name in names:
        video = next(
            (f"{name}.{ext}" for ext in ("mp4", "jpg") if f"{name}.{ext}" in present), None
        )
        controls = _side_files(present, f"{name}_control_")
        masks = _side_files(present, f"{name}_mask_")
        cut_short = exit_code != 0 and name == last and f"{name}.txt" not in present
        if video is not None and not cut_short:
            outcomes.append(SampleOutcome(name, "done", video, controls, masks))
        elif name in blocked:
            outcomes.append(SampleOutcome(name, "blocked", None, controls, masks, blocked[name]))
        elif name not in started:
            outcomes.append(SampleOutcome(name, "not_run", reason="the run ended before it"))
        elif name != last or exit_code == 0:
            if guardrails:
                reason = "no video and no error: a guardrail blocked the generated video"
                outcomes.append(SampleOutcome(name, "blocked", None, controls, masks, reason))
            else:
                reason = "the model went on without writing its video (guardrails were off)"
                outcomes.append(SampleOutcome(name, "failed", None, controls, masks, reason))
        else:
            outcomes.append(SampleOutcome(name, "failed", None, controls, masks,
                                          "the model stopped while generating it"))  # fmt: skip
    return outcomes


def _side_files(present: set[str], prefix: str) -> dict[str, str]:
    found = {}
    for name in sorted(present):
        if name.startswith(prefix) and name.endswith((".mp4", ".jpg")):
            found[name[len(prefix) :].rsplit(".", 1)[0]] = name
    return found


_OPTION_FIELDS = {f.name for f in dataclasses.fields(Transfer25Options)}
_HINT_FIELDS = {f.name for f in dataclasses.fields(HintOptions)}


def options_to_dict(options: Transfer25Options) -> dict[str, Any]:
    """Return the options as a JSON-ready dict (stored with a run's parameters)."""
    data = dataclasses.asdict(options)
    data["hints"] = [{k: v for k, v in h.items() if v is not None} for h in data["hints"]]
    return data


def options_from_dict(data: Mapping[str, Any]) -> Transfer25Options:
    """Return the options stored by :func:`options_to_dict` (missing keys: defaults).

    Raises:
        ValidationError: For an unknown key, or a value upstream would refuse.
    """
    unknown = sorted(set(data) - _OPTION_FIELDS)
    if unknown:
        raise ValidationError(
            f"unknown Transfer2.5 option {unknown[0]!r}; use one of "
            f"{', '.join(sorted(_OPTION_FIELDS))}",
            field=unknown[0],
        )
    hints = []
    for item in data.get("hints", ()):
        extra = sorted(set(item) - _HINT_FIELDS)
        if extra or "hint" not in item:
            raise ValidationError(f"bad control setting {item!r}", field="hints")
        hints.append(HintOptions(**item))
    options = Transfer25Options(**{**dict(data), "hints": tuple(hints)})
    if options.hints:  # options without controls are completed before a run is made
        validate_options(options)
    return options


_HINT_KEYS = {"control": "control_path", "mask": "mask_path", "mask_prompt": "mask_prompt",
              "prompt": "control_prompt"}  # fmt: skip


def parse_hint(text: str) -> HintOptions:
    """Parse ``HINT[=WEIGHT][,control=PATH][,mask=PATH][,mask_prompt=TEXT][,prompt=TEXT]``.

    Raises:
        ValidationError: For an unknown hint or key, or a weight that is not 0..1.
    """
    head, *rest = [part.strip() for part in text.split(",")]
    name, _, weight_text = head.partition("=")
    name = name.strip()
    weight = 1.0
    if weight_text:
        try:
            weight = float(weight_text)
        except ValueError:
            raise ValidationError(
                f"the {name} weight {weight_text!r} is not a number; use 0..1 (e.g. {name}=0.5)",
                field=f"{name}_weight",
            ) from None
    fields: dict[str, str] = {}
    for part in rest:
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in _HINT_KEYS:
            raise ValidationError(
                f"{part!r} in {text!r} is not a control setting; use control=PATH, mask=PATH, "
                "mask_prompt=TEXT or prompt=TEXT (seg)",
                field="hints",
            )
        fields[_HINT_KEYS[key.strip()]] = value.strip()
    hint = HintOptions(name, weight, **fields)
    check_hint(hint)
    return hint


def remaining_items(
    items: Sequence[BatchItem], outcomes: Sequence[SampleOutcome]
) -> list[BatchItem]:
    """Return the batch's runs that never started, to launch again on their own.

    Upstream stops the whole process at the first error that is not a guardrail block
    (inference.py:166-170 has no per-sample handler), so the samples after it never ran;
    they go again without the done, blocked and failed ones, and each keeps its settings.
    """
    not_run = {o.name for o in outcomes if o.state == "not_run"}
    return [item for item in items if item.name in not_run]
