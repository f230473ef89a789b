"""Commands over input folders: inspect the videos, prepare videos from image sequences."""

from __future__ import annotations

import re
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from cosmos_tui.cli.context import CliContext, echo, echo_json, guard
from cosmos_tui.engine.input_checks import InputReport, check_videos
from cosmos_tui.engine.inputs import find_videos
from cosmos_tui.engine.video_stream import StreamInfo


def video_json(info: StreamInfo) -> dict[str, Any]:
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
    report = guard(lambda: check_videos(find_videos(video_dir)))
    if as_json:
        echo_json(report_json(report))
    else:
        for role, info in report.videos.items():
            echo(
                f"{role:<6} {info.path.name:<18} {info.frames:>6} frames  "
                f"{info.resolution:>10}  {info.fps_text:>6} fps  {info.codec}"
            )
        for line in report.mismatches:
            echo(f"mismatch: {line}")
        for line in report.notes:
            echo(f"note: {line}")
    if report.mismatches:
        raise SystemExit(1)


def _progress_bar(total_hint: str) -> Any:
    """A click progress bar on stderr (plain label when stderr is not a terminal)."""
    return click.progressbar(length=1, label=total_hint, file=sys.stderr, show_pos=True)


@click.command("prepare")
@click.argument("seq_dir", type=click.Path(path_type=Path))
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), help="Where the videos go [SEQ_DIR]."
)
@click.option("--fps", type=float, default=24.0, show_default=True, help="Frames per second.")
@click.option("--name", help="Name of the prompt made with --create-prompt.")
@click.option("--create-prompt", "prompt_text", metavar="TEXT", help="Also create a prompt.")
@click.option("--crf", type=click.IntRange(0, 51), default=18, show_default=True,
              help="libx264 quality (lower is better, bigger).")  # fmt: skip
@click.option("--depth-near", type=float, help="Depth value shown white [nearest found].")
@click.option("--depth-far", type=float, help="Depth value shown black [farthest found].")
@click.option("--depth-convention", type=click.Choice(["distance", "disparity"]),
              default="distance", show_default=True,
              help="distance: larger is farther (renderers' Z); "
              "disparity: larger is nearer.")  # fmt: skip
@click.option("--pattern", "patterns", multiple=True, metavar="REGEX",
              help="File name pattern with (?P<pass>...) and (?P<frame>...) groups "
              "(repeatable; replaces the defaults).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def prepare(
    click_ctx: click.Context,
    seq_dir: Path,
    out_dir: Path | None,
    fps: float,
    name: str | None,
    prompt_text: str | None,
    crf: int,
    depth_near: float | None,
    depth_far: float | None,
    depth_convention: str,
    patterns: tuple[str, ...],
    as_json: bool,
) -> None:
    """Turn SEQ_DIR's rendered image sequences into checked control videos.

    Finds the passes (color.####.png, depth_####.exr, or one subfolder per pass), checks
    that every pass has the color pass's frames and resolution, normalises depth to 8 bits
    (nearest white, farthest black), and encodes each pass to an H.264 yuv420p MP4
    (color.mp4, depth.mp4, segmentation.mp4, edge.mp4, vis.mp4) with metadata.json.
    Unchanged passes are not encoded again.
    """
    # lazy: numpy, PIL and OpenEXR (~150 ms) are for 'prepare'; 'inspect' imports this module too
    from cosmos_tui.engine.prepare import PrepareOptions, prepare_sequence
    from cosmos_tui.engine.sequences import DEFAULT_PATTERNS

    for pattern in patterns:
        try:
            groups = re.compile(pattern).groupindex
        except re.error as exc:
            raise click.BadParameter(f"'{pattern}' is not a regular expression: {exc}") from exc
        if not {"pass", "frame"} <= set(groups):
            raise click.BadParameter(f"'{pattern}' needs (?P<pass>...) and (?P<frame>...)")
    options = PrepareOptions(
        fps=fps,
        crf=crf,
        depth_near=depth_near,
        depth_far=depth_far,
        depth_convention=depth_convention,
        patterns=patterns or DEFAULT_PATTERNS,
    )
    target = out_dir or seq_dir
    show_bar = not as_json and sys.stderr.isatty()
    bar = _progress_bar("encoding") if show_bar else None

    def _progress(done: int, total: int) -> None:
        if bar is not None:
            bar.length = total
            bar.update(done - bar.pos)

    try:
        result = guard(lambda: prepare_sequence(seq_dir, target, options, _progress))
    finally:
        if bar is not None:
            bar.render_finish()
    prompt_id = None
    if prompt_text is not None:
        cli_ctx = click_ctx.find_object(CliContext)
        if cli_ctx is None:
            cli_ctx = CliContext()
        prompt = cli_ctx.run(lambda bench: bench.create_prompt(prompt_text, target, name))
        prompt_id = prompt.id
    if as_json:
        echo_json(
            {
                "out": str(result.out_dir.resolve()),
                "frames": result.frames,
                "first_frame": result.first,
                "last_frame": result.last,
                "fps": result.fps,
                "width": result.width,
                "height": result.height,
                "encoded": list(result.encoded),
                "unchanged": list(result.unchanged),
                "changed": bool(result.encoded),
                "notes": list(result.notes),
                "depth": asdict(result.depth) if result.depth else None,
                "videos": {role: str(path) for role, path in result.videos.items()},
                "prompt_id": prompt_id,
            }
        )
        return
    for note in result.notes:
        echo(f"note: {note}", err=True)
    span = f"{result.frames} frames ({result.first}-{result.last})"
    size = f"{result.width}x{result.height} at {result.fps:g} fps"
    if result.encoded:
        echo(f"encoded {', '.join(result.encoded)}: {span}, {size} in {result.out_dir}")
    if result.unchanged:
        echo(f"unchanged: {', '.join(result.unchanged)} (same frames and settings)")
    if result.depth:
        echo(f"depth: {result.depth.near:g} shown white, {result.depth.far:g} black")
    if prompt_id:
        echo(prompt_id)
