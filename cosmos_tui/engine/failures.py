"""Why a run did not complete: classification from exit code, container state and logs.

Signatures come from COSMOS.md section 6. Each classified failure carries a one-line
explanation that says what to change, the log lines around the first error, and
whether it is worth retrying: only infrastructure trouble (a dropped SSH link, a
Docker daemon that went away) is transient; anything caused by the run itself (its
parameters, its prompt, the model's memory needs) would fail the same way again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from cosmos_tui.domain import FailureKind, RunState
from cosmos_tui.errors import CosmosError, DockerError, HostUnreachable, TransferFailed

CONTEXT_BEFORE = 5
CONTEXT_AFTER = 10

TRANSIENT_KINDS = frozenset({FailureKind.SSH_LOST, FailureKind.DOCKER_DOWN})


class ContainerGone(DockerError):
    """The run's container no longer exists on its host (removed behind our back)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=404)


@dataclass(frozen=True)
class Failure:
    """A classified failure.

    Attributes:
        kind: The cause.
        message: One line: what happened and what to change.
        context: Log lines around the first error (empty when the logs say nothing).
        error_line: 0-based number of the first error line in the log, when found.
        exit_code: The container's exit code, when it exited.

    """

    kind: FailureKind
    message: str
    context: tuple[str, ...] = ()
    error_line: int | None = None
    exit_code: int | None = None

    @property
    def transient(self) -> bool:
        """True when retrying the same run may succeed."""
        return self.kind in TRANSIENT_KINDS

    @property
    def state(self) -> RunState:
        """The terminal state a run with this failure ends in."""
        if self.kind == FailureKind.GUARDRAIL:
            return RunState.BLOCKED
        if self.kind == FailureKind.CANCELLED:
            return RunState.CANCELLED
        return RunState.FAILED


_GPU_OOM = re.compile(r"OutOfMemoryError|CUDA out of memory")
_GUARDRAIL = re.compile(r"All prompts failed safety checks|cannot unpack non-iterable NoneType")
_GUARDRAIL_REASON = re.compile(r"GUARDRAIL BLOCKED:\s*(?P<reason>.*)")
_CHECKPOINT = re.compile(
    r"FileNotFoundError: .*No such file or directory: '(?P<path>[^']*checkpoints[^']*)'"
    r"|OSError: .*(?:from_pretrained|checkpoint|Can't load|does not appear to have)"
)
_SPEC = re.compile(
    r"ValueError: (?P<msg>Must have 'input_video' specified if sigma_max < 80"
    r"|\w+ controlnet must have 'input_control' video specified.*"
    r"|Control weight for \w+ must be a valid non-negative float.*)"
)
_HOST_OOM = re.compile(r"exitcode\s*:\s*-9\b|Signal 9 \(SIGKILL\)")
_ANY_ERROR = re.compile(
    r"Traceback \(most recent call last\)|\b\w*(?:Error|Exception)\b[:]|\|ERROR\||FAILED"
)

_EXPLAIN: dict[FailureKind, str] = {
    FailureKind.GPU_OOM: (
        "the model ran out of GPU memory{detail}; run on more GPUs (--gpus), keep the offload "
        "flags, or free the GPUs (about 28 GB per GPU is the floor)"
    ),
    FailureKind.HOST_OOM: (
        "the host killed the model for lack of RAM (SIGKILL){detail}; free host memory or lower "
        "max_runs for this host"
    ),
    FailureKind.MISSING_CHECKPOINT: (
        "a model checkpoint is missing on the host{detail}; download the checkpoints into "
        "the host's checkpoints_dir"
    ),
    FailureKind.SPEC_ERROR: "the model rejected the run's spec{detail}; fix the parameters",
    FailureKind.GUARDRAIL: (
        "the safety guardrail blocked the prompt{detail}; rephrase the prompt and run again"
    ),
    FailureKind.IMAGE_MISSING: (
        "the Docker image is not on the host{detail}; pull it there ('docker pull IMAGE') "
        "or set docker_image for the host"
    ),
    FailureKind.DOCKER_DOWN: (
        "the Docker daemon on the host is not reachable{detail}; start it "
        "('systemctl start docker') or check docker_socket"
    ),
    FailureKind.SSH_LOST: "the SSH connection to the host was lost{detail}; it is retried",
    FailureKind.TIMEOUT: (
        "the run took longer than timeouts.run{detail} and was stopped; raise "
        "timeouts.run or use fewer steps"
    ),
    FailureKind.CANCELLED: "cancelled by the user{detail}",
    FailureKind.CONTAINER_GONE: (
        "the container disappeared (removed outside cosmos-tui, or the host's Docker was "
        "reset){detail}; run it again with 'cosmos inference RUN_ID'"
    ),
    FailureKind.GPU_UNAVAILABLE: (
        "Docker cannot give GPUs to containers on this host{detail}; install the NVIDIA "
        "Container Toolkit or set gpu_request = false for the host"
    ),
    FailureKind.GPU_FAULT: (
        "a GPU of the run failed while it ran{detail}; it is no longer offered to runs "
        "until nvidia-smi reports it ok again; run this again ('cosmos inference RUN_ID')"
    ),
    FailureKind.UNKNOWN: "the run failed{detail}; see the log lines around the error",
}


