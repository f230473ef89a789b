"""Encoding a checked image sequence into the control videos Cosmos reads.

Each pass becomes an H.264, yuv420p MP4 with even dimensions (what Transfer1's readers
and the FFmpeg in its image expect), encoded with PyAV (its wheels ship FFmpeg and
libx264). Passes are encoded in parallel into temporary files in the output folder and
renamed only when every pass succeeded and probes back with the right frame count, so a
failure leaves no partial video. ``metadata.json`` records the frames, fps, resolution,
passes, source and content hashes: a pass whose frames and settings are unchanged is not
encoded again.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Generator, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from cosmos_tui.engine.frames import (
    DepthMap,
    auto_depth_map,
    even_size,
    pad_even,
    read_depth,
    read_rgb,
)
from cosmos_tui.engine.input_checks import clip_note
from cosmos_tui.engine.prepare_meta import (
    read_metadata,
    sha256_file,
    source_hash,
    up_to_date,
    write_metadata,
)
from cosmos_tui.engine.sequences import DEFAULT_PATTERNS, FramePass, Sequence, scan_sequence
from cosmos_tui.engine.video_stream import probe_stream
from cosmos_tui.errors import ValidationError

ROLE_VIDEOS: dict[str, str] = {
    "color": "color.mp4",
    "depth": "depth.mp4",
    "seg": "segmentation.mp4",
    "edge": "edge.mp4",
    "vis": "vis.mp4",
}
ProgressCallback = Callable[[int, int], None]
READ_AHEAD = 3  # frames decoded ahead of the encoder, per pass


@dataclass(frozen=True)
class PrepareOptions:
    """How to encode.

    Attributes:
        fps: Frames per second of the videos.
        crf: libx264 constant rate factor (lower is better quality, bigger files).
        preset: libx264 speed preset.
        depth_near: Depth value shown white; None takes the sequence's nearest.
        depth_far: Depth value shown black; None takes the sequence's farthest.
        depth_convention: ``distance`` (larger is farther) or ``disparity``.
        patterns: Regular expressions with ``pass`` and ``frame`` groups for file names.
        workers: Passes encoded at once; None means one per CPU (at most one per pass).
    """

    fps: float = 24.0
    crf: int = 18
    preset: str = "fast"
    depth_near: float | None = None
    depth_far: float | None = None
    depth_convention: str = "distance"
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    workers: int | None = None


@dataclass(frozen=True)
class PrepareResult:
    """What a prepare did.

    Attributes:
        out_dir: Where the videos are.
        frames: Frames per video.
        first: First frame number of the sequence.
        last: Last frame number.
        fps: Frames per second.
        width: Video width (even).
        height: Video height (even).
        encoded: Roles encoded this time.
        unchanged: Roles whose video was already up to date.
        notes: Things worth knowing (ignored passes, padding).
        depth: The depth mapping used, when there is a depth pass.
    """

    out_dir: Path
    frames: int
    first: int
    last: int
    fps: float
    width: int
    height: int
    encoded: tuple[str, ...]
    unchanged: tuple[str, ...]
    notes: tuple[str, ...] = ()
    depth: DepthMap | None = None
    videos: Mapping[str, Path] = field(default_factory=dict)


def _settings(options: PrepareOptions, role: str) -> dict[str, Any]:
    settings: dict[str, Any] = {"fps": options.fps, "crf": options.crf, "preset": options.preset}
    if role == "depth":
        settings["depth_near"] = options.depth_near
        settings["depth_far"] = options.depth_far
        settings["depth_convention"] = options.depth_convention
    return settings


def _check_writable(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=out_dir, prefix=".cosmos-write-check.")
        os.close(handle)
        Path(name).unlink()
    except OSError as exc:
        raise ValidationError(
            f"cannot write to {out_dir}: {exc.strerror or exc}; choose a writable folder "
            "with --out",
            field="out",
        ) from exc


class _Progress:
    """A thread-safe frame counter that reports to one callback."""

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total, self.done, self.callback = total, 0, callback
        self.lock = threading.Lock()

    def step(self) -> None:
        with self.lock:
            self.done += 1
            if self.callback is not None:
                self.callback(self.done, self.total)


def _load(role: str, depth: DepthMap | None, path: Path) -> av.VideoFrame:
    """One frame ready for the encoder (depth normalised to grey, odd sizes padded)."""
    if role == "depth" and depth is not None:
        return av.VideoFrame.from_ndarray(pad_even(depth.apply(read_depth(path))), format="gray")
    return av.VideoFrame.from_ndarray(pad_even(read_rgb(path)), format="rgb24")


def _frames(frame_pass: FramePass, depth: DepthMap | None) -> Generator[av.VideoFrame, None, None]:
    """The pass's frames, decoded by a reader thread a few frames ahead of the encoder."""
    paths = iter(frame_pass.frames.values())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read") as reader:
        pending: deque[Future[av.VideoFrame]] = deque(
            reader.submit(_load, frame_pass.role, depth, path)
            for path in itertools.islice(paths, READ_AHEAD)
        )
        while pending:
            frame = pending.popleft().result()
            following = next(paths, None)
            if following is not None:
                pending.append(reader.submit(_load, frame_pass.role, depth, following))
            yield frame


