"""Why a run did not complete: classification from exit code, container state and logs.

The log evidence is gathered by :class:`~cosmos_tui.engine.logscan.LogScanner` (one
bounded pass); the signatures and the upstream lines they come from are listed in
docs/cosmos.md ("Transfer1 log phases and failures"). Each classified failure carries a
one-line explanation that says what to change, the deciding log line with its rank, the
last phase reached, the lines around the error, and whether it is worth retrying: only
infrastructure trouble (a dropped SSH link, a Docker daemon that went away, a download
cut by the network) is transient; anything caused by the run itself (its parameters,
its prompt, the model's memory needs, the image) would fail the same way again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cosmos_tui.domain import FailureKind, RunState
from cosmos_tui.engine.failure_text import explain, oom_explanation
from cosmos_tui.engine.logs import read_log_lines
from cosmos_tui.engine.logscan import (
    CONTEXT_AFTER,
    CONTEXT_BEFORE,
    GUARDRAIL_VERDICT,
    SPEC_VALIDATION,
    Caught,
    Found,
    LogScanner,
    kernel_failure,
)
from cosmos_tui.engine.profiles import cosmos3_failures
from cosmos_tui.errors import (
    ContainerGone,
    CosmosError,
    DockerError,
    HostUnreachable,
    TransferFailed,
    ValidationError,
)
from cosmos_tui.safe_text import one_line

TRANSIENT_KINDS = frozenset({FailureKind.SSH_LOST, FailureKind.DOCKER_DOWN})


@dataclass(frozen=True)
class Failure:
    """A classified failure.

    Attributes:
        kind: The cause.
        message: One line: what happened and what to change.
        context: Log lines around the first error (empty when the logs say nothing).
        error_line: 0-based number of the first error line in the log, when found.
        exit_code: The container's exit code, when it exited.
        detail: The log line that decided the kind (empty when none did).
        rank: The worker rank that printed it, when the log names one.
        phase: The last phase the run reached (per rank when ranks differ).
        retryable: A cause outside the run that may pass on retry (a reset download).

    """

    kind: FailureKind
    message: str
    context: tuple[str, ...] = ()
    error_line: int | None = None
    exit_code: int | None = None
    detail: str = ""
    rank: int | None = None
    phase: str | None = None
    retryable: bool = False

    @property
    def transient(self) -> bool:
        """True when retrying the same run may succeed."""
        return self.kind in TRANSIENT_KINDS or self.retryable

    @property
    def confident(self) -> bool:
        """True when the log showed the cause (the kind is not a guess)."""
        return self.kind != FailureKind.UNKNOWN

    @property
    def state(self) -> RunState:
        """The terminal state a run with this failure ends in."""
        if self.kind == FailureKind.GUARDRAIL:
            return RunState.BLOCKED
        if self.kind == FailureKind.CANCELLED:
            return RunState.CANCELLED
        return RunState.FAILED

    def recorded(self) -> dict[str, Any]:
        """The run's fields that record this failure (for ``Store.transition``)."""
        return {
            "failure_kind": self.kind,
            "failure_message": self.message,
            "exit_code": self.exit_code,
        }


def outputs_caveat(lines: Iterable[str]) -> str:
    """What a completed run's reason adds when its log says a GPU kernel did not run.

    Such a run may exit 0 with outputs that are wrong: a grey image and gibberish text
    after ``Failed to initialize the CUTLASS kernel`` (cosmos-framework#42). Returns ''
    for a clean log, else ``; but the log warned ...`` (the warning escaped, quoted from
    where it says so, cut short).
    """
    found = kernel_failure(lines)
    if found is None:
        return ""
    line, start = found
    return (
        f"; but the log warned '{one_line(line[start:]).strip()[:160]}': the outputs may be "
        "invalid on this GPU; check them, or use an image built for it or a supported GPU"
    )


async def caveat_of(log_path: Path) -> str:
    """:func:`outputs_caveat` of a run's local log (read in a thread; '' if unreadable)."""

    def read() -> str:
        try:
            return outputs_caveat(read_log_lines(log_path))
        except OSError:
            return ""  # the run completed: a log that cannot be read adds nothing

    return await asyncio.to_thread(read)