def explain(kind: FailureKind, detail: str = "") -> str:
    """Return the one-line explanation with the fix for ``kind``."""
    return _EXPLAIN[kind].format(detail=f" ({detail})" if detail else "")


def context_around(lines: Sequence[str], index: int | None) -> tuple[str, ...]:
    """Return the lines around ``index`` (a few before, more after)."""
    if index is None:
        return tuple(lines[-CONTEXT_AFTER:])
    start = max(0, index - CONTEXT_BEFORE)
    return tuple(lines[start : index + CONTEXT_AFTER + 1])


def classify(
    exit_code: int | None,
    lines: Sequence[str],
    *,
    oom_killed: bool = False,
    cancelled: bool = False,
    timed_out: bool = False,
    timeout_seconds: float | None = None,
) -> Failure:
    """Classify a run that ended without success.

    Args:
        exit_code: The container's exit code (None when it never ran or is unknown).
        lines: The run's whole log, clean lines.
        oom_killed: The container's ``State.OOMKilled``.
        cancelled: The user cancelled it.
        timed_out: It was stopped for exceeding the run time limit.
        timeout_seconds: That limit, for the message.

    """
    if cancelled:
        return Failure(FailureKind.CANCELLED, explain(FailureKind.CANCELLED), exit_code=exit_code)
    if timed_out:
        detail = f"{timeout_seconds:.0f} s" if timeout_seconds else ""
        return Failure(
            FailureKind.TIMEOUT,
            explain(FailureKind.TIMEOUT, detail),
            context_around(lines, None),
            exit_code=exit_code,
        )
    for kind, pattern, group in (
        (FailureKind.GPU_OOM, _GPU_OOM, None),
        (FailureKind.GUARDRAIL, _GUARDRAIL, None),
        (FailureKind.MISSING_CHECKPOINT, _CHECKPOINT, "path"),
        (FailureKind.SPEC_ERROR, _SPEC, "msg"),
        (FailureKind.HOST_OOM, _HOST_OOM, None),
    ):
        found = _first(lines, pattern)
        if found is not None:
            index, match = found
            detail = (match.group(group) or "").strip() if group else ""
            if kind == FailureKind.GUARDRAIL:
                reason = _first(lines, _GUARDRAIL_REASON)
                if reason is None and "NoneType" in match.group(0):
                    continue
                if reason is not None:
                    index, detail = reason[0], reason[1].group("reason").strip()
            return Failure(
                kind, explain(kind, detail), context_around(lines, index), index, exit_code
            )
    if oom_killed or exit_code == 137:
        return Failure(
            FailureKind.HOST_OOM,
            explain(FailureKind.HOST_OOM),
            context_around(lines, None),
            exit_code=exit_code,
        )
    found = _first(lines, _ANY_ERROR)
    index = found[0] if found else None
    detail = f"exit status {exit_code}" if exit_code is not None else ""
    if index is not None:
        error_text = _last_error_line(lines, index)
        detail = f"{detail}: {error_text}" if detail else error_text
    return Failure(
        FailureKind.UNKNOWN,
        explain(FailureKind.UNKNOWN, detail),
        context_around(lines, index),
        index,
        exit_code,
    )


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
    return Failure(FailureKind.UNKNOWN, explain(FailureKind.UNKNOWN, text))


def _first(lines: Sequence[str], pattern: re.Pattern[str]) -> tuple[int, re.Match[str]] | None:
    for index, line in enumerate(lines):
        match = pattern.search(line)
        if match is not None:
            return index, match
    return None


def _last_error_line(lines: Sequence[str], start: int) -> str:
    """Return the exception line of the traceback starting at ``start`` (or that line)."""
    exception = re.compile(r"^(?:\[rank\d+\]:\s*)?(\w[\w.]*(?:Error|Exception)\b.*)$")
    for line in lines[start : start + 60]:
        match = exception.match(line.strip())
        if match:
            return match.group(1)[:200]
    return lines[start].strip()[:200]
