"""What a video file really holds: frame count, fps, resolution and codec, read with PyAV.

PyAV ships its own FFmpeg in its wheels, so no system ffmpeg or ffprobe is needed. A file
that FFmpeg cannot open as a video is an error, never a guessed value.

:mod:`cosmos_tui.engine.video_probe` is the other reader: it takes the frame count and
rate from the MP4 header alone (no media library, None when unreadable) for launch-time
decisions on files already accepted. This module decodes, so it is the one that checks
an input before it is accepted (``create prompt``, ``inspect``, ``prepare``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import av

from cosmos_tui.errors import ValidationError


@dataclass(frozen=True)
class StreamInfo:
    """The facts of one video stream.

    Attributes:
        path: The file.
        frames: Frames in the stream, counted from its packets (not the header's claim).
        fps: Average frames per second.
        width: Width in pixels.
        height: Height in pixels.
        codec: The codec's FFmpeg name (``h264``, ``mpeg4``...).
        pix_fmt: The pixel format (``yuv420p``...), empty when FFmpeg does not say.
    """

    path: Path
    frames: int
    fps: float
    width: int
    height: int
    codec: str
    pix_fmt: str = ""

    @property
    def resolution(self) -> str:
        """``WIDTHxHEIGHT``."""
        return f"{self.width}x{self.height}"

    @property
    def fps_text(self) -> str:
        """The fps without trailing zeros (``24``, ``29.97``)."""
        return f"{self.fps:.3f}".rstrip("0").rstrip(".")


def probe_stream(path: Path) -> StreamInfo:
    """Open ``path``, decode its first frame and count its frames.

    Frames are counted from the demuxed packets of the first video stream (cheap: no
    decoding past the first frame), which is exact for the MP4s Cosmos reads.

    Raises:
        ValidationError: When the file is missing, unreadable, not a video, has no video
            stream, or its first frame does not decode.
    """
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.video:
                raise ValidationError(
                    f"{path} has no video stream; give a video file (MP4, H.264)",
                    field=str(path),
                )
            stream = container.streams.video[0]
            first = next(container.decode(stream), None)
            if first is None:
                raise ValidationError(
                    f"{path} has a video stream without a decodable frame; re-export it",
                    field=str(path),
                )
            container.seek(0, stream=stream)
            frames = sum(1 for packet in container.demux(stream) if packet.size)
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            return StreamInfo(
                path=path,
                frames=frames,
                fps=fps if math.isfinite(fps) else 0.0,
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                codec=stream.codec_context.name,
                pix_fmt=stream.codec_context.pix_fmt or "",
            )
    except av.FFmpegError as exc:
        raise ValidationError(
            f"{path} is not a video FFmpeg can read ({_reason(exc)}); re-export it as MP4",
            field=str(path),
        ) from exc
    except OSError as exc:
        raise ValidationError(
            f"cannot read {path}: {exc.strerror or exc}; check that it exists and is readable",
            field=str(path),
        ) from exc


def _reason(exc: av.FFmpegError) -> str:
    """FFmpeg's own words for a failure, without the file name it repeats."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).strip() or type(exc).__name__