_SPEC = re.compile(
    r"(?P<msg>Must have 'input_video' specified if sigma_max < 80"
    r"|\w+ controlnet must have 'input_control' video specified.*"
    r"|Control weight for \w+ must be a valid non-negative float.*)"
)
_CKPT_FILE = re.compile(
    r"(?i)checkpoint|\.(?:pt|pth|ckpt|safetensors|bin|jit|engine|onnx|model|pkl|npz)$"
)
_INPUT_FILE = re.compile(r"(?i)\.(?:mp4|mov|avi|mkv|webm|png|jpe?g|json|jsonl|txt)$")
_PATH = re.compile(r"No such file or directory: '(?P<path>[^']+)'")
_DOWNLOAD_TYPES = re.compile(
    r"HTTPError|GatedRepoError|RepositoryNotFoundError|RevisionNotFoundError|EntryNotFoundError"
    r"|LocalEntryNotFoundError|ConnectionError|ConnectionResetError|Timeout|ProtocolError"
    r"|ChunkedEncodingError|IncompleteRead|MaxRetryError|SSLError|NameResolutionError"
)
_TRANSIENT_NET = re.compile(
    r"(?i)connection (?:reset|aborted|refused)|timed? ?out|temporar|5\d\d server error"
    r"|IncompleteRead|ChunkedEncoding|RemoteDisconnected|LocalEntryNotFound|Max retries"
)
_ENV = re.compile(r"^(?:\w+\.)*(?:ModuleNotFoundError|ImportError)$")
_ENV_MESSAGE = re.compile(
    r"^module '[\w.]+' has no attribute|undefined symbol|cannot open shared object file"
    r"|No package metadata was found"
)


def classify(
    exit_code: int | None,
    lines: Iterable[str],
    *,
    oom_killed: bool = False,
    cancelled: bool = False,
    timed_out: bool = False,
    timeout_seconds: float | None = None,
    profile: str = "transfer1",
) -> Failure:
    """Classify a run that ended without success (or exited 0 without a video).

    Args:
        exit_code: The container's exit code (None when it never ran or is unknown).
        lines: The run's whole log, clean lines (read once; a generator is fine).
        oom_killed: The container's ``State.OOMKilled``.
        cancelled: The user cancelled it.
        timed_out: It was stopped for exceeding the run time limit.
        timeout_seconds: That limit, for the message.
        profile: The model family, whose progress parser names the last phase.

    """
    scan = LogScanner(profile).feed_all(lines)
    return diagnose(
        scan,
        exit_code,
        oom_killed=oom_killed,
        cancelled=cancelled,
        timed_out=timed_out,
        timeout_seconds=timeout_seconds,
    )


def diagnose(
    scan: LogScanner,
    exit_code: int | None,
    *,
    oom_killed: bool = False,
    cancelled: bool = False,
    timed_out: bool = False,
    timeout_seconds: float | None = None,
) -> Failure:
    """Turn the evidence of a scanned log into a :class:`Failure` (see :func:`classify`)."""
    failure = _diagnose(scan, exit_code, oom_killed=oom_killed, cancelled=cancelled,
                        timed_out=timed_out, timeout_seconds=timeout_seconds)  # fmt: skip
    if scan.profile == "cosmos3":
        return cosmos3_failures.refine(failure, scan)
    return failure


def _diagnose(
    scan: LogScanner,
    exit_code: int | None,
    *,
    oom_killed: bool,
    cancelled: bool,
    timed_out: bool,
    timeout_seconds: float | None,
) -> Failure:
    phase = _phase_text(scan)
    if cancelled:
        return Failure(FailureKind.CANCELLED, explain(FailureKind.CANCELLED), exit_code=exit_code)
    if timed_out:
        detail = f"{timeout_seconds:.0f} s" if timeout_seconds else ""
        return _verdict(FailureKind.TIMEOUT, explain(FailureKind.TIMEOUT, detail), scan,
                        None, exit_code, phase)  # fmt: skip
    root = scan.root_exception()
    if oom_killed and (root is None or not _is_gpu_oom(root)):
        return _verdict(FailureKind.HOST_OOM, explain(FailureKind.HOST_OOM, "OOMKilled"), scan,
                        scan.host_kill, exit_code, phase)  # fmt: skip
    if root is not None:
        found = _from_exception(root, scan, exit_code, phase)
        if found is not None:
            return found
    for kind, evidence in (
        (FailureKind.GUARDRAIL, scan.guardrail_reason or scan.guardrail_verdict),
        (FailureKind.SPEC_ERROR, scan.argparse or scan.spec_validation),
        (FailureKind.DOWNLOAD, scan.access),
        (FailureKind.NCCL, scan.nccl),
        (FailureKind.UNSUPPORTED_GPU, scan.gpu_warning),
        (FailureKind.HOST_OOM, scan.host_kill),
        # a kernel that did not run explains exit 0 without a video (or a log of unknown
        # exit), never a death
        (FailureKind.UNSUPPORTED_GPU, scan.kernel_warning if exit_code in (0, None) else None),
    ):
        # With an exception no signature knows, a refused download or a SIGKILL still
        # decides: the other ranks' errors (lost peers) are consequences of them.
        if evidence is not None and (
            root is None or kind in (FailureKind.DOWNLOAD, FailureKind.HOST_OOM, FailureKind.NCCL)
        ):
            detail = evidence.text[:200]
            if evidence is scan.spec_validation:
                detail = spec_detail(evidence)
            message = explain(kind, detail, profile=scan.profile)
            return _verdict(kind, message, scan, evidence, exit_code, phase, detail=detail)
    if root is None and exit_code in (137, -9):
        return _verdict(FailureKind.HOST_OOM, explain(FailureKind.HOST_OOM), scan, None,
                        exit_code, phase)  # fmt: skip
    return _unknown(scan, root, exit_code, phase)


