"""What the run drivers of one process share, and the errors they raise."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cosmos_tui.config import Config
from cosmos_tui.domain import Run
from cosmos_tui.engine.logs import LogHub
from cosmos_tui.remote.docker_types import LABEL_RUN_ID, parse_size
from cosmos_tui.store.repositories import Store

if TYPE_CHECKING:
    from cosmos_tui.remote.host import RemoteHost
    from cosmos_tui.remote.pool import HostPool

Observer = Callable[[str, str], Awaitable[None]]


class BenchView(Protocol):
    """What ``cosmos verify`` and ``cosmos prune`` use of the services' Workbench.

    A structural type, so that those engine modules need not import the services layer
    above them; the Workbench has each of these.
    """

    config: Config
    store: Store
    hosts: HostPool

    def output_dir(self, run_id: str) -> Path:
        """Return the local folder of a run's outputs and log."""
        ...


class JobStopper(Protocol):
    """Stops the cluster job of a run placed on a cluster node (``ClusterJobs``)."""

    async def stop_run(self, run: Run) -> None:
        """Ask the cluster to stop the job of the run's current attempt."""
        ...


class HostSource(Protocol):
    """Hands out the RemoteHost of a configured host (the facade's HostPool)."""

    def get(self, name: str) -> RemoteHost:
        """Return the host called ``name``."""
        ...


@dataclass
class EngineContext:
    """What drivers share: configuration, store, hosts, the log hub and the clocks.

    Attributes:
        config: The configuration.
        store: The open store.
        hosts: The hosts (lazily connected).
        hub: Wakes in-process log readers.
        worker_id: Recorded as ``claimed_by`` on runs this process drives.
        wall: Seconds since the epoch (injectable clock).
        sleep: Waits between retries (injectable).
        observer: Told ``(run_id, step)`` at each step; tests use it to break things
            at precise moments.
        rng: Jitter of retry backoff.
        homes: Each host's home directory, once asked.
        clusters: Stops the jobs of runs on cluster nodes (None: no cluster configured).

    """

    config: Config
    store: Store
    hosts: HostSource
    hub: LogHub
    worker_id: str
    wall: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    observer: Observer | None = None
    rng: random.Random = field(default_factory=random.Random)
    homes: dict[str, str] = field(default_factory=dict)
    clusters: JobStopper | None = None

    def run_dir(self, run_id: str) -> Path:
        """The run's local folder (outputs, run.log, the driver lock)."""
        return self.config.outputs_dir / run_id

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before run-level retry ``attempt`` (1-based), jittered.

        The connection layer has already made ``retry.max_attempts`` reconnect attempts
        with the same exponential backoff, so this one continues where it stopped.
        """
        retry = self.config.retry
        step = max(1, attempt) + retry.max_attempts - 1
        # typeshed types int ** int as Any (a negative exponent gives a float)
        delay: float = min(retry.backoff_max, retry.backoff_base * (2**step))
        return delay * self.rng.uniform(0.5, 1.0)

    async def notify(self, run_id: str, step: str) -> None:
        """Tell the observer about a step."""
        if self.observer is not None:
            await self.observer(run_id, step)


GPU_WAIT_SECONDS = 5.0


async def stop_run_containers(ctx: EngineContext, run: Run, container_id: str | None = None) -> int:
    """SIGTERM, grace period, SIGKILL: stop the containers labelled with this run only.

    Returns:
        How many running containers were stopped.

    """
    assert run.host is not None
    host = ctx.hosts.get(run.host)
    stopped = 0
    for info in await host.docker.list({LABEL_RUN_ID: run.id}):
        if info.running or (container_id and info.id == container_id):
            await host.docker.stop(info.id, grace_s=ctx.config.timeouts.cancel_grace)
            stopped += 1
    return stopped


def shm_size_bytes(text: str) -> int | None:
    """Return bytes of a size such as ``8g`` (None when empty or unreadable)."""
    try:
        return parse_size(text) if text else None
    except ValueError:
        return None
