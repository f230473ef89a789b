"""Render a small synthetic image sequence as a DCC tool would (``<pass>.####.png``).

Five passes: color, depth, seg, edge and vis. The scene (a ball rolling over a checkered
floor past a box, camera fixed) is ray-cast analytically with numpy, so depth is true
per-pixel distance and the segmentation is exact.
Depth is written as 16-bit PNG in millimetres, clamped at a 60 m far clip. It is the
demo's input for ``cosmos prepare`` and is small enough to ship in ``inputs/``::

    python -m cosmos_tui.sandbox.render inputs/rolling-ball --frames 36 --size 96x54
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

SEG_COLORS = {
    "sky": (70, 130, 180),
    "floor": (128, 64, 128),
    "ball": (220, 20, 60),
    "box": (250, 170, 30),
}
FAR_CLIP = 60.0  # metres: the sky and anything beyond are written at the far clip


def _rays(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Camera at (0, 1.2, 0) looking down +z with a 60 degree horizontal field of view."""
    aspect = height / width
    xs = (np.arange(width) + 0.5) / width * 2 - 1
    ys = 1 - (np.arange(height) + 0.5) / height * 2
    grid_x, grid_y = np.meshgrid(xs * 0.577, ys * 0.577 * aspect)
    directions = np.stack([grid_x, grid_y - 0.15, np.ones_like(grid_x)], axis=-1)
    directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
    origin = np.array([0.0, 1.2, 0.0])
    return origin, directions


def render_frame(frame: int, frames: int, width: int, height: int) -> dict[str, np.ndarray]:
    """Render one frame: color (uint8 RGB), depth (float metres, inf for sky), seg."""
    origin, rays = _rays(width, height)
    distance = np.full((height, width), np.inf)
    label = np.zeros((height, width), dtype=np.uint8)  # 0 sky, 1 floor, 2 ball, 3 box
    shade = np.ones((height, width))
    # floor y = 0
    down = rays[..., 1] < -1e-6
    t_floor = np.where(down, -origin[1] / np.where(down, rays[..., 1], -1), np.inf)
    hit = np.isfinite(t_floor) & (t_floor < FAR_CLIP)
    distance[hit], label[hit] = t_floor[hit], 1
    points = origin + rays * np.where(np.isfinite(t_floor), t_floor, 0)[..., None]
    checker = ((np.floor(points[..., 0]) + np.floor(points[..., 2])) % 2).astype(float)
    shade[hit] = (0.55 + 0.35 * checker)[hit] * np.exp(-t_floor[hit] / 40)
    # box: axis-aligned, x 1.2..2.4, y 0..1.2, z 7..8.2
    low, high = np.array([1.2, 0.0, 7.0]), np.array([2.4, 1.2, 8.2])
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (low - origin) / rays, (high - origin) / rays
    t_near = np.nanmax(np.minimum(t1, t2), axis=-1)
    t_far = np.nanmin(np.maximum(t1, t2), axis=-1)
    box = (t_near <= t_far) & (t_near > 0) & (t_near < distance)
    distance[box], label[box] = t_near[box], 3
    shade[box] = 0.8
    # ball rolling from left to right, radius 0.6
    phase = frame / max(frames - 1, 1)
    centre = np.array([-2.5 + 4.0 * phase, 0.6, 5.0 + 1.5 * np.sin(phase * np.pi)])
    offset = origin - centre
    b = np.einsum("ijk,k->ij", rays, offset)
    c = offset @ offset - 0.36
    disc = b * b - c
    t_ball = np.where(disc > 0, -b - np.sqrt(np.maximum(disc, 0)), np.inf)
    ball = (t_ball > 0) & (t_ball < distance)
    distance[ball], label[ball] = t_ball[ball], 2
    normal = (origin + rays * np.where(ball, t_ball, 0)[..., None] - centre) / 0.6
    light = np.array([0.5, 0.8, -0.3]) / np.linalg.norm([0.5, 0.8, -0.3])
    shade[ball] = np.clip(0.25 + 0.75 * (normal @ light), 0.15, 1.0)[ball]
    base = np.array([(135, 190, 235), (200, 200, 190), (230, 60, 50), (170, 120, 70)], float)
    color = base[label] * shade[..., None]
    sky = label == 0
    gradient = 0.75 + 0.25 * (np.arange(height) / height)
    sky_color = base[0][None, None, :] * gradient[:, None, None] * np.ones((1, width, 1))
    color[sky] = sky_color[sky]
    seg = np.array(list(SEG_COLORS.values()), dtype=np.uint8)[label]
    return {"color": np.clip(color, 0, 255).astype(np.uint8), "depth": distance, "seg": seg}


def write_sequence(
    folder: Path, frames: int = 36, width: int = 96, height: int = 54, upscale: int = 1
) -> Path:
    """Write ``frames`` frames of the five passes into ``folder`` (1-based numbers).

    ``upscale`` > 1 ray-casts at 1/upscale of the size and enlarges the pictures (fast
    large sequences for benchmarks).
    """
    folder.mkdir(parents=True, exist_ok=True)
    small = (max(width // upscale, 2), max(height // upscale, 2))

    def sized(image: Image.Image, smooth: bool = True) -> Image.Image:
        if image.size == (width, height):
            return image
        method = Image.Resampling.BILINEAR if smooth else Image.Resampling.NEAREST
        return image.resize((width, height), method)

    for index in range(frames):
        number = index + 1
        passes = render_frame(index, frames, *small)
        color = sized(Image.fromarray(passes["color"]))
        color.save(folder / f"color.{number:04d}.png")
        depth = passes["depth"]
        millimetres = np.clip(np.minimum(depth, FAR_CLIP) * 1000, 1, 65535).astype(np.uint16)
        sized(Image.fromarray(millimetres), smooth=False).save(folder / f"depth.{number:04d}.png")
        seg = sized(Image.fromarray(passes["seg"]), smooth=False)
        seg.save(folder / f"seg.{number:04d}.png")
        outline = seg.convert("L").filter(ImageFilter.FIND_EDGES)
        edge_pixels = np.asarray(outline.point(lambda v: 255 * (v > 8))).copy()
        edge_pixels[[0, -1], :] = 0
        edge_pixels[:, [0, -1]] = 0  # FIND_EDGES outlines the image border too
        Image.fromarray(edge_pixels).save(folder / f"edge.{number:04d}.png")
        vis = color.filter(ImageFilter.GaussianBlur(2 * upscale))
        vis.save(folder / f"vis.{number:04d}.png")
    return folder


def main(argv: list[str] | None = None) -> None:
    """Command line: render the sample sequence into a folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--frames", type=int, default=36)
    parser.add_argument("--size", default="96x54", help="WIDTHxHEIGHT")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    write_sequence(args.folder, args.frames, width, height)
    print(f"wrote {args.frames} frames of 5 passes at {width}x{height} to {args.folder}")


if __name__ == "__main__":
    main()
