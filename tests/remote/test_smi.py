"""The nvidia-smi parser held against real captured output (tests/fixtures/nvidia_smi)."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cosmos_tui.domain import GpuHealth
from cosmos_tui.remote.smi import (
    ALIASES,
    FULL_FIELDS,
    GpuState,
    device_error_sample,
    header_fields,
    host_problem,
    parse_device_error,
    parse_gpu_list,
    parse_mig_list,
    parse_row,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nvidia_smi"
AT = datetime(2026, 1, 1, tzinfo=UTC)
MANIFEST = tomllib.loads((FIXTURES / "manifest.toml").read_text())["fixture"]
TRANSCRIPTS = tomllib.loads((FIXTURES / "transcripts.toml").read_text())["message"]
CAPTURES = [f for f in MANIFEST if f["kind"] == "capture" and f["file"].endswith(".csv")]


def _rows(name: str) -> tuple[tuple[str, ...], list[str]]:
    lines = (FIXTURES / name).read_text().splitlines()
    return header_fields(lines[0]), [line for line in lines[1:] if line.strip()]


# Fixtures from a real machine whose source has no URL, each with the reason.
NO_URL = {
    "transcript__slurm-h100__requires_reset.csv": "the public code index held these notes "
    "without naming their repository",
}


def test_every_fixture_file_is_in_the_manifest_with_a_source_and_driver() -> None:
    listed = {f["file"] for f in MANIFEST}
    on_disk = {p.name for p in FIXTURES.iterdir()} - {"manifest.toml", "compose_replays.py"}
    assert on_disk == listed
    for entry in MANIFEST:  # real output is traceable to where it was published
        real = entry["kind"] == "capture" or (
            entry["kind"] == "transcript" and entry["file"].endswith(".csv")
        )
        if real:
            assert entry["source"].startswith("https://") or entry["file"] in NO_URL, entry
    for message in TRANSCRIPTS:
        assert message["source"].startswith("https://"), message
    for entry in MANIFEST:
        assert (
            entry["source"]
            and entry["driver"]
            and entry["kind"]
            in (
                "capture",
                "transcript",
                "composed",
            )
        )


def test_the_replays_are_what_compose_replays_builds() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("compose", FIXTURES / "compose_replays.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, text in module.build().items():
        assert (FIXTURES / name).read_text() == text


@pytest.mark.parametrize("entry", CAPTURES, ids=lambda e: e["file"])
def test_every_real_capture_parses_to_one_gpu(entry: dict) -> None:
    fields, rows = _rows(entry["file"])
    samples = [parse_row(row, fields, "h", AT) for row in rows]
    assert len(samples) == 1 and samples[0] is not None
    sample = samples[0]
    assert sample.index == 0 and sample.uuid.startswith("GPU-")
    assert entry["gpu"].startswith(sample.name)
    assert sample.memory_total_mib and sample.memory_total_mib > 1000
    assert sample.memory_used_mib is not None and sample.temperature_c is not None
    assert sample.power_draw_w is not None and sample.power_limit_w is not None
    assert sample.bus_id is not None and sample.pcie_width == 16
    if "MIG" in entry["gpu"]:
        assert sample.mig_enabled and sample.utilization is None
        assert sample.health is GpuHealth.MIG
    else:
        assert sample.mig_enabled in (False, None) and sample.utilization is not None
        assert sample.health is GpuHealth.OK, sample.health_reason


CAPABILITY = {"RTX 2080 SUPER": "7.5", "RTX 4080 SUPER": "8.9", "L40S": "8.9", "H100": "9.0"}


@pytest.mark.parametrize("entry", CAPTURES, ids=lambda e: e["file"])
def test_compute_capability_of_every_real_capture(entry: dict) -> None:
    fields, rows = _rows(entry["file"])
    sample = parse_row(rows[0], fields, "h", AT)
    assert sample is not None
    want = next((cap for model, cap in CAPABILITY.items() if model in entry["gpu"]), "9.0")
    assert sample.compute_cap == want


def test_compute_capability_is_none_when_not_reported() -> None:
    fields, rows = _rows("linux-x86_64__nvidia-l40s__595.80__idle.csv")
    cells = rows[0].split(", ")
    cells[fields.index("compute_cap")] = "[N/A]"
    sample = parse_row(", ".join(cells), fields, "h", AT)
    assert sample is not None and sample.compute_cap is None


def test_h100_under_load_figures_exactly() -> None:
    fields, rows = _rows("linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01__load.csv")
    sample = parse_row(rows[0], fields, "h", AT)
    assert sample is not None
    assert (sample.utilization, sample.memory_used_mib, sample.memory_total_mib) == (
        100,
        19818,
        81559,
    )
    assert (sample.temperature_c, sample.power_draw_w, sample.power_limit_w) == (59, 631.95, 700)
    assert sample.sm_clock_mhz == 1980 and sample.bus_id == "00000000:00:09.0"
    assert (sample.pcie_gen, sample.ecc_uncorrected, sample.remap_pending) == (5, 0, False)
    assert sample.fan_percent is None and sample.throttle_reasons == ()


def test_power_cap_is_shown_but_is_not_throttling() -> None:
    fields, rows = _rows("linux-x86_64__nvidia-geforce-rtx-2080-super__595.71.05__idle.csv")
    sample = parse_row(rows[0], fields, "h", AT)
    assert sample is not None and sample.throttle_reasons == ("power cap",)
    assert sample.health is GpuHealth.OK and sample.fan_percent == 38


def test_thermal_slowdown_bits_make_a_gpu_throttled() -> None:
    # The bit values are NVML's nvmlClocksThrottleReasons (0x40 HW thermal, 0x8 HW slowdown).
    fields, rows = _rows("linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01__load.csv")
    row = rows[0].split(", ")
    row[fields.index("clocks_throttle_reasons.active")] = "0x0000000000000048"
    sample = parse_row(", ".join(row), fields, "h", AT)
    assert sample is not None and sample.health is GpuHealth.THROTTLED
    assert sample.throttle_reasons == ("HW slowdown", "HW thermal slowdown")
    assert "HW thermal slowdown" in (sample.health_reason or "")


@pytest.mark.parametrize(
    "help_file", [f["file"] for f in MANIFEST if f["file"].endswith("_fields.txt")]
)
def test_every_queried_field_is_known_to_the_fixture_drivers(help_file: str) -> None:
    known = set((FIXTURES / help_file).read_text().split())
    for field in FULL_FIELDS:
        assert field in known or any(a in known for a, c in ALIASES.items() if c == field), field


def test_requires_reset_transcript_is_a_fault_not_an_idle_gpu() -> None:
    fields, rows = _rows("transcript__slurm-h100__requires_reset.csv")
    row = rows[0] + ", GPU-x"  # the transcript did not query the uuid
    sample = parse_row(row, (*fields, "uuid"), "h", AT)
    assert sample is not None and sample.health is GpuHealth.REQUIRES_RESET
    assert sample.utilization is None and sample.temperature_c is None
    assert "temperature.gpu" in (sample.health_reason or "")
    assert "[GPU requires reset]" in (sample.health_reason or "")


def test_unknown_error_in_an_optional_field_keeps_a_working_gpu_ok() -> None:
    # The transcript's GPU ran at 100 % with [Unknown Error] in one optional field.
    fields, rows = _rows("linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01__load.csv")
    row = rows[0].split(", ")
    row[fields.index("fan.speed")] = "[Unknown Error]"
    sample = parse_row(", ".join(row), fields, "h", AT)
    assert sample is not None and sample.health is GpuHealth.OK


@pytest.mark.parametrize(
    ("replay", "index", "health"),
    [
        ("replay__2gpu__gpu1_requires_reset.csv", 1, GpuHealth.REQUIRES_RESET),
        ("replay__2gpu__gpu0_unknown_error.csv", 0, GpuHealth.ERROR),
    ],
)
def test_replay_rows_carry_the_fault(replay: str, index: int, health: GpuHealth) -> None:
    fields, rows = _rows(replay)
    samples = [parse_row(row, fields, "h", AT) for row in rows]
    assert all(s is not None for s in samples)
    last = {s.index: s for s in samples if s is not None}
    assert last[index].health is health
    assert last[1 - index].health is GpuHealth.OK


def test_lost_cells() -> None:
    fields = ("index", "uuid", "name", "temperature.gpu", "utilization.gpu")
    sample = parse_row("2, GPU-x, H100, [GPU is lost], [GPU is lost]", fields, "h", AT)
    assert sample is not None and sample.health is GpuHealth.LOST


@pytest.mark.parametrize(
    "message", [m for m in TRANSCRIPTS if "bus_id" not in m], ids=lambda m: m["state"]
)
def test_host_messages_from_real_machines(message: dict) -> None:
    expected = {
        "version mismatch": GpuState.VERSION_MISMATCH,
        "no devices": GpuState.NO_DEVICES,
        "no driver": GpuState.NO_DRIVER,
    }[message["state"]]
    found = host_problem(message.get("exit_status"), message["text"])
    assert found is not None
    state, reason = found
    assert state is expected and state.host_problem
    assert reason.startswith(f"{state.value}")


def test_version_mismatch_names_the_library_version() -> None:
    text = TRANSCRIPTS[1]["text"]
    state, reason = host_problem(None, text) or (None, "")
    assert state is GpuState.VERSION_MISMATCH and "570.124" in reason and "reboot" in reason


def test_a_missing_nvidia_smi_is_its_own_state() -> None:
    found = host_problem(127, "sh: 1: nvidia-smi: not found")
    assert found is not None and found[0] is GpuState.NOT_INSTALLED


def test_rows_are_never_taken_for_a_host_problem() -> None:
    assert host_problem(0, "0, GPU-x, NVIDIA H100, 1, 2, 3, 4, 5, 6, 7, 8") is None


@pytest.mark.parametrize(
    "message", [m for m in TRANSCRIPTS if "bus_id" in m], ids=lambda m: m["bus_id"]
)
def test_device_handle_errors(message: dict) -> None:
    error = parse_device_error(message["text"])
    assert error is not None and error.bus_id == message["bus_id"]
    assert error.health.value == message["state"]
    fields, rows = _rows("linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01__load.csv")
    previous = parse_row(rows[0], fields, "h", AT)
    assert previous is not None
    sample = device_error_sample(previous, error, AT)
    assert sample.health is error.health and sample.utilization is None
    assert sample.uuid == previous.uuid


def test_mig_instances_from_a_real_h100_list() -> None:
    text = (FIXTURES / "linux-x86_64__nvidia-h100-mig__590.48.01__list.txt").read_text()
    found = parse_mig_list(text)
    instances = found["GPU-00000000-0000-0000-0000-000000000000"]
    assert [(i.profile, i.device, i.memory_gib) for i in instances] == [
        ("3g.40gb", 0, 40),
        ("2g.20gb", 1, 20),
        ("1g.10gb", 2, 10),
        ("1g.10gb", 3, 10),
    ]


def test_gpu_list_names_whole_gpus_not_their_mig_instances() -> None:
    text = (FIXTURES / "linux-x86_64__nvidia-h100-mig__590.48.01__list.txt").read_text()
    assert parse_gpu_list(text) == [(0, "GPU-00000000-0000-0000-0000-000000000000")]
    assert parse_gpu_list("No devices were found\n") == []
