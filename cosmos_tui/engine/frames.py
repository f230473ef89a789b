"""Reading rendered frames (PNG 8/16-bit, JPEG, EXR) into the 8-bit RGB Cosmos videos hold.

Depth is normalised the way Cosmos-Transfer1 makes its own depth controls: scaled over
the whole sequence to 0..255 with the nearest point white and the farthest black
(auxiliary/depth_anything/model/depth_anything.py:120 min-max normalises Depth Anything's
relative inverse depth, where larger means nearer). Renderers write distance (larger
means farther), so distances are mapped linearly in 1/distance between ``near`` (by
default the smallest positive finite value) and ``far`` (the largest); both can be set,
and both are recorded.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import OpenEXR
from PIL import Image, UnidentifiedImageError

from cosmos_tui.errors import FrameUnreadable, ValidationError

if TYPE_CHECKING:
    import numpy.typing as npt

_DEPTH_CHANNELS = ("Z", "depth.Z", "depth", "distance", "Y", "R", "r")


@dataclass(frozen=True)
class DepthMap:
    """How depth values become 8-bit: ``near`` -> 255 (white), ``far`` -> 0 (black).

    Attributes:
        near: The value shown white, in the pass's own units.
        far: The value shown black.
        convention: ``distance`` (larger is farther: renderers' Z) or ``disparity``
            (larger is nearer).
    """

    near: float
    far: float
    convention: str = "distance"

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Map raw depth values to uint8; values with no depth become black (far).

        Distances are mapped linearly in inverse depth (1/distance), the quantity Depth
        Anything predicts, so near objects keep their contrast as in Cosmos's own depth
        controls; zero, negative and non-finite distances (no hit) count as far.
        Disparities are mapped linearly.
        """
        raw = values.astype(np.float32, copy=False)
        scaled: npt.NDArray[np.floating[Any]]  # float32 at run time; the stubs differ per branch
        if self.convention == "distance":
            with np.errstate(divide="ignore", invalid="ignore"):
                inverse = np.where(raw > 0, 1.0 / raw, 0.0)
            low, high = 1.0 / self.far, 1.0 / self.near
            scaled = (inverse - low) / (high - low)
        else:
            scaled = (raw - self.far) / (self.near - self.far)
        scaled = np.nan_to_num(scaled, nan=0.0, posinf=0.0, neginf=0.0)
        # numpy's stubs give Any for arithmetic on a floating[Any] array
        levels: npt.NDArray[np.floating[Any]] = np.clip(np.rint(scaled * np.float32(255.0)), 0, 255)
        return levels.astype(np.uint8)


def _fail(path: Path, exc: BaseException) -> FrameUnreadable:
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return FrameUnreadable(path, " ".join(str(reason).split()))


def image_size(path: Path) -> tuple[int, int]:
    """Width and height from the file's header, without decoding the pixels.

    Raises:
        FrameUnreadable: When the file is not a readable image.
    """
    try:
        if path.suffix.lower() == ".exr":
            low, high = OpenEXR.File(str(path), header_only=True).header()["dataWindow"]
            return int(high[0] - low[0] + 1), int(high[1] - low[1] + 1)
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError, RuntimeError, UnidentifiedImageError, SyntaxError) as exc:
        raise _fail(path, exc) from exc


def _read_exr(path: Path, depth: bool) -> np.ndarray:
    channels = OpenEXR.File(str(path), separate_channels=True).channels()
    if depth:
        for name in (*_DEPTH_CHANNELS, *channels):
            if name in channels:
                return np.asarray(channels[name].pixels, dtype=np.float32)
    rgb = [channels.get(c) for c in ("R", "G", "B")]
    if all(rgb):
        linear = np.stack([np.asarray(c.pixels, dtype=np.float32) for c in rgb], axis=-1)
    else:
        first = np.asarray(next(iter(channels.values())).pixels, dtype=np.float32)
        linear = np.repeat(first[..., None], 3, axis=-1)
    # linear light to sRGB, clipped: colour EXRs are scene-linear
    clipped = np.clip(np.nan_to_num(linear), 0.0, 1.0)
    srgb = np.where(clipped <= 0.0031308, clipped * 12.92, 1.055 * clipped ** (1 / 2.4) - 0.055)
    return np.rint(srgb * 255.0).astype(np.uint8)


def read_depth(path: Path) -> np.ndarray:
    """Raw depth values of one frame as float32 (first channel of an RGB image).

    Raises:
        FrameUnreadable: When the file cannot be decoded.
    """
    try:
        if path.suffix.lower() == ".exr":
            return _read_exr(path, depth=True)
        with Image.open(path) as image:
            image.load()
            values = np.asarray(image)
    except (OSError, ValueError, RuntimeError, UnidentifiedImageError, SyntaxError) as exc:
        raise _fail(path, exc) from exc
    if values.ndim == 3:
        values = values[..., 0]
    return values.astype(np.float32)


def read_rgb(path: Path) -> np.ndarray:
    """One frame as 8-bit RGB (16-bit PNGs scaled down, alpha dropped, grey repeated).

    Raises:
        FrameUnreadable: When the file cannot be decoded.
    """
    try:
        if path.suffix.lower() == ".exr":
            return _read_exr(path, depth=False)
        with Image.open(path) as image:
            image.load()
            if image.mode in {"I;16", "I;16B", "I;16L", "I"}:
                wide = np.asarray(image).astype(np.float64)
                top = 65535.0 if image.mode.startswith("I;16") else max(wide.max(), 1.0)
                grey = np.rint(wide / top * 255.0).astype(np.uint8)
                return np.repeat(grey[..., None], 3, axis=-1)
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError, RuntimeError, UnidentifiedImageError, SyntaxError) as exc:
        raise _fail(path, exc) from exc


def auto_depth_map(paths: Iterable[Path], convention: str = "distance") -> DepthMap:
    """The sequence-wide near and far from every frame's finite values.

    Raises:
        FrameUnreadable: When a frame cannot be decoded.
        ValidationError: When no frame holds a finite value.
    """

    def extremes(path: Path) -> tuple[float, float]:
        values = read_depth(path)
        usable = np.isfinite(values) & ((values > 0) if convention == "distance" else True)
        finite = values[usable]
        if not finite.size:
            return math.inf, -math.inf
        return float(finite.min()), float(finite.max())

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        found = list(pool.map(extremes, paths))
    low = min((f[0] for f in found), default=math.inf)
    high = max((f[1] for f in found), default=-math.inf)
    if not math.isfinite(low):
        raise ValidationError("the depth pass holds no finite values", field="depth")
    if convention == "disparity":
        return DepthMap(near=high, far=low, convention=convention)
    return DepthMap(near=low, far=high, convention=convention)


def even_size(width: int, height: int) -> tuple[int, int]:
    """The size rounded up to even numbers (H.264 yuv420p needs even dimensions)."""
    return width + width % 2, height + height % 2


def pad_even(pixels: np.ndarray) -> np.ndarray:
    """Repeat the last row or column once where the size is odd."""
    height, width = pixels.shape[:2]
    pad_h, pad_w = height % 2, width % 2
    if not (pad_h or pad_w):
        return pixels
    widths = [(0, pad_h), (0, pad_w)] + [(0, 0)] * (pixels.ndim - 2)
    return np.pad(pixels, widths, mode="edge")
