"""``--dry-run``: the containers a launch would start, built and shown, nothing sent or saved.

New runs of prompts are validated exactly as ``cosmos create run`` validates them but are
not recorded; their ids are placeholders (``rs_000000000001``, ...) because a real id is
only made when the run is saved. See :mod:`cosmos_tui.engine.dry_run`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cosmos_tui.domain import Prompt, Run, RunState, RunType
from cosmos_tui.engine.dry_run import ContainerPreview, preview_batch, preview_run
from cosmos_tui.errors import BatchError, CosmosError, ValidationError

if TYPE_CHECKING:
    from cosmos_tui.services.workbench import Workbench

PLACEHOLDER_BATCH = "bs_000000000000"


def placeholder_run_id(number: int) -> str:
    """Return the stand-in id of the ``number``-th new run of a dry run."""
    return f"rs_{number:012x}"


async def dry_run(
    bench: Workbench,
    ids: Sequence[str],
    overrides: Mapping[str, Any] | None = None,
    host: str | None = None,
    batch: bool = False,
    priority: int = 0,
) -> list[ContainerPreview]:
    """Return what launching ``ids`` would send: one container per run, or one batch.

    Args:
        bench: The open workbench (its store is only read).
        ids: Prompt ids (new runs with ``overrides``) or run ids (run again).
        overrides: Parameter overrides of new runs.
        host: The configured host to show (default: the run's, else the first).
        batch: Show the runs as the one batch container the queue would start.
        priority: Priority of new runs (shown nowhere in a container; validated).

    Raises:
        ValidationError: Bad ids or parameters, overrides given for existing runs, runs
            that cannot share a batch, an enhance run.
        CosmosError: No hosts are configured.
    """
    if not bench.config.hosts:
        raise CosmosError("no hosts are configured; add one with 'cosmos host add'")
    members: list[tuple[Run, Prompt | None]] = []
    prompt: Prompt | None  # a run again may have no prompt
    for text_id in ids:
        full_id = await bench.resolve(text_id)
        if full_id.startswith("ps_"):
            prompt = await bench.get_prompt(full_id)
            params = await bench.new_run_params(prompt, dict(overrides or {}))
            now = datetime.now(UTC)
            run = Run(
                id=placeholder_run_id(len(members) + 1), prompt_id=prompt.id,
                type=RunType.TRANSFER, profile=(overrides or {}).get("profile") or "transfer1",
                state=RunState.QUEUED,
                params=params, created_at=now, updated_at=now, priority=priority,
                prompt_text=prompt.text,
            )  # fmt: skip
        else:
            if overrides:
                raise ValidationError(
                    "parameter flags apply to new runs; give a prompt id to use them", "id"
                )
            run = await bench.get_run(full_id)
            if run.type == RunType.ENHANCE:
                raise ValidationError(
                    f"{run.id} is a prompt enhancement; a dry run shows transfer and upscale "
                    "containers only",
                    field="id",
                )
            prompt = await bench.get_prompt(run.prompt_id) if run.prompt_id else None
        members.append((run, prompt))
    host_name = host or members[0][0].host or bench.config.hosts[0].name
    host_config = bench.config.host(host_name)
    if batch:
        complete = [(run, prompt) for run, prompt in members if prompt is not None]
        if len(complete) < 2 or len(complete) != len(members):
            raise ValidationError("--batch needs two or more transfer runs or prompts", "id")
        try:
            return [preview_batch(PLACEHOLDER_BATCH, complete, host_config, bench.config)]
        except BatchError as exc:
            raise ValidationError(exc.message, field="id") from exc
    return [preview_run(run, prompt, host_config, bench.config) for run, prompt in members]
