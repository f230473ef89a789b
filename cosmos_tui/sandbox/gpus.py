"""Simulated GPUs whose load follows the sandbox's containers, and an ``nvidia-smi``.

Each GPU's utilisation, memory, power and clock follow the phase of the container that
holds it (loading the model fills memory; diffusion sampling pins utilisation near
100%); temperature lags behind power as a real heat sink does. :func:`run_nvidia_smi`
answers the command lines the remote layer sends (``--query-gpu``, ``--query-compute-apps``,
``--format=csv,noheader,nounits``, ``-lms``, ``-L``, ``-i``) in the real tool's format.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cosmos_tui.sandbox.containers import ContainerRuntime
from cosmos_tui.sandbox.faults import Faults
from cosmos_tui.sandbox.smi_replay import SmiReplay

GPU_NAME = "NVIDIA H100 80GB HBM3 (SIMULATED)"
MEMORY_TOTAL_MIB = 81559.0
POWER_LIMIT_W = 700.0
IDLE_POWER_W = 71.0
IDLE_TEMP_C = 31.0
DRIVER_VERSION = "550.54.15"
DRIVER_FAILURE = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make "
    "sure that the latest NVIDIA driver is installed and running.\n"
)

# phase -> (utilisation %, memory MiB the model holds, memory fill rate MiB/s)
PHASE_LOAD: dict[str, tuple[float, float, float]] = {
    "starting": (0.0, 420.0, 1e9),
    "loading": (8.0, 28_500.0, 6_000.0),
    "preprocess": (55.0, 31_000.0, 4_000.0),
    "embedding": (35.0, 33_000.0, 4_000.0),
    "encode": (62.0, 36_500.0, 4_000.0),
    "sampling": (98.0, 39_800.0, 4_000.0),
    "decode": (74.0, 43_200.0, 4_000.0),
    "finishing": (6.0, 30_000.0, 1e9),
    "oom": (100.0, MEMORY_TOTAL_MIB - 310.0, 30_000.0),
}

Writer = Callable[[bytes], Awaitable[None]]


@dataclass
class GpuReading:
    """One GPU's figures at one moment."""

    index: int
    uuid: str
    utilization: float
    memory_utilization: float
    memory_used: float
    temperature: float
    power: float
    sm_clock: float


