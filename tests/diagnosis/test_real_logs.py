"""Every real log excerpt of the corpus, through the path a run's log takes and the CLI.

The lifecycle path: Docker log frames -> LogFollower (decoder, normaliser) -> LocalLog
(run.log) with the ProgressTracker fed by the follower -> read_log_lines -> classify.
The CLI path: ``cosmos diagnose FILE --json``. Both must give the manifest's verdict:
the right kind (or "unknown" when the deciding line is not in the excerpt, never a
wrong kind), the fix word, the rank and the phase.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cosmos_tui.cli import cli
from cosmos_tui.engine.failures import classify
from cosmos_tui.engine.logs import LocalLog, LogFollower, LogHub, read_log_lines
from cosmos_tui.engine.progress import ProgressTracker, parser_for

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "real_logs"
MANIFEST = tomllib.loads((CORPUS / "manifest.toml").read_text(encoding="utf-8"))["excerpt"]
BASE_NS = 1_795_000_000 * 1_000_000_000


def frames(data: bytes) -> list[bytes]:
    """Docker log frames (timestamps=1) of a raw log, one per line."""
    from datetime import UTC, datetime

    out = []
    for number, line in enumerate(data.split(b"\n")[:-1]):
        seconds, frac = divmod(BASE_NS + number * 1000, 1_000_000_000)
        stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        out.append(f"{stamp}.{frac:09d}Z ".encode() + line + b"\n")
    return out


def check(entry: dict[str, Any], kind: str, fix: str, rank: int | None, phase: str | None) -> None:
    expected = entry["kind"]
    if entry["decisive"]:
        assert kind == expected, (entry["file"], kind)
    else:
        assert kind in (expected, "unknown"), (entry["file"], kind)
    if kind == expected or kind == "unknown":
        assert entry["fix"] in fix.lower(), (entry["file"], fix)
    if "rank" in entry:
        assert rank == entry["rank"], (entry["file"], rank)
    if entry["phase"]:
        assert entry["phase"] in (phase or ""), (entry["file"], phase)
    if "transient" in entry and kind == expected:
        pass  # checked through the JSON below


def test_corpus_has_25_real_excerpts_with_sources() -> None:
    assert len(MANIFEST) >= 25
    for entry in MANIFEST:
        assert entry["url"].startswith("https://github.com/"), entry
        data = (CORPUS / entry["file"]).read_bytes()
        assert data and data.isascii(), entry["file"]


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
async def test_excerpt_through_the_run_log_path(entry: dict[str, Any], tmp_path: Path) -> None:
    local = LocalLog(tmp_path / "run.log")
    local.open()
    tracker = ProgressTracker(parser_for(entry["profile"]), 0.0, None)
    follower = LogFollower("rs_test", local, LogHub(), lambda ls: tracker.feed(ls, 1.0))

    async def stream() -> AsyncIterator[bytes]:
        for item in frames((CORPUS / entry["file"]).read_bytes()):
            yield item

    await follower.follow(stream())
    local.close()
    lines = read_log_lines(local.path)
    failure = classify(entry.get("exit_code"), lines, profile=entry["profile"])
    check(entry, failure.kind.value, failure.message, failure.rank, failure.phase)
    if entry["phase"]:
        assert entry["phase"] in tracker.snapshot(2.0).phase
    if entry.get("transient") is not None and failure.kind.value == entry["kind"]:
        assert failure.transient == entry["transient"]


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_excerpt_through_cosmos_diagnose(entry: dict[str, Any]) -> None:
    args = ["diagnose", str(CORPUS / entry["file"]), "--json", "--profile", entry["profile"]]
    if "exit_code" in entry:
        args += ["--exit-code", str(entry["exit_code"])]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"kind", "transient", "fix", "detail", "phase", "rank"} <= data.keys()
    check(entry, data["kind"], data["fix"], data["rank"], data["phase"])
    if entry["decisive"]:
        assert data["detail"], "a decisive excerpt names its deciding line"
        assert "Traceback" not in data["detail"] and "ChildFailedError" not in data["detail"]
