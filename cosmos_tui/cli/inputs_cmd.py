"""Commands over input folders: inspect the videos, prepare videos from image sequences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cosmos_tui.cli.context import echo_json, guard
from cosmos_tui.engine.input_checks import InputReport
from cosmos_tui.engine.video_probe import VideoInfo


def video_json(info: VideoInfo) -> dict[str, Any]:
    """The JSON form of a probed video."""
    return {
        "path": str(info.path.resolve()),
        "frames": info.frames,
        "fps": info.fps,
        "width": info.width,
        "height": info.height,
        "codec": info.codec,
        "pix_fmt": info.pix_fmt,
    }


def report_json(report: InputReport) -> dict[str, Any]:
    """The JSON form of a folder's checks."""
    return {
        "videos": {role: video_json(info) for role, info in report.videos.items()},
        "mismatches": list(report.mismatches),
        "notes": list(report.notes),
    }


@click.command("inspect")
@click.argument("video_dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def inspect_cmd(video_dir: Path, as_json: bool) -> None:
    """Probe the videos of VIDEO_DIR: frames, fps, resolution, codec, and mismatches.

    Exit status 1 when a file is not a readable video or a control differs from color.mp4
    in frame count or resolution.
    """
    from cosmos_tui.engine.input_checks import check_videos
    from cosmos_tui.engine.inputs import find_videos

    report = guard(lambda: check_videos(find_videos(video_dir)))
    if as_json:
        echo_json(report_json(report))
    else:
        for role, info in report.videos.items():
            click.echo(
                f"{role:<6} {info.path.name:<18} {info.frames:>6} frames  "
                f"{info.resolution:>10}  {info.fps_text:>6} fps  {info.codec}"
            )
        for line in report.mismatches:
            click.echo(f"mismatch: {line}")
        for line in report.notes:
            click.echo(f"note: {line}")
    if report.mismatches:
        raise SystemExit(1)
