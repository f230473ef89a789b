"""``cosmos diagnose``: output forms and every kind of bad input (never a traceback)."""

from __future__ import annotations

import io
import json
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cosmos_tui.cli import cli
from cosmos_tui.engine.diagnose import stream_lines

OOM = (
    "[rank1]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 71.00 GiB. GPU 1 "
    "has a total capacity of 79.19 GiB of which 8.00 GiB is free."
)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["diagnose", *args], catch_exceptions=False)


def test_text_output_names_kind_fix_detail_rank_and_phase(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text(
        "[12-01 10:00:00|INFO|world_generation_pipeline.py:615:_run_model] Starting diffusion "
        f"sampling\n{OOM}\n",
        encoding="utf-8",
    )
    result = run(str(log), "--exit-code", "1")
    assert result.exit_code == 0
    assert "kind:      gpu_oom" in result.output
    assert "lower the resolution" in result.output
    assert "(line 2, rank 1)" in result.output
    assert "phase:     generating" in result.output


def test_json_has_the_documented_keys(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text(OOM + "\n", encoding="utf-8")
    data = json.loads(run(str(log), "--json").output)
    assert data["kind"] == "gpu_oom" and data["rank"] == 1 and data["line"] == 1
    assert data["transient"] is False and data["confident"] is True
    assert data["detail"].startswith("OutOfMemoryError: CUDA out of memory")
    assert data["exit_code"] is None and data["lines"] == 1
    assert set(data) == {
        "kind", "confident", "transient", "fix", "detail", "line", "rank", "phase",
        "exit_code", "context", "lines",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "is a folder"),
        (lambda p: p.write_bytes(b""), "is empty"),
        (lambda p: p.write_bytes(b"\x7fELF\x02\x01\x00\x00binary"), "looks binary"),
    ],
)
def test_bad_files_get_one_error_line(tmp_path: Path, make, message: str) -> None:
    path = tmp_path / "run.log"
    make(path)
    result = run(str(path))
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_invalid_utf8_is_read_not_fatal(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    error = b"ValueError: Must have 'input_video' specified if sigma_max < 80"
    log.write_bytes(b"caf\xe9 \xff\xfe\n" + error)
    data = json.loads(run(str(log), "--json").output)
    assert data["kind"] == "spec_error"


def test_bad_profile_and_exit_code_are_usage_errors(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text("x\n", encoding="utf-8")
    assert run(str(log), "--profile", "nope").exit_code == 2
    assert run(str(log), "--exit-code", "one").exit_code == 2


def test_a_2_gb_log_is_streamed(tmp_path: Path) -> None:
    """A sparse 2 GiB file: a text head, then 2 GiB without a newline, the error at the end."""
    log = tmp_path / "huge.log"
    with log.open("wb") as handle:
        handle.write(b"[12-01 10:00:00|INFO|x.py:1:f] Start creating base model\n" * 200)
        handle.seek(2 * 1024**3)
        handle.write(b"\nValueError: Must have 'input_video' specified if sigma_max < 80\n")
    data = json.loads(run(str(log), "--json", "--exit-code", "1").output)
    assert data["kind"] == "spec_error"
    assert data["phase"] == "loading models"


def test_streaming_memory_stays_bounded() -> None:
    """40 MB of log lines (and one 8 MB line) pass through with a few MB held at most."""

    class Generated(io.RawIOBase):
        def __init__(self) -> None:
            self.left = 20
            self.huge = True

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray | memoryview) -> int:
            if self.huge:
                self.huge = False
                chunk = b"y" * (len(buffer) - 1) + b"\n"
            elif self.left:
                self.left -= 1
                chunk = (b"x" * 2047 + b"\n") * (len(buffer) // 2048)
            else:
                return 0
            buffer[: len(chunk)] = chunk
            return len(chunk)

    stream = io.BufferedReader(Generated(), buffer_size=2 * 1024 * 1024)
    tracemalloc.start()
    try:
        count = sum(1 for _ in stream_lines(stream, block=2 * 1024 * 1024))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count > 20_000
    assert peak < 16 * 1024 * 1024


def test_the_profile_is_guessed_from_the_log(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text(
        "[10-14 20:08:17|INFO|cosmos_transfer2/_src/transfer2/inference/inference_pipeline.py"
        ":340:generate_img2world] Generating chunk 5/6\n",
        encoding="utf-8",
    )
    assert "chunk 5/6" in json.loads(run(str(log), "--json").output)["phase"]
    assert json.loads(run(str(log), "--json", "--profile", "transfer1").output)["phase"] is None


def test_every_profile_the_guess_knows_can_be_named() -> None:
    # cosmos diagnose --profile takes each family whose logs it can read
    from cosmos_tui.cli.diagnose_cmd import PROFILES
    from cosmos_tui.engine.progress import PARSERS

    assert set(PROFILES) == set(PARSERS)
