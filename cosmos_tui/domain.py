"""Domain values shared by every layer: run states and types, prompts, runs, parameters.

Only these frozen dataclasses and enums (and the error tree) cross into the UI and CLI.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from cosmos_tui.errors import InvalidTransition

T_co = TypeVar("T_co", covariant=True)  # a Page[Run] is a Page[object]: pages are frozen


class RunState(enum.StrEnum):
    """Where a run is in its life."""

    QUEUED = "queued"
    UPLOADING = "uploading"
    STARTING = "starting"
    RUNNING = "running"
    DOWNLOADING = "downloading"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    BLOCKED = "blocked"

    @property
    def is_active(self) -> bool:
        """True while the run may hold remote resources (a container, uploads)."""
        return self in ACTIVE_STATES

    @property
    def is_terminal(self) -> bool:
        """True once the run has ended, whatever the outcome."""
        return self in TERMINAL_STATES


ACTIVE_STATES = frozenset(
    {RunState.UPLOADING, RunState.STARTING, RunState.RUNNING, RunState.DOWNLOADING}
)
TERMINAL_STATES = frozenset(
    {RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED, RunState.BLOCKED}
)

# The one place that says which state changes are allowed. Going back to QUEUED from an
# active state is a retry of a transient failure; from a terminal state it is a user retry.
ALLOWED_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.QUEUED: frozenset({RunState.UPLOADING, RunState.CANCELLED, RunState.FAILED}),
    RunState.UPLOADING: frozenset(
        {RunState.STARTING, RunState.FAILED, RunState.CANCELLED, RunState.QUEUED}
    ),
    RunState.STARTING: frozenset(
        {RunState.RUNNING, RunState.FAILED, RunState.CANCELLED, RunState.QUEUED}
    ),
    RunState.RUNNING: frozenset(
        {
            RunState.DOWNLOADING,
            RunState.FAILED,
            RunState.CANCELLED,
            RunState.BLOCKED,
            RunState.QUEUED,
        }
    ),
    RunState.DOWNLOADING: frozenset(
        {RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED, RunState.BLOCKED}
    ),
    RunState.COMPLETED: frozenset(),
    RunState.FAILED: frozenset({RunState.QUEUED}),
    RunState.CANCELLED: frozenset({RunState.QUEUED}),
    RunState.BLOCKED: frozenset({RunState.QUEUED}),
}


def check_transition(run_id: str, current: RunState, target: RunState) -> None:
    """Raise :class:`InvalidTransition` unless ``current -> target`` is allowed."""
    if target not in ALLOWED_TRANSITIONS[current]:
        raise InvalidTransition(run_id, current.value, target.value)


class RunType(enum.StrEnum):
    """What a run does. Model families are profiles; these are the kinds of job."""

    TRANSFER = "transfer"
    UPSCALE = "upscale"
    ENHANCE = "enhance"
    PREDICT = "predict"


class FailureKind(enum.StrEnum):
    """Classified causes of a run that did not complete."""

    GPU_OOM = "gpu_oom"
    HOST_OOM = "host_oom"
    MISSING_CHECKPOINT = "missing_checkpoint"
    SPEC_ERROR = "spec_error"
    GUARDRAIL = "guardrail"
    IMAGE_MISSING = "image_missing"
    DOCKER_DOWN = "docker_down"
    SSH_LOST = "ssh_lost"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    CONTAINER_GONE = "container_gone"
    GPU_UNAVAILABLE = "gpu_unavailable"
    GPU_FAULT = "gpu_fault"
    ENVIRONMENT = "environment"
    DOWNLOAD = "download"
    UNSUPPORTED_GPU = "unsupported_gpu"
    STALLED = "stalled"
    REFUSED_OUTPUT = "refused_output"
    NCCL = "nccl"
    UNKNOWN = "unknown"


CONTROL_HINTS: tuple[str, ...] = ("vis", "edge", "depth", "seg")
BLUR_LEVELS: tuple[str, ...] = ("very_low", "low", "medium", "high", "very_high")


@dataclass(frozen=True)
class InputFile:
    """A local video that belongs to a prompt.

    Attributes:
        role: ``color`` for the input video, or a control hint (``depth``, ``seg``, ...).
        path: Where the file is on this machine.
        sha256: Hex digest of its content, used to name it on hosts.
        size: Size in bytes.
    """

    role: str
    path: Path
    sha256: str
    size: int


# The family options key that records the local files a run sends (GenerationParams).
RUN_FILES = "files"


def file_role(path: str) -> str:
    """Return the input role of a run's own local file (see GenerationParams.run_files)."""
    return f"file:{path}"


