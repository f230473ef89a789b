"""metadata.json of prepared videos: what was encoded from what, for re-runs to skip.

``source_sha256`` hashes every frame number and file content of a pass; a pass whose
source hash, settings and video hash all match the recorded ones is not encoded again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cosmos_tui import __version__
from cosmos_tui.engine.frames import DepthMap, even_size
from cosmos_tui.engine.sequences import FramePass, Sequence
from cosmos_tui.errors import ValidationError

METADATA = "metadata.json"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def source_hash(frame_pass: FramePass) -> str:
    """One hash over every frame number and file content of a pass."""
    digest = hashlib.sha256()
    for number, path in frame_pass.frames.items():
        digest.update(f"{number}:{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def read_metadata(out_dir: Path) -> dict[str, Any]:
    """The recorded metadata, or an empty mapping when there is none or it is unreadable."""
    try:
        data = json.loads((out_dir / METADATA).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def up_to_date(entry: Any, digest: str, settings: dict[str, Any], video: Path) -> bool:
    """Whether a recorded pass still matches its sources, settings and video."""
    if not isinstance(entry, dict) or not video.is_file():
        return False
    if entry.get("source_sha256") != digest or entry.get("settings") != settings:
        return False
    return entry.get("video_sha256") == sha256_file(video)


def write_metadata(
    sequence: Sequence,
    out_dir: Path,
    fps: float,
    videos: Mapping[str, str],
    settings: Mapping[str, dict[str, Any]],
    depth: DepthMap | None,
    digests: Mapping[str, str],
) -> None:
    """Write metadata.json atomically (a temporary file renamed into place).

    An unchanged sequence leaves the file as it is (``created_at`` included).

    Args:
        sequence: The sequence the videos were made from.
        out_dir: The folder of the videos.
        fps: Their frames per second.
        videos: Role -> video file name.
        settings: Role -> the encoding settings that produced it.
        depth: The depth mapping used, if any.
        digests: Role -> source hash of the pass.

    Raises:
        ValidationError: When the file cannot be written.
    """
    width, height = even_size(sequence.width, sequence.height)
    passes: dict[str, Any] = {}
    for role, frame_pass in sequence.passes.items():
        video = out_dir / videos[role]
        entry: dict[str, Any] = {
            "video": video.name,
            "source": frame_pass.source,
            "frames": len(frame_pass.frames),
            "source_sha256": digests[role],
            "video_sha256": sha256_file(video),
            "settings": settings[role],
        }
        if role == "depth" and depth is not None:
            entry["depth"] = asdict(depth)
        passes[role] = entry
    data = {
        "tool": "cosmos-tui",
        "tool_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": str(sequence.folder.resolve()),
        "frames": sequence.frame_count,
        "first_frame": sequence.first,
        "last_frame": sequence.last,
        "fps": fps,
        "width": width,
        "height": height,
        "source_width": sequence.width,
        "source_height": sequence.height,
        "codec": "h264",
        "pix_fmt": "yuv420p",
        "passes": passes,
    }
    before = read_metadata(out_dir)
    if {**before, "created_at": None} == {**data, "created_at": None}:
        return  # nothing changed: the file (and its date) stays as it is
    handle, name = tempfile.mkstemp(dir=out_dir, prefix=".metadata.", suffix=".part")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=2, sort_keys=True)
            stream.write("\n")
        os.replace(name, out_dir / METADATA)
    except OSError as exc:
        Path(name).unlink(missing_ok=True)
        raise ValidationError(f"cannot write {out_dir / METADATA}: {exc}", field="out") from exc
