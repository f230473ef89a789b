"""Writers of small rendered image sequences for the prepare tests."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import OpenEXR
from PIL import Image


def pixels(pass_name: str, frame: int, size: tuple[int, int]) -> np.ndarray:
    """A deterministic RGB picture that changes from frame to frame."""
    width, height = size
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[..., 0] = (np.arange(width) * 9 + frame * 11) % 256
    image[..., 1] = (np.arange(height)[:, None] * 13 + len(pass_name) * 40) % 256
    image[..., 2] = (frame * 29) % 256
    return image


def depth_values(frame: int, size: tuple[int, int]) -> np.ndarray:
    """Distances from 2.0 (near) to 50.0 (far) in metres."""
    width, height = size
    ramp = np.linspace(2.0, 50.0, width * height, dtype=np.float32).reshape(height, width)
    return np.roll(ramp, frame, axis=1)


def write_sequence(
    folder: Path,
    passes: Iterable[str] = ("color", "depth", "seg", "edge", "vis"),
    frames: Iterable[int] = range(1, 9),
    size: tuple[int, int] = (32, 18),
    style: str = "dot",
    depth_format: str = "png16",
) -> Path:
    """Write ``pass.####.png`` (style dot), ``pass_####.png`` (underscore) or
    ``pass/####.png`` (folder) frames; depth as 16-bit PNG, EXR or 8-bit PNG."""
    folder.mkdir(parents=True, exist_ok=True)
    frame_list = list(frames)
    for pass_name in passes:
        for frame in frame_list:
            ext = "exr" if pass_name == "depth" and depth_format == "exr" else "png"
            if style == "dot":
                path = folder / f"{pass_name}.{frame:04d}.{ext}"
            elif style == "underscore":
                path = folder / f"{pass_name}_{frame:04d}.{ext}"
            else:
                path = folder / pass_name / f"{frame:04d}.{ext}"
                path.parent.mkdir(exist_ok=True)
            write_frame(path, pass_name, frame, size, depth_format)
    return folder


def write_frame(
    path: Path, pass_name: str, frame: int, size: tuple[int, int], depth_format: str = "png16"
) -> None:
    """Write one frame of a pass."""
    if pass_name == "depth" and depth_format == "exr":
        header = {"type": OpenEXR.scanlineimage, "compression": OpenEXR.ZIP_COMPRESSION}
        OpenEXR.File(header, {"Z": depth_values(frame, size)}).write(str(path))
    elif pass_name == "depth" and depth_format == "png16":
        millimetres = (depth_values(frame, size) * 1000).astype(np.uint16)
        Image.fromarray(millimetres).save(path)
    else:
        Image.fromarray(pixels(pass_name, frame, size)).save(path)
