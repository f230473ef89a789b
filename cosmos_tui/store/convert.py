"""Conversions between table rows and domain values; nothing ORM leaves the store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cosmos_tui.domain import (
    FailureKind,
    GenerationParams,
    InputFile,
    Progress,
    Prompt,
    Run,
    RunEvent,
    RunMetrics,
    RunState,
    RunType,
)

if TYPE_CHECKING:  # the converters read attributes only: store.glance passes plain rows
    from cosmos_tui.store.tables import PromptInputRow, PromptRow, RunEventRow, RunRow


def prompt_from_row(
    row: PromptRow,
    inputs: Sequence[PromptInputRow] = (),
    run_count: int = 0,
    latest_state: str | None = None,
) -> Prompt:
    """Return the domain prompt of a row and its input rows."""
    return Prompt(
        id=row.id,
        text=row.text,
        name=row.name,
        negative_prompt=row.negative_prompt,
        created_at=row.created_at,
        inputs=tuple(
            InputFile(role=i.role, path=Path(i.path), sha256=i.sha256, size=i.size)
            for i in sorted(inputs, key=lambda i: (i.role != "color", i.role))
        ),
        parent_id=row.parent_id,
        video_dir=Path(row.video_dir) if row.video_dir else None,
        run_count=run_count,
        latest_state=RunState(latest_state) if latest_state else None,
    )


def run_from_row(
    row: RunRow, events: Sequence[RunEventRow] = (), prompt_text: str | None = None
) -> Run:
    """Return the domain run of a row and its timeline rows."""
    progress = None
    if row.progress_phase is not None:
        progress = Progress(
            phase=row.progress_phase,
            percent=row.progress_percent or 0.0,
            eta_seconds=row.eta_seconds,
        )
    return Run(
        id=row.id,
        prompt_id=row.prompt_id,
        type=RunType(row.type),
        profile=row.profile,
        state=RunState(row.state),
        params=GenerationParams.from_dict(json.loads(row.params)),
        created_at=row.created_at,
        updated_at=row.updated_at,
        priority=row.priority,
        host=row.host,
        gpus=tuple(int(g) for g in row.gpus.split(",")) if row.gpus else (),
        container_id=row.container_id,
        batch_id=row.batch_id,
        attempt=row.attempt,
        exit_code=row.exit_code,
        failure_kind=FailureKind(row.failure_kind) if row.failure_kind else None,
        failure_message=row.failure_message,
        started_at=row.started_at,
        finished_at=row.finished_at,
        log_path=Path(row.log_path) if row.log_path else None,
        outputs=tuple(json.loads(row.outputs)) if row.outputs else (),
        rating=row.rating,
        progress=progress,
        source_run_id=row.source_run_id,
        spec=json.loads(row.spec) if row.spec else None,
        prompt_text=prompt_text,
        metrics=RunMetrics.from_dict(json.loads(row.metrics)) if row.metrics else None,
        result_prompt_id=row.result_prompt_id,
        target=row.target,
        devices=tuple(int(g) for g in row.devices.split(",")) if row.devices else (),
        events=tuple(
            RunEvent(
                at=e.at,
                from_state=RunState(e.from_state) if e.from_state else None,
                to_state=RunState(e.to_state),
                reason=e.reason,
            )
            for e in events
        ),
    )


def fts_query(text: str) -> str:
    """Quote user text as one FTS5 trigram phrase."""
    return '"' + text.replace('"', '""') + '"'
