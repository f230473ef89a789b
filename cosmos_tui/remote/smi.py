"""Parsing of nvidia-smi output into GPU samples, GPU health and host states.

Pure functions (no I/O), shared by the streaming telemetry, ``cosmos status`` and the
tests that feed them real captured output (tests/fixtures/nvidia_smi).

Rows are read by the field names that were queried, so extra fields are read where the
driver supports them. Cells nvidia-smi writes instead of a figure are sorted into
"not reported" (``[N/A]``, ``[Not Supported]``...) and faults: ``[GPU requires reset]``,
``[GPU is lost]``, ``[Unknown Error]``. A fault in a core figure makes the GPU's health
a fault; an error in an optional field alone does not (drivers print ``[Unknown Error]``
for a fan or power limit of a working GPU). Lines that are not rows are either a device
error (``Unable to determine the device handle for GPU <bus>: <why>``) or host-level
text (version mismatch, no devices, no driver), classified by :func:`host_problem`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace
from datetime import datetime

from cosmos_tui.domain import GpuHealth, GpuSample, MigInstance

BASE_FIELDS: tuple[str, ...] = (
    "index",
    "uuid",
    "name",
    "utilization.gpu",
    "utilization.memory",
    "memory.used",
    "memory.total",
    "temperature.gpu",
    "power.draw",
    "power.limit",
    "clocks.sm",
)
# Checked against --help-query-gpu of every driver in tests/fixtures/nvidia_smi (590 to
# 610); clocks_throttle_reasons.* is the older name of clocks_event_reasons.* and both
# are accepted there. A driver that rejects one gets BASE_FIELDS (see GpuTelemetry).
EXTRA_FIELDS: tuple[str, ...] = (
    "pci.bus_id",
    "clocks_throttle_reasons.active",
    "ecc.errors.uncorrected.volatile.total",
    "retired_pages.pending",
    "remapped_rows.pending",
    "pcie.link.gen.current",
    "pcie.link.width.current",
    "fan.speed",
    "mig.mode.current",
)
FULL_FIELDS = BASE_FIELDS + EXTRA_FIELDS
# Other names nvidia-smi accepts (and prints in headers) for the fields above.
ALIASES = {
    "clocks.current.sm": "clocks.sm",
    "clocks_event_reasons.active": "clocks_throttle_reasons.active",
    "gpu_name": "name",
    "gpu_uuid": "uuid",
}
CORE_FIELDS = ("utilization.gpu", "memory.used", "temperature.gpu", "power.draw")
CSV_FORMAT = "--format=csv,noheader,nounits"

# nvmlClocksThrottleReasons bits (NVML API reference, group nvmlClocksThrottleReasons).
THROTTLE_BITS: tuple[tuple[int, str, bool], ...] = (
    # (bit, words, slows a run down for a hardware or thermal reason)
    (0x4, "power cap", False),
    (0x8, "HW slowdown", True),
    (0x20, "SW thermal slowdown", True),
    (0x40, "HW thermal slowdown", True),
    (0x80, "HW power brake", True),
)

NOT_REPORTED = {"", "n/a", "[n/a]", "[not supported]", "[insufficient permissions]"}
RESET_CELL = "[gpu requires reset]"
LOST_CELL = "[gpu is lost]"
UNKNOWN_CELL = "[unknown error]"
_DEVICE_ERROR = re.compile(
    r"Unable to determine the device handle for GPU\s*"
    r"([0-9A-Fa-f]+:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]):\s*(.*)"
)
_MIG_LINE = re.compile(r"^\s+MIG\s+(\S+)\s+Device\s+(\d+):\s+\(UUID:\s*(MIG-[^)\s]+)\)")
_GPU_LINE = re.compile(r"^GPU\s+(\d+):.*\(UUID:\s*(GPU-[^)\s]+)\)")
_PROFILE_MEMORY = re.compile(r"\.(\d+)gb$")


class GpuState(enum.StrEnum):
    """What a host's GPU telemetry is doing (``ok`` or why there are no figures)."""

    STOPPED = "stopped"
    STARTING = "starting"
    OK = "ok"
    NO_DRIVER = "no NVIDIA driver"
    VERSION_MISMATCH = "driver/library version mismatch"
    NO_DEVICES = "no devices"
    NOT_INSTALLED = "nvidia-smi missing"
    STALLED = "stalled"
    RESTARTING = "restarting"
    FAILED = "failed"

    @property
    def host_problem(self) -> bool:
        """True for the states that mean the host's driver setup is broken."""
        return self in (
            GpuState.NO_DRIVER,
            GpuState.VERSION_MISMATCH,
            GpuState.NO_DEVICES,
            GpuState.NOT_INSTALLED,
        )


