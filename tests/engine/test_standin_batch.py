"""The stand-in's batch mode is a double of Transfer1's (docs/cosmos.md, "Transfer1 batch
outputs and blocked prompts"): video_<i>/output.mp4 and video_<i>/prompt.txt per line,
chunk by chunk of --batch_size lines; with batch size 1 the first blocked prompt kills the
process (after the earlier lines saved their outputs), with more a blocked prompt shifts
the later outputs of its chunk."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cosmos_tui.domain import FailureKind
from cosmos_tui.engine.failures import classify
from tests.engine.test_standin import SHELLS, run_standin, workspace


def four_lines(tmp_path: Path, blocked: tuple[int, ...] = (1,), marker: str = "guardrail"):
    """Four lines, each with its own input video; the lines in ``blocked`` carry the marker."""
    lines = []
    for index in range(4):
        lines.append({"prompt": f"line {index}", "visual_input": f"inputs/v{index}.mp4"})
        if index in blocked:
            lines[-1]["prompt"] += f" [standin:{marker}]"
    _, argv = workspace(tmp_path, batch=lines)
    for index in range(4):
        video = tmp_path / "inputs" / f"v{index}.mp4"
        video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + f"video {index}".encode() + os.urandom(64))
    return lines, argv


def outputs(out: Path) -> dict[str, tuple[str, ...]]:
    return {d.name: tuple(sorted(p.name for p in d.iterdir())) for d in sorted(out.iterdir())}


def video_of(tmp_path: Path, index: int) -> bytes:
    return (tmp_path / "inputs" / f"v{index}.mp4").read_bytes()


@pytest.mark.parametrize("shell", SHELLS)
def test_batch_size_1_dies_at_the_blocked_line_after_earlier_lines_saved(
    tmp_path: Path, shell: str
) -> None:
    _, argv = four_lines(tmp_path)
    assert "--batch_size" not in argv  # the tool leaves the model's default, 1
    done = run_standin(tmp_path, argv, shell)
    assert done.returncode == 1
    out = tmp_path / "out"
    found = outputs(out)
    assert set(found) == {"video_0", "video_1"}  # lines 3 and 4 never started
    assert {"output.mp4", "prompt.txt"} <= set(found["video_0"])
    assert "output.mp4" not in found["video_1"] and "prompt.txt" not in found["video_1"]
    assert (out / "video_0" / "prompt.txt").read_text() == "line 0"  # no newline, as upstream
    assert (out / "video_0" / "output.mp4").read_bytes() == video_of(tmp_path, 0)
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    assert "Input text prompt 1 is not safe" in stdout
    assert "Guardrail blocked generation for entire batch." in stdout
    assert 'transfer.py", line 387, in demo' in stderr
    assert stderr.count("TypeError: cannot unpack non-iterable NoneType object") == 1
    assert classify(1, (stdout + stderr).splitlines()).kind == FailureKind.GUARDRAIL


def test_a_larger_batch_size_drops_the_blocked_line_and_shifts_its_chunk(tmp_path: Path) -> None:
    _, argv = four_lines(tmp_path)
    done = run_standin(tmp_path, [*argv, "--batch_size", "4"])
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    found = outputs(out)
    assert set(found) == {"video_0", "video_1", "video_2", "video_3"}
    # The three lines that passed are saved as video_0..2 in their order; video_3 was made
    # for the fourth line before generation and stays without outputs.
    for folder, line in (("video_0", 0), ("video_1", 2), ("video_2", 3)):
        assert (out / folder / "prompt.txt").read_text() == f"line {line}"
        assert (out / folder / "output.mp4").read_bytes() == video_of(tmp_path, line)
    assert "prompt.txt" not in found["video_3"]
    assert "Input text prompt 2 is not safe" in done.stdout.decode()


def test_a_chunk_whose_every_prompt_is_blocked_kills_the_process(tmp_path: Path) -> None:
    _, argv = four_lines(tmp_path, blocked=(2, 3))
    done = run_standin(tmp_path, [*argv, "--batch_size=2"])
    assert done.returncode == 1
    out = tmp_path / "out"
    assert set(outputs(out)) == {"video_0", "video_1", "video_2", "video_3"}
    assert (out / "video_1" / "prompt.txt").read_text() == "line 1"
    assert not (out / "video_2" / "prompt.txt").exists()
    assert "All prompts failed safety checks" in done.stdout.decode()


def test_a_line_that_runs_out_of_memory_fails_there(tmp_path: Path) -> None:
    _, argv = four_lines(tmp_path, blocked=(2,), marker="oom")
    done = run_standin(tmp_path, argv, "busybox-sh")
    assert done.returncode == 1
    out = tmp_path / "out"
    assert set(outputs(out)) == {"video_0", "video_1", "video_2"}
    assert (out / "video_1" / "prompt.txt").read_text() == "line 1"
    assert not (out / "video_2" / "output.mp4").exists()
    lines = (done.stdout + done.stderr).decode().splitlines()
    assert classify(1, lines).kind == FailureKind.GPU_OOM


@pytest.mark.parametrize("shell", SHELLS)
def test_prompt_txt_holds_the_decoded_prompt(tmp_path: Path, shell: str) -> None:
    text = 'a "red" car\\ at the caf\u00e9, \u00fcber \u2603'
    _, argv = four_lines(tmp_path, blocked=())
    jsonl = tmp_path / "batch.jsonl"
    first, *rest = jsonl.read_text().splitlines()
    line = json.loads(first)
    line["prompt"] = text
    jsonl.write_text("\n".join([json.dumps(line, sort_keys=True), *rest]) + "\n")
    done = run_standin(tmp_path, argv, shell)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "video_0" / "prompt.txt").read_text(encoding="utf-8") == text
    assert (tmp_path / "out" / "video_3" / "prompt.txt").read_text() == "line 3"


def test_a_blank_line_fails_before_anything_runs(tmp_path: Path) -> None:
    _, argv = four_lines(tmp_path, blocked=())
    jsonl = tmp_path / "batch.jsonl"
    jsonl.write_text(jsonl.read_text().replace("\n", "\n\n", 1))
    done = run_standin(tmp_path, argv)
    assert done.returncode == 1
    assert b"JSONDecodeError" in done.stderr
    assert not any((tmp_path / "out").glob("video_*"))