def _encode(
    frame_pass: FramePass,
    target: Path,
    sequence: Sequence,
    options: PrepareOptions,
    depth: DepthMap | None,
    progress: _Progress,
    stop: threading.Event,
) -> None:
    width, height = even_size(sequence.width, sequence.height)
    with av.open(str(target), mode="w", format="mp4") as container:
        stream = container.add_stream(
            "libx264",
            rate=Fraction(options.fps).limit_denominator(1001),
            options={"crf": str(options.crf), "preset": options.preset},
        )
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        # frame and slice threads, as the ffmpeg command line uses (PyAV's default is
        # slice threads only, which made 1080p encoding about 1.5 times slower here)
        stream.codec_context.thread_type = "AUTO"
        frames = _frames(frame_pass, depth)
        try:
            for frame in frames:
                if stop.is_set():
                    return
                container.mux(stream.encode(frame))
                progress.step()
        finally:
            frames.close()
        container.mux(stream.encode(None))


def prepare_sequence(
    seq_dir: Path,
    out_dir: Path,
    options: PrepareOptions | None = None,
    on_progress: ProgressCallback | None = None,
) -> PrepareResult:
    """Check ``seq_dir``'s passes and encode the changed ones into ``out_dir``.

    Args:
        seq_dir: The folder of rendered frames.
        out_dir: Where the videos and metadata.json go (created if needed).
        options: Encoding options.
        on_progress: Called with (frames done, frames to do) from worker threads.

    Raises:
        ValidationError: Naming the frames or files at fault: a bad sequence, an
            unreadable frame, a folder that cannot be written. No video is left behind.
    """
    options = options or PrepareOptions()
    if not (0 < options.fps <= 1000):
        raise ValidationError(f"--fps must be between 0 and 1000, not {options.fps}", "fps")
    sequence = scan_sequence(seq_dir, options.patterns)
    out_dir = out_dir.expanduser()
    _check_writable(out_dir)
    previous = read_metadata(out_dir).get("passes", {})
    digests = {role: source_hash(p) for role, p in sequence.passes.items()}
    todo: list[str] = []
    for role in sequence.passes:
        settings = _settings(options, role)
        entry = previous.get(role) if isinstance(previous, dict) else None
        if not up_to_date(entry, digests[role], settings, out_dir / ROLE_VIDEOS[role]):
            todo.append(role)
    stale = _stale_videos(out_dir, sequence, previous if isinstance(previous, dict) else {})
    depth = _depth_map(sequence, options, previous, todo)
    notes = [f"ignored pass '{name}' (no Cosmos role)" for name in sequence.ignored]
    clip = clip_note(sequence.frame_count)
    if clip:
        notes.append(clip)
    width, height = even_size(sequence.width, sequence.height)
    if (width, height) != (sequence.width, sequence.height):
        notes.append(
            f"frames are {sequence.width}x{sequence.height}; padded to {width}x{height} "
            "(H.264 yuv420p needs even dimensions)"
        )
    if todo:
        _encode_all(sequence, out_dir, options, depth, todo, on_progress)
    for video in stale:
        video.unlink(missing_ok=True)
        notes.append(f"removed {video.name}: the sequence has no such pass any more")
    write_metadata(
        sequence,
        out_dir,
        options.fps,
        ROLE_VIDEOS,
        {role: _settings(options, role) for role in sequence.passes},
        depth,
        digests,
    )
    return PrepareResult(
        out_dir=out_dir,
        frames=sequence.frame_count,
        first=sequence.first,
        last=sequence.last,
        fps=options.fps,
        width=width,
        height=height,
        encoded=tuple(todo),
        unchanged=tuple(r for r in sequence.passes if r not in todo),
        notes=tuple(notes),
        depth=depth,
        videos={role: out_dir / ROLE_VIDEOS[role] for role in sequence.passes},
    )


