"""The async facade that the CLI and the TUI both use.

It owns the store (and, as they land, the host connections and the run engine) through
one AsyncExitStack, and exposes operations in domain terms only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import shutil
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cosmos_tui.config import Config
from cosmos_tui.domain import RUN_FILES, GenerationParams, Page, Prompt, Run, RunState, RunType
from cosmos_tui.engine.input_checks import InputReport, check_videos
from cosmos_tui.engine.inputs import find_videos, in_thread, scan_inputs, sha256_of
from cosmos_tui.engine.profiles.base import profile_for
from cosmos_tui.errors import ValidationError
from cosmos_tui.ids import IdSource
from cosmos_tui.params import (
    validate_priority,
    validate_prompt_text,
)
from cosmos_tui.remote.pool import HostPool, RemoteHostFactory
from cosmos_tui.services.closing import bounded_close
from cosmos_tui.services.live import LiveService
from cosmos_tui.services.runs import RunOptions, RunService
from cosmos_tui.store.repositories import Clock, PromptFilter, RunFilter, Store, utc_now

if TYPE_CHECKING:
    from cosmos_tui.engine.verify import VerifyReport
    from cosmos_tui.services.extra import ExtrasService
    from cosmos_tui.services.queue import QueueService


@dataclass(frozen=True)
class DeletePlan:
    """What ``delete`` would remove; shown to the user before confirming.

    Attributes:
        kind: ``prompt`` or ``run``.
        id: The object to delete.
        run_ids: Runs that go with it.
        output_dirs: Local output folders that exist and would be removed.

    """

    kind: str
    id: str
    run_ids: tuple[str, ...]
    output_dirs: tuple[Path, ...]


@dataclass(frozen=True)
class SearchResult:
    """Prompts and runs whose text matches a search."""

    prompts: Page[Prompt]
    runs: Page[Run]


class Workbench:
    """Every operation of cosmos-tui, over injected services.

    Records (prompts, runs, ratings, search, deletion) are its own methods; the rest is
    in its parts, each a plain class built here with what it uses: ``runs`` (start,
    drive, cancel, logs, reconcile), ``live`` (host and GPU streams), ``queue`` and
    ``extras``.

    Args:
        config: The validated configuration.
        store: The open store.
        hosts: The host pool (one made from ``config`` by default).
        run_options: The run engine's clock, sleep and step observer (tests).

    """

    def __init__(
        self,
        config: Config,
        store: Store,
        hosts: HostPool | None = None,
        run_options: RunOptions | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.hosts = hosts if hosts is not None else HostPool(config)
        self.runs = RunService(
            config, store, self.hosts, self.resolve, self._drive_queue_until_idle, run_options
        )
        self.live = LiveService(config, self.hosts)

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        config: Config,
        ids: IdSource | None = None,
        clock: Clock = utc_now,
        remote_factory: RemoteHostFactory | None = None,
        run_options: RunOptions | None = None,
    ) -> AsyncIterator[Workbench]:
        """Open every service the facade needs and close them all on exit.

        Hosts are not connected here: ``bench.hosts.get(name)`` makes a host on first use
        and it connects when first used; ``remote_factory`` replaces how hosts are made.
        """
        async with AsyncExitStack() as stack:
            store = await stack.enter_async_context(Store.open(config.db_path, ids, clock))
            hosts = HostPool(config, remote_factory)
            stack.push_async_callback(lambda: bounded_close(hosts.aclose(), "the hosts"))
            bench = cls(config, store, hosts, run_options)
            stack.push_async_callback(bench.runs.close)  # its own stops are bounded
            yield bench

    # ids ---------------------------------------------------------------------------

    async def resolve(self, text_id: str, kind: str | None = None) -> str:
        """Return the full id of a typed id or unique prefix."""
        return await self.store.resolve_id(text_id, kind)

    # prompts -------------------------------------------------------------------------

    async def create_prompt(
        self,
        text: str,
        video_dir: Path | None,
        name: str | None = None,
        negative_prompt: str | None = None,
        allow_mismatch: bool = False,
    ) -> Prompt:
        """Check the text and videos, fingerprint the videos and record a new prompt.

        Controls whose frame count or resolution differ from color.mp4 are refused unless
        ``allow_mismatch`` (the model then resamples them).

        Raises:
            ValidationError: Empty or too long text, a missing folder or color.mp4, an
                unreadable or non-MP4 video, a mismatched control. Nothing is recorded then.

        """
        cleaned = validate_prompt_text(text)
        name = (name or "").strip() or None
        if name is not None and len(name) > 200:
            raise ValidationError("the name is longer than 200 characters", field="name")
        if negative_prompt is not None:
            negative_prompt = validate_prompt_text(negative_prompt, "negative prompt") or None
        if video_dir is None:  # a text-only prompt (Cosmos 3's text2video, text2image)
            return await self.store.add_prompt(
                cleaned, [], name=name, negative_prompt=negative_prompt
            )
        folder = video_dir
        inputs = await in_thread(lambda cancelled: scan_inputs(folder, allow_mismatch, cancelled))
        return await self.store.add_prompt(
            cleaned,
            inputs,
            name=name,
            negative_prompt=negative_prompt,
            video_dir=folder.expanduser().resolve(),
        )

    async def get_prompt(self, prompt_id: str) -> Prompt:
        """Return a prompt by id or unique prefix."""
        return await self.store.get_prompt(await self.resolve(prompt_id, "prompt"))

    async def list_prompts(
        self, where: PromptFilter | None = None, offset: int = 0, limit: int = 50, **sort: Any
    ) -> Page[Prompt]:
        """Return one page of prompts."""
        return await self.store.list_prompts(where or PromptFilter(), offset, limit, **sort)

    async def inspect_inputs(self, video_dir: Path) -> InputReport:
        """Probe a folder's videos (frames, fps, resolution, codec) and compare them.

        Raises:
            ValidationError: A missing folder or color.mp4, or a file that is not a video.
        """
        return await asyncio.to_thread(lambda: check_videos(find_videos(video_dir)))

    # runs ----------------------------------------------------------------------------

    def run_params(self, prompt: Prompt | None, overrides: dict[str, Any]) -> GenerationParams:
        """Merge config defaults, the prompt's negative prompt and ``overrides``; validate.

        Raises:
            ValidationError: When a value is unknown or out of range.

        """
        overrides = dict(overrides)
        family = profile_for(overrides.pop("profile", None) or "transfer1")
        unknown = set(overrides) - set(GenerationParams.__dataclass_fields__)
        if unknown:
            raise ValidationError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        base = self.config.defaults
        if prompt is not None and prompt.negative_prompt:
            base = dataclasses.replace(base, negative_prompt=prompt.negative_prompt)
        params = dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})
        return family.check(params, prompt)

    async def new_run_params(
        self, prompt: Prompt | None, overrides: dict[str, Any]
    ) -> GenerationParams:
        """Return :meth:`run_params` with the content of the local files they name recorded.

        A family option may name a file of this machine (Transfer2.5's control video or
        mask): its sha256 and size go with the run (``GenerationParams.run_files``), so
        the upload sends exactly that content and a file edited since fails the run.

        Raises:
            ValidationError: When a value is unknown or out of range, or a named file
                cannot be read.

        """
        params = self.run_params(prompt, overrides)
        family = profile_for(overrides.get("profile") or "transfer1")
        paths = family.local_files(params)
        if not paths:  # (a family's check keeps no records it was given)
            return params
        files = []
        for path in dict.fromkeys(paths):  # one record per file, in order
            try:
                digest, size = await in_thread(functools.partial(sha256_of, path))
            except OSError as exc:
                raise ValidationError(
                    f"cannot read {path}: {exc.strerror or exc}; check the file", field="hints"
                ) from exc
            files.append({"path": str(path), "sha256": digest, "size": size})
        return dataclasses.replace(params, options={**params.options, RUN_FILES: files})

    async def create_run(
        self,
        prompt_id: str,
        overrides: dict[str, Any] | None = None,
        priority: int = 0,
        target: str | None = None,
    ) -> Run:
        """Record a queued transfer run of a prompt with validated parameters.

        ``target`` pins it to a configured host or cluster: the queue places it there only.
        """
        if target is not None:
            self.runs.require_host(target)
        prompt = await self.get_prompt(prompt_id)
        params = await self.new_run_params(prompt, overrides or {})
        validate_priority(priority)
        profile = (overrides or {}).get("profile") or "transfer1"
        if params.options.get("mode") == "reasoner":
            raise ValidationError(
                "mode 'reasoner' writes text, not video: run it as a prompt enhancement "
                "('cosmos enhance PROMPT --profile cosmos3')",
                field="mode",
            )
        return await self.store.add_run(
            prompt.id, params, RunType.TRANSFER, profile=profile, priority=priority, target=target
        )

    async def get_run(self, run_id: str) -> Run:
        """Return a run (with its timeline) by id or unique prefix."""
        return await self.store.get_run(await self.resolve(run_id, "run"))

    async def list_runs(
        self, where: RunFilter | None = None, offset: int = 0, limit: int = 50, **sort: Any
    ) -> Page[Run]:
        """Return one page of runs."""
        return await self.store.list_runs(where or RunFilter(), offset, limit, **sort)

    async def rate(self, run_id: str, rating: int | None) -> Run:
        """Rate a run 1-5 (None clears)."""
        return await self.store.rate(await self.resolve(run_id, "run"), rating)

    async def search(self, text: str, limit: int = 20) -> SearchResult:
        """Find prompts and runs whose prompt name or text contains ``text``."""
        if not text.strip():
            raise ValidationError("search text is empty", field="text")
        prompts = await self.store.list_prompts(PromptFilter(text=text.strip()), 0, limit)
        runs = await self.store.list_runs(RunFilter(text=text.strip()), 0, limit)
        return SearchResult(prompts=prompts, runs=runs)

    # deletion --------------------------------------------------------------------------

    def output_dir(self, run_id: str) -> Path:
        """Return the local folder of a run's outputs and log."""
        return self.config.outputs_dir / run_id

    async def plan_delete(self, text_id: str) -> DeletePlan:
        """Work out what deleting a prompt or run would remove, without removing it.

        Raises:
            ValidationError: When a run involved is still active.

        """
        full_id = await self.resolve(text_id)
        if full_id.startswith("ps_"):
            run_ids = tuple(await self.store.run_ids_of_prompt(full_id))
            kind = "prompt"
        else:
            await self.store.get_run(full_id, with_events=False)
            run_ids = (full_id,)
            kind = "run"
        active = []
        for run_id in run_ids:
            run = await self.store.get_run(run_id, with_events=False)
            if run.state.is_active:
                active.append(run_id)
        if active:
            raise ValidationError(
                f"run(s) {', '.join(active)} are still active; cancel them first "
                "('cosmos cancel ID')",
                field="id",
            )
        dirs = tuple(d for d in (self.output_dir(r) for r in run_ids) if d.exists())
        return DeletePlan(kind=kind, id=full_id, run_ids=run_ids, output_dirs=dirs)

    async def delete(self, plan: DeletePlan, keep_outputs: bool = False) -> tuple[Path, ...]:
        """Carry out a plan from :meth:`plan_delete`: rows first, then output folders.

        Runs added to a prompt after the plan was made go with it too, and so do their
        folders.

        Returns:
            Output folders that could not be removed (empty when all went).
        """
        run_ids: tuple[str, ...] = plan.run_ids
        if plan.kind == "prompt":
            run_ids = tuple(await self.store.run_ids_of_prompt(plan.id))
            await self.store.delete_prompt(plan.id)
        else:
            await self.store.delete_run(plan.id)
        if keep_outputs:
            return ()
        left: list[Path] = []
        for folder in (self.output_dir(r) for r in run_ids):
            if folder.exists():
                try:
                    await asyncio.to_thread(shutil.rmtree, folder)
                except OSError:
                    left.append(folder)
        return tuple(left)

    async def active_runs(self) -> list[Run]:
        """Return every run that may hold remote resources."""
        states = frozenset(s for s in RunState if s.is_active)
        page = await self.store.list_runs(RunFilter(states=states), 0, 10_000)
        return list(page.items)

    # queue, other run types, integrity (cosmos_tui/services/queue.py and extra.py) --------

    @property
    def queue(self) -> QueueService:
        """Queue operations: plan, pause/resume, reorder, cancel, drive, stats, alerts."""
        # lazy: the queue service and scheduler (~15 ms) load only for queue work
        from cosmos_tui.services.queue import QueueService

        return QueueService(self)

    @property
    def extras(self) -> ExtrasService:
        """Other run types: 4K upscale and prompt enhancement."""
        # lazy: upscale and enhancement (~4 ms) load on first use, as the queue does
        from cosmos_tui.services.extra import ExtrasService

        return ExtrasService(self)

    async def _drive_queue_until_idle(self) -> None:
        await self.queue.drive(until_idle=True)

    async def verify(self, fix: bool = False, check_hosts: bool = True) -> VerifyReport:
        """Check outputs, inputs, output folders and containers; ``fix`` repairs safely."""
        # lazy: the integrity checks (~13 ms with the batch collector) only for verify
        from cosmos_tui.engine.verify import verify

        return await verify(self, fix=fix, check_hosts=check_hosts)
