"""The classifier's rules, each on the smallest log that shows it."""

from __future__ import annotations

import pytest

from cosmos_tui.domain import FailureKind, RunState
from cosmos_tui.engine.failures import classify
from cosmos_tui.engine.logscan import oom_figures

INFO = "[12-01 10:00:00|INFO|cosmos_transfer1/diffusion/inference/pipeline.py:1:f] {}"
FOOTER = [
    "E1201 10:00:09 1 torch/distributed/elastic/multiprocessing/api.py:869] failed (exitcode: 1) "
    "local_rank: 1 (pid: 42) of binary: /usr/bin/python",
    "Traceback (most recent call last):",
    '  File "/usr/local/bin/torchrun", line 8, in <module>',
    "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ",
    "============================================================",
    "cosmos_transfer1/diffusion/inference/transfer.py FAILED",
    "Root Cause (first observed failure):",
    "[0]:",
    "  rank      : 1 (local_rank: 1)",
    "  exitcode  : 1 (pid: 42)",
]


def test_root_cause_is_the_first_worker_exception_with_its_rank_not_the_footer() -> None:
    lines = [
        INFO.format("Starting diffusion sampling"),
        "[rank1]: Traceback (most recent call last):",
        '[rank1]:   File "transfer.py", line 1, in <module>',
        "[rank1]: KeyError: 'edge'",
        "[rank0]: RuntimeError: [../third_party/gloo/transport/tcp/pair.cc:534] Connection closed",
        *FOOTER,
    ]
    failure = classify(1, lines)
    assert failure.kind == FailureKind.UNKNOWN
    assert failure.rank == 1
    assert failure.detail == "KeyError: 'edge'"
    assert "KeyError: 'edge'" in failure.message
    assert failure.error_line == 1  # the traceback that holds it, for the context


def test_exception_line_is_found_when_the_traceback_header_was_cut() -> None:
    lines = ["    model = load(path)", "ModuleNotFoundError: No module named 'cosmos_transfer1'"]
    failure = classify(1, lines)
    assert failure.kind == FailureKind.ENVIRONMENT
    assert "PYTHONPATH" in failure.message and "image" in failure.message
    assert failure.detail == "ModuleNotFoundError: No module named 'cosmos_transfer1'"


@pytest.mark.parametrize(
    "line",
    [
        "  exitcode  : -9 (pid: 77)",
        "Killed",
        "Loading checkpoint shards:  38%|##  | 3/8 [00:02<00:03]Killed",
    ],
)
def test_sigkill_and_killed_are_host_out_of_memory(line: str) -> None:
    from cosmos_tui.engine.logs import clean_lines

    lines = [INFO.format("Start creating base model"), *clean_lines(line)]
    failure = classify(1, lines)
    assert failure.kind == FailureKind.HOST_OOM
    assert failure.phase == "loading models"


def test_one_huge_allocation_asks_for_lower_resolution_not_more_gpus() -> None:
    line = (
        "[rank0]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 71.00 GiB. GPU 0 "
        "has a total capacity of 79.19 GiB of which 60.31 GiB is free. Including non-PyTorch "
        "memory, this process has 18.87 GiB memory in use."
    )
    failure = classify(1, [line])
    assert failure.kind == FailureKind.GPU_OOM and failure.rank == 0
    assert "resolution" in failure.message and "--gpus" not in failure.message
    assert "activations, not weights" in failure.message


def test_memory_held_by_other_processes_asks_to_free_the_gpu() -> None:
    line = (
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a "
        "total capacity of 79.19 GiB of which 1.00 GiB is free. Process 999 has 40.00 GiB memory "
        "in use. Including non-PyTorch memory, this process has 38.00 GiB memory in use."
    )
    failure = classify(1, [line])
    assert "other processes hold 40.0 GiB" in failure.message


def test_oom_figures_in_older_wording() -> None:
    figures = oom_figures(
        "RuntimeError: CUDA out of memory. Tried to allocate 9.49 GiB (GPU 0; 24.00 GiB total "
        "capacity; 9.88 GiB already allocated; 2.15 GiB free)"
    )
    assert figures.requested == pytest.approx(9.49) and figures.capacity == pytest.approx(24.0)


@pytest.mark.parametrize(
    ("line", "transient"),
    [
        ("requests.exceptions.ConnectionError: ('Connection aborted.', ConnectionResetError(104, "
         "'Connection reset by peer'))", True),
        ("huggingface_hub.errors.LocalEntryNotFoundError: An error happened while trying to "
         "locate the file on the Hub", True),
        ("requests.exceptions.HTTPError: 503 Server Error: Service Unavailable for url: "
         "https://huggingface.co/api/models/nvidia/Cosmos-Guardrail1", True),
        ("huggingface_hub.errors.GatedRepoError: 401 Client Error. Cannot access gated repo for "
         "url https://huggingface.co/nvidia/Cosmos-Transfer1-7B/resolve/main/base_model.pt", False),
        ("requests.exceptions.HTTPError: 403 Client Error: Forbidden for url: "
         "https://huggingface.co/nvidia/Cosmos-Guardrail1", False),
    ],
)  # fmt: skip
def test_download_errors_retry_only_transient_ones(line: str, transient: bool) -> None:
    failure = classify(1, ["Downloading nvidia/Cosmos-Guardrail1...", line])
    assert failure.kind == FailureKind.DOWNLOAD
    assert failure.transient is transient
    assert ("retrying" in failure.message) is transient
    assert failure.phase == "downloading checkpoints"