@dataclass(frozen=True)
class GenerationParams:
    """Every parameter of a Cosmos-Transfer1 generation; defaults live in config."""

    vis_weight: float = 0.25
    edge_weight: float = 0.25
    depth_weight: float = 0.25
    seg_weight: float = 0.25
    num_steps: int = 35
    guidance: float = 5.0
    seed: int = 1
    sigma_max: float = 70.0
    fps: int = 24
    blur_strength: str = "medium"
    canny_threshold: str = "medium"
    num_gpus: int = 1
    negative_prompt: str | None = None
    upscale_weight: float = 0.5
    # Options of a family beyond these shared fields (engine/profiles/base.py): stored
    # with the run's params JSON, empty for Transfer1.
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)

    def weight(self, hint: str) -> float:
        """Return the control weight of ``hint`` (vis, edge, depth or seg)."""
        return float(getattr(self, f"{hint}_weight"))

    def run_files(self) -> tuple[InputFile, ...]:
        """Files of this machine the run sends beside its prompt's inputs.

        A family option may name a local file (Transfer2.5's per-control video or mask);
        the run records its content when it is made (``options["files"]``: path, sha256,
        size), the upload checks that content and the sample names the uploaded copy.
        Each is an input whose role is :func:`file_role` of its path.
        """
        return tuple(
            InputFile(file_role(item["path"]), Path(item["path"]), item["sha256"], item["size"])
            for item in self.options.get(RUN_FILES, ())
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of every field."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        if self.options:
            data["options"] = dict(self.options)
        else:
            del data["options"]  # Transfer1's params JSON stays as it always was
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationParams:
        """Build from a dict, ignoring keys that are not fields."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True)
class Prompt:
    """A text prompt with its input videos."""

    id: str
    text: str
    name: str | None
    negative_prompt: str | None
    created_at: datetime
    inputs: tuple[InputFile, ...] = ()
    parent_id: str | None = None
    video_dir: Path | None = None
    run_count: int = 0
    latest_state: RunState | None = None

    def input(self, role: str) -> InputFile | None:
        """Return the input with ``role`` or None."""
        for item in self.inputs:
            if item.role == role:
                return item
        return None


@dataclass(frozen=True)
class RunEvent:
    """One entry of a run's timeline."""

    at: datetime
    from_state: RunState | None
    to_state: RunState
    reason: str


@dataclass(frozen=True)
class Progress:
    """Where a running run is: phase name, 0..100 percent, and seconds left if known."""

    phase: str
    percent: float
    eta_seconds: float | None = None


@dataclass(frozen=True)
class Run:
    """One generation job and everything recorded about it."""

    id: str
    prompt_id: str | None
    type: RunType
    profile: str
    state: RunState
    params: GenerationParams
    created_at: datetime
    updated_at: datetime
    priority: int = 0
    host: str | None = None
    gpus: tuple[int, ...] = ()
    container_id: str | None = None
    batch_id: str | None = None
    attempt: int = 0
    exit_code: int | None = None
    failure_kind: FailureKind | None = None
    failure_message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    log_path: Path | None = None
    outputs: tuple[str, ...] = ()
    rating: int | None = None
    progress: Progress | None = None
    source_run_id: str | None = None
    spec: dict[str, Any] | None = None
    prompt_text: str | None = None
    events: tuple[RunEvent, ...] = field(default=())
    metrics: RunMetrics | None = None
    result_prompt_id: str | None = None
    target: str | None = None
    devices: tuple[int, ...] = ()

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to finish (or to now's last update while active)."""
        if self.started_at is None:
            return None
        end = self.finished_at or self.updated_at
        return max(0.0, (end - self.started_at).total_seconds())


@dataclass(frozen=True)
class Page(Generic[T_co]):
    """One page of a listing and the total number of matches."""

    items: tuple[T_co, ...]
    total: int
    offset: int
    limit: int


class HostState(enum.StrEnum):
    """Connection state of a GPU host as the UI and ``cosmos status`` show it."""

    UNKNOWN = "unknown"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DOWN = "down"


@dataclass(frozen=True)
class HostStatus:
    """A snapshot of one host's connection.

    Attributes:
        host: Configured host name.
        state: Connection state.
        reason: Why it is down or reconnecting (an error message), if it is.
        next_attempt_at: When the next reconnect attempt happens, while reconnecting.
        latency_ms: Round-trip time of the last command, when known.
    """

    host: str
    state: HostState
    reason: str | None = None
    next_attempt_at: datetime | None = None
    latency_ms: float | None = None


class GpuHealth(enum.StrEnum):
    """What a GPU is fit for, derived from its nvidia-smi row (see docs/remote.md).

    Only ``ok`` GPUs are offered to runs. ``requires reset``, ``lost`` and ``error`` are
    faults: a run holding such a GPU is failed with that cause.
    """

    OK = "ok"
    BUSY = "busy"
    REQUIRES_RESET = "requires reset"
    LOST = "lost"
    ERROR = "error"
    STALE = "stale"
    THROTTLED = "throttled"
    MIG = "MIG"
    EXCLUDED = "excluded"

    @property
    def fault(self) -> bool:
        """True when the GPU itself is broken (runs on it cannot go on)."""
        return self in (GpuHealth.REQUIRES_RESET, GpuHealth.LOST, GpuHealth.ERROR)


@dataclass(frozen=True)
class MigInstance:
    """A MIG device of a GPU, as ``nvidia-smi -L`` lists it.

    Attributes:
        profile: The MIG profile, e.g. ``3g.40gb``.
        device: Its device number under the parent GPU.
        uuid: Its ``MIG-...`` UUID.
        memory_gib: Memory of the profile (from its name), GiB.
    """

    profile: str
    device: int
    uuid: str
    memory_gib: float | None = None


@dataclass(frozen=True)
class GpuSample:
    """One nvidia-smi reading of one GPU; a figure the driver did not report is None.

    Besides the figures, a sample carries the GPU's health (and why it is not ``ok``) and
    the extra fields read where the driver supports them: active clock throttle reasons,
    uncorrected ECC errors, pending page retirement or row remapping, PCIe link, fan and
    MIG mode with the MIG instances; ``compute_cap`` (``"9.0"``) when it was queried.
    """

    host: str
    index: int
    uuid: str
    name: str
    at: datetime
    utilization: float | None = None
    memory_utilization: float | None = None
    memory_used_mib: float | None = None
    memory_total_mib: float | None = None
    temperature_c: float | None = None
    power_draw_w: float | None = None
    power_limit_w: float | None = None
    sm_clock_mhz: float | None = None
    health: GpuHealth = GpuHealth.OK
    health_reason: str | None = None
    bus_id: str | None = None
    throttle_reasons: tuple[str, ...] = ()
    ecc_uncorrected: float | None = None
    retirement_pending: bool | None = None
    remap_pending: bool | None = None
    pcie_gen: int | None = None
    pcie_width: int | None = None
    fan_percent: float | None = None
    mig_enabled: bool | None = None
    mig_instances: tuple[MigInstance, ...] = ()
    compute_cap: str | None = None


@dataclass(frozen=True)
class GpuHostHealth:
    """The state of a host's GPU telemetry, with the reason when it is not ``ok``.

    Attributes:
        host: Configured host name.
        state: ``ok``, ``no NVIDIA driver``, ``driver/library version mismatch``,
            ``no devices``, ``nvidia-smi missing``, ``stalled``, ``restarting``...
        reason: One line for people (the same text ``cosmos status`` prints).
    """

    host: str
    state: str
    reason: str | None = None


@dataclass(frozen=True)
class GpuProcess:
    """A compute process on a GPU, attributed to one of our runs when it is ours."""

    host: str
    gpu_uuid: str
    pid: int
    used_memory_mib: float | None
    process_name: str
    container_id: str | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class LogBatch:
    """Consecutive log lines of a run, as delivered to subscribers.

    Attributes:
        run_id: The run.
        lines: Cleaned lines (no ANSI codes, no line endings).
        first_line: 0-based number of the first line in the run's whole log.
    """

    run_id: str
    lines: tuple[str, ...]
    first_line: int = 0


@dataclass(frozen=True)
class RunMetrics:
    """GPU telemetry of a run, aggregated over the time it held its GPUs.

    Attributes:
        samples: Number of per-GPU readings folded in.
        seconds: Seconds of telemetry covered (wall time, not GPU time).
        gpu_seconds: Seconds times GPUs held (a batch's share when shared).
        util_peak: Highest utilisation of any of its GPUs, percent.
        util_mean: Mean utilisation over its GPUs and time, percent.
        memory_peak_mib: Highest memory used on any of its GPUs.
        temperature_peak_c: Highest temperature of any of its GPUs.
        energy_wh: Energy drawn by its GPUs (a batch's share when shared), watt-hours.
        timeline: The run's lifetime as at most ``TIMELINE_POINTS`` points of (seconds
            since the first reading, utilisation percent, memory used MiB), the highest of
            its GPUs at each reading; neighbours are merged when it fills, so it always
            spans the whole run (the run detail draws it as charts).
    """

    samples: int = 0
    seconds: float = 0.0
    gpu_seconds: float = 0.0
    util_peak: float | None = None
    util_mean: float | None = None
    memory_peak_mib: float | None = None
    temperature_peak_c: float | None = None
    energy_wh: float = 0.0
    timeline: tuple[tuple[float, float | None, float | None], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of every field."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["timeline"] = [list(point) for point in self.timeline]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunMetrics:
        """Build from a dict, ignoring keys that are not fields."""
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["timeline"] = tuple(tuple(point) for point in fields.get("timeline") or ())
        return cls(**fields)


class AlertKind(enum.StrEnum):
    """Why an alert was raised on a run."""

    TEMPERATURE = "temperature"
    MEMORY_HEADROOM = "memory_headroom"
    GPU_IDLE = "gpu_idle"
    GPU_HEALTH = "gpu_health"
    HOST_DOWN = "host_down"
    STALLED = "stalled"


@dataclass(frozen=True)
class RunAlert:
    """A threshold crossed while a run held its GPUs.

    Attributes:
        id: Row id.
        run_id: The run.
        kind: What was crossed.
        message: One line for people.
        raised_at: When it was first seen.
        host: The host, when it concerns one.
        gpu_index: The GPU, when it concerns one.
        value: The measured value (degrees, MiB left, idle minutes).
        threshold: The configured threshold.
        cleared_at: When the condition ended, if it did.
    """

    id: int
    run_id: str
    kind: AlertKind
    message: str
    raised_at: datetime
    host: str | None = None
    gpu_index: int | None = None
    value: float | None = None
    threshold: float | None = None
    cleared_at: datetime | None = None


@dataclass(frozen=True)
class AlertChange:
    """An alert raised or cleared on a run.

    Attributes:
        run_id: The run.
        kind: What kind of alert.
        raised: True when raised, False when its condition ended.
        at: When.
        host: The host concerned.
        gpu_index: The GPU concerned (None for host alerts).
        value: The measured value.
        threshold: The configured threshold.
        message: One line for people.

    """

    run_id: str
    kind: AlertKind
    raised: bool
    at: datetime
    host: str | None = None
    gpu_index: int | None = None
    value: float | None = None
    threshold: float | None = None
    message: str = ""


@dataclass(frozen=True)
class OutputFile:
    """One file of a run's local outputs (inside its output folder, never a link)."""

    name: str
    path: Path
    size: int
