"""One-shot nvidia-smi queries and the helpers the streaming telemetry shares.

``cosmos status`` and placement checks take one sample with :func:`query_gpus`: good
rows are kept whatever nvidia-smi's exit status, GPUs it cannot open get fault samples,
and the host state comes only from the lines that are not rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from cosmos_tui.domain import GpuProcess, GpuSample, MigInstance
from cosmos_tui.remote.smi import (
    BASE_FIELDS,
    CSV_FORMAT,
    FULL_FIELDS,
    DeviceError,
    GpuState,
    bus_key,
    device_error_sample,
    host_problem,
    parse_device_error,
    parse_mig_list,
    parse_row,
    query_argv,
    unsupported_field,
)
from cosmos_tui.remote.ssh import SshHost

GPU_FIELDS = ",".join(BASE_FIELDS)
APP_FIELDS = "pid,gpu_uuid,used_memory,process_name"
CSV = CSV_FORMAT
MIN_HISTORY_SECONDS = 600
CONTAINER_ID = re.compile(r"(?:docker-|/docker/|containerd-)?([0-9a-f]{64})")


@dataclass(frozen=True)
class GpuReading:
    """One-shot result of querying a host's GPUs.

    Attributes:
        state: ``ok`` when rows came back (even from an nvidia-smi that then failed).
        samples: Every GPU that answered or could be named, with its health.
        reason: Why the state is not ``ok``; or what else nvidia-smi said.
    """

    state: GpuState
    samples: tuple[GpuSample, ...]
    reason: str | None = None


def gpu_query_argv(interval_ms: int | None = None) -> list[str]:
    """Return the nvidia-smi argv of the basic GPU query (streaming when ``interval_ms``)."""
    return query_argv(BASE_FIELDS, interval_ms)


def parse_gpu_line(line: str, host: str, at: datetime) -> GpuSample | None:
    """Parse one basic ``--query-gpu`` CSV line; None when it is not a sample."""
    return parse_row(line, BASE_FIELDS, host, at)


def _number(text: str) -> float | None:
    value = text.strip()
    if not value or value.startswith("[") or value.upper() == "N/A":
        return None
    return float(value)


def parse_app_line(line: str, host: str) -> GpuProcess | None:
    """Parse one ``--query-compute-apps`` CSV line; None when it is not one."""
    parts = [part.strip() for part in line.split(", ", 3)]
    if len(parts) != 4 or not parts[0].isdecimal() or not parts[0].isascii():
        return None
    try:
        memory = _number(parts[2])
    except ValueError:
        memory = None
    return GpuProcess(host, parts[1], int(parts[0]), memory, parts[3])


def read_rows(
    output: str, fields: tuple[str, ...], host: str, at: datetime
) -> tuple[list[GpuSample], list[DeviceError], list[str]]:
    """Split nvidia-smi output into samples, device errors and other (non-row) lines."""
    samples: list[GpuSample] = []
    errors: list[DeviceError] = []
    other: list[str] = []
    for line in output.splitlines():
        sample = parse_row(line, fields, host, at)
        if sample is not None:
            samples.append(sample)
            continue
        error = parse_device_error(line)
        if error is not None:
            errors.append(error)
        elif line.strip():
            other.append(line.strip())
    return samples, errors, other


def apply_device_errors(
    samples: list[GpuSample], errors: list[DeviceError], known: dict[int, GpuSample], at: datetime
) -> tuple[list[GpuSample], list[DeviceError]]:
    """Add a fault sample for each device error whose GPU is known by its bus id.

    Returns the samples (with the new ones) and the errors no known GPU matched.
    """
    by_bus = {bus_key(s.bus_id): s for s in (*known.values(), *samples) if s.bus_id}
    answered = {s.index for s in samples}
    unmatched = []
    out = list(samples)
    for error in errors:
        previous = by_bus.get(bus_key(error.bus_id))
        if previous is None or previous.index in answered:
            unmatched.append(error)
            continue
        out.append(device_error_sample(previous, error, at))
        answered.add(previous.index)
    return sorted(out, key=lambda s: s.index), unmatched


async def query_mig(ssh: SshHost) -> dict[str, tuple[MigInstance, ...]]:
    """Return GPU UUID -> its MIG instances, from ``nvidia-smi -L``.

    Raises:
        HostUnreachable: When the host cannot be reached.

    """
    result = await ssh.run(["nvidia-smi", "-L"], check=False)
    return parse_mig_list(result.stdout)


def with_mig(
    samples: list[GpuSample], mig: Mapping[str, tuple[MigInstance, ...]]
) -> list[GpuSample]:
    """Attach each MIG-enabled GPU's instances (by its UUID) to its sample."""
    return [
        replace(s, mig_instances=mig[s.uuid]) if s.mig_enabled and s.uuid in mig else s
        for s in samples
    ]


async def query_gpus(ssh: SshHost, fields: tuple[str, ...] = FULL_FIELDS) -> GpuReading:
    """Take one sample of every GPU (for ``cosmos status`` and placement checks).

    Good rows are kept whatever the exit status; the host state comes from the lines
    that are not rows. A driver that rejects an extra field is asked the basic fields.
    MIG-enabled GPUs get their instances from ``nvidia-smi -L``.

    Raises:
        HostUnreachable: When the host cannot be reached.

    """
    result = await ssh.run(query_argv(fields), check=False)
    at = datetime.now(UTC)
    samples, errors, other = read_rows(result.stdout, fields, ssh.name, at)
    rest = "\n".join([*other, result.stderr.strip()]).strip()
    if not samples and fields != BASE_FIELDS and unsupported_field(rest):
        return await query_gpus(ssh, BASE_FIELDS)
    samples, unmatched = apply_device_errors(samples, errors, {}, at)
    if any(s.mig_enabled for s in samples):
        samples = with_mig(samples, await query_mig(ssh))
    notes = [e.message + f" (bus {e.bus_id})" for e in unmatched]
    problem = host_problem(result.exit_status, rest)
    if problem is not None and not samples:
        return GpuReading(problem[0], (), problem[1])
    if not samples:
        return GpuReading(
            GpuState.FAILED,
            (),
            f"nvidia-smi printed no GPU figures ({(rest or 'no output')[-300:]}): run "
            "'nvidia-smi' on the host to see what is wrong with the driver",
        )
    if result.exit_status != 0:
        notes.append(f"nvidia-smi exited {result.exit_status}: {rest[-300:] or 'no message'}")
    return GpuReading(GpuState.OK, tuple(samples), "; ".join(notes) or None)