class GpuSimulator:
    """N simulated H100s driven by the runtime's running containers.

    Args:
        count: Number of GPUs.
        runtime: The containers whose phases load the GPUs.
        faults: Fault switches (driver failure, stalled streams).
        seed: Seed of the jitter, for repeatable figures.

    """

    def __init__(
        self, count: int, runtime: ContainerRuntime, faults: Faults, seed: int = 1
    ) -> None:
        self.count = count
        self.runtime = runtime
        # What the cards are (a test may swap in a small or old one).
        self.name = GPU_NAME
        self.memory_total_mib = MEMORY_TOTAL_MIB
        self.compute_cap = "9.0"
        self.faults = faults
        self._rng = random.Random(seed)  # noqa: S311
        ids = random.Random(seed * 1000)  # noqa: S311
        self.uuids = [f"GPU-{uuid.UUID(int=ids.getrandbits(128))}" for _ in range(count)]
        self._temperature = [IDLE_TEMP_C + i * 0.7 for i in range(count)]
        self._updated = time.monotonic()
        self.replay: SmiReplay | None = None
        self._replay_names: list[str] = []

    def set_replay(self, replay: SmiReplay | None) -> None:
        """Answer GPU queries from a captured nvidia-smi output (None: simulate again).

        The replay's GPUs (their count and UUIDs) become the host's GPUs, so containers
        placed on them show up under the right UUID in the compute-process list.
        """
        self.replay = replay
        if replay is None:
            return
        gpus = replay.gpus()
        self.count = len(gpus)
        self.uuids = [uuid for _, uuid, _ in gpus]
        self._replay_names = [name for _, _, name in gpus]
        self._temperature = [IDLE_TEMP_C + i * 0.7 for i in range(self.count)]

    @property
    def names(self) -> list[str]:
        """Every GPU's model name (the replay's, else the simulated card's)."""
        return self._replay_names if self.replay is not None else [self.name] * self.count

    def read(self) -> list[GpuReading]:
        """Return every GPU's figures now."""
        now = time.monotonic()
        elapsed = min(max(now - self._updated, 0.0), 30.0)
        self._updated = now
        readings = []
        for index in range(self.count):
            util, memory = self._load(index, now)
            jitter = self._rng.uniform(-1.5, 1.5) if util > 0 else 0.0
            util = min(100.0, max(0.0, util + jitter))
            power = IDLE_POWER_W + (POWER_LIMIT_W * 0.93 - IDLE_POWER_W) * util / 100.0
            power += self._rng.uniform(-4.0, 4.0)
            target = IDLE_TEMP_C + index * 0.7 + 46.0 * util / 100.0
            weight = 1.0 - math.exp(-elapsed / 12.0)
            self._temperature[index] += (target - self._temperature[index]) * weight
            readings.append(
                GpuReading(
                    index=index,
                    uuid=self.uuids[index],
                    utilization=round(util),
                    memory_utilization=round(util * 0.45),
                    memory_used=round(memory),
                    temperature=round(self._temperature[index]),
                    power=round(max(power, IDLE_POWER_W - 3), 2),
                    sm_clock=1980.0 if util > 5 else 345.0,
                )
            )
        return readings

    def _load(self, index: int, now: float) -> tuple[float, float]:
        util = 0.0
        memory = 0.0
        for container in self.runtime.containers.values():
            if not container.running or index not in container.gpus:
                continue
            phase_util, held, rate = PHASE_LOAD.get(container.phase, (0.0, 420.0, 1e9))
            ramp = held if rate >= 1e9 else min(held, 420.0 + rate * (now - container.phase_since))
            if container.phase not in ("starting", "loading"):
                ramp = max(ramp, PHASE_LOAD["loading"][1])
            util = max(util, phase_util)
            memory += ramp
        return util, min(memory, self.memory_total_mib)

    def processes(self) -> list[tuple[int, str, float]]:
        """Return (pid, gpu uuid, used MiB) of every compute process."""
        result: list[tuple[int, str, float]] = []
        for container in self.runtime.containers.values():
            if not container.running or container.phase == "starting":
                continue
            now = time.monotonic()
            for index in container.gpus:
                _, memory = self._load(index, now)
                result.append((container.pid, self.uuids[index], round(memory)))
        return result


# nvidia-smi ----------------------------------------------------------------------

_GPU_FIELDS: dict[str, tuple[str, str]] = {
    # field -> (unit shown without nounits, attribute or special)
    "index": ("", "index"),
    "uuid": ("", "uuid"),
    "gpu_uuid": ("", "uuid"),
    "name": ("", "name"),
    "gpu_name": ("", "name"),
    "utilization.gpu": ("%", "utilization"),
    "utilization.memory": ("%", "memory_utilization"),
    "memory.used": ("MiB", "memory_used"),
    "memory.total": ("MiB", "memory_total"),
    "memory.free": ("MiB", "memory_free"),
    "temperature.gpu": ("", "temperature"),
    "power.draw": ("W", "power"),
    "power.limit": ("W", "power_limit"),
    "clocks.sm": ("MHz", "sm_clock"),
    "clocks.current.sm": ("MHz", "sm_clock"),
    "clocks.max.sm": ("MHz", "max_sm_clock"),
    "pci.bus_id": ("", "bus_id"),
    "driver_version": ("", "driver"),
    "fan.speed": ("%", "na"),
    "clocks_throttle_reasons.active": ("", "throttle"),
    "clocks_event_reasons.active": ("", "throttle"),
    "ecc.errors.uncorrected.volatile.total": ("", "ecc"),
    "retired_pages.pending": ("", "no"),
    "remapped_rows.pending": ("", "no"),
    "pcie.link.gen.current": ("", "pcie_gen"),
    "pcie.link.width.current": ("", "pcie_width"),
    "mig.mode.current": ("", "mig"),
    "pstate": ("", "pstate"),
    "count": ("", "count"),
    "compute_cap": ("", "compute_cap"),
    "timestamp": ("", "timestamp"),
}
_APP_FIELDS = {
    "pid": "",
    "gpu_uuid": "",
    "used_memory": "MiB",
    "used_gpu_memory": "MiB",
    "process_name": "",
    "name": "",
    "gpu_bus_id": "",
}


class SmiUsageError(Exception):
    """The command line asks for something nvidia-smi rejects."""


