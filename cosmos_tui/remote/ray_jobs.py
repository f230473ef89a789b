"""A Ray cluster's Jobs API and node list: the one module that imports ``ray``.

Ray is an optional extra (``pip install 'cosmos-tui[ray]'``): it is imported only when a
configured cluster is used, and its absence is a :class:`ConfigError` saying what to
install. Everything crosses out of here as the frozen types below, never Ray objects.

Calls go over the dashboard's HTTP API (``JobSubmissionClient``; ``ray.util.state`` for
nodes; the dashboard's own ``/nodes?view=summary`` for the GPUs each node's agent reads
through NVML); the blocking client runs in a thread. Connection failures become
:class:`ClusterUnreachable` (transient: runs wait in the queue).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cosmos_tui.errors import ClusterUnreachable, ConfigError, CosmosError

INSTALL_HINT = "pip install 'cosmos-tui[ray]'"
META_INSTALL = "cosmos.installation"
META_RUN = "cosmos.run_id"
META_OWNER = "cosmos.owner"
META_GPUS = "cosmos.gpus"
# Ray's job states that still hold (or wait for) the entrypoint's resources.
LIVE_STATUSES = frozenset({"PENDING", "RUNNING"})
NODE_LIMIT = 10_000  # the state API refuses more (RAY_MAX_LIMIT_FROM_API_SERVER)

T = TypeVar("T")
logger = logging.getLogger(__name__)


def require_ray(cluster: str) -> Any:
    """Return ``ray.job_submission``, or raise a ConfigError saying what to install.

    Raises:
        ConfigError: When Ray is not installed.

    """
    try:
        return importlib.import_module("ray.job_submission")
    except ImportError as exc:
        raise ConfigError(
            f"cluster '{cluster}' needs Ray, which is not installed here: run "
            f'"{INSTALL_HINT}" (or remove the [[clusters]] entry)'
        ) from exc


@dataclass(frozen=True)
class RayNode:
    """One node of the cluster, as the state API reports it."""

    node_id: str
    ip: str
    alive: bool
    head: bool
    gpus: int
    resources: Mapping[str, float] = field(default_factory=dict)


# The actor that runs a job's entrypoint holds its entrypoint_num_gpus
# (ray/dashboard/modules/job/job_manager.py line 586), named after its submission id
# (JOB_ACTOR_NAME_TEMPLATE, ray/dashboard/modules/job/common.py line 31).
JOB_ACTOR_PREFIX = "_ray_internal_job_actor_"


@dataclass(frozen=True)
class GpuHolder:
    """Something in the cluster that holds GPUs of a node: an actor, or a running task.

    Attributes:
        node_id: Where it holds them.
        gpus: How many (Ray's logical GPUs).
        submission_id: The job whose entrypoint it is, when it is a job's entrypoint
            actor; None for any other actor or task (never ours).

    """

    node_id: str
    gpus: float
    submission_id: str | None = None


def _bundle_holder(bundle: Any) -> list[GpuHolder]:
    """The GPUs one placement-group bundle reserves on its node (none: an empty list)."""
    if not isinstance(bundle, dict):
        return []
    resources = bundle.get("unit_resources") or bundle.get("unitResources") or {}
    node_id = bundle.get("node_id") or bundle.get("nodeId")
    gpus = _number(resources.get("GPU")) if isinstance(resources, dict) else None
    if not gpus or not isinstance(node_id, str):
        return []
    return [GpuHolder(node_id, gpus)]


@dataclass(frozen=True)
class ReportedGpu:
    """One GPU of a node as Ray's dashboard agent reads it (NVML), every few seconds.

    Attributes:
        index: The GPU's index on its node.
        name: The model name (host-supplied: shown through ``one_line``).
        utilization: Percent busy, or None when NVML gave none.
        memory_used_mib: Memory in use, MiB.
        memory_total_mib: Memory in all, MiB.

    """

    index: int
    name: str
    utilization: float | None
    memory_used_mib: float
    memory_total_mib: float


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def reported_gpus(summary: Any) -> dict[str, tuple[ReportedGpu, ...]]:
    """Read the GPUs of each node (by node id) from ``/nodes?view=summary``'s reply.

    The reply is the dashboard's own (not a stable API): anything not shaped as Ray
    2.x sends it is left out, never guessed.
    """
    found: dict[str, tuple[ReportedGpu, ...]] = {}
    data = summary.get("data") if isinstance(summary, dict) else None
    nodes = data.get("summary") if isinstance(data, dict) else None
    for node in nodes if isinstance(nodes, list) else ():
        raylet = node.get("raylet") if isinstance(node, dict) else None
        node_id = raylet.get("nodeId") if isinstance(raylet, dict) else None
        gpus = node.get("gpus") if isinstance(node, dict) else None
        if not isinstance(node_id, str) or not isinstance(gpus, list):
            continue
        read = []
        for gpu in gpus:
            if not isinstance(gpu, dict):
                continue
            index, used, total = (
                _number(gpu.get(k)) for k in ("index", "memoryUsed", "memoryTotal")
            )
            if index is None or used is None or total is None:
                continue
            name = gpu.get("name")
            read.append(
                ReportedGpu(
                    index=int(index),
                    name=name if isinstance(name, str) else "",
                    utilization=_number(gpu.get("utilizationGpu")),
                    memory_used_mib=used,
                    memory_total_mib=total,
                )
            )
        found[node_id] = tuple(sorted(read, key=lambda g: g.index))
    return found


@dataclass(frozen=True)
class RayJob:
    """One Ray Job (a run's submission, or anyone else's job)."""

    submission_id: str
    status: str
    message: str = ""
    driver_node_id: str | None = None
    num_gpus: float = 0.0
    metadata: Mapping[str, str] = field(default_factory=dict)
    start_ms: int | None = None
    end_ms: int | None = None

    @property
    def live(self) -> bool:
        """True while it holds or waits for resources."""
        return self.status in LIVE_STATUSES


def _gpus(details: Any) -> float:
    """GPUs a job asked for: the HTTP API omits them, so ours carry them in metadata."""
    asked = getattr(details, "entrypoint_num_gpus", None)
    if asked is None:
        try:
            asked = float((details.metadata or {}).get(META_GPUS, 0.0))
        except ValueError:
            asked = 0.0
    return float(asked or 0.0)


def _job(details: Any) -> RayJob:
    status = getattr(details.status, "value", str(details.status))
    return RayJob(
        submission_id=str(details.submission_id or details.job_id or ""),
        status=str(status),
        message=str(details.message or ""),
        driver_node_id=details.driver_node_id or None,
        num_gpus=_gpus(details),
        metadata=dict(details.metadata or {}),
        start_ms=details.start_time,
        end_ms=details.end_time,
    )


class RayJobs:
    """The Jobs API of one cluster.

    Args:
        cluster: The cluster's configured name (for messages).
        address: The dashboard URL (``http://host:port``).
        timeout: Seconds for one HTTP call.
        tunnel: Gives the URL before each call (an SSH tunnel that may have been
            opened again on a new local port); ``address`` is then unused.

    """

    def __init__(
        self,
        cluster: str,
        address: str,
        timeout: float = 10.0,
        tunnel: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        self.cluster = cluster
        self.address = address
        self.timeout = timeout
        self.tunnel = tunnel
        self._module = require_ray(cluster)
        self._client: Any = None

    async def _call(self, function: Callable[[], T]) -> T:
        if self.tunnel is not None:
            address = await self.tunnel()
            if address != self.address:
                self.address, self._client = address, None
        try:
            return await asyncio.wait_for(asyncio.to_thread(function), self.timeout * 3)
        except CosmosError:
            raise
        except (ConnectionError, OSError, TimeoutError) as exc:
            raise ClusterUnreachable(self.cluster, str(exc) or type(exc).__name__) from exc
        except RuntimeError as exc:  # the SDK wraps HTTP failures in RuntimeError
            text = str(exc)
            transient = ("Failed to connect", "Connection", "try again later")
            if any(marker in text for marker in transient):  # also: job agent not up yet
                raise ClusterUnreachable(self.cluster, text.splitlines()[0]) from exc
            raise CosmosError(f"cluster {self.cluster}: {text.splitlines()[0]}") from exc

    def _sdk(self) -> Any:
        if self._client is None:
            try:
                self._client = self._module.JobSubmissionClient(self.address)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise ClusterUnreachable(self.cluster, reason) from exc
        return self._client

    async def submit(
        self,
        submission_id: str,
        entrypoint: str,
        num_gpus: int,
        resources: Mapping[str, float],
        metadata: Mapping[str, str],
        env_vars: Mapping[str, str] | None = None,
    ) -> RayJob:
        """Submit a job once: a submission id that exists already is adopted, not resent.

        Returns:
            The job as Ray reports it after the submit.

        """

        def submit() -> RayJob:
            client = self._sdk()
            try:
                client.submit_job(
                    entrypoint=entrypoint,
                    submission_id=submission_id,
                    entrypoint_num_gpus=num_gpus,
                    entrypoint_num_cpus=0,
                    entrypoint_resources=dict(resources) or None,
                    metadata={**metadata, META_GPUS: str(num_gpus)},
                    runtime_env={"env_vars": dict(env_vars)} if env_vars else None,
                )
            except RuntimeError as exc:
                if "already exists" not in str(exc):
                    raise
            return _job(client.get_job_info(submission_id))

        return await self._call(submit)

    async def job(self, submission_id: str) -> RayJob | None:
        """Return one job, or None when the cluster has no job of that id."""

        def get() -> RayJob | None:
            try:
                return _job(self._sdk().get_job_info(submission_id))
            except RuntimeError as exc:
                if "does not exist" in str(exc) or "404" in str(exc):
                    return None
                raise

        return await self._call(get)

    async def jobs(self) -> list[RayJob]:
        """Return every job the cluster knows (ours and others')."""
        return await self._call(lambda: [_job(d) for d in self._sdk().list_jobs()])

    async def stop(self, submission_id: str) -> bool:
        """Ask Ray to stop a job (SIGTERM to the entrypoint, SIGKILL after its wait)."""
        return await self._call(lambda: bool(self._sdk().stop_job(submission_id)))

    async def logs(self, submission_id: str) -> str:
        """Return the job's whole log so far."""
        return await self._call(lambda: str(self._sdk().get_job_logs(submission_id)))

    async def tail(self, submission_id: str) -> AsyncIterator[str]:
        """Yield chunks of the job's log from its start until the job ends.

        Raises:
            ClusterUnreachable: When the stream cannot be opened or breaks.

        """
        client = await self._call(self._sdk)
        try:
            async for chunk in client.tail_job_logs(submission_id):
                yield chunk
        except (ConnectionError, OSError, RuntimeError) as exc:
            raise ClusterUnreachable(self.cluster, f"log stream: {exc}") from exc
        except Exception as exc:  # aiohttp's errors are not ConnectionError subclasses
            if type(exc).__module__.startswith("aiohttp"):
                raise ClusterUnreachable(self.cluster, f"log stream: {exc}") from exc
            raise

    async def gpu_usage(self) -> dict[str, tuple[ReportedGpu, ...]]:
        """Return each node's GPUs as its dashboard agent last read them (by node id).

        A node whose agent reads no GPU (no NVML there) is absent or empty.

        Raises:
            ClusterUnreachable: When the dashboard does not answer.

        """

        def read() -> dict[str, tuple[ReportedGpu, ...]]:
            url = f"{self.address.rstrip('/')}/nodes?view=summary"
            if not url.startswith(("http://", "https://")):
                raise ClusterUnreachable(self.cluster, f"not an HTTP address: {self.address}")
            with urllib.request.urlopen(url, timeout=self.timeout) as reply:  # noqa: S310
                try:
                    return reported_gpus(json.loads(reply.read()))
                except ValueError as exc:
                    raise ClusterUnreachable(self.cluster, f"GPU usage: {exc}") from exc

        return await self._call(read)

    async def gpu_holders(self) -> list[GpuHolder]:
        """Return every alive actor and running task that holds GPUs, with its node.

        Job entrypoints are actors too, so this sees the GPUs of everyone's jobs (the
        Jobs API gives no job's GPU count) and of Ray work that is not a job at all.

        Raises:
            ClusterUnreachable: When the state API does not answer.

        """

        def list_holders() -> list[GpuHolder]:
            state = importlib.import_module("ray.util.state")
            errors = importlib.import_module("ray.util.state.exception")
            common = {"address": self.address, "timeout": max(1, int(self.timeout))}
            common.update(detail=True, limit=NODE_LIMIT, raise_on_missing_output=False)
            try:  # without the actors nothing is known: the caller falls back
                actors = state.list_actors(filters=[("state", "=", "ALIVE")], **common)
            except errors.RayStateApiException as exc:
                raise ClusterUnreachable(self.cluster, str(exc).split(". ")[0]) from exc
            others: list[Any] = []
            for listing, filters in (
                (state.list_tasks, [("state", "=", "RUNNING"), ("type", "=", "NORMAL_TASK")]),
                (state.list_placement_groups, [("state", "=", "CREATED")]),
            ):
                try:
                    others.append(listing(filters=filters, **common))
                except errors.RayStateApiException as exc:  # counted without them
                    logger.info("cluster %s: %s", self.cluster, str(exc).split(". ")[0])
                    others.append([])
            tasks, groups = others
            holders = []
            for item in [*actors, *tasks]:
                if getattr(item, "placement_group_id", None):
                    continue  # its group's bundles hold the GPUs (counted below)
                gpus = _number((getattr(item, "required_resources", None) or {}).get("GPU"))
                node_id = getattr(item, "node_id", None)
                if not gpus or not isinstance(node_id, str):
                    continue
                name = getattr(item, "name", None) or ""
                is_job = isinstance(name, str) and name.startswith(JOB_ACTOR_PREFIX)
                holders.append(
                    GpuHolder(node_id, gpus, name[len(JOB_ACTOR_PREFIX) :] if is_job else None)
                )
            for group in groups:
                for bundle in getattr(group, "bundles", None) or ():
                    holders.extend(_bundle_holder(bundle))
            return holders

        return await self._call(list_holders)

    async def nodes(self) -> list[RayNode]:
        """Return the cluster's nodes (alive and dead) with their GPUs and resources."""

        def list_nodes() -> list[RayNode]:
            state = importlib.import_module("ray.util.state")
            errors = importlib.import_module("ray.util.state.exception")
            try:
                found = state.list_nodes(
                    address=self.address,
                    timeout=int(self.timeout),
                    detail=True,
                    limit=NODE_LIMIT,  # Ray's default (100) silently cuts a big cluster
                )
            except errors.RayStateApiException as exc:
                reason = str(exc).split(". ")[0]
                raise ClusterUnreachable(self.cluster, reason) from exc
            nodes = []
            for node in found:
                total = dict(node.resources_total or {})
                nodes.append(
                    RayNode(
                        node_id=str(node.node_id),
                        ip=str(node.node_ip),
                        alive=node.state == "ALIVE",
                        head=bool(node.is_head_node),
                        gpus=int(total.get("GPU", 0)),
                        resources={
                            k: v
                            for k, v in total.items()
                            if k not in ("CPU", "GPU", "memory", "object_store_memory")
                        },
                    )
                )
            return nodes

        return await self._call(list_nodes)
