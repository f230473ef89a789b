"""The input browser's services: folders of videos or rendered sequences, and their frames.

Everything here is plain data and async functions over threads (probing, decoding and
encoding are CPU work), so the TUI's Inputs screen stays a view: it never blocks on a file.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import av
from PIL import Image

from cosmos_tui.engine.frames import auto_depth_map, read_depth, read_rgb
from cosmos_tui.engine.input_checks import check_videos
from cosmos_tui.engine.inputs import VIDEO_NAMES, find_videos
from cosmos_tui.engine.prepare import PrepareOptions, PrepareResult, prepare_sequence
from cosmos_tui.engine.sequences import discover, scan_sequence
from cosmos_tui.engine.video_stream import probe_stream
from cosmos_tui.errors import CosmosError, ValidationError

ROLES = ("color", "depth", "seg", "edge", "vis")


@dataclass(frozen=True)
class InputFolder:
    """One folder of the input browser.

    Attributes:
        name: The folder's name.
        path: The folder.
        videos: Roles with a video (color.mp4, depth.mp4 ...).
        sequence: Roles with an image sequence (color.0001.png ...).
        frames: Frames of color.mp4 (or of the color sequence when there is no video).
        width: Width in pixels, when known.
        height: Height in pixels, when known.
        fps: Frames per second of color.mp4, when there is one.
        problems: What the checks found wrong (mismatches, unreadable files).
        used_by: Ids of the prompts made from this folder.
    """

    name: str
    path: Path
    videos: tuple[str, ...] = ()
    sequence: tuple[str, ...] = ()
    frames: int | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    problems: tuple[str, ...] = ()
    used_by: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """``videos``, ``sequence``, ``both`` or ``empty``."""
        if self.videos and self.sequence:
            return "both"
        return "videos" if self.videos else "sequence" if self.sequence else "empty"

    @property
    def passes(self) -> tuple[str, ...]:
        """Every role present as a video or a sequence, in Cosmos order."""
        return tuple(r for r in ROLES if r in self.videos or r in self.sequence)


def inspect_folder(folder: Path, used_by: Iterable[str] = ()) -> InputFolder:
    """Describe one folder; problems are recorded, never raised."""
    used = tuple(used_by)
    problems: list[str] = []
    videos: dict[str, Path] = {}
    frames = width = height = None
    fps = None
    if any((folder / n).exists() for names in VIDEO_NAMES.values() for n in names):
        try:
            videos = find_videos(folder)
            report = check_videos(videos)
            color = report.videos["color"]
            frames, width, height, fps = color.frames, color.width, color.height, color.fps
            problems.extend(report.mismatches)
        except CosmosError as exc:
            problems.append(exc.message)
    sequence: tuple[str, ...] = ()
    try:
        found, _, _ = discover(folder)
        sequence = tuple(r for r in ROLES if r in found)
    except OSError as exc:
        problems.append(f"cannot list {folder}: {exc.strerror or exc}")
    if sequence and not videos:
        try:
            checked = scan_sequence(folder)
            frames, width, height = checked.frame_count, checked.width, checked.height
        except ValidationError as exc:
            problems.append(exc.message.replace(f"{folder}: ", "", 1))
    return InputFolder(
        name=folder.name,
        path=folder,
        videos=tuple(r for r in ROLES if r in videos),
        sequence=sequence,
        frames=frames,
        width=width,
        height=height,
        fps=fps,
        problems=tuple(problems),
        used_by=used,
    )


def _scan(roots: Iterable[Path], used: Mapping[Path, tuple[str, ...]]) -> list[InputFolder]:
    folders: list[InputFolder] = []
    seen: set[Path] = set()
    for root in roots:
        try:
            children = sorted(p for p in root.iterdir() if p.is_dir())
        except OSError:
            continue
        for child in children:
            if child.name.startswith(".") or child.resolve() in seen:
                continue
            seen.add(child.resolve())
            folders.append(inspect_folder(child, used.get(child.resolve(), ())))
    return folders


async def list_input_folders(
    roots: Iterable[Path], used: Mapping[Path, tuple[str, ...]] | None = None
) -> list[InputFolder]:
    """Describe every folder directly under ``roots`` (in a thread).

    Args:
        roots: Folders to look in (``paths.inputs_dir`` and any the user opened).
        used: Resolved folder -> ids of the prompts made from it.
    """
    return await asyncio.to_thread(_scan, list(roots), dict(used or {}))


async def prepare_folder(
    folder: Path,
    on_progress: Callable[[int, int], None] | None = None,
    options: PrepareOptions | None = None,
) -> PrepareResult:
    """Prepare a sequence folder's videos next to its frames (``cosmos prepare`` in a thread)."""
    return await asyncio.to_thread(prepare_sequence, folder, folder, options, on_progress)


