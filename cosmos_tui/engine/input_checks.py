"""Checks of a prompt's videos against each other, before a GPU job finds out.

Cosmos-Transfer1 reads every control for at most as many frames as the shortest one and
silently truncates the run to it (inference_utils.py:614, ``num_total_frames = min(...)``),
and resizes each control to the input's size (inference_utils.py:366-377). A depth video
two frames short, or rendered at another size, therefore runs without complaint and gives
a clip that does not match the input: both are errors here unless the user says the model
may resample (``allow_mismatch``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cosmos_tui.engine.video_stream import StreamInfo, probe_stream
from cosmos_tui.errors import ValidationError

# Transfer1 generates 121-frame clips (diffusion/config/base/data.py:37 num_frames=121) and
# chains longer inputs clip by clip with one conditioning frame (transfer.py:75-79
# --num_input_frames default 1), padding the last clip with repeats of the final frame
# (world_generation_pipeline.py:533-553).
TRANSFER1_CLIP_FRAMES = 121
TRANSFER1_OVERLAP_FRAMES = 1


@dataclass(frozen=True)
class InputReport:
    """What the checks found in one folder of videos.

    Attributes:
        videos: Role -> the probed video, color first.
        mismatches: Frame-count or resolution differences from color.mp4 (errors unless
            allowed).
        notes: Things worth knowing that are not errors (fps differences, clip counts).
    """

    videos: Mapping[str, StreamInfo]
    mismatches: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def clip_note(
    frames: int,
    clip_frames: int = TRANSFER1_CLIP_FRAMES,
    overlap: int = TRANSFER1_OVERLAP_FRAMES,
) -> str | None:
    """Say how a video longer than one clip is generated, or None when it fits one clip."""
    if frames <= clip_frames:
        return None
    step = clip_frames - overlap
    clips = math.ceil((frames - overlap) / step)
    padded = clips * step + overlap - frames
    text = (
        f"color.mp4 has {frames} frames, more than the {clip_frames} frames the model "
        f"generates at once: it runs as {clips} chained {clip_frames}-frame clips"
    )
    if padded:
        text += f", the last padded with {padded} repeats of the final frame"
    return text


def check_videos(
    found: Mapping[str, Path], clip_frames: int = TRANSFER1_CLIP_FRAMES
) -> InputReport:
    """Probe every video of a folder and compare each control with color.mp4.

    Args:
        found: Role -> file, as :func:`cosmos_tui.engine.inputs.find_videos` returns it.
        clip_frames: Frames the model generates at once (a note when color is longer).

    Raises:
        ValidationError: When a file is not a readable video (naming it).
    """
    # an image (Cosmos 3's image2video) is checked by its header when fingerprinted
    videos = {role: probe_stream(path) for role, path in found.items() if role != "image"}
    if "color" not in videos:
        return InputReport(videos=videos)
    color = videos["color"]
    mismatches: list[str] = []
    notes: list[str] = []
    for role, info in videos.items():
        if role == "color":
            continue
        name = info.path.name
        if info.frames != color.frames:
            mismatches.append(f"{name} has {info.frames} frames but color.mp4 has {color.frames}")
        if (info.width, info.height) != (color.width, color.height):
            mismatches.append(f"{name} is {info.resolution} but color.mp4 is {color.resolution}")
        if not math.isclose(info.fps, color.fps, rel_tol=1e-3):
            notes.append(
                f"{name} plays at {info.fps_text} fps but color.mp4 at {color.fps_text} fps"
            )
    long_clip = clip_note(color.frames, clip_frames)
    if long_clip:
        notes.append(long_clip)
    return InputReport(videos=videos, mismatches=tuple(mismatches), notes=tuple(notes))


def require_consistent(report: InputReport, allow_mismatch: bool = False) -> None:
    """Raise when controls differ from color.mp4, unless the user allowed it.

    Raises:
        ValidationError: Naming each difference with both numbers.
    """
    if report.mismatches and not allow_mismatch:
        raise ValidationError(
            "; ".join(report.mismatches)
            + ". Re-export the controls to match color.mp4 (cosmos prepare does), or pass "
            "--allow-mismatch to let the model resample them",
            field="video_dir",
        )