@dataclass(frozen=True)
class DeviceError:
    """A GPU nvidia-smi could not open: ``Unable to determine the device handle``."""

    bus_id: str
    health: GpuHealth
    message: str


def query_argv(fields: tuple[str, ...], interval_ms: int | None = None) -> list[str]:
    """Return the nvidia-smi argv querying ``fields`` (streaming when ``interval_ms``)."""
    argv = ["nvidia-smi", f"--query-gpu={','.join(fields)}", CSV_FORMAT]
    if interval_ms is not None:
        argv += ["-lms", str(interval_ms)]
    return argv


def header_fields(header: str) -> tuple[str, ...]:
    """Return the field names of a CSV header line (units such as `` [MiB]`` dropped)."""
    names = (part.strip().split(" [", 1)[0] for part in header.split(","))
    return tuple(ALIASES.get(name, name) for name in names)


def bus_key(bus_id: str) -> str:
    """Return a PCI bus id without its domain, lower case (``0000:0B:00.0`` -> ``0b:00.0``)."""
    return bus_id.strip().lower().split(":", 1)[-1]


def _cell_fault(text: str) -> GpuHealth | None:
    lowered = text.strip().lower()
    if lowered == RESET_CELL:
        return GpuHealth.REQUIRES_RESET
    if lowered == LOST_CELL:
        return GpuHealth.LOST
    if lowered == UNKNOWN_CELL:
        return GpuHealth.ERROR
    return None


def _value(text: str) -> str | None:
    value = text.strip()
    if value.lower() in NOT_REPORTED or (value.startswith("[") and value.endswith("]")):
        return None
    return value


def _number(text: str) -> float | None:
    """A figure, with or without its unit (``81559 MiB``); None when not reported."""
    value = _value(text)
    if value is None:
        return None
    return float(value.split(" ", 1)[0])


def _yes(text: str) -> bool | None:
    value = _value(text)
    if value is None:
        return None
    return value.lower() in ("yes", "enabled", "pending")


def _throttle(text: str) -> tuple[tuple[str, ...], bool]:
    value = _value(text)
    if value is None:
        return (), False
    try:
        mask = int(value, 16)
    except ValueError:
        return (), False
    words = tuple(words for bit, words, _ in THROTTLE_BITS if mask & bit)
    slow = any(mask & bit for bit, _, hardware in THROTTLE_BITS if hardware)
    return words, slow