class FrameCache:
    """Frames of videos and sequences as small PIL images, decoded in threads and cached.

    A frame is decoded once per (file, modification time, frame, size); the least recently
    used are dropped past ``capacity``. Decoding a 4K frame takes a while: it happens in a
    thread, so the UI keeps answering keys meanwhile.
    """

    def __init__(self, capacity: int = 96) -> None:
        self.capacity = capacity
        self._frames: OrderedDict[tuple[str, int, int, int, int, bool], Image.Image] = OrderedDict()
        self._lock = threading.Lock()
        self.decoded = 0

    async def frame(
        self, source: Path, index: int, box: tuple[int, int], depth: bool = False
    ) -> Image.Image:
        """Frame ``index`` (0-based) of a video or image file, fitted into ``box``.

        ``depth`` marks a rendered depth frame: it is shown normalised as prepare would
        (near white, far black), over this frame's own range.

        Raises:
            ValidationError: When the file cannot be read or has no such frame.
        """
        try:
            stamp = source.stat().st_mtime_ns
        except OSError as exc:
            raise ValidationError(f"cannot read {source}: {exc.strerror}", str(source)) from exc
        key = (str(source), stamp, index, *box, depth)
        with self._lock:
            if key in self._frames:
                self._frames.move_to_end(key)
                return self._frames[key]
        image = await asyncio.to_thread(self._decode, source, index, box, depth)
        with self._lock:
            self._frames[key] = image
            self.decoded += 1
            while len(self._frames) > self.capacity:
                self._frames.popitem(last=False)
        return image

    @staticmethod
    def _decode(source: Path, index: int, box: tuple[int, int], depth: bool) -> Image.Image:
        try:
            if source.suffix.lower() == ".mp4":
                image = _video_frame(source, index)
            elif depth:
                mapping = auto_depth_map([source])
                image = Image.fromarray(mapping.apply(read_depth(source)))
            else:
                image = Image.fromarray(read_rgb(source))
        except (av.FFmpegError, OSError) as exc:
            raise ValidationError(f"cannot decode {source.name}: {exc}", str(source)) from exc
        image.thumbnail(box)
        return image


def _video_frame(source: Path, index: int) -> Image.Image:
    """Decode frame ``index``: seek to the keyframe before it, then decode forward."""
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        if rate and stream.time_base and index > 0:
            start = stream.start_time or 0
            target = start + int(index / float(rate) / float(stream.time_base))
            container.seek(target, stream=stream, backward=True, any_frame=False)
        else:
            target = None
        last = None
        for count, frame in enumerate(container.decode(stream)):
            last = frame
            if target is None and count >= index:
                break
            if target is not None and frame.pts is not None and frame.pts >= target:
                break
        if last is None:
            raise ValidationError(f"{source.name} has no frame {index}", str(source))
        # PyAV's stub leaves VideoFrame.to_image untyped; it returns a PIL image.
        return cast(Image.Image, last.to_image())  # type: ignore[no-untyped-call]


def frame_sources(folder: InputFolder) -> dict[str, tuple[Path, int]]:
    """Role -> (file to show, frames in it): videos first, else the sequence's frames.

    For a sequence the path is a placeholder resolved per frame by :func:`sequence_frame`.
    """
    sources: dict[str, tuple[Path, int]] = {}
    for role in folder.passes:
        names = VIDEO_NAMES[role]
        video = next((folder.path / n for n in names if (folder.path / n).is_file()), None)
        if video is not None:
            sources[role] = (video, folder.frames or 1)
        elif role in folder.sequence:
            sources[role] = (folder.path, folder.frames or 1)
    return sources


def sequence_frame(folder: Path, role: str, index: int) -> Path | None:
    """The file of the ``index``-th frame (0-based, in frame order) of a sequence's pass."""
    found, _, _ = discover(folder)
    frames = found.get(role, {})
    ordered = sorted(frames)
    if not 0 <= index < len(ordered):
        return None
    return frames[ordered[index]][0]


async def frame_count(video: Path) -> int:
    """Frames in ``video``, counted by PyAV in a thread.

    Raises:
        ValidationError: When the file is not a video FFmpeg can read.
    """
    return (await asyncio.to_thread(probe_stream, video)).frames
