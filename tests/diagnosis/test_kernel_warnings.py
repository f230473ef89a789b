"""A kernel that did not run on the GPU: a completed run's caveat, an exit 0's cause.

cosmos-framework#42: Cosmos3-Nano on an ARM64 GB300 exits 0 with a grey image after
``Failed to initialize the CUTLASS kernel``. PyTorch's capability warnings are not such
evidence (one is printed wrongly on sm_121 GPUs whose kernels run fine).
"""

from __future__ import annotations

from cosmos_tui.domain import FailureKind
from cosmos_tui.engine.failures import classify, outputs_caveat
from cosmos_tui.engine.profiles.hf_token import read_cache_report

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
    oom = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 6.00 GiB."
    assert classify(1, [CUTLASS, "Traceback (most recent call last):", oom]).kind == (
        FailureKind.GPU_OOM
    )


def test_the_cache_report_reads_its_own_lines_and_wants_its_end() -> None:
    models = ["Cosmos3-Nano", "Cosmos-Guardrail1"]
    banner = "Welcome to gpu-1!\nmissing Cosmos-Guardrail1\ncut Cosmos3-Nano\nchecked\n"
    assert read_cache_report(banner, models) == {
        "Cosmos-Guardrail1": "missing",
        "Cosmos3-Nano": "cut",
    }
    assert read_cache_report("checked\n", models) == {}
    assert read_cache_report("missing Cosmos3-Nano\n", models) is None  # cut short
    assert read_cache_report("", models) is None
    assert read_cache_report("missing Other\nchecked\n", models) == {}