@dataclass(frozen=True)
class SmiRequest:
    """A parsed nvidia-smi command line."""

    gpu_fields: tuple[str, ...] = ()
    app_fields: tuple[str, ...] = ()
    header: bool = True
    units: bool = True
    loop_ms: int | None = None
    ids: tuple[int, ...] | None = None
    list_gpus: bool = False


def parse_smi_args(args: list[str], any_field: bool = False) -> SmiRequest:
    """Parse nvidia-smi's arguments (after the program name).

    With ``any_field`` (a replay answers every field, ``[N/A]`` when it lacks one) GPU
    fields are not checked.

    Raises:
        SmiUsageError: For an unknown option or field.

    """
    values: dict[str, str] = {}
    flags: set[str] = set()
    queue = list(args)
    while queue:
        arg = queue.pop(0)
        if arg in ("-L", "--list-gpus"):
            flags.add("list")
            continue
        name, sep, value = arg.partition("=")
        if name in (
            "-lms",
            "--loop-ms",
            "-l",
            "--loop",
            "-i",
            "--id",
            "--query-gpu",
            "--query-compute-apps",
            "--format",
            "-f",
            "--filename",
        ):
            if not sep:
                if not queue:
                    raise SmiUsageError(f'Option "{name}" requires a value.')
                value = queue.pop(0)
            values[name] = value
            continue
        raise SmiUsageError(f'Invalid combination of input arguments: "{arg}".')
    fmt = {part.strip() for part in values.get("--format", "").split(",") if part.strip()}
    loop_ms: int | None = None
    for key, scale in (("-lms", 1), ("--loop-ms", 1), ("-l", 1000), ("--loop", 1000)):
        if key in values:
            loop_ms = max(int(values[key]) * scale, 10)
    ids = None
    raw_ids = values.get("-i") or values.get("--id")
    if raw_ids:
        ids = tuple(int(i) for i in raw_ids.split(",") if i.strip().isdigit())
    gpu_fields = tuple(f.strip() for f in values.get("--query-gpu", "").split(",") if f.strip())
    app_fields = tuple(
        f.strip() for f in values.get("--query-compute-apps", "").split(",") if f.strip()
    )
    for field in gpu_fields:
        if field not in _GPU_FIELDS and not any_field:
            raise SmiUsageError(f'Field "{field}" is not a valid field to query.')
    for field in app_fields:
        if field not in _APP_FIELDS:
            raise SmiUsageError(f'Field "{field}" is not a valid field to query.')
    if (gpu_fields or app_fields) and "csv" not in fmt:
        raise SmiUsageError('"--format" must be specified with a query, e.g. --format=csv')
    return SmiRequest(
        gpu_fields=gpu_fields,
        app_fields=app_fields,
        header="noheader" not in fmt,
        units="nounits" not in fmt,
        loop_ms=loop_ms,
        ids=ids,
        list_gpus="list" in flags,
    )


def _gpu_value(field: str, reading: GpuReading, sim: GpuSimulator, units: bool) -> str:
    unit, key = _GPU_FIELDS[field]
    values: dict[str, object] = {
        "index": reading.index,
        "uuid": reading.uuid,
        "name": sim.name,
        "utilization": int(reading.utilization),
        "memory_utilization": int(reading.memory_utilization),
        "memory_used": int(reading.memory_used),
        "memory_total": int(sim.memory_total_mib),
        "memory_free": int(sim.memory_total_mib - reading.memory_used),
        "temperature": int(reading.temperature),
        "power": f"{reading.power:.2f}",
        "power_limit": f"{POWER_LIMIT_W:.2f}",
        "sm_clock": int(reading.sm_clock),
        "max_sm_clock": 1980,
        "bus_id": f"00000000:{0x18 + reading.index * 0x10:02X}:00.0",
        "driver": DRIVER_VERSION,
        "pstate": "P0",
        "count": sim.count,
        "throttle": "0x0000000000000000",
        "ecc": 0,
        "no": "No",
        "pcie_gen": 5,
        "pcie_width": 16,
        "mig": "Disabled",
        "compute_cap": sim.compute_cap,
        "timestamp": dt.datetime.now().strftime("%Y/%m/%d %H:%M:%S.%f")[:-3],
    }
    if key == "na":
        return "[N/A]"
    text = str(values[key])
    return f"{text} {unit}" if units and unit else text


