from __future__ import annotations

import pytest

from cosmos_tui.engine.progress import (
    ProgressTracker,
    TqdmParser,
    Transfer1Parser,
    expected_duration,
    parse_clock,
    parser_for,
)

L = "[11-21 17:00:00|INFO|cosmos_transfer1/diffusion/inference/transfer.py:1:f] {}"
RUN = [
    "control_inputs: {vis}",
    "final args: {}",
    "Using random seed 1.",
    "Start creating base model",
    "Done loading the base model checkpoint.",
    "Loading ctrl model from ckpt_path: x",
    "running preprocessor",
    "no input_control provided for vis. generating input control video with vis model",
    "Running guardrail checks on all prompts",
    "Running text embedding on all prompts",
    "Completed T5 compute",
    "Run generation",
    "Completed data augmentation",
    "Starting latent encoding",
    "Starting diffusion sampling",
    "Completed diffusion sampling",
    "Starting VAE decode",
    "Completed VAE decode",
    "Finish generation",
    "Run guardrail on generated videos",
    "Saved video to out/output.mp4",
    "Saved prompt to out/output.txt",
]


def test_transfer1_phases_move_forward_monotonically() -> None:
    parser = Transfer1Parser()
    seen = []
    for t, message in enumerate(RUN):
        parser.feed(L.format(message), float(t))
        seen.append(parser.estimate(float(t), None))
    percents = [p.percent for p in seen]
    assert percents == sorted(percents)
    assert seen[0].phase == "starting"
    assert seen[4].phase == "loading models"
    assert seen[14].phase == "generating"
    assert 30 < seen[14].percent < 50
    assert seen[-1].phase == "saving" and seen[-1].percent == 99.0


def test_transfer1_counts_clips_from_the_unlabelled_bar() -> None:
    parser = Transfer1Parser()
    parser.feed(L.format("Completed data augmentation"), 0.0)
    parser.feed("  0%|          | 0/3 [00:00<?, ?it/s]", 0.0)
    assert parser.clips_total == 3
    for message in RUN[13:18]:
        parser.feed(L.format(message), 1.0)
    first = parser.estimate(1.0, None)
    assert first.phase == "generating clip 2/3"
    parser.feed(" 33%|###       | 1/3 [00:10<00:20, 10.0s/it]", 1.0)
    assert parser.clips_total == 3
    generating_start = 100 * (2 + 14 + 10 + 2 + 4 + 2) / 100
    assert first.percent == pytest.approx(generating_start + 62 / 3, abs=0.5)


def test_silent_diffusion_advances_with_time_given_history() -> None:
    parser = Transfer1Parser()
    for message in RUN[:15]:
        parser.feed(L.format(message), 0.0)
    without = parser.estimate(300.0, None).percent
    early = parser.estimate(10.0, 1000.0).percent
    later = parser.estimate(300.0, 1000.0).percent
    much_later = parser.estimate(100_000.0, 1000.0).percent
    assert without <= early < later < much_later < 96
    parser.feed(L.format("Completed diffusion sampling"), 301.0)
    assert parser.estimate(301.0, 1000.0).percent >= later


def test_lines_from_an_earlier_phase_do_not_go_backwards() -> None:
    parser = Transfer1Parser()
    parser.feed(L.format("Run generation"), 0.0)
    before = parser.estimate(0.0, None).percent
    parser.feed(L.format("final args: {}"), 1.0)
    assert parser.estimate(1.0, None).percent == before


def test_tqdm_parser_reads_bars_and_eta() -> None:
    parser = TqdmParser()
    assert parser.feed("Generating samples: 45%|####      | 16/35 [01:10<01:23, 4.4s/it]", 0.0)
    progress = parser.estimate(0.0, None)
    assert progress.phase == "Generating samples"
    assert progress.percent == pytest.approx(100 * 16 / 35)
    assert progress.eta_seconds == 83
    assert not parser.feed("an ordinary line", 0.0)


def test_tqdm_parser_with_chunks() -> None:
    parser = TqdmParser()
    parser.feed("Generating chunk 2/4", 0.0)
    parser.feed("Generating world: 50%|#####     | 5/10 [00:05<00:05, 1.0s/it]", 0.0)
    progress = parser.estimate(0.0, None)
    assert progress.percent == pytest.approx(100 * 1.5 / 4)
    assert progress.phase == "Generating world chunk 2/4"


def test_clock_parsing() -> None:
    assert parse_clock("01:23") == 83
    assert parse_clock("1:00:00") == 3600
    assert parse_clock("?") is None and parse_clock("") is None


def test_tracker_eta_from_history_or_extrapolation() -> None:
    with_history = ProgressTracker(Transfer1Parser(), started_at=0.0, expected_total=600.0)
    with_history.feed([L.format(m) for m in RUN[:6]], 60.0)
    assert with_history.snapshot(60.0).eta_seconds == pytest.approx(540.0)
    assert with_history.snapshot(900.0).eta_seconds >= 0
    blind = ProgressTracker(Transfer1Parser(), started_at=0.0, expected_total=None)
    blind.feed([L.format(RUN[0])], 1.0)
    assert blind.snapshot(1.0).eta_seconds is None
    blind.feed([L.format(m) for m in RUN[:13]], 100.0)
    snap = blind.snapshot(100.0)
    assert snap.eta_seconds == pytest.approx(100.0 * (100 - snap.percent) / snap.percent)


def test_tracker_prefers_the_bar_eta() -> None:
    tracker = ProgressTracker(parser_for("predict2"), started_at=0.0, expected_total=999.0)
    tracker.feed(["Generating samples: 10%|#         | 1/10 [00:01<00:09, 1.0s/it]"], 1.0)
    assert tracker.snapshot(1.0).eta_seconds == 9


def test_expected_duration_is_the_median() -> None:
    assert expected_duration([]) is None
    assert expected_duration([10.0, 1000.0, 20.0]) == 20.0
    assert isinstance(parser_for("transfer1"), Transfer1Parser)
    assert isinstance(parser_for("something-new"), TqdmParser)
