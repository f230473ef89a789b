"""Which member each line of a Cosmos 3 batch log is about (engine/batch_c3.py, Sections).

The logs are shaped as upstream writes them at INFO: a generation sample names its folder
first (``Saved sample args to '<dir>/sample_args.json'``, I:1843), a reasoner sample only
at its end (``Saved reasoner outputs to '<dir>'``, I:1981; its sample_args.json is written
without a line, I:1941), a handled error ends a sample (``Error generating sample
'<name>'``, CI:262-266) after the guardrail's critical verdict (presets.py:52).
"""

from __future__ import annotations

from cosmos_tui.engine.batch_c3 import member_lines
from cosmos_tui.engine.batch_progress import BatchProgress

IDS = ["rs_a", "rs_b", "rs_c"]
OUT = "/cosmos-tui/run/output"
START = [
    "[12:00:00|INFO|cosmos_framework/scripts/inference.py:46:inference] Loaded 3 samples",
    "[12:00:00|INFO|cosmos_framework/scripts/inference.py:49:inference] Reasoner-only inputs "
    "detected; generation vision tokenizer will not be loaded",
]
BLOCKED = "[12:00:05|CRITICAL|presets.py:52:run_text_guardrail] GUARDRAIL BLOCKED: QWEN3GUARD: x"
A_ERROR = (
    "[12:00:05|ERROR|common/inference.py:266:_handle_sample_exception] Error generating "
    f"sample 'rs_a': Guardrail blocked prompt '{OUT}/rs_a': 'a riot'"
)
B_SAVED = f"[12:00:09|SUCCESS|inference.py:1981:_generate_reasoner_batch] Saved reasoner outputs to '{OUT}/rs_b'"  # noqa: E501
OOM = [
    "Traceback (most recent call last):",
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 6.00 GiB.",
]


def test_a_reasoner_samples_lines_are_the_ones_before_its_end() -> None:
    log = [*START, BLOCKED, A_ERROR, B_SAVED, *OOM]
    # the first sample's verdict comes before any line names it: it is still its own,
    # never another member's evidence
    assert member_lines(log, "rs_a", IDS) == [*START, BLOCKED, A_ERROR]
    assert member_lines(log, "rs_b", IDS) == [*START, B_SAVED]
    # it died in the third sample: the traceback is its own, no one else's
    assert member_lines(log, "rs_c", IDS) == [*START, *OOM]


def test_a_handled_error_is_the_sample_it_names_whatever_its_reason_quotes() -> None:
    quoting = A_ERROR.replace("'rs_a'", "'rs_b'").replace("a riot", f"see {OUT}/rs_a/x")
    log = [*START, B_SAVED.replace("rs_b", "rs_a"), quoting, "next"]
    assert member_lines(log, "rs_b", IDS) == [*START, quoting]
    assert member_lines(log, "rs_c", IDS) == [*START, "next"]


def test_a_later_reasoner_samples_verdict_is_its_own() -> None:
    b_error = A_ERROR.replace("rs_a", "rs_b")
    a_saved = B_SAVED.replace("rs_b", "rs_a")
    log = [*START, a_saved, BLOCKED, b_error, "after the last"]
    assert member_lines(log, "rs_a", IDS) == [*START, a_saved]
    assert member_lines(log, "rs_b", IDS) == [*START, BLOCKED, b_error]
    assert member_lines(log, "rs_c", IDS) == [*START, "after the last"]


def test_a_generation_sample_starts_at_its_args_and_ends_at_its_outputs() -> None:
    def args(name: str) -> str:
        return f"[t|INFO|inference.py:1843] Saved sample args to '{OUT}/{name}/sample_args.json'"

    def saved(name: str) -> str:
        return f"[t|SUCCESS|inference.py:1889] Saved transfer outputs to '{OUT}/{name}/sample_outputs.json'"  # noqa: E501

    bar = "Sampling: 100%|##########| 5/5"
    data = 'File "/w/cosmos_framework/inference/inference.py", line 697, in get_sample_data'
    log = [*START[:1], args("rs_a"), bar, saved("rs_a"), data, "RuntimeError: Failed to read"]
    assert member_lines(log, "rs_a", IDS) == [START[0], args("rs_a"), bar, saved("rs_a")]
    # what follows a sample's end is the next one's: its data failed before its first line
    assert member_lines(log, "rs_b", IDS) == [START[0], data, "RuntimeError: Failed to read"]
    assert member_lines(log, "rs_c", IDS) == [START[0]]


def test_progress_moves_to_the_next_reasoner_sample_when_one_ends() -> None:
    progress = BatchProgress("cosmos3", IDS, started_at=0.0)
    progress.feed([*START, B_SAVED.replace("rs_b", "rs_a")], 1.0)
    # at once: the second sample logs nothing before its own end
    assert progress.current == "rs_b" and progress.done == ["rs_a"]
    assert not progress.snapshot("rs_b", 1.0).phase.startswith("waiting")
    assert progress.snapshot("rs_c", 1.0).phase == "waiting: sample 3 of 3 (now 2)"


def test_a_kernel_that_failed_to_start_is_every_members() -> None:
    # the GPU's, not one sample's (cosmos-framework#42): every member's outputs are suspect
    cutlass = "Failed to initialize the CUTLASS kernel. Last CUDA error is: no error"
    a_saved = B_SAVED.replace("rs_b", "rs_a")
    log = [*START, cutlass, a_saved, cutlass, B_SAVED]
    for run_id in IDS:
        assert member_lines(log, run_id, IDS).count(cutlass) == 2
