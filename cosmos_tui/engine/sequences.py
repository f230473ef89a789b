"""Finding and checking the passes of a rendered image sequence folder.

Renderers (Houdini, Blender, Unreal, Isaac Sim) write one image per frame and pass:
``color.0001.png``, ``depth_0001.exr``, or ``depth/0001.exr`` (one subfolder per pass).
Every pass must cover the same frames at the same resolution as the color pass; every
problem is reported with the frame numbers and files, all at once, before anything is
encoded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cosmos_tui.engine.frames import image_size
from cosmos_tui.errors import FrameUnreadable, ValidationError

# A file in the sequence folder: <pass><. or _><frame>.<ext>
DEFAULT_PATTERNS: tuple[str, ...] = (
    r"(?P<pass>[A-Za-z][A-Za-z0-9-]*?)[._](?P<frame>\d+)\.(?P<ext>png|jpe?g|exr)",
)
# A file in a pass subfolder: [anything<. or _>]<frame>.<ext>
FOLDER_PATTERN = r"(?:.*[._])?(?P<frame>\d+)\.(?P<ext>png|jpe?g|exr)"

# Pass names (lower case) -> the control role Cosmos knows.
PASS_ROLES: dict[str, str] = {
    "color": "color",
    "colour": "color",
    "rgb": "color",
    "beauty": "color",
    "depth": "depth",
    "z": "depth",
    "seg": "seg",
    "segmentation": "seg",
    "edge": "edge",
    "canny": "edge",
    "vis": "vis",
    "blur": "vis",
}
ROLE_ORDER = ("color", "depth", "seg", "edge", "vis")
_MAX_LISTED = 12


@dataclass(frozen=True)
class FramePass:
    """One pass of a sequence.

    Attributes:
        role: The Cosmos role (``color``, ``depth``, ``seg``, ``edge``, ``vis``).
        source: The file pattern found, e.g. ``depth.####.exr`` or ``depth/####.png``.
        frames: Frame number -> file, in frame order.
    """

    role: str
    source: str
    frames: Mapping[int, Path]


@dataclass(frozen=True)
class Sequence:
    """A checked sequence: every pass covers the same frames at one resolution.

    Attributes:
        folder: The sequence folder.
        passes: Role -> pass, color first.
        first: First frame number.
        last: Last frame number.
        width: Width of every frame in pixels.
        height: Height of every frame in pixels.
        ignored: Pass names found that map to no Cosmos role.
    """

    folder: Path
    passes: Mapping[str, FramePass]
    first: int
    last: int
    width: int
    height: int
    ignored: tuple[str, ...] = ()

    @property
    def frame_count(self) -> int:
        """Frames in each pass."""
        return self.last - self.first + 1


def frame_list(numbers: Iterable[int]) -> str:
    """``frame 5``, ``frames 7-8``, ``frames 3, 5, 9-11`` (long lists shortened)."""
    ordered = sorted(set(numbers))
    runs: list[str] = []
    start = previous = ordered[0]
    for number in [*ordered[1:], None]:
        if number is not None and number == previous + 1:
            previous = number
            continue
        runs.append(str(start) if start == previous else f"{start}-{previous}")
        if number is not None:
            start = previous = number
    shown = ", ".join(runs[:_MAX_LISTED])
    if len(runs) > _MAX_LISTED:
        shown += f", ... ({len(ordered)} in all)"
    return ("frame " if len(ordered) == 1 else "frames ") + shown


def _display(path: Path, folder: Path, match: re.Match[str]) -> str:
    """The pattern a file belongs to, with its frame digits as ``#``."""
    start, end = match.span("frame")
    name = path.name[:start] + "#" * (end - start) + path.name[end:]
    return f"{path.parent.name}/{name}" if path.parent != folder else name