def test_missing_checkpoint_by_file_kind_outside_a_checkpoints_folder() -> None:
    line = "FileNotFoundError: [Errno 2] No such file or directory: '/models/t5/spiece.model'"
    failure = classify(1, [line])
    assert failure.kind == FailureKind.MISSING_CHECKPOINT
    assert "/models/t5/spiece.model" in failure.message
    video = "FileNotFoundError: [Errno 2] No such file or directory: '/inputs/clip.mp4'"
    assert classify(1, [video]).kind == FailureKind.SPEC_ERROR
    other = "FileNotFoundError: [Errno 2] No such file or directory: '/tmp/lockdir'"
    assert classify(1, [other]).kind == FailureKind.UNKNOWN


def test_unsupported_gpu_warning_explains_exit_0_without_video() -> None:
    lines = [
        "/usr/local/lib/python3.10/dist-packages/torch/cuda/__init__.py:215: UserWarning:",
        "    Found GPU0 Tesla K80 which is of cuda capability 3.7.",
        "    PyTorch no longer supports this GPU because it is too old.",
        INFO.format("Run generation"),
    ]
    failure = classify(0, lines)
    assert failure.kind == FailureKind.UNSUPPORTED_GPU
    assert "too old" in failure.detail and failure.phase == "preparing"


def test_exit_0_without_video_from_guardrail_lines_is_blocked() -> None:
    lines = [
        INFO.format("Running guardrail checks on all prompts"),
        "[12-01|CRITICAL|presets.py:55:run_text_guardrail] GUARDRAIL BLOCKED: Aegis: unsafe",
        "[12-01|CRITICAL|pipeline.py:738:generate] All prompts failed safety checks",
        "[12-01|CRITICAL|transfer.py:377:demo] Guardrail blocked generation for entire batch.",
    ]
    failure = classify(0, lines)
    assert failure.kind == FailureKind.GUARDRAIL and failure.state == RunState.BLOCKED
    assert "Aegis: unsafe" in failure.message


def test_exit_0_without_video_quotes_the_last_warning() -> None:
    warning = "[12-01|WARNING|core.py:64:f] No postprocessors found"
    lines = [INFO.format("Finish generation"), warning]
    failure = classify(0, lines)
    assert failure.kind == FailureKind.UNKNOWN
    assert "wrote no video" in failure.message and "No postprocessors found" in failure.message


def test_no_exception_says_cause_not_shown_with_the_phase_of_each_rank() -> None:
    lines = [
        "[rank0]: " + INFO.format("Starting diffusion sampling"),
        "[rank1]: " + INFO.format("Run generation"),
    ]
    failure = classify(1, lines)
    assert failure.kind == FailureKind.UNKNOWN and not failure.confident
    assert "not shown" in failure.message
    assert failure.phase is not None
    assert "rank 0: generating" in failure.phase and "rank 1: preparing" in failure.phase


def test_argparse_rejection_is_a_parameter_error() -> None:
    lines = [
        "usage: transfer.py [-h] [--prompt PROMPT]",
        "transfer.py: error: unrecognized arguments: --bogus",
    ]
    failure = classify(2, lines)
    assert failure.kind == FailureKind.SPEC_ERROR and "--bogus" in failure.message


def test_huge_logs_keep_bounded_evidence() -> None:
    from cosmos_tui.engine.logscan import MAX_FOUND, LogScanner

    scanner = LogScanner()
    for number in range(20_000):
        scanner.feed(f"ValueError: number {number}")
    assert len(scanner.exceptions) == MAX_FOUND
    assert scanner.root_exception() is not None
    assert scanner.root_exception().message == "number 0"


def test_a_sigkilled_worker_explains_the_lost_peers_of_the_others() -> None:
    lines = [
        "[rank1]: RuntimeError: [../third_party/gloo/transport/tcp/pair.cc:534] Connection "
        "closed by peer [127.0.0.1]:29500",
        "Root Cause (first observed failure):",
        "[0]:",
        "  rank      : 0 (local_rank: 0)",
        "  exitcode  : -9 (pid: 4242)",
    ]
    failure = classify(1, lines)
    assert failure.kind == FailureKind.HOST_OOM
    assert "exitcode  : -9" in failure.detail


def test_a_cosmos3_download_refused_by_the_cdn_is_not_called_a_token_problem() -> None:
    # NVIDIA/cosmos-framework#144: a pinned revision's files were gone from Hugging Face's
    # CDN (403). Only a 401 / gated-repo error is about the token.
    cdn = [
        "403 Forbidden",
        "Cannot access content at: https://cdn-lfs-us-1.hf.co/repos/01/58/.../be75606093db...",
        "subprocess.CalledProcessError: ['uvx', ..., 'hf@1.16.4', 'download',",
    ]
    refused = classify(1, cdn, profile="cosmos3")
    assert refused.kind.value == "download" and "403" in refused.message
    assert "401" not in refused.message and "update the cosmos-framework" in refused.message
    gated = [
        "huggingface_hub.errors.GatedRepoError: 401 Client Error. (Request ID: Root=1-x)",
        "Cannot access gated repo for url https://huggingface.co/api/models/nvidia/Cosmos3-Nano/revision/main.",
    ]
    token = classify(1, gated, profile="cosmos3")
    assert token.kind.value == "download" and "401" in token.message
    assert "nvidia/Cosmos3-Nano" in token.message and "HF_TOKEN" in token.message
