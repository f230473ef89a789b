"""Transfer1's prompt enhancements: one upsampler container enhances a claim's prompts.

An enhancement claim is a batch (engine/batch_launch.py runs it through the same
sequence as the model's batches, a reattach after its driver died included): this module
plans its container (each prompt's colour video uploaded, cosmos-tui's upsampler script
and its JSONL input written) and collects it. Each enhance run moves through its own
states; its log is the container's log; when the upsampler wrote an enhanced prompt for
it (matched by name, the run id), the text becomes a new prompt whose parent is the run's
prompt, or replaces the prompt's text when the run was queued with overwrite. The new or
updated prompt is the run's ``result_prompt_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cosmos_tui.domain import FailureKind, InputFile, Prompt, Run, RunState
from cosmos_tui.engine import launch
from cosmos_tui.engine.batching import BatchLine, BatchPlan
from cosmos_tui.engine.profiles import upsampler
from cosmos_tui.store.repositories import PromptFilter

if TYPE_CHECKING:
    from cosmos_tui.engine.batch_collect import Death
    from cosmos_tui.engine.batch_launch import BatchLauncher
    from cosmos_tui.engine.launch import RemoteLayout
    from cosmos_tui.remote.host import RemoteHost
    from cosmos_tui.store.repositories import Store

logger = logging.getLogger(__name__)


async def plan_enhance(
    launcher: BatchLauncher, host: RemoteHost, members: list[tuple[Run, Prompt]]
) -> BatchPlan:
    """Upload each prompt's colour video; return the upsampler container's plan.

    The videos go up side by side (``BatchLauncher.upload_inputs``). A member whose video
    changed since its prompt recorded it, or cannot be read any more, fails alone (as a
    model batch's member does); the others go on.
    """
    remote, kept = await launcher.upload_inputs(host, members, _colour)
    lines = []
    for run, prompt in kept:
        uploaded = remote[launch.content_key(_colour(run, prompt)[0])]
        path = launch.container_input_path(uploaded)
        lines.append(upsampler.EnhanceLine(run.id, prompt.text, path))
    return BatchPlan(
        members=kept,
        command=upsampler.build_argv(launch.CONTAINER_RUN, len(lines)),
        lines=[BatchLine(line.name, line.prompt, None) for line in lines],
        files={
            upsampler.SCRIPT_NAME: upsampler.SCRIPT,
            upsampler.INPUT_NAME: upsampler.input_jsonl(lines),
        },
        labels={launch.LABEL_PROFILE: "upsampler"},
        # the upsampler runs in Transfer1's image, with its mounts and environment
        profile="transfer1",
    )


def _colour(_run: Run, prompt: Prompt) -> list[InputFile]:
    """The one input an enhancement sends: its prompt's colour video."""
    color = prompt.input("color")
    assert color is not None  # checked when the enhancement was queued
    return [color]


async def collect_enhanced(
    launcher: BatchLauncher,
    host: RemoteHost,
    layout: RemoteLayout,
    run_ids: Sequence[str],
    death: Death | None,
) -> None:
    """End an upsampler container's runs: each keeps its enhanced prompt, or fails.

    Safe to enter again (a driver that died while recording): ended runs are left alone
    and :func:`record_enhanced` reuses a child made by an earlier pass.
    """
    store = launcher.ctx.store
    runs = [await store.get_run(run_id, with_events=False) for run_id in run_ids]
    active = [run for run in runs if not run.state.is_terminal]
    if death is not None:
        found = launcher.failure(
            death.container_id, death.exit_code, list(death.log_lines), len(runs)
        )
        await launcher.fail_all([run.id for run in active], *found)
        return
    output = f"{layout.output_dir}/{upsampler.OUTPUT_NAME}"
    enhanced = upsampler.parse_output(await host.files.read_text(output) or "", list(run_ids))
    for run in active:
        text = enhanced.get(run.id)
        if text is None:
            await launcher.fail_all(
                [run.id], FailureKind.UNKNOWN, "the upsampler wrote no prompt for this run"
            )
            continue
        await launcher.move(run.id, RunState.DOWNLOADING, "enhanced prompt received")
        # Read now: cancelled meanwhile, the answer is not kept; and the mode is recorded
        # just after the run is queued, maybe after its start.
        run = await store.get_run(run.id, with_events=False)
        if run.state != RunState.DOWNLOADING:
            continue
        overwrite = (run.spec or {}).get("mode") == "overwrite"
        assert run.prompt_id is not None  # an enhancement is always of a prompt
        prompt = await store.get_prompt(run.prompt_id)
        result_prompt, said = await record_enhanced(store, prompt, text, overwrite)
        await launcher.move(
            run.id,
            RunState.COMPLETED,
            said,
            result_prompt_id=result_prompt.id,
            outputs=(launcher.log_path(run.id).name,),
        )


async def record_enhanced(
    store: Store, prompt: Prompt, text: str, overwrite: bool
) -> tuple[Prompt, str]:
    """Keep an enhanced text: a child prompt of ``prompt``, or its own text (overwrite).

    Returns the new or updated prompt and what was done, for the run's timeline. Used by
    Transfer1's upsampler (above) and Cosmos 3's reasoner (engine/reasoner_answer.py). A child
    with the same text already there (an earlier attempt's) is reused, not made twice.
    """
    children = await store.list_prompts(PromptFilter(parent_id=prompt.id), 0, 500)
    earlier = next((c for c in children.items if c.text == text), None)
    if overwrite:
        result = await store.set_prompt_text(prompt.id, text)
    elif earlier is not None:  # made by an attempt that died before it was recorded
        result = earlier
    else:
        result = await store.add_prompt(
            text,
            prompt.inputs,
            name=prompt.name,
            negative_prompt=prompt.negative_prompt,
            parent_id=prompt.id,
            video_dir=prompt.video_dir,
        )
    verb = "replaced the text of" if overwrite else "created"
    return result, f"{verb} prompt {result.id}"
