"""Adapts the real service facade (``Workbench``) to :class:`UIServices`.

This is the one place that knows the facade's method names; it calls them directly (the
Workbench offers every one). Runs are watched by polling the database, which also shows
changes made by a CLI in another terminal.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cosmos_tui.domain import (
    GenerationParams,
    GpuHostHealth,
    GpuSample,
    HostStatus,
    LogBatch,
    OutputFile,
    Page,
    Prompt,
    Run,
)
from cosmos_tui.engine.cluster_health import ClusterHealth
from cosmos_tui.engine.inputs import find_videos
from cosmos_tui.engine.reconcile import ReconcileReport
from cosmos_tui.services import DeletePlan, SearchResult, Workbench, run_views
from cosmos_tui.services.clusters import watch_clusters
from cosmos_tui.store.metrics_store import RunStats
from cosmos_tui.store.repositories import PromptFilter, RunFilter
from cosmos_tui.ui.protocol import GpuProcesses

if TYPE_CHECKING:
    from cosmos_tui.services.hosts import HostAdmin

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
LOG_POLL_SECONDS = 0.05
"""How often the Logs pane's follow looks at a run log written by another process (it
was the services' 0.2 s: 200 ms p50 from the container to the pane, docs/remote.md)."""


class FacadeAdapter:
    """Presents a ``Workbench`` as :class:`UIServices`.

    Args:
        bench: The open facade.
        poll_seconds: How often the database is polled for run changes.

    """

    def __init__(self, bench: Workbench, poll_seconds: float = POLL_SECONDS) -> None:
        self.bench = bench
        self.poll_seconds = poll_seconds
        self._host_admin: HostAdmin | None = None

    @property
    def host_admin(self) -> HostAdmin:
        """The Hosts screen's list, add, edit, remove and doctor (services/hosts.py)."""
        if self._host_admin is None:
            # lazy: services.hosts brings tomlkit (~15 ms), off the opening the panes wait for;
            # the start-up doctor (2 s later) or the Hosts screen is its first user
            from cosmos_tui.services.hosts import HostAdmin

            self._host_admin = HostAdmin(self.bench.config)
        return self._host_admin

    @host_admin.setter
    def host_admin(self, admin: HostAdmin) -> None:
        """Use ``admin`` instead (a test's probe that checks nothing, for one)."""
        self._host_admin = admin

    # records ------------------------------------------------------------------------

    async def list_prompts(
        self, where: PromptFilter, offset: int, limit: int, sort: str, descending: bool
    ) -> Page[Prompt]:
        """Return one page of prompts."""
        return await self.bench.list_prompts(where, offset, limit, sort=sort, descending=descending)

    async def get_prompt(self, prompt_id: str) -> Prompt:
        """Return a prompt."""
        return await self.bench.get_prompt(prompt_id)

    async def create_prompt(
        self, text: str, video_dir: Path, name: str | None, negative_prompt: str | None
    ) -> Prompt:
        """Record a new prompt."""
        return await self.bench.create_prompt(text, video_dir, name, negative_prompt)

    async def find_inputs(self, video_dir: Path) -> dict[str, Path]:
        """Return the input videos of a folder by role."""
        return await asyncio.to_thread(find_videos, video_dir)

    async def list_runs(
        self, where: RunFilter, offset: int, limit: int, sort: str, descending: bool
    ) -> Page[Run]:
        """Return one page of runs."""
        return await self.bench.list_runs(where, offset, limit, sort=sort, descending=descending)

    async def get_run(self, run_id: str) -> Run:
        """Return a run with its timeline."""
        return await self.bench.get_run(run_id)

    def run_params(self, prompt: Prompt | None, overrides: dict[str, Any]) -> GenerationParams:
        """Merge and validate run parameters."""
        return self.bench.run_params(prompt, overrides)

    async def create_run(self, prompt_id: str, overrides: dict[str, Any], priority: int) -> Run:
        """Record a queued run."""
        return await self.bench.create_run(prompt_id, overrides, priority=priority)

    async def rate(self, run_id: str, rating: int | None) -> Run:
        """Rate a run."""
        return await self.bench.rate(run_id, rating)

    async def search(self, text: str, limit: int) -> SearchResult:
        """Find prompts and runs by text."""
        return await self.bench.search(text, limit)

    async def plan_delete(self, object_id: str) -> DeletePlan:
        """Say what a delete would remove."""
        return await self.bench.plan_delete(object_id)

    async def delete(self, plan: DeletePlan) -> None:
        """Carry out a delete plan."""
        await self.bench.delete(plan)

    async def stats(self, since: datetime) -> RunStats:
        """Figures of ``cosmos stats``."""
        return await self.bench.queue.stats(since)

    async def runs_per_day(self, since: datetime) -> dict[str, int]:
        """Runs created per UTC day."""
        return await self.bench.queue.runs_per_day(since)

    def output_path(self, run: Run) -> Path | None:
        """Return the local path of a run's main output video."""
        return run_views.output_path(self.bench.output_dir(run.id), run)

    async def output_files(self, run_id: str) -> tuple[OutputFile, ...]:
        """Return the files in the run's local output folder with their sizes."""
        return await run_views.output_files(self.bench.output_dir(run_id))

    async def log_context(self, run_id: str, around: int) -> tuple[str, ...]:
        """Return the lines around the first error: the engine's classification, or a scan."""
        return await run_views.log_context(self.bench, run_id, around)

    # live ---------------------------------------------------------------------------

    def host_names(self) -> tuple[str, ...]:
        """Return the configured hosts."""
        return tuple(host.name for host in self.bench.config.hosts)

    def cluster_names(self) -> tuple[str, ...]:
        """Return the configured Ray clusters."""
        return tuple(cluster.name for cluster in self.bench.config.clusters)

    async def watch_clusters(self) -> AsyncIterator[ClusterHealth]:
        """Yield each cluster's health every few seconds (``services.clusters``)."""
        async for health in watch_clusters(self.bench):
            yield health

    async def watch_hosts(self) -> AsyncIterator[HostStatus]:
        """Yield host states from the facade."""
        async for status in self.bench.live.watch_hosts():
            yield status

    async def watch_gpus(self) -> AsyncIterator[GpuSample]:
        """Yield GPU samples from the facade."""
        async for sample in self.bench.live.watch_gpus():
            yield sample

    async def watch_gpu_hosts(self) -> AsyncIterator[GpuHostHealth]:
        """Yield hosts' GPU telemetry states (why there are no figures) from the facade."""
        async for health in self.bench.live.watch_gpu_hosts():
            yield health

    async def watch_gpu_processes(self) -> AsyncIterator[GpuProcesses]:
        """Yield per-host GPU process lists from the facade."""
        async for host, processes in self.bench.live.watch_gpu_processes():
            yield GpuProcesses(host, tuple(processes))

    async def watch_runs(self, shown: Sequence[Run] | None = None) -> AsyncIterator[Run]:
        """Yield changed runs, by polling the store (``services.run_views.watch_runs``)."""
        async for run in run_views.watch_runs(self.bench, shown, self.poll_seconds):
            yield run

    async def follow_log(self, run_id: str, tail: int | None) -> AsyncIterator[LogBatch]:
        """Yield the run's last ``tail`` lines, then follow (the facade's local log).

        The run's driver is usually another process (``cosmos worker``, the queue): the
        log file is looked at every LOG_POLL_SECONDS, a cheap local read, so that a
        line reaches the pane about as soon as the driver wrote it (bench/_wan_run.py).
        """
        async for batch in self.bench.runs.follow_log(
            run_id, tail=tail, poll_seconds=LOG_POLL_SECONDS
        ):
            yield batch

    async def keep_runs_moving(self) -> AsyncIterator[str]:
        """Reattach runs left by an earlier session and keep them moving; yield news.

        Uses the facade's periodic reconcile; yields one line per report that found
        something worth saying (runs picked up, orphans).
        """
        if self.bench.config.clusters:
            # Cluster runs are the queue driver's: it follows those an earlier session
            # left (reconcile leaves them alone) and starts queued ones.
            self.bench.runs.drive_queue_here()
        async for report in self.bench.runs.keep_moving():
            text = _describe_report(report)
            if text:
                yield text

    async def start_run(self, run_id: str, host: str | None) -> Run:
        """Queue a recorded run for launch (a cluster's: driven by the queue here)."""
        before = await self.bench.get_run(run_id)
        run = await self.bench.runs.start(run_id, host=host)
        if self.bench.runs.goes_to_queue(host, before.host):
            self.bench.runs.drive_queue_here()
        return run

    async def cancel_run(self, run_id: str) -> Run:
        """Stop a run."""
        return await self.bench.runs.cancel(run_id)

    async def retry_run(self, run_id: str) -> Run:
        """Queue a run again."""
        return await self.start_run(run_id, None)

    async def upscale_run(self, run_id: str) -> Run:
        """Queue a 4K upscale of a completed run's video and start it."""
        run = await self.bench.extras.create_upscale(run_id)
        return await self.start_run(run.id, None)

    async def enhance_prompt(self, prompt_id: str, profile: str = "transfer1") -> Run:
        """Queue a prompt enhancement (the result becomes a child prompt) and start it.

        ``profile``: ``transfer1`` (its Pixtral upsampler) or ``cosmos3`` (its reasoner,
        with the ``[profiles.cosmos3]`` settings and Nano).
        """
        runs = await self.bench.extras.create_enhance([prompt_id], profile=profile)
        # Enhancements run through the queue (Transfer1's prompts share one upsampler
        # container).
        self.bench.runs.drive_queue_here()
        return runs[0]


def _describe_report(report: ReconcileReport) -> str:
    """Summarise a reconcile report in one line, or return "" when it found nothing."""
    parts = []
    for items, label in (
        (report.dispatched, "run(s) picked up"),
        (report.failed, "run(s) failed: container gone"),
        (report.orphans, "orphan container(s) found"),
    ):
        if items:
            parts.append(f"{len(items)} {label}")
    return ", ".join(parts)
