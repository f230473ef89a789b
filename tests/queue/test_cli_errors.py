"""Bad input to the queue and extras commands: one clear error line, nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cosmos_tui.cli import cli
from tests.conftest import write_video


@pytest.fixture
def cosmos(workspace: Path):
    runner = CliRunner()

    def _invoke(*args: str) -> Result:
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return _invoke


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout.strip()


def refused(result: Result, *words: str) -> str:
    assert result.exit_code != 0, result.output
    error = result.stderr.strip()
    assert error.startswith("error: ") and "\n" not in error, error
    assert "Traceback" not in result.output
    for word in words:
        assert word in error, error
    return error


def snapshot(cosmos) -> tuple[list, list]:
    runs = json.loads(ok(cosmos("list", "runs", "--json")))
    prompts = json.loads(ok(cosmos("list", "prompts", "--json")))
    return runs, prompts


def test_bad_upscale_sources_and_weights_change_nothing(cosmos, make_video_dir, tmp_path) -> None:
    prompt = ok(cosmos("create", "prompt", "a lake", str(make_video_dir())))
    queued = ok(cosmos("create", "run", prompt))
    text_file = tmp_path / "notes.mp4"
    text_file.write_text("this is not a video\n" * 20)
    good = write_video(tmp_path / "clip.mp4")
    before = snapshot(cosmos)
    refused(cosmos("upscale", "rs_unknown0000"), "rs_unknown0000")
    refused(cosmos("upscale", str(tmp_path / "missing.mp4")), "missing.mp4")
    refused(cosmos("upscale", str(text_file)), "not an MP4")
    refused(cosmos("upscale", str(tmp_path)), str(tmp_path))
    refused(cosmos("upscale", queued), "only a completed run")
    refused(cosmos("upscale", str(good), "--weight", "1.7"), "upscale weight", "1.7")
    refused(cosmos("upscale", str(good), "--weight", "-0.1"), "upscale weight")
    refused(cosmos("upscale", str(good), "--prompt"), "--prompt")
    refused(cosmos("upscale", str(good), "--weight", "0"), "weight", "above 0")
    refused(cosmos("upscale", str(good), "--prompt", "--prompt-text", "x"), "not both")
    assert snapshot(cosmos) == before


def test_bad_enhance_requests_change_nothing(cosmos, make_video_dir) -> None:
    fresh = ok(cosmos("create", "prompt", "a road", str(make_video_dir())))
    used = ok(cosmos("create", "prompt", "a lake", str(make_video_dir())))
    ok(cosmos("create", "run", used))
    before = snapshot(cosmos)
    refused(cosmos("enhance", "pr_unknown0000"), "pr_unknown0000")
    # A good id followed by a bad one: neither is queued.
    refused(cosmos("enhance", fresh, "pr_unknown0000"), "pr_unknown0000")
    refused(cosmos("enhance", fresh, used, "--overwrite"), used, "--force")
    refused(cosmos("enhance", fresh, "--force"), "--overwrite")
    # The reasoner's settings: only with --profile cosmos3, and what one GPU can run.
    refused(cosmos("enhance", fresh, "--size", "edge"), "--profile cosmos3")
    refused(cosmos("enhance", fresh, "--guardrails", "off"), "--profile cosmos3")
    refused(cosmos("enhance", fresh, "--profile", "cosmos3", "--size", "super"), "Super", "4")
    refused(cosmos("enhance", fresh, "--profile", "cosmos3", "--size", "huge"), "Cosmos 3 size")
    both = cosmos("enhance", fresh, "--profile", "cosmos3", "--size", "edge", "--checkpoint", "/c")
    refused(both, "not both")
    relative = cosmos("enhance", fresh, "--profile", "cosmos3", "--checkpoint", "ckpt")
    refused(relative, "absolute path")
    assert cosmos("enhance", fresh, "--profile", "transfer2.5").exit_code == 2
    assert snapshot(cosmos) == before


def test_enhance_with_the_cosmos3_reasoner_is_queued_with_its_settings(
    cosmos, make_video_dir
) -> None:
    prompt = ok(cosmos("create", "prompt", "a road", str(make_video_dir())))
    run_id = ok(cosmos("enhance", prompt, "--profile", "cosmos3", "--size", "Edge",
                       "--guardrails", "offload", "--overwrite"))  # fmt: skip
    shown = json.loads(ok(cosmos("show", run_id, "--json")))
    assert shown["type"] == "enhance" and shown["profile"] == "cosmos3"
    options = shown["params"]["options"]
    assert options["mode"] == "reasoner" and options["checkpoint"] == "Cosmos3-Edge"
    assert options["guardrails"] == "offload" and options["enhance"] == "overwrite"
    # The run form's modes are the generation modes (the reasoner writes text, not video).
    bad_mode = cosmos("create", "run", prompt, "--profile", "cosmos3", "--mode", "reasoner")
    assert bad_mode.exit_code == 2 and "'reasoner' is not one of" in bad_mode.stderr


def test_bad_queue_requests_change_nothing(cosmos, make_video_dir) -> None:
    prompt = ok(cosmos("create", "prompt", "a lake", str(make_video_dir())))
    first = ok(cosmos("create", "run", prompt))
    second = ok(cosmos("create", "run", prompt, "--seed", "5"))
    ok(cosmos("queue", "cancel", second))
    before = snapshot(cosmos)
    # One queued run and one that is not: neither is cancelled.
    refused(cosmos("queue", "cancel", first, second), second, "not queued")
    refused(cosmos("queue", "cancel", first, "rs_unknown0000"), "rs_unknown0000")
    refused(cosmos("queue", "up", "rs_unknown0000"), "rs_unknown0000")
    refused(cosmos("queue", "down", second), "not waiting")
    assert snapshot(cosmos) == before