def parse_row(line: str, fields: tuple[str, ...], host: str, at: datetime) -> GpuSample | None:
    """Parse one ``--query-gpu`` CSV row of ``fields``; None when it is not a row.

    Raises nothing: a row whose figures do not parse is not a row.
    """
    parts = [part.strip() for part in line.split(", ")]
    if len(parts) != len(fields):
        return None
    cells = dict(zip((ALIASES.get(f, f) for f in fields), parts, strict=True))
    index, uuid = cells.get("index", ""), cells.get("uuid", "")
    if not index.isdecimal() or not index.isascii() or not uuid or uuid.startswith("["):
        return None
    faults = {name: fault for name, text in cells.items() if (fault := _cell_fault(text))}
    try:
        figures = {
            name: _number(cells[name]) if name in cells else None
            for name in (
                "utilization.gpu",
                "utilization.memory",
                "memory.used",
                "memory.total",
                "temperature.gpu",
                "power.draw",
                "power.limit",
                "clocks.sm",
                "ecc.errors.uncorrected.volatile.total",
                "pcie.link.gen.current",
                "pcie.link.width.current",
                "fan.speed",
            )
        }
    except ValueError:
        return None
    throttle, slow = _throttle(cells.get("clocks_throttle_reasons.active", ""))
    gen, width = figures["pcie.link.gen.current"], figures["pcie.link.width.current"]
    sample = GpuSample(
        host=host,
        index=int(index),
        uuid=uuid,
        name=cells.get("name", ""),
        at=at,
        utilization=figures["utilization.gpu"],
        memory_utilization=figures["utilization.memory"],
        memory_used_mib=figures["memory.used"],
        memory_total_mib=figures["memory.total"],
        temperature_c=figures["temperature.gpu"],
        power_draw_w=figures["power.draw"],
        power_limit_w=figures["power.limit"],
        sm_clock_mhz=figures["clocks.sm"],
        bus_id=_value(cells.get("pci.bus_id", "")),
        throttle_reasons=throttle,
        ecc_uncorrected=figures["ecc.errors.uncorrected.volatile.total"],
        retirement_pending=_yes(cells.get("retired_pages.pending", "")),
        remap_pending=_yes(cells.get("remapped_rows.pending", "")),
        pcie_gen=int(gen) if gen is not None else None,
        pcie_width=int(width) if width is not None else None,
        fan_percent=figures["fan.speed"],
        mig_enabled=_yes(cells.get("mig.mode.current", "")),
        compute_cap=_value(cells.get("compute_cap", "")),
    )
    health, reason = _health(sample, faults, slow)
    return replace(sample, health=health, health_reason=reason)


def _health(
    sample: GpuSample, faults: dict[str, GpuHealth], slow: bool
) -> tuple[GpuHealth, str | None]:
    """Derive a GPU's health from its row: faults first, then MIG, then throttling."""
    for fault, cell in (
        (GpuHealth.LOST, "[GPU is lost]"),
        (GpuHealth.REQUIRES_RESET, "[GPU requires reset]"),
    ):
        named = sorted(name for name, found in faults.items() if found is fault)
        if named:
            return fault, f"nvidia-smi reports {cell} for {', '.join(named)}"
    broken = sorted(n for n, f in faults.items() if f is GpuHealth.ERROR and n in CORE_FIELDS)
    if broken:
        return GpuHealth.ERROR, f"nvidia-smi reports [Unknown Error] for {', '.join(broken)}"
    if sample.remap_pending:
        return GpuHealth.REQUIRES_RESET, "row remapping pending: reset the GPU to complete it"
    if sample.retirement_pending:
        return GpuHealth.REQUIRES_RESET, "page retirement pending: reset the GPU to complete it"
    if sample.ecc_uncorrected:
        return (
            GpuHealth.ERROR,
            f"{sample.ecc_uncorrected:.0f} uncorrected ECC error(s) since the driver loaded",
        )
    if sample.mig_enabled:
        return GpuHealth.MIG, "MIG mode is on: runs are placed on whole GPUs only"
    if slow:
        hardware = [w for w in sample.throttle_reasons if w != "power cap"]
        return GpuHealth.THROTTLED, f"clocks held down: {', '.join(hardware)}"
    return GpuHealth.OK, None


def parse_device_error(line: str) -> DeviceError | None:
    """Parse an ``Unable to determine the device handle for GPU <bus>: <why>`` line."""
    match = _DEVICE_ERROR.search(line)
    if match is None:
        return None
    why = match.group(2).strip()
    health = GpuHealth.ERROR
    if "lost" in why.lower():
        health = GpuHealth.LOST
    elif "reset" in why.lower():
        health = GpuHealth.REQUIRES_RESET
    return DeviceError(match.group(1), health, f"nvidia-smi cannot open the GPU: {why}")


