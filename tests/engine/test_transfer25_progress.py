"""Progress of a Transfer2.5 run from its own log lines and bars.

Lines as upstream prints them (nvidia-cosmos/cosmos-transfer2.5 at 2ff49d07): downloads
(checkpoint_db.py:165, 297), samples (inference.py:163, 167, 343), chunks
(inference_pipeline.py:554, shown with COSMOS_VERBOSE) and the ``Generating samples`` bar
(vid2vid_model_control_vace_rectified_flow.py:428).
"""

from __future__ import annotations

from cosmos_tui.engine.profiles.transfer25_progress import Transfer25Parser
from cosmos_tui.engine.progress import ProgressTracker, parser_for

P = "[06-07 10:00:00|INFO|cosmos_transfer2/inference.py:{}:generate] {}"
DOWNLOAD = [
    "[06-07 10:00:00|INFO|cosmos_transfer2/_src/imaginaire/utils/checkpoint_db.py:297:"
    "download] Downloading checkpoint Cosmos-Transfer2.5-2B/general/edge(61f5694b)",
    "[06-07 10:00:00|INFO|cosmos_transfer2/_src/imaginaire/utils/checkpoint_db.py:165:"
    "_hf_download] uvx 'hf>=1.3.5' download nvidia/Cosmos-Transfer2.5-2B --repo-type model",
    "Fetching 1 files:   0%|          | 0/1 [00:00<?, ?it/s]",
]


def bar(n: int, total: int = 35, left: str = "00:30") -> str:
    pct = n * 100 // total
    return f"Generating samples: {pct:3d}%|####      | {n}/{total} [00:10<{left}, 1.2s/it]"


def feed(parser: Transfer25Parser, lines: list[str]) -> None:
    for i, line in enumerate(lines):
        parser.feed(line, float(i))


def test_download_is_its_own_phase() -> None:
    parser = Transfer25Parser()
    feed(parser, DOWNLOAD)
    progress = parser.estimate(10.0, None)
    assert progress.phase == "downloading checkpoints"
    assert progress.percent < 15


def test_loading_then_sample_and_bar() -> None:
    parser = Transfer25Parser()
    feed(parser, [*DOWNLOAD, P.format(156, "Saved config to /o/config.yaml"),
                  P.format(163, "Generating 1 samples: ['a']"),
                  P.format(167, "[1/1] Processing sample a"), bar(0)])  # fmt: skip
    start = parser.estimate(0, None).percent
    parser.feed(bar(35, left="00:00"), 1.0)
    done = parser.estimate(0, None)
    assert start < done.percent < 100
    assert done.phase.startswith("generating")
    parser.feed(bar(17, left="00:20"), 2.0)


def test_bar_remaining_gives_the_eta_of_a_single_chunk() -> None:
    parser = Transfer25Parser()
    feed(parser, [P.format(167, "[1/1] Processing sample a"), bar(10, left="01:05")])
    assert parser.estimate(0, None).eta_seconds == 65.0


def test_chunks_from_verbose_lines() -> None:
    parser = Transfer25Parser()
    chunk = "[06-07|INFO|cosmos_transfer2/_src/transfer2/inference/inference_pipeline.py:554:" \
        "generate_img2world] Generating chunk {}/3"  # fmt: skip
    feed(parser, [P.format(167, "[1/1] Processing sample a"), chunk.format(1), bar(35),
                  chunk.format(2), bar(17)])  # fmt: skip
    progress = parser.estimate(0, None)
    assert "chunk 2/3" in progress.phase
    one_chunk = Transfer25Parser()
    feed(one_chunk, [P.format(167, "[1/1] Processing sample a"), bar(17)])
    assert progress.percent > one_chunk.estimate(0, None).percent


def test_chunks_counted_from_bars_when_chunk_lines_are_hidden() -> None:
    # By default the console hides _src modules' INFO lines (cosmos_oss/init.py:45-73), so
    # chunk lines only show with COSMOS_VERBOSE; the chunk count comes from the launch.
    parser = Transfer25Parser(chunks_per_sample=2)
    feed(parser, [P.format(167, "[1/1] Processing sample a"), bar(35), bar(0), bar(10)])
    progress = parser.estimate(0, None)
    assert "chunk 2/2" in progress.phase


def test_every_rank_draws_a_bar() -> None:
    # Ranks step in lockstep (context parallelism), so their bars interleave.
    parser = Transfer25Parser(chunks_per_sample=2)
    feed(parser, [P.format(167, "[1/1] Processing sample a"), bar(34), bar(34), bar(35),
                  bar(35), bar(1), bar(1)])  # fmt: skip
    assert "chunk 2/2" in parser.estimate(0, None).phase  # two bars, one chunk done


def test_batch_progress_per_sample() -> None:
    parser = Transfer25Parser()
    feed(parser, [P.format(163, "Generating 4 samples: ['a', 'b', 'c', 'd']"),
                  P.format(167, "[1/4] Processing sample a"), bar(35),
                  P.format(343, "Generated video saved to /o/a.mp4"),
                  P.format(167, "[2/4] Processing sample b"), bar(0)])  # fmt: skip
    progress = parser.estimate(0, None)
    assert progress.phase.startswith("sample 2/4")
    assert 25 < progress.percent < 50
    parser.feed(P.format(167, "[4/4] Processing sample d"), 9.0)
    assert parser.estimate(0, None).percent > 75


def test_guardrail_and_saving_phases() -> None:
    parser = Transfer25Parser()
    feed(parser, [P.format(167, "[1/1] Processing sample a"),
                  P.format(213, "Running guardrail check on prompt...")])  # fmt: skip
    assert "guardrail" in parser.estimate(0, None).phase
    feed(parser, [bar(35), P.format(319, "Running guardrail check on video...")])
    assert "checking video" in parser.estimate(0, None).phase
    percent = parser.estimate(0, None).percent
    parser.feed(P.format(343, "Generated video saved to /o/a.mp4"), 5.0)
    assert parser.estimate(0, None).percent > percent


def test_real_freeze_excerpt_reaches_chunk_five_of_six() -> None:
    # tests/fixtures/real_logs/t25_17_freeze_chunk.log (issue 17 of cosmos-transfer2.5).
    parser = Transfer25Parser()
    lines = [
        bar(35, left="00:00"),
        "[10-14 20:08:17|INFO|cosmos_transfer2/_src/transfer2/inference/inference_pipeline.py:"
        "340:generate_img2world] Generating chunk 5/6",
    ]
    feed(parser, lines)
    assert "chunk 5/6" in parser.estimate(0, None).phase


def test_registered_for_the_profile() -> None:
    assert isinstance(parser_for("transfer2.5"), Transfer25Parser)
    tracker = ProgressTracker(parser_for("transfer2.5"), 0.0, None)
    tracker.feed([P.format(167, "[1/1] Processing sample a"), bar(10)], 1.0)
    assert tracker.snapshot(5.0).percent > 0


def test_a_bar_cut_short_still_means_generating() -> None:
    parser = Transfer25Parser()
    feed(parser, [P.format(188, "Processing the following paths: {'depth': 'd.mp4'}"),
                  "Generating samples:  40%|\u2588\u2588\u2588\u2588"])  # fmt: skip
    progress = parser.estimate(0, None)
    assert progress.phase == "generating" and progress.percent > 20
