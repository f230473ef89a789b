"""Encoding speed of `cosmos prepare` against the `ffmpeg` command line, side by side.

Renders a sequence of five passes (color, 16-bit depth, seg, edge, vis PNGs; default 121
frames at 1920x1080) with cosmos_tui.sandbox.render (ray-cast at a quarter of the size and
enlarged, to keep the set-up short), then encodes it both ways with the
same settings (libx264, preset fast, CRF 18, yuv420p, 24 fps, the five passes at once):

- cosmos: prepare_sequence(), the code behind `cosmos prepare` (PyAV's bundled FFmpeg and
  libx264, one thread per pass), including its checks, content hashes and depth
  normalisation;
- ffmpeg: five `ffmpeg -i pass.%04d.png ... pass.mp4` processes at once (system ffmpeg,
  else imageio-ffmpeg's bundled binary). Depth is only converted, not normalised.

Prints frames per second (frames of all passes / wall seconds) for each, alternating the
order over --rounds rounds.

    .venv/bin/python bench/prepare.py [--frames 121] [--size 1920x1080] [--rounds 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cosmos_tui.engine.prepare import ROLE_VIDEOS, PrepareOptions, prepare_sequence
from cosmos_tui.engine.video_stream import probe_stream
from cosmos_tui.sandbox.render import write_sequence

PASSES = ("color", "depth", "seg", "edge", "vis")


def ffmpeg_binary() -> tuple[str, str]:
    """The ffmpeg to compare with and where it came from."""
    system = shutil.which("ffmpeg")
    if system:
        return system, "system"
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe(), "imageio-ffmpeg"


def run_cosmos(seq: Path, out: Path) -> float:
    started = time.perf_counter()
    prepare_sequence(seq, out, PrepareOptions(fps=24, crf=18, preset="fast"))
    return time.perf_counter() - started


def run_ffmpeg(binary: str, seq: Path, out: Path) -> float:
    out.mkdir(parents=True, exist_ok=True)

    def one(pass_name: str) -> None:
        subprocess.run(
            [binary, "-y", "-loglevel", "error", "-framerate", "24", "-start_number", "1",
             "-i", str(seq / f"{pass_name}.%04d.png"), "-c:v", "libx264", "-preset", "fast",
             "-crf", "18", "-pix_fmt", "yuv420p", str(out / ROLE_VIDEOS[pass_name])],
            check=True,
        )  # fmt: skip

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(PASSES)) as pool:
        list(pool.map(one, PASSES))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=121)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="Reuse or keep the rendered frames here.")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    binary, origin = ffmpeg_binary()
    version = subprocess.run([binary, "-version"], capture_output=True, text=True, check=True)
    work = Path(tempfile.mkdtemp(prefix="bench-prepare-"))
    try:
        seq = args.keep or work / "seq"
        if not (seq / f"vis.{args.frames:04d}.png").exists():
            started = time.perf_counter()
            write_sequence(seq, args.frames, width, height, upscale=4)
            print(f"rendered {args.frames} frames x 5 passes at {width}x{height} "
                  f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
        total = args.frames * len(PASSES)
        times: dict[str, list[float]] = {"cosmos prepare (PyAV)": [], f"ffmpeg CLI ({origin})": []}
        for index in range(args.rounds):
            order = list(times) if index % 2 == 0 else list(reversed(times))
            for name in order:
                out = work / f"out-{index}-{name.split()[0]}"
                if name.startswith("cosmos"):
                    seconds = run_cosmos(seq, out)
                else:
                    seconds = run_ffmpeg(binary, seq, out)
                for video in ROLE_VIDEOS.values():
                    assert probe_stream(out / video).frames == args.frames, (name, video)
                times[name].append(seconds)
                shutil.rmtree(out)
        print(f"ffmpeg: {binary} ({version.stdout.splitlines()[0]})")
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        print(f"{args.frames} frames x 5 passes = {total} frames at {width}x{height}, "
              "libx264 preset fast CRF 18 yuv420p, 5 passes at once")  # fmt: skip
        print(f"{'encoder':<28} {'seconds':>9} {'frames/s':>9}")
        for name, values in times.items():
            seconds = statistics.median(values)
            print(f"{name:<28} {seconds:>9.1f} {total / seconds:>9.1f}")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
