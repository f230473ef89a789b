r"""Diagnose any Cosmos log file: the same verdict a run gets, for logs of any origin.

``cosmos diagnose`` reads logs this tool never started (pasted from a terminal, sent by
a colleague). The file is streamed in blocks through the same normaliser a run's log
goes through (:func:`~cosmos_tui.engine.logs.clean_lines`: ANSI stripped, ``\\r``
redraws and text glued after a tqdm bar split, invalid UTF-8 replaced) into the same
scanner and classifier, so memory stays bounded whatever the file's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from cosmos_tui.engine.failures import Failure, diagnose
from cosmos_tui.engine.logs import clean_lines
from cosmos_tui.engine.logscan import LogScanner
from cosmos_tui.errors import ValidationError

BLOCK = 1024 * 1024
MAX_RAW_LINE = 64 * 1024
_SNIFF = 8192


def stream_lines(handle: BinaryIO, block: int = BLOCK) -> Iterator[str]:
    """Yield the clean display lines of a binary stream, reading ``block`` bytes at a time.

    A line longer than :data:`MAX_RAW_LINE` bytes is cut there (the rest of it is
    skipped), so a file without newlines cannot grow the buffer.
    """
    pending = b""
    skipping = False
    while data := handle.read(block):
        if skipping:  # the rest of an over-long line: drop it without looking at it
            cut = data.find(b"\n")
            if cut < 0:
                continue
            data, skipping = data[cut + 1 :], False
        pending += data
        parts = pending.split(b"\n")
        pending = parts.pop()
        for raw in parts:
            yield from clean_lines(raw)
        if len(pending) > MAX_RAW_LINE:
            yield from clean_lines(pending[:MAX_RAW_LINE])
            pending, skipping = b"", True
    if pending and not skipping:
        yield from clean_lines(pending)


def diagnose_lines(
    lines: Iterable[str], exit_code: int | None = None, profile: str = "transfer1"
) -> tuple[Failure, int]:
    """Diagnose clean lines; return the verdict and how many lines were read."""
    scanner = LogScanner(profile)
    scanner.feed_all(lines)
    return diagnose(scanner, exit_code), scanner.lines


def guess_profile(head: bytes) -> str:
    """The model family that wrote a log, from the module paths in its first lines."""
    if b"cosmos_framework" in head:
        return "cosmos3"
    if b"cosmos_transfer2" in head:
        return "transfer2.5"
    if b"cosmos_predict2" in head:
        return "predict2"
    return "transfer1"


def diagnose_file(
    path: Path, exit_code: int | None = None, profile: str | None = None
) -> tuple[Failure, int]:
    """Diagnose the log at ``path`` (``profile`` None: guessed from the log's first lines).

    Raises:
        ValidationError: When the file is missing, unreadable, a folder, binary or empty.

    """
    try:
        with path.open("rb") as handle:
            head = handle.read(_SNIFF)
            if not head:
                raise ValidationError(f"{path} is empty; there is nothing to diagnose", "logfile")
            if b"\0" in head:
                raise ValidationError(
                    f"{path} looks binary (it holds NUL bytes); give the text log "
                    "('docker logs CONTAINER > run.log', or 'cosmos logs RUN_ID')",
                    "logfile",
                )
            handle.seek(0)
            family = profile or guess_profile(head)
            return diagnose_lines(stream_lines(handle), exit_code, family)
    except FileNotFoundError as exc:
        raise ValidationError(f"{path} does not exist; give the path of a log file") from exc
    except IsADirectoryError as exc:
        raise ValidationError(f"{path} is a folder; give the path of a log file") from exc
    except PermissionError as exc:
        raise ValidationError(f"{path} cannot be read (permission denied)") from exc
    except OSError as exc:
        raise ValidationError(f"{path} cannot be read: {exc.strerror or exc}") from exc


def failure_json(failure: Failure, lines: int) -> dict[str, Any]:
    """The ``--json`` form of a diagnosis (docs/cli-json.md)."""
    return {
        "kind": failure.kind.value,
        "confident": failure.confident,
        "transient": failure.transient,
        "fix": failure.message,
        "detail": failure.detail or None,
        "line": failure.error_line + 1 if failure.error_line is not None else None,
        "rank": failure.rank,
        "phase": failure.phase,
        "exit_code": failure.exit_code,
        "context": list(failure.context),
        "lines": lines,
    }
