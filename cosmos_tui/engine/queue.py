"""Placement: which queued run (or batch) starts on which host and GPUs.

Pure functions over snapshots, so the same code answers ``cosmos queue`` (the plan) and
drives the scheduler. A GPU is free when nvidia-smi reports it healthy (``ok``, see
:mod:`cosmos_tui.remote.gpu_policy`: not excluded, not a display GPU, not MIG unless the
host allows it, not in a fault, stale or throttled), no run of ours holds it (active, or
claimed by a scheduler), and no foreign process (someone else's job) runs on it. A host's
``gpu_limit`` caps how many GPUs our runs hold there at once, whichever they are.

Order is strict FIFO within priority: groups are placed in queue order, and once one
cannot start for want of free GPUs, nothing behind it starts either (a big run is never
starved by small ones). A group that no online host could ever hold (it asks for more GPUs
than any host has) does not block the others; it waits with its reason shown.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from cosmos_tui.config import Config, HostConfig
from cosmos_tui.domain import GpuHealth, GpuProcess, GpuSample, HostState, HostStatus
from cosmos_tui.engine.batching import LaunchGroup
from cosmos_tui.remote.gpu_policy import with_policy
from cosmos_tui.store.queue_store import Allocation


@dataclass(frozen=True)
class HostView:
    """What placement needs to know about one host right now.

    Attributes:
        name: Configured host name.
        online: Whether it is connected (a host that dropped takes no new work).
        gpus: GPU indices the tool may use on it (reported, not excluded).
        foreign_busy: Indices with a compute process that is not one of our runs.
        max_runs: Most containers at once (None: no limit).
        unhealthy: Indices not offered now, with their health (requires reset, stale...).
        max_gpus: Most GPUs our runs hold at once (the host's gpu_limit; None: all).
        batches: Whether it takes a batch (several runs in one container); a cluster
            node runs each run as its own job and takes single runs only.

    """

    name: str
    online: bool
    gpus: tuple[int, ...]
    foreign_busy: frozenset[int] = frozenset()
    max_runs: int | None = None
    unhealthy: Mapping[int, str] = field(default_factory=dict)
    max_gpus: int | None = None
    batches: bool = True

    def serves(self, target: str | None) -> bool:
        """True when a run pinned to ``target`` may go here (None: any run may).

        A target is a host's name, or a cluster's, which every node of that cluster
        (``<cluster>/<node>``) serves.
        """
        return target is None or self.name == target or self.name.startswith(f"{target}/")

    @property
    def capacity(self) -> int:
        """How many GPUs our runs could ever hold here at once."""
        return len(self.gpus) if self.max_gpus is None else min(len(self.gpus), self.max_gpus)


@dataclass(frozen=True)
class Placement:
    """A group that can start now, and where."""

    group: LaunchGroup
    host: str
    gpus: tuple[int, ...]


@dataclass(frozen=True)
class Waiting:
    """A group that cannot start yet, and why (shown by ``cosmos queue``).

    Attributes:
        group: The group.
        reason: Why, for people.
        until_free: True when it only waits for GPUs to come free (it will start once
            running work ends); False when nothing running can change that (the queue
            is paused, or no online host is big enough).

    """

    group: LaunchGroup
    reason: str
    until_free: bool = True


@dataclass(frozen=True)
class QueuePlan:
    """The outcome of one placement pass."""

    placements: tuple[Placement, ...] = ()
    waiting: tuple[Waiting, ...] = ()
    paused: bool = False
    free: Mapping[str, tuple[int, ...]] = field(default_factory=dict)


def host_view(
    host: HostConfig,
    status: HostStatus | None,
    samples: Sequence[GpuSample],
    processes: Iterable[GpuProcess] = (),
    ours: Collection[str] = (),
) -> HostView:
    """Build the view of one host from its config and latest telemetry.

    Args:
        host: The host's configuration (gpu_limit, max_runs).
        status: Its connection state; None counts as offline.
        samples: The latest nvidia-smi reading of each GPU.
        processes: Compute processes seen on its GPUs.
        ours: Run, batch and container ids (full or 12-character) of our runs that
            hold GPUs or just let them go; a process attributed to none of them is
            foreign, even in a container with our labels (another user's cosmos-tui, or
            a container of ours still running after its runs ended).

    """
    judged = with_policy(host, samples, processes, ours)
    indices = sorted(
        s.index
        for s in judged
        if s.health is not GpuHealth.EXCLUDED and (s.health is not GpuHealth.MIG or host.gpu_mig)
    )
    busy = frozenset(s.index for s in judged if s.health is GpuHealth.BUSY)
    unhealthy = {
        s.index: s.health.value
        for s in judged
        if s.index in indices and s.health not in (GpuHealth.OK, GpuHealth.BUSY, GpuHealth.MIG)
    }
    online = status is not None and status.state == HostState.CONNECTED
    return HostView(
        name=host.name,
        online=online,
        gpus=tuple(indices),
        foreign_busy=busy,
        max_runs=host.max_runs,
        unhealthy=unhealthy,
        max_gpus=host.gpu_limit,
    )


def place(
    groups: Sequence[LaunchGroup],
    hosts: Sequence[HostView],
    allocations: Sequence[Allocation],
    paused: bool = False,
) -> QueuePlan:
    """Decide which groups start now and on which GPUs.

    The host with the most free GPUs wins (runs spread over hosts; ties go to the
    first host in the config), and the lowest free indices are used.

    Args:
        groups: Launch groups in queue order.
        hosts: Every configured host, in config order.
        allocations: GPUs our containers hold now.
        paused: A paused queue plans nothing (every group waits).

    """
    free: dict[str, list[int]] = {}
    containers: dict[str, set[str]] = {h.name: set() for h in hosts}
    taken: dict[str, set[int]] = {h.name: set() for h in hosts}
    for allocation in allocations:
        taken.setdefault(allocation.host, set()).update(allocation.gpus)
        containers.setdefault(allocation.host, set()).add(allocation.container_key)
    for host in hosts:
        free[host.name] = [
            g
            for g in host.gpus
            if g not in taken[host.name] and g not in host.foreign_busy and g not in host.unhealthy
        ]
    free_view = {name: tuple(gpus) for name, gpus in free.items()}
    if paused:
        note = "the queue is paused ('cosmos queue resume')"
        waiting = tuple(Waiting(g, note, until_free=False) for g in groups)
        return QueuePlan(waiting=waiting, paused=True, free=free_view)
    placements: list[Placement] = []
    waiting_list: list[Waiting] = []
    # Host -> the first group in line that waits for it: nothing behind that group
    # starts there (FIFO), but runs behind it may start on hosts it cannot use.
    held: dict[str, LaunchGroup] = {}
    for group in groups:
        need = group.num_gpus
        takers = [h for h in hosts if h.serves(group.target)]
        if group.is_batch:
            takers = [h for h in takers if h.batches]
        fitting = [h for h in takers if h.online and h.capacity >= need]
        if not fitting:
            reason = _never_fits(need, takers, group, any(h.serves(group.target) for h in hosts))
            waiting_list.append(Waiting(group, reason, until_free=False))
            continue
        open_hosts = [h for h in fitting if h.name not in held]
        if not open_hosts:
            ahead = held[fitting[0].name].head.id
            waiting_list.append(Waiting(group, f"behind {ahead} (first in line)"))
            continue
        ready = [
            h
            for h in open_hosts
            if len(free[h.name]) >= need
            and (h.max_runs is None or len(containers[h.name]) < h.max_runs)
            and (h.max_gpus is None or len(taken[h.name]) + need <= h.max_gpus)
        ]
        if not ready:
            waiting_list.append(Waiting(group, _why_waiting(need, open_hosts, free, containers)))
            for h in fitting:
                held.setdefault(h.name, group)
            continue
        order = {h.name: i for i, h in enumerate(hosts)}
        best = max(ready, key=lambda h: (len(free[h.name]), -order[h.name]))
        gpus = tuple(sorted(free[best.name])[:need])
        free[best.name] = [g for g in free[best.name] if g not in gpus]
        taken[best.name].update(gpus)
        containers[best.name].add(group.head.id)
        placements.append(Placement(group=group, host=best.name, gpus=gpus))
    return QueuePlan(placements=tuple(placements), waiting=tuple(waiting_list), free=free_view)


def _never_fits(need: int, takers: Sequence[HostView], group: LaunchGroup, known: bool) -> str:
    """Say why no host could ever take ``group`` now (``known``: its target is seen)."""
    pinned = f"pinned to {group.target}: " if group.target is not None else ""
    if group.target is not None and not known:
        return f"{pinned}no host or cluster node of that name is known now"
    if not takers:
        if group.is_batch and known:
            return f"{pinned}a batch needs an SSH host (cluster nodes take single runs)"
        return "no hosts are configured ('cosmos config' [[hosts]])"
    online = [h for h in takers if h.online]
    if not online:
        return f"{pinned}no host is online"
    most = max(h.capacity for h in online)
    return f"{pinned}needs {need} GPU(s); the largest online host offers {most}"


def _why_waiting(
    need: int,
    fitting: Sequence[HostView],
    free: Mapping[str, Sequence[int]],
    containers: Mapping[str, set[str]],
) -> str:
    states = []
    for h in fitting:
        if h.max_runs is not None and len(containers[h.name]) >= h.max_runs:
            states.append(f"{h.name} at max_runs {h.max_runs}")
        else:
            held = ", ".join(f"GPU {i} {word}" for i, word in sorted(h.unhealthy.items()))
            states.append(f"{h.name} {len(free[h.name])} free" + (f", {held}" if held else ""))
    return f"waiting for {need} free GPU(s) ({'; '.join(states)})"


def host_views_from(
    config: Config,
    statuses: Mapping[str, HostStatus],
    samples: Mapping[str, Sequence[GpuSample]],
    processes: Mapping[str, Sequence[GpuProcess]],
    ours: Collection[str] = (),
) -> list[HostView]:
    """Return the view of every configured host, in config order."""
    return [
        host_view(h, statuses.get(h.name), samples.get(h.name, ()), processes.get(h.name, ()), ours)
        for h in config.hosts
    ]
