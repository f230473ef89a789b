"""Finding and fingerprinting a prompt's input videos in a local folder."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

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
# An image2video prompt's image (Cosmos 3), used when the folder has no color.mp4.
IMAGE_NAMES = ("image.jpg", "image.jpeg", "image.png", "image.webp")
_CHUNK = 1024 * 1024
T = TypeVar("T")


class HashCancelled(Exception):
    """Raised inside a hashing thread once its caller was cancelled (internal)."""


async def in_thread(function: Callable[[threading.Event], T]) -> T:
    """Run ``function(cancelled)`` in a thread; a cancel of the caller stops it quickly.

    Hashing an 8 GB input takes seconds. ``asyncio.to_thread`` alone cannot stop a
    thread, and ``asyncio.run`` waits for its threads before it returns, so Ctrl+C would
    wait for the whole file. The function is given an Event that is set when the
    awaiting task is cancelled; hashing checks it between 1 MiB chunks.
    """
    cancelled = threading.Event()
    try:
        return await asyncio.to_thread(function, cancelled)
    except asyncio.CancelledError:
        cancelled.set()
        raise


def sha256_of(
    path: Path, cancelled: threading.Event | None = None, head: bytes = b""
) -> tuple[str, int]:
    """Return the sha256 and size of ``path`` read in chunks (``head`` already read).

    Raises:
        HashCancelled: When ``cancelled`` is set (checked between chunks).
        OSError: When the file cannot be read.
    """
    digest = hashlib.sha256(head)
    size = len(head)
    with path.open("rb") as handle:
        handle.seek(size)
        while chunk := handle.read(_CHUNK):
            if cancelled is not None and cancelled.is_set():
                raise HashCancelled(str(path))
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


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
    image = next((folder / n for n in IMAGE_NAMES if (folder / n).is_file()), None)
    if "color" not in found and image is not None:
        return {"image": image}  # an image2video prompt (Cosmos 3)
    if "color" not in found:
        raise ValidationError(
            f"{folder} has no color.mp4; put the input video there as color.mp4 "
            "(depth.mp4, segmentation.mp4, edge.mp4, vis.mp4 are optional), or an image "
            "as image.jpg for Cosmos 3's image2video",
            field="video_dir",
        )
    return found


def _is_image(head: bytes) -> bool:
    """True for a JPEG, PNG or WebP header (Cosmos 3's image extensions, common.py:53)."""
    return (
        head.startswith(b"\xff\xd8\xff")
        or head.startswith(b"\x89PNG")
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
    )


def fingerprint(role: str, path: Path, cancelled: threading.Event | None = None) -> InputFile:
    """Hash a video and check that it is a readable MP4 file.

    Raises:
        ValidationError: When the file cannot be read, is empty or is not an MP4.
        HashCancelled: When ``cancelled`` is set (run it through :func:`in_thread`).
    """
    try:
        with path.open("rb") as handle:
            head = handle.read(12)
        if role == "image":
            if not _is_image(head):
                raise ValidationError(
                    f"{path} is not a JPEG, PNG or WebP image; re-export it as one",
                    field="video_dir",
                )
        elif len(head) < 12 or head[4:8] != b"ftyp":
            raise ValidationError(
                f"{path} is not an MP4 video (no 'ftyp' header); re-export it as MP4",
                field="video_dir",
            )
        sha256, size = sha256_of(path, cancelled, head)
    except OSError as exc:
        raise ValidationError(
            f"cannot read {path}: {exc.strerror or exc}; check that the file exists and is "
            "readable",
            field="video_dir",
        ) from exc
    return InputFile(role=role, path=path.resolve(), sha256=sha256, size=size)


def scan_inputs(
    video_dir: Path, allow_mismatch: bool = False, cancelled: threading.Event | None = None
) -> list[InputFile]:
    """Find, fingerprint and check every input video of ``video_dir`` (color first).

    Raises:
        ValidationError: A missing folder or color.mp4, a file that is not a readable
            video, or (unless ``allow_mismatch``) a control whose frame count or resolution
            differs from color.mp4.
        HashCancelled: When ``cancelled`` is set (run it through :func:`in_thread`).
    """
    found = find_videos(video_dir)
    inputs = [fingerprint(role, path, cancelled) for role, path in found.items()]
    require_consistent(check_videos(found), allow_mismatch)
    return inputs
