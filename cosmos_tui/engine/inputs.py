"""Finding and fingerprinting a prompt's input videos in a local folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cosmos_tui.domain import InputFile
from cosmos_tui.engine.input_checks import check_videos, require_consistent
from cosmos_tui.errors import ValidationError

# role -> accepted file names, first match wins. color.mp4 is required.
VIDEO_NAMES: dict[str, tuple[str, ...]] = {
    "color": ("color.mp4",),
    "depth": ("depth.mp4",),
    "seg": ("segmentation.mp4", "seg.mp4"),
    "edge": ("edge.mp4",),
    "vis": ("vis.mp4",),
}
_CHUNK = 1024 * 1024


def find_videos(video_dir: Path) -> dict[str, Path]:
    """Return the input videos present in ``video_dir`` by role, without reading them.

    Raises:
        ValidationError: When the folder is missing or holds no color.mp4.
    """
    folder = video_dir.expanduser()
    if folder.is_file():
        raise ValidationError(
            f"{folder} is a file, not a folder; give the folder that holds color.mp4",
            field="video_dir",
        )
    if not folder.is_dir():
        raise ValidationError(
            f"video folder {folder} does not exist; give a folder that holds color.mp4",
            field="video_dir",
        )
    found: dict[str, Path] = {}
    for role, names in VIDEO_NAMES.items():
        for name in names:
            candidate = folder / name
            if candidate.is_file():
                found[role] = candidate
                break
    color = folder / "color.mp4"
    if "color" not in found and (color.exists() or color.is_symlink()):
        what = "a folder" if color.is_dir() else "a broken link or not a regular file"
        raise ValidationError(
            f"{color} is {what}; put the input video there as a regular MP4 file",
            field="video_dir",
        )
    if "color" not in found:
        raise ValidationError(
            f"{folder} has no color.mp4; put the input video there as color.mp4 "
            "(depth.mp4, segmentation.mp4, edge.mp4, vis.mp4 are optional)",
            field="video_dir",
        )
    return found


def fingerprint(role: str, path: Path) -> InputFile:
    """Hash a video and check that it is a readable MP4 file.

    Raises:
        ValidationError: When the file cannot be read, is empty or is not an MP4.
    """
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as handle:
            head = handle.read(12)
            if len(head) < 12 or head[4:8] != b"ftyp":
                raise ValidationError(
                    f"{path} is not an MP4 video (no 'ftyp' header); re-export it as MP4",
                    field="video_dir",
                )
            digest.update(head)
            size = len(head)
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise ValidationError(
            f"cannot read {path}: {exc.strerror or exc}; check that the file exists and is "
            "readable",
            field="video_dir",
        ) from exc
    return InputFile(role=role, path=path.resolve(), sha256=digest.hexdigest(), size=size)


def scan_inputs(video_dir: Path, allow_mismatch: bool = False) -> list[InputFile]:
    """Find, fingerprint and check every input video of ``video_dir`` (color first).

    Raises:
        ValidationError: A missing folder or color.mp4, a file that is not a readable
            video, or (unless ``allow_mismatch``) a control whose frame count or resolution
            differs from color.mp4.
    """
    found = find_videos(video_dir)
    inputs = [fingerprint(role, path) for role, path in found.items()]
    require_consistent(check_videos(found), allow_mismatch)
    return inputs
