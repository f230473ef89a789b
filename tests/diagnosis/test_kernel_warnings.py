"""A kernel that did not run on the GPU: a completed run's caveat, an exit 0's cause.

cosmos-framework#42: Cosmos3-Nano on an ARM64 GB300 exits 0 with a grey image after
``Failed to initialize the CUTLASS kernel``. PyTorch's capability warnings are not such
evidence (one is printed wrongly on sm_121 GPUs whose kernels run fine).
"""

from __future__ import annotations

from cosmos_tui.domain import FailureKind
from cosmos_tui.engine.failures import classify, outputs_caveat

CUTLASS = "Failed to initialize the CUTLASS kernel. Last CUDA error is: no error"


def test_the_caveat_quotes_a_kernel_failure_from_where_it_is_said() -> None:
    said = outputs_caveat(["Loaded 1 samples", "[rank0]: " + "x" * 300 + " " + CUTLASS])
    assert said.startswith(f"; but the log warned '{CUTLASS}'") and "may be invalid" in said
    assert outputs_caveat(["no kernel image is available for execution on the device"])
    capability = "NVIDIA GB10 with CUDA capability sm_121 is not compatible with the current "
    assert outputs_caveat([capability + "PyTorch installation."]) == ""
    assert outputs_caveat(["Saved sample outputs", "all fine"]) == ""
    escape = outputs_caveat([CUTLASS + " \x1b[31m[red]"])
    assert "\x1b" not in escape


def test_a_kernel_failure_explains_exit_0_but_never_a_death() -> None:
    assert classify(0, [CUTLASS]).kind == FailureKind.UNSUPPORTED_GPU
    assert classify(137, [CUTLASS, "Killed"]).kind == FailureKind.HOST_OOM
    # a log read without its exit status (cosmos diagnose LOG) is judged as an exit 0
    assert classify(None, [CUTLASS]).kind == FailureKind.UNSUPPORTED_GPU
    cuda = "RuntimeError: CUDA error: an illegal memory access was encountered"
    assert classify(1, [CUTLASS, "Traceback (most recent call last):", cuda]).kind == (
        FailureKind.UNSUPPORTED_GPU
    )


def test_a_kernel_exception_of_one_batch_sample_is_not_the_others_evidence() -> None:
    from cosmos_tui.engine.batch_c3 import member_lines

    ids = ["rs_a", "rs_b", "rs_c"]
    out = "/cosmos-tui/run/output"
    log = [
        f"[t|INFO|inference.py:1545] Saved sample args to '{out}/rs_b/sample_args.json'",
        "RuntimeError: CUDA error: no kernel image is available for execution on the device",
        "[t|ERROR|inference.py:266] Error generating sample 'rs_b': CUDA error: no kernel image",
        f"[t|INFO|inference.py:1545] Saved sample args to '{out}/rs_c/sample_args.json'",
        "Killed",
    ]
    mine = member_lines(log, "rs_c", ids)
    assert not any("no kernel image" in line for line in mine)
    assert classify(137, mine, profile="cosmos3").kind == FailureKind.HOST_OOM