def _stale_videos(out_dir: Path, sequence: Sequence, previous: dict[str, Any]) -> list[Path]:
    """Videos of roles the sequence no longer has; only ones this tool made (by hash).

    Raises:
        ValidationError: When such a video was not made from this sequence (it would
            stand beside the new ones and fail the frame checks); nothing is removed.
    """
    stale = []
    for role, name in ROLE_VIDEOS.items():
        video = out_dir / name
        if role in sequence.passes or not video.is_file():
            continue
        entry = previous.get(role)
        recorded = entry.get("video_sha256") if isinstance(entry, dict) else None
        if recorded is None or recorded != sha256_file(video):
            raise ValidationError(
                f"{video} is not from this sequence, which has no {role} pass: remove it "
                "or prepare into another folder (--out)",
                "out",
            )
        stale.append(video)
    return stale


def _depth_map(
    sequence: Sequence, options: PrepareOptions, previous: Any, todo: list[str]
) -> DepthMap | None:
    depth_pass = sequence.passes.get("depth")
    if depth_pass is None:
        return None
    if "depth" not in todo:
        recorded = previous.get("depth", {}).get("depth", {})
        with contextlib.suppress(TypeError, KeyError):
            return DepthMap(**recorded)
    auto = None
    if options.depth_near is None or options.depth_far is None:
        auto = auto_depth_map(depth_pass.frames.values(), options.depth_convention)
    near = options.depth_near if options.depth_near is not None else auto.near  # type: ignore[union-attr]
    far = options.depth_far if options.depth_far is not None else auto.far  # type: ignore[union-attr]
    if near == far:
        raise ValidationError(
            f"depth near and far are both {near}; the depth pass is flat or --depth-near "
            "equals --depth-far",
            field="depth",
        )
    if options.depth_convention == "distance" and not 0 < near < far:
        raise ValidationError(
            f"depth near ({near}) and far ({far}) must be distances with 0 < near < far; "
            "for a pass where larger is nearer use --depth-convention disparity",
            field="depth",
        )
    return DepthMap(near=near, far=far, convention=options.depth_convention)


def _encode_all(
    sequence: Sequence,
    out_dir: Path,
    options: PrepareOptions,
    depth: DepthMap | None,
    todo: list[str],
    on_progress: ProgressCallback | None,
) -> None:
    temps: dict[str, Path] = {}
    stop = threading.Event()
    progress = _Progress(len(todo) * sequence.frame_count, on_progress)
    workers = options.workers or min(len(todo), os.cpu_count() or 1)
    try:
        for role in todo:
            handle, name = tempfile.mkstemp(dir=out_dir, prefix=f".{role}.", suffix=".part")
            os.close(handle)
            temps[role] = Path(name)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prepare") as pool:
            futures = [
                pool.submit(
                    _encode,
                    sequence.passes[role],
                    temps[role],
                    sequence,
                    options,
                    depth,
                    progress,
                    stop,
                )
                for role in todo
            ]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            if any(f.exception() for f in done):
                stop.set()
            for future in futures:
                future.result()
        for role, temp in temps.items():
            frames = probe_stream(temp).frames
            if frames != sequence.frame_count:
                raise ValidationError(
                    f"{ROLE_VIDEOS[role]} came out with {frames} frames, not "
                    f"{sequence.frame_count}; nothing was written",
                    field=role,
                )
        for role, temp in temps.items():
            os.replace(temp, out_dir / ROLE_VIDEOS[role])
    except av.FFmpegError as exc:
        raise ValidationError(f"encoding failed: {exc}", field="out") from exc
    except OSError as exc:
        raise ValidationError(
            f"cannot write to {out_dir}: {exc.strerror or exc}; check its space and permissions",
            field="out",
        ) from exc
    finally:
        stop.set()
        for temp in temps.values():
            temp.unlink(missing_ok=True)
