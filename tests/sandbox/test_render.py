"""The sample sequence renderer: five passes a DCC tool would write, ready for prepare."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from cosmos_tui.engine.prepare import prepare_sequence
from cosmos_tui.engine.video_stream import probe_stream
from cosmos_tui.sandbox.render import main, render_frame
from cosmos_tui.sandbox.workspace import DemoWorkspace

REPO_SAMPLE = Path(__file__).parents[2] / "inputs" / "rolling-ball"


def test_render_gives_exact_depth_and_segmentation() -> None:
    first, last = render_frame(0, 10, 48, 27), render_frame(9, 10, 48, 27)
    ball = np.array([220, 20, 60], dtype=np.uint8)
    left = np.argwhere((first["seg"] == ball).all(axis=-1))[:, 1].mean()
    right = np.argwhere((last["seg"] == ball).all(axis=-1))[:, 1].mean()
    assert left < 24 < right  # the ball rolls from left to right
    assert np.isinf(first["depth"][0]).all()  # the sky row: no hit
    assert 1.0 < np.nanmin(first["depth"][np.isfinite(first["depth"])]) < 60.0


def test_the_script_writes_a_sequence_prepare_turns_into_videos(tmp_path, capsys) -> None:
    main([str(tmp_path / "seq"), "--frames", "4", "--size", "32x18"])
    assert "wrote 4 frames of 5 passes at 32x18" in capsys.readouterr().out
    assert len(list((tmp_path / "seq").glob("*.png"))) == 20
    result = prepare_sequence(tmp_path / "seq", tmp_path / "seq")
    assert result.frames == 4 and len(result.encoded) == 5
    assert probe_stream(tmp_path / "seq" / "depth.mp4").resolution == "32x18"


def test_the_committed_sample_is_what_the_script_renders(tmp_path) -> None:
    space = DemoWorkspace(tmp_path)
    space.inputs_dir.mkdir()
    rendered = space.render_sample_sequence()
    committed = sorted(p.name for p in REPO_SAMPLE.glob("*.png"))
    assert len(committed) == 180
    assert sorted(p.name for p in rendered.iterdir()) == committed
    for name in ("color.0001.png", "depth.0018.png", "seg.0036.png"):
        assert np.array_equal(
            np.asarray(Image.open(rendered / name)), np.asarray(Image.open(REPO_SAMPLE / name))
        )
    assert [p.name for p in space.inputs_dir.iterdir()] == ["rolling-ball"]  # no leftovers
    assert space.render_sample_sequence() == rendered  # already there: kept
