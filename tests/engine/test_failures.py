from __future__ import annotations

import pytest

from cosmos_tui.domain import FailureKind, RunState
from cosmos_tui.engine.failures import classify, classify_error, explain
from cosmos_tui.errors import DockerError, HostUnreachable, TransferFailed, ValidationError

INFO = "[11-21 17:00:00|INFO|cosmos_transfer1/diffusion/inference/transfer.py:1:demo] {}"
CRIT = "[11-21 17:00:00|CRITICAL|cosmos_transfer1/utils/distributed.py:1:init] {}"
FOOTER = [
    "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ",
    "Root Cause (first observed failure):",
    "  exitcode  : 1 (pid: 42)",
]


def log(*messages: str) -> list[str]:
    return [CRIT.format("Initialized distributed training with local rank 0")] + [
        INFO.format(m) for m in messages
    ]


def test_gpu_oom_with_rank_prefix() -> None:
    lines = [
        *log("Starting diffusion sampling"),
        "[rank0]: Traceback (most recent call last):",
        "[rank0]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
        *FOOTER,
    ]
    failure = classify(1, lines)
    assert failure.kind == FailureKind.GPU_OOM
    assert failure.state == RunState.FAILED and not failure.transient
    assert "--gpus" in failure.message
    assert failure.error_line == 3
    assert "CUDA out of memory" in "\n".join(failure.context)
    assert failure.context[0] == lines[0]


def test_host_ram_kill_from_footer_state_or_exit_137() -> None:
    footer = ["Root Cause (first observed failure):", "  exitcode  : -9 (pid: 42)"]
    assert classify(1, log("x") + footer).kind == FailureKind.HOST_OOM
    assert classify(1, ["Signal 9 (SIGKILL) received by PID 42"]).kind == FailureKind.HOST_OOM
    assert classify(137, log("x"), oom_killed=True).kind == FailureKind.HOST_OOM
    assert classify(137, log("x")).kind == FailureKind.HOST_OOM


def test_missing_checkpoint_names_the_path() -> None:
    lines = [
        *log("Start creating base model"),
        "[rank0]: FileNotFoundError: [Errno 2] No such file or directory: "
        "'checkpoints/nvidia/Cosmos-Transfer1-7B/base_model.pt'",
        *FOOTER,
    ]
    failure = classify(1, lines)
    assert failure.kind == FailureKind.MISSING_CHECKPOINT
    assert "checkpoints/nvidia/Cosmos-Transfer1-7B/base_model.pt" in failure.message
    assert classify(1, ["OSError: Can't load tokenizer for 'google-t5/t5-11b'"]).kind == (
        FailureKind.MISSING_CHECKPOINT
    )


@pytest.mark.parametrize(
    "error",
    [
        "ValueError: Must have 'input_video' specified if sigma_max < 80",
        "ValueError: depth controlnet must have 'input_control' video specified if no "
        "'input_video' specified.",
        "ValueError: Control weight for edge must be a valid non-negative float or a path "
        "to a .pt file.",
    ],
)
def test_spec_errors(error: str) -> None:
    failure = classify(1, [*log("final args: {}"), f"[rank0]: {error}", *FOOTER])
    assert failure.kind == FailureKind.SPEC_ERROR
    assert not failure.transient
    assert error.removeprefix("ValueError: ")[:30] in failure.message


def test_guardrail_is_blocked_not_a_crash() -> None:
    lines = [
        *log("Running guardrail checks on all prompts"),
        "[11-21|CRITICAL|x.py:1:g] GUARDRAIL BLOCKED: Blocklist: prompt has a blocked word",
        "[11-21|CRITICAL|x.py:1:g] All prompts failed safety checks",
        "[rank0]: TypeError: cannot unpack non-iterable NoneType object",
        *FOOTER,
    ]
    failure = classify(1, lines)
    assert failure.kind == FailureKind.GUARDRAIL
    assert failure.state == RunState.BLOCKED
    assert "Blocklist" in failure.message and "rephrase" in failure.message


def test_a_blocked_batch_line_does_not_make_another_error_a_guardrail_block() -> None:
    lines = [
        "[11-21|CRITICAL|x.py:1:g] GUARDRAIL BLOCKED: Blocklist: one line",
        "[rank0]: RuntimeError: something else broke",
    ]
    failure = classify(1, lines)
    assert failure.kind == FailureKind.UNKNOWN
    assert "RuntimeError: something else broke" in failure.message


def test_unknown_failure_quotes_the_error_and_exit_status() -> None:
    lines = [
        *log("Run generation"),
        "[rank0]: Traceback (most recent call last):",
        '[rank0]:   File "transfer.py", line 1, in <module>',
        "[rank0]: KeyError: 'RANK'",
    ]
    failure = classify(1, lines)
    assert failure.kind == FailureKind.UNKNOWN
    assert "exit status 1" in failure.message
    assert failure.error_line == 2
    empty = classify(3, [])
    assert empty.kind == FailureKind.UNKNOWN and empty.context == ()


def test_critical_initialisation_lines_are_not_errors() -> None:
    failure = classify(2, log("Using random seed 1."))
    assert failure.kind == FailureKind.UNKNOWN and failure.error_line is None


def test_cancel_and_timeout_win_over_log_content() -> None:
    lines = ["[rank0]: torch.OutOfMemoryError: CUDA out of memory."]
    cancelled = classify(143, lines, cancelled=True)
    assert cancelled.kind == FailureKind.CANCELLED and cancelled.state == RunState.CANCELLED
    timed = classify(137, lines, timed_out=True, timeout_seconds=60)
    assert timed.kind == FailureKind.TIMEOUT and "60 s" in timed.message


def test_infrastructure_errors() -> None:
    assert classify_error(HostUnreachable("gpu1", "connection lost")).kind == FailureKind.SSH_LOST
    assert classify_error(HostUnreachable("gpu1", "x")).transient
    assert classify_error(TransferFailed("dropped", transient=True)).kind == FailureKind.SSH_LOST
    missing = classify_error(DockerError("No such image: cosmos:latest", status=404))
    assert missing.kind == FailureKind.IMAGE_MISSING and not missing.transient
    down = classify_error(DockerError("Cannot connect to the Docker daemon", transient=True))
    assert down.kind == FailureKind.DOCKER_DOWN and down.transient
    gpu = classify_error(
        DockerError('could not select device driver "" with capabilities: [[gpu]]', status=500)
    )
    assert gpu.kind == FailureKind.GPU_UNAVAILABLE and "gpu_request" in gpu.message
    assert classify_error(ValidationError("bad")).kind == FailureKind.UNKNOWN


def test_every_kind_has_an_explanation() -> None:
    for kind in FailureKind:
        assert explain(kind)
        assert explain(kind, "detail").count("(detail)") == 1 or kind == FailureKind.CANCELLED