def _from_exception(
    root: Caught, scan: LogScanner, exit_code: int | None, phase: str | None
) -> Failure | None:
    """Classify by the worker's exception: its type, its message and the file it names."""
    kind: FailureKind | None = None
    detail = f"{root.type.rsplit('.', 1)[-1]}: {root.message}"[:200]
    message: str | None = None
    retry = False
    text = root.found.text
    if _is_gpu_oom(root):
        kind, message = FailureKind.GPU_OOM, oom_explanation(text, scan.profile)
    elif GUARDRAIL_VERDICT.search(root.message):
        # Cosmos 3 raises its guardrail's verdict (common/inference.py:280, 289, 263-264)
        kind = FailureKind.GUARDRAIL
    elif scan.nccl is not None and (
        "NCCL" in root.message or "nccl" in root.type.lower() or "DistBackendError" in root.type
    ):
        kind = FailureKind.NCCL
    elif root.type.endswith("CalledProcessError") and "'download'" in root.message:
        # Transfer2.5 downloads through the hf CLI (checkpoint_db.py:153-167): the CLI's own
        # refusal (a gated repository, a bad token) is printed above the exception.
        kind = FailureKind.DOWNLOAD
        if scan.access is not None:
            detail = scan.access.text[:200]
        else:
            retry = bool(_TRANSIENT_NET.search("\n".join(root.found.context)))
    elif _ENV.match(root.type) or _ENV_MESSAGE.search(root.message):
        kind = FailureKind.ENVIRONMENT
    elif ((scan.gpu_warning or scan.kernel_warning) and "CUDA error" in root.message) or (
        "no kernel image" in root.message
    ):
        kind = FailureKind.UNSUPPORTED_GPU
    elif _DOWNLOAD_TYPES.search(root.type) or "huggingface.co" in root.message:
        kind = FailureKind.DOWNLOAD
        retry = bool(_TRANSIENT_NET.search(text)) and not re.search(r"\b40[134]\b", text)
    elif (path := _PATH.search(root.message)) is not None:
        name = path.group("path")
        if _CKPT_FILE.search(name) or "checkpoints" in name:
            kind, detail = FailureKind.MISSING_CHECKPOINT, name
        elif _INPUT_FILE.search(name):
            kind, detail = FailureKind.SPEC_ERROR, f"input file missing: {name}"
    elif root.type.endswith("OSError") and re.search(
        r"Can't load|does not appear to have|from_pretrained|checkpoint", root.message
    ):
        kind = FailureKind.MISSING_CHECKPOINT
    elif (spec := _SPEC.search(root.message)) is not None:
        kind, detail = FailureKind.SPEC_ERROR, spec.group("msg")
    if kind is None:
        return None
    if kind == FailureKind.DOWNLOAD and retry:
        message = explain(kind, detail, variant="transient")
    return _verdict(kind, message or explain(kind, detail, profile=scan.profile), scan,
                    root.found, exit_code, phase, detail=detail, retryable=retry)  # fmt: skip


def spec_detail(found: Found) -> str:
    """Return a spec refusal with the field and pydantic's message that follow it.

    ``Error validating parameters from 'F' at line I`` (config.py:377) is followed by
    pydantic's ``N validation error(s) for MODEL``, the field path and the message.
    """
    lines = [ln.strip() for ln in found.context]
    start = next((i for i, ln in enumerate(lines) if SPEC_VALIDATION.search(ln)), None)
    if start is None:
        return found.text[:200]
    head = found.text
    rest = [ln for ln in lines[start + 1 : start + 6] if ln and not ln.startswith("For further")]
    if rest and re.match(r"^\d+ validation errors? for ", rest[0]):
        rest = rest[1:]
    if re.match(r"^\d+ validation errors? for \w+", head) or head.startswith("Error validating"):
        parts = [head, *[re.sub(r"\s*\[type=.*$", "", ln) for ln in rest[:2]]]
        return ": ".join(p for p in parts if p)[:200]
    return head[:200]


