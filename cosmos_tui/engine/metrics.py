"""Per-run GPU metrics and alerts, folded from the live nvidia-smi samples.

While a run (or a batch) holds GPUs, every sample of those GPUs is folded into the run:
peak and mean utilisation, peak memory, peak temperature, energy (power integrated over
time, in Wh) and GPU time. Runs sharing a container (a batch) share its energy and GPU
time equally; peaks are the container's.

Thresholds of ``[alerts]`` raise alerts, each once until its condition ends:
temperature at or above ``temperature_c``; memory headroom (total minus used) below
``memory_headroom_mib``; a GPU idle (utilisation under 5 %) for ``idle_minutes`` while its
run says it is running (a utilisation nvidia-smi does not report, ``[N/A]`` on MIG GPUs,
is never idle); the run's host down; a GPU whose health is not ``ok`` (stale, throttled, a
fault). A fault (requires reset, lost, error) is also handed out once per container by
:meth:`MetricsTracker.take_faults`, so that its runs are failed with that cause. Samples
of a stale or broken GPU are not folded into the metrics. The tracker is pure (no I/O):
callers store the metrics and alert changes it returns (see
:class:`cosmos_tui.store.metrics_store`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cosmos_tui.config import AlertsConfig
from cosmos_tui.domain import AlertChange, AlertKind, GpuHealth, GpuSample, HostState, RunMetrics

IDLE_UTILIZATION = 5.0
MAX_GAP_SECONDS = 60.0
FINE = (GpuHealth.OK, GpuHealth.BUSY, GpuHealth.MIG, GpuHealth.EXCLUDED)


@dataclass(frozen=True)
class GpuFault:
    """A GPU of a container broke: its runs are to be failed with this cause."""

    key: str
    run_ids: tuple[str, ...]
    host: str
    gpu_index: int
    detail: str


# Points kept of a run's utilisation and memory over time: twice a chart's width, few
# enough that the metrics JSON stays a few kilobytes for a run of any length.
TIMELINE_POINTS = 120
_Point = tuple[float, float | None, float | None]


@dataclass
class _GpuState:
    last_at: datetime | None = None
    last_power: float | None = None
    idle_since: datetime | None = None


@dataclass
class _Tracked:
    run_ids: tuple[str, ...]
    host: str
    gpus: tuple[int, ...]
    running: bool = False
    gpu_state: dict[int, _GpuState] = field(default_factory=dict)


@dataclass
class _Totals:
    samples: int = 0
    util_sum: float = 0.0
    util_count: int = 0
    util_peak: float | None = None
    memory_peak: float | None = None
    temperature_peak: float | None = None
    energy_j: float = 0.0
    gpu_seconds: float = 0.0
    first_at: datetime | None = None
    last_at: datetime | None = None
    timeline: list[_Point] = field(default_factory=list)

    def add_point(self, at: datetime, util: float | None, memory: float | None) -> None:
        """Add a reading to the timeline (the highest GPU's where several share a time)."""
        offset = (at - self.first_at).total_seconds() if self.first_at else 0.0
        if self.timeline and self.timeline[-1][0] == offset:
            _, last_util, last_memory = self.timeline[-1]
            self.timeline[-1] = (offset, _peak(last_util, util), _peak(last_memory, memory))
        else:
            self.timeline.append((offset, util, memory))
        if len(self.timeline) > TIMELINE_POINTS:
            self.timeline = [_merge(*pair) for pair in _pairs(self.timeline)]

    def metrics(self) -> RunMetrics:
        seconds = 0.0
        if self.first_at is not None and self.last_at is not None:
            seconds = (self.last_at - self.first_at).total_seconds()
        return RunMetrics(
            samples=self.samples,
            seconds=seconds,
            gpu_seconds=self.gpu_seconds,
            util_peak=self.util_peak,
            util_mean=self.util_sum / self.util_count if self.util_count else None,
            memory_peak_mib=self.memory_peak,
            temperature_peak_c=self.temperature_peak,
            energy_wh=self.energy_j / 3600.0,
            timeline=tuple(self.timeline),
        )


def _pairs(points: list[_Point]) -> list[tuple[_Point, ...]]:
    """Neighbours two by two (a last odd point alone)."""
    return [tuple(points[i : i + 2]) for i in range(0, len(points), 2)]


def _merge(*points: _Point) -> _Point:
    """One point for neighbours: the first time, mean utilisation, peak memory."""
    utils = [p[1] for p in points if p[1] is not None]
    memory = [p[2] for p in points if p[2] is not None]
    return (points[0][0], sum(utils) / len(utils) if utils else None, max(memory, default=None))


def _peak(current: float | None, value: float | None) -> float | None:
    if value is None:
        return current
    return value if current is None else max(current, value)


class MetricsTracker:
    """Folds GPU samples into the runs holding those GPUs and decides alerts.

    Args:
        thresholds: The ``[alerts]`` section of the config.
        clock: Source of the current time (host state changes carry no time).

    """

    def __init__(self, thresholds: AlertsConfig, clock: Callable[[], datetime]) -> None:
        self._thresholds = thresholds
        self._clock = clock
        self._tracked: dict[str, _Tracked] = {}
        self._totals: dict[str, _Totals] = {}
        self._open: set[tuple[str, AlertKind, int | None]] = set()
        self._faults: list[GpuFault] = []
        self._faulted: set[str] = set()

    def track(
        self,
        key: str,
        run_ids: Sequence[str],
        host: str,
        gpus: Sequence[int],
        running: bool = False,
    ) -> None:
        """Start folding samples of ``host``/``gpus`` into ``run_ids``.

        Args:
            key: The container's key (batch id, or the run id of a run alone).
            run_ids: The runs sharing the container.
            host: Where it runs.
            gpus: The GPU indices it holds.
            running: Whether the runs say they are running (idle alerts need this).

        """
        self._tracked[key] = _Tracked(tuple(run_ids), host, tuple(gpus), running)
        for run_id in run_ids:
            self._totals.setdefault(run_id, _Totals())

    def set_running(self, key: str, running: bool) -> None:
        """Record whether the container's runs claim to be running."""
        tracked = self._tracked.get(key)
        if tracked is not None:
            tracked.running = running
            if not running:
                for state in tracked.gpu_state.values():
                    state.idle_since = None

    def untrack(self, key: str) -> list[AlertChange]:
        """Stop tracking a container; its runs' open alerts are cleared."""
        tracked = self._tracked.pop(key, None)
        self._faulted.discard(key)
        if tracked is None:
            return []
        now = self._clock()
        changes = []
        for alert in sorted(self._open, key=str):
            if alert[0] in tracked.run_ids:
                self._open.discard(alert)
                changes.append(AlertChange(alert[0], alert[1], False, now, tracked.host, alert[2]))
        return changes

    def tracked_keys(self) -> list[str]:
        """Return the keys of the containers being tracked."""
        return list(self._tracked)

    def metrics(self, run_id: str) -> RunMetrics | None:
        """Return what has been folded into ``run_id`` so far (None if never tracked)."""
        totals = self._totals.get(run_id)
        return totals.metrics() if totals else None

    def forget(self, run_id: str) -> None:
        """Drop the totals of a run whose metrics have been stored for good."""
        self._totals.pop(run_id, None)

    def observe(self, samples: Iterable[GpuSample]) -> list[AlertChange]:
        """Fold samples into the runs holding their GPUs; return alert changes."""
        changes: list[AlertChange] = []
        for sample in samples:
            for key, tracked in self._tracked.items():
                if tracked.host == sample.host and sample.index in tracked.gpus:
                    changes += self._health(key, tracked, sample)
                    if sample.health is not GpuHealth.STALE and not sample.health.fault:
                        changes += self._fold(tracked, sample)
        return changes

    def take_faults(self) -> list[GpuFault]:
        """Return the GPU faults seen since the last call (each container's first only)."""
        faults, self._faults = self._faults, []
        return faults

    def host_state(self, host: str, state: HostState) -> list[AlertChange]:
        """Raise (down) or clear (connected) host-down alerts of the runs on ``host``."""
        now = self._clock()
        changes = []
        for tracked in self._tracked.values():
            if tracked.host != host:
                continue
            for run_id in tracked.run_ids:
                if state == HostState.DOWN:
                    change = self._raise(
                        run_id, AlertKind.HOST_DOWN, None, now, tracked.host, None, None,
                        f"host {host} is down while run {run_id} holds GPUs on it",
                    )  # fmt: skip
                elif state == HostState.CONNECTED:
                    change = self._clear(run_id, AlertKind.HOST_DOWN, None, now, host)
                else:
                    change = None
                if change:
                    changes.append(change)
        return changes

    # internals -----------------------------------------------------------------------

    def _health(self, key: str, tracked: _Tracked, sample: GpuSample) -> list[AlertChange]:
        index, host, at = sample.index, tracked.host, sample.at
        kind = AlertKind.GPU_HEALTH
        if sample.health in FINE:
            cleared = [self._clear(run, kind, index, at, host) for run in tracked.run_ids]
            return [c for c in cleared if c is not None]
        detail = f"GPU {index} on {host} {sample.health.value}"
        if sample.health_reason:
            detail += f": {sample.health_reason}"
        if sample.health.fault and key not in self._faulted:
            self._faulted.add(key)
            self._faults.append(GpuFault(key, tracked.run_ids, host, index, detail))
        raised = []
        for run in tracked.run_ids:
            message = f"{detail} while run {run} holds it"
            raised.append(self._raise(run, kind, index, at, host, None, None, message))
        return [c for c in raised if c is not None]

    def _fold(self, tracked: _Tracked, sample: GpuSample) -> list[AlertChange]:
        state = tracked.gpu_state.setdefault(sample.index, _GpuState())
        share = len(tracked.run_ids)
        dt = 0.0
        energy = 0.0
        if state.last_at is not None:
            dt = min(max(0.0, (sample.at - state.last_at).total_seconds()), MAX_GAP_SECONDS)
            powers = [p for p in (state.last_power, sample.power_draw_w) if p is not None]
            if powers:
                energy = sum(powers) / len(powers) * dt
        state.last_at = sample.at
        state.last_power = sample.power_draw_w
        for run_id in tracked.run_ids:
            totals = self._totals.setdefault(run_id, _Totals())
            totals.samples += 1
            if sample.utilization is not None:
                totals.util_sum += sample.utilization
                totals.util_count += 1
            totals.util_peak = _peak(totals.util_peak, sample.utilization)
            totals.memory_peak = _peak(totals.memory_peak, sample.memory_used_mib)
            totals.temperature_peak = _peak(totals.temperature_peak, sample.temperature_c)
            totals.energy_j += energy / share
            totals.gpu_seconds += dt / share
            totals.first_at = totals.first_at or sample.at
            totals.last_at = sample.at
            totals.add_point(sample.at, sample.utilization, sample.memory_used_mib)
        return self._check(tracked, sample, state)

    def _check(self, tracked: _Tracked, sample: GpuSample, state: _GpuState) -> list[AlertChange]:
        limits = self._thresholds
        at = sample.at
        index = sample.index
        host = tracked.host
        changes: list[AlertChange | None] = []
        temperature = sample.temperature_c
        headroom = None
        if sample.memory_total_mib is not None and sample.memory_used_mib is not None:
            headroom = sample.memory_total_mib - sample.memory_used_mib
        idle_minutes = None
        if tracked.running and sample.utilization is not None:
            if sample.utilization < IDLE_UTILIZATION:
                state.idle_since = state.idle_since or at
                idle_minutes = (at - state.idle_since).total_seconds() / 60.0
            else:
                state.idle_since = None
        for run_id in tracked.run_ids:
            if temperature is not None:
                if temperature >= limits.temperature_c:
                    changes.append(self._raise(
                        run_id, AlertKind.TEMPERATURE, index, at, host, temperature,
                        limits.temperature_c,
                        f"GPU {index} on {host} is at {temperature:.0f} C "
                        f"(alert at {limits.temperature_c:.0f} C)",
                    ))  # fmt: skip
                else:
                    changes.append(self._clear(run_id, AlertKind.TEMPERATURE, index, at, host))
            if headroom is not None:
                if headroom < limits.memory_headroom_mib:
                    changes.append(self._raise(
                        run_id, AlertKind.MEMORY_HEADROOM, index, at, host, headroom,
                        limits.memory_headroom_mib,
                        f"GPU {index} on {host} has {headroom:.0f} MiB free "
                        f"(alert under {limits.memory_headroom_mib:.0f} MiB)",
                    ))  # fmt: skip
                else:
                    changes.append(self._clear(run_id, AlertKind.MEMORY_HEADROOM, index, at, host))
            if idle_minutes is not None and idle_minutes >= limits.idle_minutes:
                changes.append(self._raise(
                    run_id, AlertKind.GPU_IDLE, index, at, host, idle_minutes, limits.idle_minutes,
                    f"GPU {index} on {host} has been idle for {idle_minutes:.1f} min while run "
                    f"{run_id} is running",
                ))  # fmt: skip
            elif state.idle_since is None:
                changes.append(self._clear(run_id, AlertKind.GPU_IDLE, index, at, host))
        return [c for c in changes if c is not None]

    def _raise(
        self,
        run_id: str,
        kind: AlertKind,
        index: int | None,
        at: datetime,
        host: str,
        value: float | None,
        threshold: float | None,
        message: str,
    ) -> AlertChange | None:
        key = (run_id, kind, index)
        if key in self._open:
            return None
        self._open.add(key)
        return AlertChange(run_id, kind, True, at, host, index, value, threshold, message)

    def _clear(
        self, run_id: str, kind: AlertKind, index: int | None, at: datetime, host: str
    ) -> AlertChange | None:
        key = (run_id, kind, index)
        if key not in self._open:
            return None
        self._open.discard(key)
        return AlertChange(run_id, kind, False, at, host, index)
