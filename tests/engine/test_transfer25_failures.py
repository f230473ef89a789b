"""Transfer2.5 failure signatures, each with the fix a user needs.

The lines are upstream's own wording (nvidia-cosmos/cosmos-transfer2.5 at 2ff49d07), cited
beside each; the real excerpts of the same failures are in tests/fixtures/real_logs.
"""

from __future__ import annotations

from cosmos_tui.domain import FailureKind, RunState
from cosmos_tui.engine.failures import classify

T25 = "transfer2.5"
# config.py:375-378: a sample the pydantic model refuses, then sys.exit(1), no traceback.
SPEC = [
    "[06-07 10:00:00|INFO|cosmos_oss/init.py:96:_init_log_files] Log saved to /o/console.log",
    "Error validating parameters from '/work/run/spec.jsonl' at line 2",
    "1 validation error for InferenceArguments",
    "edge.control_weight",
    "  Input should be less than or equal to 1 [type=less_than_equal, input_value=1.5, "
    "input_type=float]",
    "    For further information visit https://errors.pydantic.dev/2.11/v/less_than_equal",
]


def test_spec_validation_error_names_the_line_and_field() -> None:
    failure = classify(1, SPEC, profile=T25)
    assert failure.kind == FailureKind.SPEC_ERROR
    assert "line 2" in failure.detail
    assert "edge.control_weight" in failure.detail
    assert "less than or equal to 1" in failure.detail
    assert failure.error_line == 1
    assert not failure.transient


def test_unknown_key_in_the_sample() -> None:
    lines = [
        "Error validating parameters from '/w/spec.json' at line 0",
        "1 validation error for InferenceArguments",
        "guidence",
        "  Extra inputs are not permitted [type=extra_forbidden, input_value=3, input_type=int]",
    ]
    failure = classify(1, lines, profile=T25)
    assert failure.kind == FailureKind.SPEC_ERROR
    assert "guidence" in failure.detail and "Extra inputs" in failure.detail


def test_command_line_override_validation_error() -> None:
    # config.py:97-103 handle_tyro_exception prints the pydantic error alone.
    lines = ["2 validation errors for InferenceOverrides", "guidance",
             "  Input should be less than or equal to 7 [type=less_than_equal]"]  # fmt: skip
    failure = classify(1, lines, profile=T25)
    assert failure.kind == FailureKind.SPEC_ERROR
    assert "guidance" in failure.detail


def test_duplicate_sample_name() -> None:
    failure = classify(1, ["Error: Inference samplename a is not unique"], profile=T25)
    assert failure.kind == FailureKind.SPEC_ERROR  # config.py:412-414
    assert "not unique" in failure.detail


GATED = [
    "[06-07 10:00:00|INFO|cosmos_transfer2/_src/imaginaire/utils/checkpoint_db.py:297:download]"
    " Downloading checkpoint Cosmos-Guardrail1(0a2c9f4e)",
    "[06-07 10:00:00|INFO|cosmos_transfer2/_src/imaginaire/utils/checkpoint_db.py:165:"
    "_hf_download] uvx 'hf>=1.3.5' download nvidia/Cosmos-Guardrail1 --repo-type model",
    "Cannot access gated repo for url https://huggingface.co/api/models/nvidia/Cosmos-Guardrail1.",
    "Access to model nvidia/Cosmos-Guardrail1 is restricted. You must have access to it and "
    "be authenticated to access it. Please log in.",
    "Traceback (most recent call last):",
    "subprocess.CalledProcessError: Command '['uvx', 'hf>=1.3.5', 'download', "
    "'nvidia/Cosmos-Guardrail1', '--repo-type', 'model']' returned non-zero exit status 1.",
]


def test_gated_repo_on_first_download() -> None:
    failure = classify(1, GATED, profile=T25)
    assert failure.kind == FailureKind.DOWNLOAD
    assert "HF_TOKEN" in failure.message
    assert "Cosmos-Transfer2.5-2B" in failure.message and "Guardrail1" in failure.message
    assert not failure.transient
    assert failure.phase == "downloading checkpoints"


def test_hf_download_cut_by_the_network_is_transient() -> None:
    lines = [*GATED[:2], "httpx.ReadTimeout: The read operation timed out",
             GATED[-1]]  # fmt: skip
    failure = classify(1, lines, profile=T25)
    assert failure.kind == FailureKind.DOWNLOAD
    assert failure.transient


