"""Where a dead batch container stopped, from the folders it left (engine/batch_outputs.py).

Transfer1 makes ``video_<n>/`` when line ``n`` starts and saves ``output.mp4`` then
``prompt.txt`` when it finishes; with batch size 1 the lines run in order.
"""

from __future__ import annotations

from cosmos_tui.engine.batch_outputs import (
    DeadBatch,
    SampleFate,
    SampleOutput,
    after_death,
    batch_size_in,
    map_outputs,
)
from cosmos_tui.engine.batching import BatchLine
from cosmos_tui.store.repositories import Store

from .conftest import MakeRun


def lines_of(*texts: str) -> list[BatchLine]:
    return [BatchLine(f"rs_{i}", t, f"in{i}.mp4") for i, t in enumerate(texts)]


def unfinished(folder: str) -> SampleOutput:
    return SampleOutput(folder, None, finished=False)


def test_an_unfinished_folder_is_never_given_to_a_run() -> None:
    lines = lines_of("one", "two", "three")
    samples = [SampleOutput("video_0", "one"), unfinished("video_1")]
    outcome = map_outputs(lines, samples)
    assert outcome.folders == {"rs_0": "video_0"}
    assert outcome.unfinished_folders == ("video_1",)
    assert outcome.unmatched_folders == ()
    # Without a readable-but-unknown folder the others are not UNKNOWN.
    assert outcome.fates["rs_1"] == SampleFate.BLOCKED


def test_the_last_started_line_is_the_culprit_and_later_lines_never_ran() -> None:
    lines = lines_of("one", "two", "three", "four")
    samples = [SampleOutput("video_0", "one"), unfinished("video_1")]
    dead = after_death(lines, samples, map_outputs(lines, samples))
    assert dead == DeadBatch(started=True, culprits=("rs_1",), not_started=("rs_2", "rs_3"))


def test_dying_on_the_last_line_requeues_nothing() -> None:
    lines = lines_of("one", "two", "three")
    samples = [SampleOutput("video_0", "one"), SampleOutput("video_1", "two"),
               unfinished("video_2")]  # fmt: skip
    dead = after_death(lines, samples, map_outputs(lines, samples))
    assert dead == DeadBatch(started=True, culprits=("rs_2",))


def test_dying_between_lines_has_no_culprit() -> None:
    lines = lines_of("one", "two", "three")
    samples = [SampleOutput("video_0", "one"), SampleOutput("video_1", "two")]
    dead = after_death(lines, samples, map_outputs(lines, samples))
    assert dead == DeadBatch(started=True, not_started=("rs_2",))


def test_dying_before_any_line_started_is_the_whole_batch_failure() -> None:
    lines = lines_of("one", "two")
    dead = after_death(lines, [], map_outputs(lines, []))
    assert dead == DeadBatch(started=False)


def test_a_started_line_without_a_sample_before_the_culprit_is_unknown() -> None:
    lines = lines_of("one", "two", "three", "four")
    # video_0 holds a prompt that is no line's (e.g. rewritten by --upsample_prompt).
    samples = [SampleOutput("video_0", "an upsampled one"), SampleOutput("video_1", "two"),
               unfinished("video_2")]  # fmt: skip
    outcome = map_outputs(lines, samples)
    dead = after_death(lines, samples, outcome)
    assert outcome.folders == {"rs_1": "video_1"}
    assert dead == DeadBatch(started=True, culprits=("rs_2",), not_started=("rs_3",),
                             unknown=("rs_0",))  # fmt: skip


def test_with_a_larger_batch_size_the_whole_dying_chunk_shares_the_cause() -> None:
    lines = lines_of("one", "two", "three", "four", "five", "six")
    # Batch size 2: chunk 1 saved "one" and dropped "two" (video_1 made, no sample);
    # chunk 2 made video_2 and video_3 and died generating them; chunk 3 never started.
    samples = [SampleOutput("video_0", "one"), unfinished("video_1"), unfinished("video_2"),
               unfinished("video_3")]  # fmt: skip
    outcome = map_outputs(lines, samples)
    dead = after_death(lines, samples, outcome, batch_size=2)
    assert dead == DeadBatch(started=True, culprits=("rs_2", "rs_3"),
                             not_started=("rs_4", "rs_5"), dropped=("rs_1",))  # fmt: skip
    # Read as batch size 1, the same folders would blame line 4 alone.
    assert after_death(lines, samples, outcome).culprits == ("rs_3",)


def test_the_batch_size_is_read_from_the_argv_the_model_gets() -> None:
    assert batch_size_in(["torchrun", "transfer.py", "--num_gpus", "1"]) == 1
    assert batch_size_in(["--batch_size", "4", "--offload_guardrail_models"]) == 4
    assert batch_size_in(["--batch_size=3"]) == 3
    assert batch_size_in(["--batch_size", "many"]) == 1
    assert batch_size_in(["--batch_size"]) == 1


async def test_members_that_never_ran_go_back_in_line_together(
    store: Store, make_run: MakeRun
) -> None:
    from cosmos_tui.domain import RunState
    from cosmos_tui.store.queue_store import QueueStore

    runs = [await make_run() for _ in range(3)]
    for run in runs[:2]:
        for state in (RunState.UPLOADING, RunState.STARTING, RunState.RUNNING):
            await store.transition(run.id, state, "test", batch_id="bs_x", gpus="0",
                                   container_id="c1", progress_percent=40.0)  # fmt: skip
    await store.transition(runs[1].id, RunState.CANCELLED, "cancelled meanwhile")
    queue = QueueStore(store)
    moved = await queue.requeue_unstarted([r.id for r in runs], "batch bs_x died on run y")
    assert moved == [runs[0].id]  # the cancelled and the queued one do not move
    back = await store.get_run(runs[0].id)
    assert back.state == RunState.QUEUED
    assert (back.batch_id, back.container_id, back.gpus) == (None, None, ())
    assert back.events[-1].reason == "batch bs_x died on run y"
    assert back.events[-1].from_state == RunState.RUNNING
    assert [c.run.id for c in await queue.queued()] == [runs[0].id, runs[2].id]
