"""Human-readable output of the CLI: compact tables and detail views, ASCII only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from cosmos_tui.containment import safe_outputs
from cosmos_tui.domain import Page, Prompt, Run
from cosmos_tui.safe_text import one_line

if TYPE_CHECKING:
    from cosmos_tui.engine.failures import Failure

STATE_SYMBOLS = {
    "queued": ".",
    "uploading": "^",
    "starting": ">",
    "running": "*",
    "downloading": "v",
    "completed": "+",
    "failed": "x",
    "cancelled": "-",
    "blocked": "!",
}


def short_time(value: datetime | None) -> str:
    """Format a time as local ``YYYY-MM-DD HH:MM``."""
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value else "-"


def clip(text: str | None, width: int) -> str:
    """Return ``text`` on one line (controls escaped), cut to ``width`` characters."""
    flat = one_line(" ".join((text or "").split()))
    return flat if len(flat) <= width else flat[: max(0, width - 3)] + "..."


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Render rows as left-aligned columns."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def prompts_table(page: Page[Prompt]) -> str:
    """Render a page of prompts."""
    rows = [
        [
            p.id,
            clip(p.name, 16) or "-",
            clip(p.text, 48),
            ",".join(i.role for i in p.inputs),
            str(p.run_count),
            p.latest_state.value if p.latest_state else "-",
            short_time(p.created_at),
        ]
        for p in page.items
    ]
    body = table(["ID", "NAME", "TEXT", "INPUTS", "RUNS", "LAST", "CREATED"], rows)
    return body + "\n" + footer(page, "prompts")


def runs_table(page: Page[Run]) -> str:
    """Render a page of runs."""
    rows = []
    for r in page.items:
        progress = f"{r.progress.percent:.0f}% {r.progress.phase}" if r.progress else ""
        rows.append(
            [
                r.id,
                f"{STATE_SYMBOLS[r.state.value]} {r.state.value}",
                r.type.value,
                r.prompt_id or "-",
                clip(progress, 24) or "-",
                f"{one_line(r.host)}:{','.join(map(str, r.gpus))}" if r.host else "-",
                str(r.rating) if r.rating else "-",
                short_time(r.created_at),
            ]
        )
    body = table(["ID", "STATE", "TYPE", "PROMPT", "PROGRESS", "HOST", "RATING", "CREATED"], rows)
    return body + "\n" + footer(page, "runs")


def footer(page: Page[object], noun: str) -> str:
    """Say which slice of how many matches was shown."""
    if page.total == 0:
        return f"no {noun}"
    first = page.offset + 1
    last = page.offset + len(page.items)
    more = f" (use --offset {last} for more)" if last < page.total else ""
    return f"{first}-{last} of {page.total} {noun}{more}"


def prompt_detail(prompt: Prompt) -> str:
    """Render a prompt in full."""
    lines = [
        f"prompt   {prompt.id}" + (f"  ({one_line(prompt.name)})" if prompt.name else ""),
        f"created  {short_time(prompt.created_at)}",
        f"runs     {prompt.run_count}"
        + (f" (latest {prompt.latest_state.value})" if prompt.latest_state else ""),
    ]
    if prompt.parent_id:
        lines.append(f"parent   {prompt.parent_id}")
    lines += ["", prompt.text, ""]
    if prompt.negative_prompt:
        lines += ["negative: " + prompt.negative_prompt, ""]
    lines.append("inputs:")
    for item in prompt.inputs:
        lines.append(
            f"  {item.role:<6} {one_line(item.path)}  {item.size} bytes  sha256 {item.sha256[:12]}"
        )
    return "\n".join(lines)


def run_detail(run: Run, failure: Failure | None = None) -> str:
    """Render a run in full: parameters, progress, failure, outputs and timeline.

    ``failure`` (from ``RunService.failure``) adds the log lines around the error.
    """
    p = run.params
    lines = [
        f"run      {run.id}  [{run.state.value}]  {run.type.value}/{run.profile}",
        f"prompt   {run.prompt_id or '-'}  {clip(run.prompt_text, 60)}",
        f"created  {short_time(run.created_at)}   attempt {run.attempt}",
    ]
    if run.host:
        lines.append(f"host     {one_line(run.host)}  gpus {','.join(map(str, run.gpus)) or '-'}")
    if run.duration_seconds is not None:
        lines.append(f"duration {run.duration_seconds:.0f}s")
    if run.progress:
        eta = f", eta {run.progress.eta_seconds:.0f}s" if run.progress.eta_seconds else ""
        lines.append(f"progress {run.progress.percent:.0f}% {run.progress.phase}{eta}")
    if run.rating:
        lines.append(f"rating   {run.rating}/5")
    if run.source_run_id:
        lines.append(f"source   {run.source_run_id}")
    if run.batch_id:
        lines.append(f"batch    {run.batch_id}")
    if run.result_prompt_id:
        lines.append(f"result   prompt {run.result_prompt_id}")
    if run.metrics and run.metrics.samples:
        m = run.metrics
        util = f"util {m.util_mean or 0:.0f}% mean, {m.util_peak or 0:.0f}% peak"
        lines.append(
            f"gpu      {util}; memory peak {m.memory_peak_mib or 0:.0f} MiB; "
            f"temp peak {m.temperature_peak_c or 0:.0f} C; {m.energy_wh:.2f} Wh; "
            f"{m.gpu_seconds / 3600:.3f} GPU-h"
        )
    lines.append(
        f"params   weights vis {p.vis_weight:g} edge {p.edge_weight:g} "
        f"depth {p.depth_weight:g} seg {p.seg_weight:g}; steps {p.num_steps} "
        f"guidance {p.guidance:g} seed {p.seed} sigma_max {p.sigma_max:g} fps {p.fps} "
        f"blur {p.blur_strength} canny {p.canny_threshold} gpus {p.num_gpus}"
    )
    if run.failure_kind:
        lines.append(f"failure  {run.failure_kind.value}: {one_line(run.failure_message or '')}")
        if failure is not None and failure.detail:
            rank = f" (rank {failure.rank})" if failure.rank is not None else ""
            lines.append(f"cause    {one_line(failure.detail)}{rank}")
        if failure is not None and failure.phase:
            lines.append(f"phase    {one_line(failure.phase)}")
        if failure is not None and failure.context:
            lines.append("error context (from the log):")
            lines += [f"  | {one_line(line)}" for line in failure.context]
    if run.exit_code is not None:
        lines.append(f"exit     {run.exit_code}")
    if run.outputs:
        lines.append("outputs:")
        lines += [f"  {one_line(o)}" for o in safe_outputs(run.outputs)]
    if run.log_path:
        lines.append(f"log      {one_line(run.log_path)}")
    if run.events:
        lines.append("timeline:")
        for e in run.events:
            lines.append(f"  {short_time(e.at)}  {e.to_state.value:<11} {one_line(e.reason)}")
    return "\n".join(lines)


def progress_line(run: Run) -> str:
    """One line for a waiting ``cosmos inference``: id, state, percent, phase, ETA."""
    text = f"{run.id}  {run.state.value}"
    if run.progress and not run.state.is_terminal:
        text += f"  {run.progress.percent:3.0f}%  {run.progress.phase}"
        if run.progress.eta_seconds:
            minutes, seconds = divmod(int(run.progress.eta_seconds), 60)
            text += f"  eta {minutes}:{seconds:02d}"
    elif run.state.is_terminal and run.failure_message:
        text += f": {one_line(run.failure_message)}"
    return text