def discover(
    folder: Path, patterns: Iterable[str] = DEFAULT_PATTERNS
) -> tuple[dict[str, dict[int, list[Path]]], dict[str, str], list[str]]:
    """Group a folder's image files by pass and frame number.

    Returns:
        Role -> frame -> files (more than one is a duplicate), role -> source pattern,
        and the pass names that map to no role.
    """
    compiled = [re.compile(p, re.IGNORECASE) for p in patterns]
    folder_re = re.compile(FOLDER_PATTERN, re.IGNORECASE)
    found: dict[str, dict[int, list[Path]]] = {}
    sources: dict[str, str] = {}
    ignored: set[str] = set()

    def add(pass_name: str, frame: int, path: Path, match: re.Match[str]) -> None:
        role = PASS_ROLES.get(pass_name.lower())
        if role is None:
            ignored.add(pass_name)
            return
        found.setdefault(role, {}).setdefault(frame, []).append(path)
        sources.setdefault(role, _display(path, folder, match))

    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and not entry.name.startswith("."):
            for inner in sorted(entry.iterdir()):
                match = folder_re.fullmatch(inner.name)
                if match and inner.is_file():
                    add(entry.name, int(match.group("frame")), inner, match)
            continue
        for pattern in compiled:
            match = pattern.fullmatch(entry.name)
            if match and entry.is_file():
                add(match.group("pass"), int(match.group("frame")), entry, match)
                break
    return found, sources, sorted(ignored)


def scan_sequence(folder: Path, patterns: Iterable[str] = DEFAULT_PATTERNS) -> Sequence:
    """Find the passes of ``folder`` and check them against the color pass.

    Raises:
        ValidationError: Naming every problem found: a missing or empty folder, no color
            pass, duplicate, missing or extra frames, other resolutions, unreadable files.
    """
    folder = folder.expanduser()
    if not folder.is_dir():
        raise ValidationError(
            f"sequence folder {folder} does not exist; give the folder of rendered frames",
            field="seq_dir",
        )
    found, sources, ignored = discover(folder, patterns)
    if not found:
        raise ValidationError(
            f"{folder} holds no image sequences; expected files like color.0001.png, "
            "depth_0001.exr or one subfolder per pass (color/0001.png)",
            field="seq_dir",
        )
    if "color" not in found:
        raise ValidationError(
            f"{folder} has no color pass (found: {', '.join(sorted(found))}); name the "
            "color frames color.####.png (or rgb, beauty)",
            field="seq_dir",
        )
    problems: list[str] = []
    for role in sorted(found):
        for frame, paths in sorted(found[role].items()):
            if len(paths) > 1:
                times = "twice" if len(paths) == 2 else f"{len(paths)} times"
                names = ", ".join(p.name for p in paths)
                problems.append(f"{role} has frame {frame} {times}: {names}")
    color_frames = set(found["color"])
    first, last = min(color_frames), max(color_frames)
    gaps = set(range(first, last + 1)) - color_frames
    if gaps:
        problems.append(f"color is missing {frame_list(gaps)} of {first}-{last}")
    for role in sorted(found):
        if role == "color":
            continue
        frames = set(found[role])
        missing, extra = color_frames - frames, frames - color_frames
        if missing:
            problems.append(f"{role} is missing {frame_list(missing)}")
        if extra:
            problems.append(f"{role} has {frame_list(extra)} that color does not")
        if len(frames) != len(color_frames):
            problems.append(f"{role} has {len(frames)} frames but color has {len(color_frames)}")
    size = _check_sizes(found, problems)
    if problems:
        raise ValidationError(
            f"{folder}: " + "; ".join(problems) + ". Re-render or fix these frames",
            field="seq_dir",
        )
    passes = {
        role: FramePass(role, sources[role], {n: found[role][n][0] for n in sorted(found[role])})
        for role in ROLE_ORDER
        if role in found
    }
    width, height = size or (0, 0)
    return Sequence(folder, passes, first, last, width, height, tuple(ignored))


def _check_sizes(
    found: dict[str, dict[int, list[Path]]], problems: list[str]
) -> tuple[int, int] | None:
    """Read every frame's header; report unreadable files and other resolutions."""
    reference: tuple[int, int] | None = None
    odd: dict[tuple[int, int], list[str]] = {}
    for role in ROLE_ORDER:
        for frame in sorted(found.get(role, {})):
            for path in found[role][frame]:
                try:
                    size = image_size(path)
                except FrameUnreadable as exc:
                    problems.append(exc.message)
                    continue
                if reference is None:
                    reference = size
                elif size != reference:
                    odd.setdefault(size, []).append(path.name)
    if reference is not None:
        for (width, height), names in odd.items():
            listed = ", ".join(names[:_MAX_LISTED]) + (" ..." if len(names) > _MAX_LISTED else "")
            verb = "is" if len(names) == 1 else "are"
            problems.append(
                f"{listed} {verb} {width}x{height} but color frames are "
                f"{reference[0]}x{reference[1]}"
            )
    return reference