def device_error_sample(previous: GpuSample, error: DeviceError, at: datetime) -> GpuSample:
    """Return a sample of a GPU nvidia-smi could not open: no figures, its fault."""
    return GpuSample(
        host=previous.host,
        index=previous.index,
        uuid=previous.uuid,
        name=previous.name,
        at=at,
        memory_total_mib=previous.memory_total_mib,
        health=error.health,
        health_reason=error.message,
        bus_id=previous.bus_id,
    )


def host_problem(exit_status: int | None, output: str) -> tuple[GpuState, str] | None:
    """Classify what nvidia-smi printed instead of rows; None when nothing host-wide.

    ``output`` should hold only the lines that were not rows (so that an 8-GPU host's
    reason is the error, not CSV). The reason text is what both ``cosmos status`` and
    the GPUs pane show.
    """
    text = output.strip()
    lowered = text.lower()
    if "driver/library version mismatch" in lowered:
        library = re.search(r"NVML library version:\s*(\S+)", text)
        version = f" (NVML library {library.group(1)})" if library else ""
        return GpuState.VERSION_MISMATCH, (
            f"driver/library version mismatch{version}: the loaded NVIDIA kernel module and "
            "the installed libraries differ (usually a driver upgrade without a reboot); "
            "reboot the host or reload the nvidia kernel modules"
        )
    if "couldn't communicate with the nvidia driver" in lowered:
        return GpuState.NO_DRIVER, (
            "no NVIDIA driver: nvidia-smi could not communicate with the NVIDIA driver; "
            "install or load it ('nvidia-smi' on the host shows the same)"
        )
    if "no devices were found" in lowered:
        return GpuState.NO_DEVICES, (
            "no devices: nvidia-smi found no NVIDIA GPU; check 'lspci | grep -i nvidia' and "
            "the kernel log (NVRM lines) on the host"
        )
    if exit_status == 127 or re.search(r"nvidia-smi: (command )?not found", text):
        return GpuState.NOT_INSTALLED, (
            "nvidia-smi missing: it is not on the PATH of the login shell; install the "
            "NVIDIA driver utilities on the host"
        )
    return None


def unsupported_field(output: str) -> bool:
    """True when nvidia-smi rejected a queried field (an older driver)."""
    return "is not a valid field to query" in output


def parse_gpu_list(text: str) -> list[tuple[int, str]]:
    """Return (index, UUID) of each GPU line of ``nvidia-smi -L`` output."""
    return [
        (int(m.group(1)), m.group(2)) for line in text.splitlines() if (m := _GPU_LINE.match(line))
    ]


def parse_mig_list(text: str) -> dict[str, tuple[MigInstance, ...]]:
    """Return GPU UUID -> its MIG instances from ``nvidia-smi -L`` output."""
    found: dict[str, list[MigInstance]] = {}
    current: str | None = None
    for line in text.splitlines():
        gpu = _GPU_LINE.match(line)
        if gpu:
            current = gpu.group(2)
            continue
        mig = _MIG_LINE.match(line)
        if mig and current is not None:
            memory = _PROFILE_MEMORY.search(mig.group(1))
            found.setdefault(current, []).append(
                MigInstance(
                    profile=mig.group(1),
                    device=int(mig.group(2)),
                    uuid=mig.group(3),
                    memory_gib=float(memory.group(1)) if memory else None,
                )
            )
    return {uuid: tuple(instances) for uuid, instances in found.items()}


STALE_TICKS = 3
MIN_STALE_SECONDS = 3.0


def stale_after_s(interval_ms: int) -> float:
    """Age after which a sample is stale: three intervals, at least three seconds."""
    return max(MIN_STALE_SECONDS, STALE_TICKS * interval_ms / 1000)


def with_staleness(sample: GpuSample, now: datetime, stale_after_s: float) -> GpuSample:
    """Return ``sample`` marked stale (with its age) when it is older than the limit."""
    age = (now - sample.at).total_seconds()
    if age <= stale_after_s or sample.health.fault or sample.health is GpuHealth.STALE:
        return sample
    return replace(
        sample,
        health=GpuHealth.STALE,
        health_reason=f"no sample for {age:.0f} s (figures are from {sample.at:%H:%M:%S})",
    )
