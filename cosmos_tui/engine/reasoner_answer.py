"""Keeping a Cosmos 3 reasoner's answer: the enhancement's child prompt, or its new text.

One function for a reasoner run however it ran: alone (engine/lifecycle.py) or as a
member of a reasoner batch (engine/batch_c3.py), once its outputs are downloaded.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from cosmos_tui.containment import output_file
from cosmos_tui.domain import FailureKind, Run, RunState
from cosmos_tui.engine.enhance_launch import record_enhanced
from cosmos_tui.engine.failures import Failure, caveat_of, classify
from cosmos_tui.engine.logs import read_log_lines
from cosmos_tui.engine.profiles.cosmos3 import REASONER_TEXT, options_of, sent_text

if TYPE_CHECKING:
    from cosmos_tui.engine.context import EngineContext


async def keep_answer(ctx: EngineContext, run: Run, outputs: list[str], log_path: Path) -> Run:
    """Keep a reasoner's answer as the run's result prompt (a child, or in place).

    No ``reasoner_text.txt`` is a failure the log explains (a guardrail with
    ``--keep-going``, an unsupported GPU). An empty answer, or the prompt it was sent
    (upstream falls back to it when the model generates nothing,
    omni_mot_model.py:5311-5314), fails the run: there is nothing new to keep. Safe to
    enter again (a driver that died here): the child made by an earlier attempt with the
    same text is reused, and a run that ended meanwhile is left alone.

    Args:
        ctx: The engine's services (store, run folders).
        run: The reasoner run, its outputs downloaded into its run folder.
        outputs: The names of those outputs (the log's name is added on success).
        log_path: The run's local log (read for the cause when there is no answer).

    Returns:
        The run as it ended.

    A run no longer downloading (cancelled meanwhile) is returned as it is: nothing is
    recorded for it.

    Raises:
        InvalidTransition: The run changed meanwhile (cancelled).
    """
    current = await ctx.store.get_run(run.id, with_events=False)
    if current.state != RunState.DOWNLOADING:
        return current  # cancelled (and maybe queued again) while its outputs came back
    name = next((n for n in outputs if n.rsplit("/", 1)[-1] == REASONER_TEXT), None)
    if name is None:
        lines = await asyncio.to_thread(read_log_lines, log_path)
        return await _fail(ctx, run, classify(0, lines, profile=run.profile))
    path = output_file(ctx.run_dir(run.id), name)
    text = ""
    if path is not None:
        raw = await asyncio.to_thread(path.read_text, encoding="utf-8", errors="replace")
        text = raw.strip()
    sent = sent_text(run.spec or {})
    if not text or text in ((run.spec or {}).get("prompt", "").strip(), sent):
        return await _fail(
            ctx,
            run,
            Failure(
                FailureKind.UNKNOWN,
                "the reasoner returned no new text (an empty answer, or the prompt it "
                f"was sent); see {log_path}",
            ),
        )
    outputs.append(log_path.name)
    fresh = await ctx.store.get_run(run.id, with_events=False)
    if fresh.state.is_terminal:
        return fresh  # cancelled while its outputs came back
    assert run.prompt_id is not None  # an enhancement is always of a prompt
    prompt = await ctx.store.get_prompt(run.prompt_id)
    overwrite = options_of(run.params).enhance == "overwrite"
    note = ""
    if overwrite and prompt.text not in (sent, text):  # (text: an earlier attempt's)
        # Edited since the run started: the answer is about the old text, and the new
        # one is not thrown away for it.
        overwrite, note = False, " (its text changed while the reasoner ran)"
    result, said = await record_enhanced(ctx.store, prompt, text, overwrite)
    await ctx.store.update_run(run.id, progress_phase="done", progress_percent=100.0,
                               eta_seconds=0.0)  # fmt: skip
    return await ctx.store.transition(
        run.id,
        RunState.COMPLETED,
        said + note + await caveat_of(log_path),
        outputs=tuple(outputs),
        result_prompt_id=result.id,
    )


async def _fail(ctx: EngineContext, run: Run, failure: Failure) -> Run:
    return await ctx.store.transition(run.id, failure.state, failure.message, **failure.recorded())
