"""Frame count and frame rate of an MP4's video track, read from its ``moov`` box.

Two launch decisions need them before anything is sent: the seed bound (Transfer1 seeds
clip ``i`` with ``seed + i`` through ``np.random.RandomState``, which accepts at most
2**32 - 1; docs/cosmos.md, "Seeds") and the frame rate of a 4K upscale of a loose file.
Only the ISO base media boxes on the path ``moov/trak/mdia/{hdlr,mdhd,minf/stbl/stsz}``
are read, so no media library is needed; anything unreadable gives None (the caller then
falls back to what it knows), never an exception.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# A moov box larger than this is not read (real ones are kilobytes to a few megabytes).
MAX_MOOV_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class VideoInfo:
    """What the video track says about itself.

    Attributes:
        frames: Number of frames (samples) of the first video track.
        fps: Frames per second, rounded to a whole number (at least 1).
    """

    frames: int
    fps: int


def probe_video(path: Path) -> VideoInfo | None:
    """Return the first video track's frame count and rate, or None when unreadable."""
    try:
        with path.open("rb") as handle:
            moov = _find_top_level(handle, b"moov")
    except OSError:
        return None
    if moov is None:
        return None
    for trak in _children(moov, b"trak"):
        info = _video_track(trak)
        if info is not None:
            return info
    return None


def _find_top_level(handle: BinaryIO, wanted: bytes) -> bytes | None:
    """Return the payload of the first top-level box named ``wanted``."""
    while True:
        header = handle.read(8)
        if len(header) < 8:
            return None
        size, kind = struct.unpack(">I4s", header)
        header_len = 8
        if size == 1:
            large = handle.read(8)
            if len(large) < 8:
                return None
            size = struct.unpack(">Q", large)[0]
            header_len = 16
        payload_len = None if size == 0 else size - header_len
        if payload_len is not None and payload_len < 0:
            return None
        if kind == wanted:
            if payload_len is None or payload_len > MAX_MOOV_BYTES:
                return None
            payload = handle.read(payload_len)
            return payload if len(payload) == payload_len else None
        if payload_len is None:
            return None
        handle.seek(payload_len, 1)


def _boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    """Split ``data`` into (type, payload) boxes; stop at the first malformed one."""
    found = []
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, offset)
        header_len = 8
        if size == 1 and offset + 16 <= len(data):
            size = struct.unpack_from(">Q", data, offset + 8)[0]
            header_len = 16
        elif size == 0:
            size = len(data) - offset
        if size < header_len or offset + size > len(data):
            break
        found.append((kind, data[offset + header_len : offset + size]))
        offset += size
    return found


def _children(data: bytes, kind: bytes) -> list[bytes]:
    return [payload for name, payload in _boxes(data) if name == kind]


def _video_track(trak: bytes) -> VideoInfo | None:
    mdia = next(iter(_children(trak, b"mdia")), None)
    if mdia is None:
        return None
    hdlr = next(iter(_children(mdia, b"hdlr")), None)
    if hdlr is None or len(hdlr) < 12 or hdlr[8:12] != b"vide":
        return None
    mdhd = next(iter(_children(mdia, b"mdhd")), None)
    stbl = b""
    for minf in _children(mdia, b"minf"):
        stbl = next(iter(_children(minf, b"stbl")), b"")
    stsz = next(iter(_children(stbl, b"stsz")), None)
    if mdhd is None or stsz is None or len(stsz) < 12:
        return None
    frames = struct.unpack_from(">I", stsz, 8)[0]
    if mdhd[0] == 1 and len(mdhd) >= 32:
        timescale, duration = struct.unpack_from(">IQ", mdhd, 20)
    elif len(mdhd) >= 20:
        timescale, duration = struct.unpack_from(">II", mdhd, 12)
    else:
        return None
    if frames <= 0 or timescale <= 0 or duration <= 0:
        return None
    fps = max(1, round(frames * timescale / duration))
    return VideoInfo(frames=frames, fps=fps)
