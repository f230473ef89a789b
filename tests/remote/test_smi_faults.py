"""GPU faults that arrive as figures or as lines beside the rows, on real H100 captures.

The rows are the real H100 capture's (tests/fixtures/nvidia_smi); only the cell under
test is changed, so every other field is what a real driver printed.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cosmos_tui.config import HostConfig
from cosmos_tui.domain import GpuHealth, GpuProcess, GpuSample
from cosmos_tui.remote.gpu_policy import usable_indices, with_policy
from cosmos_tui.remote.gpu_query import apply_device_errors, read_rows
from cosmos_tui.remote.smi import header_fields, parse_row

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nvidia_smi"
CAPTURE = "linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01__load.csv"
AT = datetime(2026, 1, 1, tzinfo=UTC)


def capture() -> tuple[tuple[str, ...], list[str]]:
    lines = (FIXTURES / CAPTURE).read_text().splitlines()
    return header_fields(lines[0]), [line for line in lines[1:] if line.strip()]


def changed(field: str, value: str) -> GpuSample:
    fields, rows = capture()
    cells = rows[0].split(", ")
    cells[fields.index(field)] = value
    sample = parse_row(", ".join(cells), fields, "h", AT)
    assert sample is not None
    return sample


def test_the_unchanged_row_is_healthy() -> None:
    fields, rows = capture()
    sample = parse_row(rows[0], fields, "h", AT)
    assert sample is not None and sample.health is GpuHealth.OK


@pytest.mark.parametrize(
    ("field", "value", "health", "says"),
    [
        ("ecc.errors.uncorrected.volatile.total", "2", GpuHealth.ERROR,
         "2 uncorrected ECC error(s)"),
        ("retired_pages.pending", "Yes", GpuHealth.REQUIRES_RESET, "page retirement pending"),
        ("remapped_rows.pending", "Yes", GpuHealth.REQUIRES_RESET, "row remapping pending"),
    ],
)  # fmt: skip
def test_memory_faults_are_health_states_with_their_reason(
    field: str, value: str, health: GpuHealth, says: str
) -> None:
    sample = changed(field, value)
    assert sample.health is health
    assert says in (sample.health_reason or "")
    assert usable_indices(HostConfig(name="h", hostname="h"), [sample]) == ()


def test_zero_ecc_and_no_pending_work_stay_ok() -> None:
    assert changed("ecc.errors.uncorrected.volatile.total", "0").health is GpuHealth.OK
    assert changed("retired_pages.pending", "No").health is GpuHealth.OK
    assert changed("remapped_rows.pending", "No").health is GpuHealth.OK


def test_a_device_handle_line_mid_stream_marks_the_known_gpu_by_bus_id() -> None:
    fields, rows = capture()
    gpu0 = parse_row(rows[0], fields, "h", AT)
    assert gpu0 is not None
    gpu1 = dataclasses.replace(gpu0, index=1, uuid="GPU-second", bus_id="00000000:0B:00.0")
    known = {0: gpu0, 1: gpu1}
    # one tick: GPU 0's row, then the line nvidia-smi prints for GPU 1 (a real message)
    output = "\n".join([
        rows[0],
        "Unable to determine the device handle for GPU 0000:0B:00.0: Unknown Error",
        "Unable to determine the device handle for GPU 0000:99:00.0: GPU is lost. Reboot "
        "the system to recover this GPU",
    ])  # fmt: skip
    samples, errors, other = read_rows(output, fields, "h", AT)
    assert [s.index for s in samples] == [0] and other == []
    merged, unmatched = apply_device_errors(samples, errors, known, AT)
    assert [s.index for s in merged] == [0, 1]
    assert merged[0].health is GpuHealth.OK
    assert merged[1].health is GpuHealth.ERROR and merged[1].uuid == "GPU-second"
    assert "Unknown Error" in (merged[1].health_reason or "")
    assert merged[1].utilization is None  # no figures from a GPU that cannot be opened
    assert [e.bus_id for e in unmatched] == ["0000:99:00.0"]  # no known GPU on that bus


def test_a_gpu_with_someone_elses_process_is_busy_and_not_offered() -> None:
    fields, rows = capture()
    gpu0 = parse_row(rows[0], fields, "h", AT)
    assert gpu0 is not None and gpu0.uuid
    gpu1 = dataclasses.replace(gpu0, index=1, uuid="GPU-second")
    theirs = GpuProcess("h", "GPU-second", 4242, 1024.0, "python")
    ours = GpuProcess("h", gpu0.uuid, 4343, 2048.0, "python", run_id="rs_ours")
    host = HostConfig(name="h", hostname="h")
    judged = with_policy(host, [gpu0, gpu1], [theirs, ours], ours={"rs_ours"})
    assert [s.health for s in judged] == [GpuHealth.OK, GpuHealth.BUSY]
    assert judged[1].health_reason == "a process of someone else uses it"
    assert usable_indices(host, [gpu0, gpu1], [theirs, ours], ours={"rs_ours"}) == (0,)