def _header(fields: tuple[str, ...], units: dict[str, str], show_units: bool) -> str:
    names = []
    for field in fields:
        unit = units.get(field, "")
        names.append(f"{field} [{unit}]" if show_units and unit else field)
    return ", ".join(names) + "\n"


def render_gpus(request: SmiRequest, sim: GpuSimulator) -> str:
    """Return one sample of a ``--query-gpu`` request as nvidia-smi prints it."""
    if sim.replay is not None:
        return sim.replay.render(request.gpu_fields, request.units, request.ids)
    readings = [r for r in sim.read() if request.ids is None or r.index in request.ids]
    lines = [
        ", ".join(_gpu_value(f, r, sim, request.units) for f in request.gpu_fields) + "\n"
        for r in readings
    ]
    return "".join(lines)


def render_apps(request: SmiRequest, sim: GpuSimulator) -> str:
    """Return the ``--query-compute-apps`` table as nvidia-smi prints it."""
    lines = []
    for pid, gpu_uuid, memory in sim.processes():
        values = {
            "pid": str(pid),
            "gpu_uuid": gpu_uuid,
            "process_name": "/usr/bin/python",
            "name": "/usr/bin/python",
            "gpu_bus_id": "00000000:18:00.0",
            "used_memory": f"{int(memory)}",
            "used_gpu_memory": f"{int(memory)}",
        }
        row = []
        for field in request.app_fields:
            unit = _APP_FIELDS[field]
            row.append(f"{values[field]} {unit}" if request.units and unit else values[field])
        lines.append(", ".join(row) + "\n")
    return "".join(lines)


def render_table(sim: GpuSimulator) -> str:
    """Return a short version of nvidia-smi's default table."""
    rows = [
        f"| SIMULATED GPU HOST  NVIDIA-SMI {DRIVER_VERSION}   Driver Version: {DRIVER_VERSION}   "
        "CUDA Version: 12.4 |\n"
    ]
    for r in sim.read():
        rows.append(
            f"| {r.index:>3}  {GPU_NAME:<24} {int(r.temperature):>3}C  P0  "
            f"{r.power:>6.0f}W / {POWER_LIMIT_W:.0f}W | {int(r.memory_used):>6}MiB / "
            f"{int(MEMORY_TOTAL_MIB)}MiB | {int(r.utilization):>3}% |\n"
        )
    return "".join(rows)


async def run_nvidia_smi(args: list[str], sim: GpuSimulator, out: Writer, err: Writer) -> int:
    """Answer one nvidia-smi command line; return its exit status.

    Streaming requests (``-lms``/``-l``) write a sample per interval until the caller
    cancels the task (the channel closed) or the driver fault is switched on.
    """
    faults = sim.faults
    if faults.smi_failure:
        await out(DRIVER_FAILURE.encode())
        return 9
    if faults.smi_output is not None:
        text, status = faults.smi_output
        await out(text.encode())
        return status
    try:
        request = parse_smi_args(args, any_field=sim.replay is not None)
    except SmiUsageError as exc:
        await out(f"{exc}\n\nPlease run 'nvidia-smi -h' for help.\n".encode())
        return 2
    if sim.count == 0:
        await out(b"No devices were found\n")
        return 6
    if request.list_gpus:
        text = "".join(
            f"GPU {i}: {name} (UUID: {u})\n"
            for i, (name, u) in enumerate(zip(sim.names, sim.uuids, strict=True))
        )
        await out(text.encode())
        return 0
    if request.app_fields:
        head = _header(request.app_fields, _APP_FIELDS, request.units) if request.header else ""
        await out((head + render_apps(request, sim)).encode())
        return 0
    if not request.gpu_fields:
        await out(render_table(sim).encode())
        return 0
    units = {k: v[0] for k, v in _GPU_FIELDS.items() if sim.replay is None}
    if request.header:
        await out(_header(request.gpu_fields, units, request.units).encode())
    while True:
        await faults.wait_unstalled()
        if faults.smi_failure:
            await out(DRIVER_FAILURE.encode())
            return 9
        await out(render_gpus(request, sim).encode())
        if request.loop_ms is None:
            return 0
        await asyncio.sleep(request.loop_ms / 1000.0)