OOM = (
    "[rank0]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 "
    "has a total capacity of 79.19 GiB of which 1.2 GiB is free. Including non-PyTorch memory, "
    "this process has 77.9 GiB memory in use. Of the allocated memory 75.1 GiB is allocated by "
    "PyTorch, and 1.5 GiB is reserved by PyTorch but unallocated."
)


def test_oom_gives_transfer25_remedies() -> None:
    failure = classify(1, [OOM], profile=T25)
    assert failure.kind == FailureKind.GPU_OOM
    assert "--offload-guardrail-models" in failure.message
    assert "480" in failure.message  # a lower resolution tier
    assert "--offload_" not in failure.message  # Transfer1's flags do not exist here
    transfer1 = classify(1, [OOM], profile="transfer1")
    assert "--offload_" in transfer1.message


def test_nccl_error_is_its_own_kind() -> None:
    lines = [
        "[rank1]: torch.distributed.DistBackendError: NCCL error in: ../torch/csrc/distributed/"
        "c10d/ProcessGroupNCCL.cpp:1970, unhandled system error (run with NCCL_DEBUG=INFO for "
        "details), NCCL version 2.21.5",
        "[rank1]: ncclSystemError: System call (e.g. socket, malloc) or external library call "
        "failed or device error.",
    ]
    failure = classify(1, lines, profile=T25)
    assert failure.kind == FailureKind.NCCL
    assert "NCCL_P2P_DISABLE=1" in failure.message and "--ipc=host" in failure.message
    assert failure.rank == 1


def test_segfault_in_a_worker_is_nccl_when_multi_gpu() -> None:
    lines = [
        "E0607 10:00:00 1 torch/distributed/elastic/multiprocessing/api.py:869] failed "
        "(exitcode: -11) local_rank: 0 (pid: 42) of binary: /usr/bin/python",
        "  exitcode  : -11 (pid: 42)",
        "  error_file: <N/A>",
        "  traceback : Signal 11 (SIGSEGV) received by PID 42",
    ]
    failure = classify(1, lines, profile=T25)
    assert failure.kind == FailureKind.NCCL
    assert "-11" in failure.detail  # signal 11: SIGSEGV


def test_watchdog_timeout_is_nccl() -> None:
    line = ("[rank0]:[E607 10:00:00 ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog caught "
            "collective operation timeout: WorkNCCL(SeqNum=5, OpType=ALLREDUCE) ran for "
            "600000 milliseconds before timing out.")  # fmt: skip
    failure = classify(1, [line], profile=T25)
    assert failure.kind == FailureKind.NCCL


def test_all_samples_blocked_by_the_guardrail() -> None:
    # inference.py:216-219: with keep_going the run exits 0 with no video.
    lines = [
        "[06-07|INFO|cosmos_transfer2/inference.py:167:generate] [1/1] Processing sample a",
        "[06-07|CRITICAL|cosmos_transfer2/inference.py:217:_generate_sample] Guardrail blocked "
        "generation. Prompt: a bad prompt",
    ]
    failure = classify(0, lines, profile=T25)
    assert failure.kind == FailureKind.GUARDRAIL
    assert failure.state == RunState.BLOCKED


def test_tyro_unrecognized_option() -> None:
    lines = ["\u256d\u2500 Unrecognized options \u2500\u256e",
             "\u2502 Unrecognized options: --num_steps \u2502"]  # fmt: skip
    failure = classify(2, lines, profile=T25)
    assert failure.kind == FailureKind.SPEC_ERROR
    assert "--num_steps" in failure.detail


def test_tyro_boxes_for_missing_and_bad_arguments() -> None:
    # Wording of tyro 0.9.35 (upstream's uv.lock) around examples/inference.py:85-90.
    cases = [
        ("\u2502 The following arguments are required: -o/--output-dir \u2502", "-o/--output-dir"),
        ("\u2502 Argument --model: invalid choice: 'edge/distilled' (choose from 'depth',  \u2502",
         "edge/distilled"),
        ("\u2502 Error parsing --guidance: no type matching {None}|INT could be \u2502",
         "--guidance"),
    ]  # fmt: skip
    for line, word in cases:
        failure = classify(2, ["\u256d\u2500 Parsing error \u2500\u256e", line], profile=T25)
        assert failure.kind == FailureKind.SPEC_ERROR, line
        assert word in failure.detail
