"""Running prompt-enhancement claims: one container enhances every prompt of the claim.

Each enhance run moves through its own states; its log is the container's log; when the
upsampler wrote an enhanced prompt for it (matched by name, the run id), the text becomes
a new prompt whose parent is the run's prompt, or replaces the prompt's text when the run
was queued with overwrite. The new or updated prompt is the run's ``result_prompt_id``.
"""

from __future__ import annotations

import logging
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from cosmos_tui.domain import FailureKind, Prompt, Run, RunState
from cosmos_tui.engine import launch
from cosmos_tui.engine.profiles import upsampler
from cosmos_tui.errors import CosmosError

if TYPE_CHECKING:
    from cosmos_tui.engine.batch_launch import BatchLauncher
    from cosmos_tui.store.queue_store import Claim
    from cosmos_tui.store.repositories import Store

logger = logging.getLogger(__name__)


async def run_enhance(launcher: BatchLauncher, claim: Claim) -> None:
    """Enhance the prompts of a claim's runs in one container."""
    members = await launcher.start_members(claim)
    if not members:
        return
    ids = [run.id for run, _ in members]
    try:
        await _enhance(launcher, claim, members)
    except CosmosError as exc:
        await launcher.fail_all(ids, FailureKind.UNKNOWN, f"enhancement failed: {exc.message}")
    except Exception:
        await launcher.fail_all(ids, FailureKind.UNKNOWN, "enhancement failed: internal error")
        raise


async def _enhance(
    launcher: BatchLauncher, claim: Claim, members: list[tuple[Run, Prompt]]
) -> None:
    ctx = launcher.ctx
    host = ctx.hosts.get(claim.host)
    home = await host.files.home()
    key = claim.batch_id or members[0][0].id
    layout = launch.RemoteLayout(home, await host.tool_dir(), key)
    lines = []
    for run, prompt in members:
        color = prompt.input("color")
        assert color is not None
        uploaded = await host.upload_input(
            color.path, expected_sha256=color.sha256, expected_size=color.size
        )
        remote = uploaded.remote_path
        lines.append(
            upsampler.EnhanceLine(run.id, prompt.text, launch.container_input_path(remote))
        )
    await host.run(["rm", "-rf", "--", layout.output_dir])
    await host.files.makedirs(layout.output_dir)
    await host.files.write_text(
        str(PurePosixPath(layout.run_dir) / upsampler.SCRIPT_NAME), upsampler.SCRIPT
    )
    await host.files.write_text(
        str(PurePosixPath(layout.run_dir) / upsampler.INPUT_NAME), upsampler.input_jsonl(lines)
    )
    ids = [run.id for run, _ in members]
    for run_id in ids:
        await launcher.move(run_id, RunState.STARTING, f"{len(ids)} prompt(s) uploaded",
                            log_path=launcher.log_path(run_id))  # fmt: skip
    first = members[0][0]
    await launch.check_mount_sources(host, launch.mounts_for(host.config, layout))
    spec = launch.container_spec(
        key,
        upsampler.build_argv(launch.CONTAINER_RUN, len(lines)),
        launch.image_for(first, host.config, ctx.config),
        host.config,
        layout,
        gpus=claim.gpus,
        labels={"cosmos.batch_id": claim.batch_id or "", launch.LABEL_PROFILE: "upsampler"},
        config=ctx.config,  # the upsampler runs in Transfer1's image and mounts
    )
    container_id = await host.docker.create(spec)
    await host.docker.start(container_id)
    for run_id in ids:
        await launcher.move(run_id, RunState.RUNNING, f"upsampler container {container_id[:12]}",
                            container_id=container_id)  # fmt: skip
    log = await launcher.follow(host, container_id, ids, launcher.deadline(None, len(ids)))
    exit_code = await host.docker.wait(container_id)
    if exit_code != 0:
        await launcher.fail_all(ids, *launcher.failure(container_id, exit_code, log, len(ids)))
        return
    output = f"{layout.output_dir}/{upsampler.OUTPUT_NAME}"
    enhanced = upsampler.parse_output(await host.files.read_text(output) or "", ids)
    for run, prompt in members:
        fresh = await ctx.store.get_run(run.id, with_events=False)
        if fresh.state.is_terminal:
            continue  # cancelled while the container ran
        text = enhanced.get(run.id)
        if text is None:
            await launcher.fail_all(
                [run.id], FailureKind.UNKNOWN, "the upsampler wrote no prompt for this run"
            )
            continue
        await launcher.move(run.id, RunState.DOWNLOADING, "enhanced prompt received")
        # Read now: the mode is recorded just after the run is queued, maybe after its start.
        overwrite = (fresh.spec or {}).get("mode") == "overwrite"
        result_prompt, said = await record_enhanced(ctx.store, prompt, text, overwrite)
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
    Transfer1's upsampler (above) and Cosmos 3's reasoner (engine/lifecycle.py). A child
    with the same text already there (an earlier attempt's) is reused, not made twice.
    """
    from cosmos_tui.store.repositories import PromptFilter

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
