"""A one-shot health report of a host, for ``cosmos status`` and the UI's host pane.

It gathers, as concurrently as the connection allows: connection state and latency, the
Docker version, whether the configured image is present, a GPU sample with the run that
holds each GPU, our containers, and a list of plain-language problems (unknown host key,
socket denied, image missing, no driver...). A failing part becomes a problem; it never
hides the others.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cosmos_tui.domain import GpuProcess, GpuSample, HostState, HostStatus, RunAlert
from cosmos_tui.errors import CosmosError
from cosmos_tui.remote.docker import LABEL_GPUS, ContainerInfo
from cosmos_tui.remote.gpu import GpuReading, GpuState, GpuTelemetry, query_gpus
from cosmos_tui.remote.gpu_policy import with_policy
from cosmos_tui.remote.host import RemoteHost


@dataclass(frozen=True)
class HostReport:
    """Everything ``cosmos status`` shows about one host.

    Attributes:
        host: Configured name.
        status: Connection state (with latency of a trivial command when connected).
        docker_version: Engine version, None when Docker could not be reached.
        image: The configured image.
        image_present: Whether it is on the host; None when unknown.
        gpu_state: Telemetry state (``ok``, ``no NVIDIA driver``, ``driver/library version
            mismatch``, ``no devices``, ``nvidia-smi missing``...); None when unknown.
        gpu_reason: Why the state is not ``ok`` (the text the GPUs pane shows too), or
            what else nvidia-smi said (a GPU it could not open, its exit status).
        gpus: A current sample of each GPU, its health judged by the host's policy.
        gpu_runs: GPU index -> ids of runs holding it (from processes and container labels).
        processes: Compute processes, attributed to runs where they are ours.
        containers: Our containers, running or exited.
        problems: What is wrong, each with what to do.
        alerts: Open alerts of runs on this host (kept by the queue's metrics recorder in
            the database; the caller adds them, this module only asks the host).

    """

    host: str
    status: HostStatus
    docker_version: str | None = None
    image: str = ""
    image_present: bool | None = None
    gpu_state: str | None = None
    gpu_reason: str | None = None
    gpus: tuple[GpuSample, ...] = ()
    gpu_runs: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    processes: tuple[GpuProcess, ...] = ()
    containers: tuple[ContainerInfo, ...] = ()
    problems: tuple[str, ...] = ()
    alerts: tuple[RunAlert, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing is wrong: no problem and no open alert."""
        return not self.problems and not self.alerts


def _gpu_runs(
    gpus: tuple[GpuSample, ...],
    processes: tuple[GpuProcess, ...],
    containers: tuple[ContainerInfo, ...],
) -> dict[int, tuple[str, ...]]:
    by_uuid = {s.uuid: s.index for s in gpus}
    holders: dict[int, set[str]] = {}
    for process in processes:
        if process.run_id and process.gpu_uuid in by_uuid:
            holders.setdefault(by_uuid[process.gpu_uuid], set()).add(process.run_id)
    for container in containers:
        if not container.running or not container.run_id:
            continue
        for text in container.labels.get(LABEL_GPUS, "").split(","):
            if text.strip().isdigit():
                holders.setdefault(int(text), set()).add(container.run_id)
    return {index: tuple(sorted(runs)) for index, runs in sorted(holders.items())}


async def collect_status(host: RemoteHost) -> HostReport:
    """Check one host and return its report (never raises for host-side problems).

    Once the connection is open, every question goes out at once (a round trip costs
    20-150 ms on a real network): the latency probe, Docker's version, image and
    containers, nvidia-smi's GPUs and compute processes. What the processes mean is only
    used when the GPU reading is good.
    """
    problems: list[str] = []
    try:
        await host.connect()
    except CosmosError as exc:
        return HostReport(
            host.name, host.status(), image=host.config.docker_image, problems=(exc.message,)
        )

    async def latency_part() -> float | None:
        try:
            # The command's own round trip: the connection is opened before it is timed.
            result = await host.run(["true"])
        except CosmosError as exc:
            problems.append(exc.message)
            return None
        return round(result.duration_s * 1000, 1)

    async def docker_part() -> tuple[str | None, bool | None, tuple[ContainerInfo, ...]]:
        try:
            version, present, containers = await _all_or_first_error(
                host.docker.version(),
                host.docker.image_present(host.config.docker_image),
                host.docker.list(),
            )
        except CosmosError as exc:
            problems.append(exc.message)
            return None, None, ()
        if not present:
            problems.append(
                f"image {host.config.docker_image} is not on {host.name}: pull it there "
                f"('docker pull {host.config.docker_image}') or set docker_image"
            )
        return version.version, present, tuple(containers)

    async def gpu_part() -> tuple[GpuReading, tuple[GpuProcess, ...]]:
        polled = asyncio.ensure_future(GpuTelemetry(host.ssh, host.docker).poll_processes())
        try:
            return await gpu_answers(polled)
        finally:
            if not polled.done():  # cancelled from outside
                polled.cancel()

    async def gpu_answers(
        polled: asyncio.Future[tuple[GpuProcess, ...]],
    ) -> tuple[GpuReading, tuple[GpuProcess, ...]]:
        try:
            reading = await query_gpus(host.ssh)
        except CosmosError as exc:
            problems.append(exc.message)
            await _settle(polled)
            return GpuReading(GpuState.FAILED, (), exc.message), ()
        if reading.state is not GpuState.OK:
            problems.append(reading.reason or reading.state.value)
            await _settle(polled)
            return reading, ()
        problems.extend(
            f"GPU {s.index} {s.health.value}: {s.health_reason}"
            for s in reading.samples
            if s.health.fault
        )
        if reading.reason:  # a GPU nvidia-smi could not open, a failed exit
            problems.append(reading.reason)
        try:
            processes = await polled
        except CosmosError as exc:
            problems.append(exc.message)
            processes = ()
        return reading, processes

    latency_ms, (version, present, containers), (reading, processes) = await asyncio.gather(
        latency_part(), docker_part(), gpu_part()
    )
    status = HostStatus(host.name, HostState.CONNECTED, latency_ms=latency_ms)
    ours = {c.run_id for c in containers if c.run_id} | {c.id for c in containers}
    gpus = with_policy(host.config, reading.samples, processes, ours)
    return HostReport(
        host=host.name,
        status=status,
        docker_version=version,
        image=host.config.docker_image,
        image_present=present,
        gpu_state=reading.state.value,
        gpu_reason=reading.reason,
        gpus=gpus,
        gpu_runs=_gpu_runs(gpus, processes, containers),
        processes=processes,
        containers=containers,
        problems=tuple(problems),
    )


async def _all_or_first_error(*calls: Awaitable[Any]) -> list[Any]:
    """Await every call together; raise the first one's error once all have ended.

    Docker down makes every call fail the same way: one message is enough.
    """
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return list(results)


async def _settle(task: asyncio.Future[Any]) -> None:
    """Wait for a side query whose answer is not needed; its error is not a problem."""
    with contextlib.suppress(CosmosError):
        await task