def _is_gpu_oom(root: Caught) -> bool:
    return "OutOfMemoryError" in root.type or "CUDA out of memory" in root.message


def _unknown(
    scan: LogScanner, root: Caught | None, exit_code: int | None, phase: str | None
) -> Failure:
    status = f"exit status {exit_code}" if exit_code is not None else ""
    if root is None:
        if exit_code == 0:
            warning = scan.last_warning.text[:160] if scan.last_warning else ""
            text = "the model exited 0 but wrote no video" + (
                f"; its last warning: {warning}" if warning else ""
            )
        else:
            text = status or "no exit status"
        message = explain(FailureKind.UNKNOWN, text, variant="not_shown", phase=phase)
        # A traceback whose exception line was cut: point at it (and its rank), but the
        # word "Traceback" itself is never the detail.
        return _verdict(FailureKind.UNKNOWN, message, scan, scan.traceback, exit_code, phase,
                        detail="")  # fmt: skip
    detail = f"{root.type.rsplit('.', 1)[-1]}: {root.message}"[:200]
    text = f"{status}: {detail}" if status else detail
    anchor = root.found
    if scan.traceback is not None and scan.traceback.index < anchor.index:
        anchor = scan.traceback
    failure = _verdict(FailureKind.UNKNOWN, explain(FailureKind.UNKNOWN, text, phase=phase),
                       scan, anchor, exit_code, phase, detail=detail)  # fmt: skip
    return dataclasses.replace(failure, rank=root.found.rank)


def _verdict(
    kind: FailureKind,
    message: str,
    scan: LogScanner,
    found: Found | None,
    exit_code: int | None,
    phase: str | None,
    *,
    detail: str | None = None,
    retryable: bool = False,
) -> Failure:
    if found is None:
        context, line, rank, text = tuple(scan.tail), None, None, ""
    else:
        context = tuple(found.context[: CONTEXT_BEFORE + 1 + CONTEXT_AFTER])
        line, rank, text = found.index, found.rank, found.text[:200]
    return Failure(
        kind, message, context, line, exit_code,
        detail=text if detail is None else detail, rank=rank, phase=phase, retryable=retryable,
    )  # fmt: skip


def _phase_text(scan: LogScanner) -> str | None:
    """The last phase, with each rank's own when ranks stopped in different phases."""
    last = scan.last_phase()
    phases = {r: p for r, p in scan.phases().items() if r is not None}
    if last is None or len(set(phases.values())) <= 1:
        return last
    return last + " (" + ", ".join(f"rank {r}: {p}" for r, p in phases.items()) + ")"


def context_around(lines: Sequence[str], index: int | None) -> tuple[str, ...]:
    """Return the lines around ``index`` (a few before, more after)."""
    if index is None:
        return tuple(lines[-CONTEXT_AFTER:])
    start = max(0, index - CONTEXT_BEFORE)
    return tuple(lines[start : index + CONTEXT_AFTER + 1])


def classify_error(error: CosmosError) -> Failure:
    """Classify an infrastructure error raised while driving a run."""
    text = error.message
    lowered = text.lower()
    if isinstance(error, ContainerGone):
        return Failure(FailureKind.CONTAINER_GONE, explain(FailureKind.CONTAINER_GONE, text))
    if isinstance(error, HostUnreachable) or (
        isinstance(error, TransferFailed) and error.transient
    ):
        return Failure(FailureKind.SSH_LOST, explain(FailureKind.SSH_LOST, text))
    if isinstance(error, DockerError):
        if "could not select device driver" in lowered or "capabilities: [[gpu]]" in lowered:
            return Failure(FailureKind.GPU_UNAVAILABLE, explain(FailureKind.GPU_UNAVAILABLE, text))
        if error.status == 404 and ("image" in lowered or "no such image" in lowered):
            return Failure(FailureKind.IMAGE_MISSING, explain(FailureKind.IMAGE_MISSING, text))
        if "no such image" in lowered or "pull access denied" in lowered:
            return Failure(FailureKind.IMAGE_MISSING, explain(FailureKind.IMAGE_MISSING, text))
        if error.transient or error.status is None or "daemon" in lowered:
            return Failure(FailureKind.DOCKER_DOWN, explain(FailureKind.DOCKER_DOWN, text))
    if getattr(error, "transient", False):
        return Failure(FailureKind.SSH_LOST, explain(FailureKind.SSH_LOST, text))
    if isinstance(error, ValidationError):
        # a pre-run check refused it (a token, the GPUs): no container ran, no log to read
        return Failure(FailureKind.UNKNOWN, f"refused before anything was started: {text}")
    return Failure(FailureKind.UNKNOWN, explain(FailureKind.UNKNOWN, text))
