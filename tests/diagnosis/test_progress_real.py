"""Progress on real Transfer1 wording: older lines, bars glued to markers, side bars."""

from __future__ import annotations

import pytest

from cosmos_tui.engine.progress import ProgressTracker, TqdmParser, Transfer1Parser

LOG = "[12-01 10:00:00|INFO|cosmos_transfer1/x.py:1:f] {}"


def phase_after(parser: Transfer1Parser | TqdmParser, *messages: str) -> tuple[str, float]:
    tracker = ProgressTracker(parser, 0.0, None)
    tracker.feed([LOG.format(m) if not m.startswith(" ") else m for m in messages], 1.0)
    snap = tracker.snapshot(1.0)
    return snap.phase, snap.percent


@pytest.mark.parametrize(
    ("message", "phase"),
    [
        ("Start creating ctrlnet model", "loading models"),
        ("Done creating base model", "loading models"),
        ("Run guardrail on prompt", "guardrail"),
        ("Pass guardrail on prompt", "guardrail"),
        ("Run text embedding on prompt", "text embedding"),
        ("Finish text embedding on prompt", "text embedding"),
        ("Starting data augmentation", "preparing"),
        ("reading control input /in/edge.mp4 for hint edge", "preparing"),
        ("Completed latent encoding", "generating"),
        ("Run guardrail on generated video", "saving"),
    ],
)
def test_older_and_current_wordings_are_recognised(message: str, phase: str) -> None:
    assert phase_after(Transfer1Parser(), message)[0] == phase


def test_phases_go_forward_through_the_older_wording() -> None:
    parser = Transfer1Parser()
    seen = []
    for message in (
        "Start creating base model",
        "Done creating ctrlnet model",
        "Run guardrail on prompt",
        "Run text embedding on prompt",
        "Finish text embedding on prompt",
        "Starting data augmentation",
        "Completed data augmentation",
        "Starting latent encoding",
        "Completed latent encoding",
    ):
        seen.append(phase_after(parser, message)[1])
    assert seen == sorted(seen) and seen[-1] > seen[0]


def test_a_marker_sharing_a_line_with_a_bar_is_read() -> None:
    line = (
        "  0%|          | 0/1 [00:00<?, ?it/s][09-02 17:02:20|INFO|world_generation_pipeline.py"
        ":1356:_run_model] Starting latent encoding"
    )
    parser = Transfer1Parser()
    assert parser.feed(line, 1.0)
    assert parser.phases[parser.phase_index].name == "generating"


def test_side_bars_never_drive_the_percent() -> None:
    bars = [
        "Loading checkpoint shards:  99%|#########9| 3/4 [00:09<00:01,  3.00s/it]",
        "Fetching 12 files:  50%|#####     | 6/12 [00:30<00:30,  5.00s/it]",
        "model-00001-of-00004.safetensors:  97%|#########7| 4.8G/5.0G [01:00<00:02, 80MB/s]",
    ]
    before = phase_after(Transfer1Parser(), "final args: {}")[1]
    parser = Transfer1Parser()
    phase, percent = phase_after(parser, "final args: {}", *[" " + b for b in bars])
    assert percent == before
    assert parser.clips_total is None
    tqdm = TqdmParser()
    phase, percent = phase_after(tqdm, *[" " + b for b in bars])
    assert percent == 0.0
    phase, percent = phase_after(tqdm, " Generating samples:  50%|#####     | 35/70 [01:00<01:00]")
    assert phase == "Generating samples" and percent == pytest.approx(50.0)


def test_checkpoint_downloads_have_their_own_phase() -> None:
    parser = Transfer1Parser()
    phase, percent = phase_after(
        parser, "final args: {}", " Downloading nvidia/Cosmos-Guardrail1..."
    )
    assert phase == "downloading checkpoints"
    start = percent
    phase, percent = phase_after(parser, "Start creating base model")
    assert phase == "loading models" and percent >= start
