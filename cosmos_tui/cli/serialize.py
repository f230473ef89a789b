"""The stable JSON forms of prompts and runs (documented in docs/cli-json.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cosmos_tui.containment import safe_outputs
from cosmos_tui.domain import Prompt, Run

JSON_VERSION = 1


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def prompt_json(prompt: Prompt) -> dict[str, Any]:
    """Return the JSON form of a prompt."""
    return {
        "id": prompt.id,
        "name": prompt.name,
        "text": prompt.text,
        "negative_prompt": prompt.negative_prompt,
        "parent_id": prompt.parent_id,
        "video_dir": str(prompt.video_dir) if prompt.video_dir else None,
        "created_at": _time(prompt.created_at),
        "inputs": [
            {"role": i.role, "path": str(i.path), "sha256": i.sha256, "size": i.size}
            for i in prompt.inputs
        ],
        "run_count": prompt.run_count,
        "latest_state": prompt.latest_state.value if prompt.latest_state else None,
    }


def run_json(run: Run) -> dict[str, Any]:
    """Return the JSON form of a run."""
    return {
        "id": run.id,
        "prompt_id": run.prompt_id,
        "prompt_text": run.prompt_text,
        "type": run.type.value,
        "profile": run.profile,
        "state": run.state.value,
        "priority": run.priority,
        "params": run.params.to_dict(),
        "host": run.host,
        "target": run.target,
        "gpus": list(run.gpus),
        "devices": list(run.devices),
        "container_id": run.container_id,
        "batch_id": run.batch_id,
        "attempt": run.attempt,
        "exit_code": run.exit_code,
        "failure": (
            {"kind": run.failure_kind.value, "message": run.failure_message}
            if run.failure_kind
            else None
        ),
        "created_at": _time(run.created_at),
        "updated_at": _time(run.updated_at),
        "started_at": _time(run.started_at),
        "finished_at": _time(run.finished_at),
        "duration_seconds": run.duration_seconds,
        "log_path": str(run.log_path) if run.log_path else None,
        "outputs": safe_outputs(run.outputs),  # never a recorded path that could escape
        "rating": run.rating,
        "progress": (
            {
                "phase": run.progress.phase,
                "percent": run.progress.percent,
                "eta_seconds": run.progress.eta_seconds,
            }
            if run.progress
            else None
        ),
        "source_run_id": run.source_run_id,
        "result_prompt_id": run.result_prompt_id,
        "metrics": run.metrics.to_dict() if run.metrics else None,
        "spec": run.spec,
        "events": [
            {
                "at": _time(e.at),
                "from": e.from_state.value if e.from_state else None,
                "to": e.to_state.value,
                "reason": e.reason,
            }
            for e in run.events
        ],
    }
