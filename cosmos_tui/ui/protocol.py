"""What the UI needs from the service facade, as a typing.Protocol.

The records part (prompts, runs, ratings, deletion) is what ``Workbench`` offers today;
the live part (host states, GPU samples, run changes, log batches) and the run commands
(start, cancel, retry, upscale, enhance) come from the engine, remote and queue layers.
:class:`cosmos_tui.ui.facade.FacadeAdapter` maps the real facade onto this protocol, so
the screens depend on these names only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cosmos_tui.domain import (
    GenerationParams,
    GpuHostHealth,
    GpuProcess,
    GpuSample,
    HostStatus,
    LogBatch,
    OutputFile,
    Page,
    Prompt,
    Run,
)

if TYPE_CHECKING:
    from datetime import datetime

    from cosmos_tui.config import Config
    from cosmos_tui.engine.cluster_health import ClusterHealth
    from cosmos_tui.services import DeletePlan, SearchResult
    from cosmos_tui.services.hosts import HostAdmin
    from cosmos_tui.store.metrics_store import RunStats
    from cosmos_tui.store.repositories import PromptFilter, RunFilter


@dataclass(frozen=True)
class GpuProcesses:
    """Every compute process on one host's GPUs at one moment."""

    host: str
    processes: tuple[GpuProcess, ...]


class UIServices(Protocol):
    """Everything the screens call; each method is async or returns at once."""

    host_admin: HostAdmin
    """The Hosts screen's list, add, edit, remove and doctor (services/hosts.py)."""

    # records ------------------------------------------------------------------------

    async def list_prompts(
        self, where: PromptFilter, offset: int, limit: int, sort: str, descending: bool
    ) -> Page[Prompt]:
        """Return one page of prompts."""

    async def get_prompt(self, prompt_id: str) -> Prompt:
        """Return a prompt."""

    async def create_prompt(
        self, text: str, video_dir: Path, name: str | None, negative_prompt: str | None
    ) -> Prompt:
        """Record a new prompt from text and a video folder."""

    async def find_inputs(self, video_dir: Path) -> dict[str, Path]:
        """Return the input videos in a folder by role (raises ValidationError)."""

    async def list_runs(
        self, where: RunFilter, offset: int, limit: int, sort: str, descending: bool
    ) -> Page[Run]:
        """Return one page of runs."""

    async def get_run(self, run_id: str) -> Run:
        """Return a run with its timeline."""

    def run_params(self, prompt: Prompt | None, overrides: dict[str, Any]) -> GenerationParams:
        """Merge defaults and overrides and validate them (raises ValidationError)."""

    async def create_run(self, prompt_id: str, overrides: dict[str, Any], priority: int) -> Run:
        """Record a queued run."""

    async def rate(self, run_id: str, rating: int | None) -> Run:
        """Rate a run 1-5, or clear its rating."""

    async def search(self, text: str, limit: int) -> SearchResult:
        """Find prompts and runs by text."""

    async def plan_delete(self, object_id: str) -> DeletePlan:
        """Say what deleting a prompt or run would remove."""

    async def delete(self, plan: DeletePlan) -> None:
        """Carry out a delete plan."""

    async def output_files(self, run_id: str) -> tuple[OutputFile, ...]:
        """Return the run's local output files with sizes."""

    async def log_context(self, run_id: str, around: int) -> tuple[str, ...]:
        """Return the log lines around the run's first error (from the local log file)."""

    async def stats(self, since: datetime) -> RunStats:
        """Return the figures of ``cosmos stats`` since ``since``."""

    async def runs_per_day(self, since: datetime) -> dict[str, int]:
        """Return runs created per UTC day (``YYYY-MM-DD``) since ``since``."""

    def output_path(self, run: Run) -> Path | None:
        """Return the local path of the run's main output video, if it has one."""

    # live ---------------------------------------------------------------------------

    def host_names(self) -> tuple[str, ...]:
        """Return the configured hosts, in config order."""

    def cluster_names(self) -> tuple[str, ...]:
        """Return the configured Ray clusters, in config order."""

    def watch_clusters(self) -> AsyncIterator[ClusterHealth]:
        """Yield each cluster's health now and every few seconds."""

    def watch_hosts(self) -> AsyncIterator[HostStatus]:
        """Yield host connection states as they change (the current ones first)."""

    def watch_gpus(self) -> AsyncIterator[GpuSample]:
        """Yield GPU samples of every host as they arrive."""

    def watch_gpu_hosts(self) -> AsyncIterator[GpuHostHealth]:
        """Yield each host's GPU telemetry state (ok, or why no figures come) and changes."""
        ...

    def watch_gpu_processes(self) -> AsyncIterator[GpuProcesses]:
        """Yield the compute processes of each host as they change."""

    def watch_runs(self, shown: Sequence[Run] | None = None) -> AsyncIterator[Run]:
        """Yield a run each time its state, progress or outputs change.

        Args:
            shown: The queued and active runs the caller shows, as it read them. Changes
                since then come first (however long ago that was); None: only changes
                from now on.
        """

    def follow_log(self, run_id: str, tail: int | None) -> AsyncIterator[LogBatch]:
        """Yield a run's last ``tail`` log lines in batches, then follow it live."""

    def keep_runs_moving(self) -> AsyncIterator[str]:
        """Pick up runs left by earlier sessions and keep them moving; yield news lines."""

    async def start_run(self, run_id: str, host: str | None) -> Run:
        """Queue a recorded run for launch (on ``host`` or wherever it fits)."""

    async def cancel_run(self, run_id: str) -> Run:
        """Stop a queued or active run."""

    async def retry_run(self, run_id: str) -> Run:
        """Queue a failed, blocked or cancelled run again."""

    async def upscale_run(self, run_id: str) -> Run:
        """Queue a 4K upscale of a completed run's output."""

    async def enhance_prompt(self, prompt_id: str, profile: str = "transfer1") -> Run:
        """Queue a prompt-enhancement run of a prompt (``cosmos3``: its reasoner)."""


ServicesFactory = Callable[[], AbstractAsyncContextManager[UIServices]]


class AppContext(Protocol):
    """What a pane reads from the application: the settings and the injected clock.

    Panes see the app through this (not ``CosmosApp``), so widgets import nothing above
    them (the import-linter contract "UI: widgets do not import screens").
    """

    config: Config
    clock: Callable[[], datetime]
