r"""Containment of names and paths that come from a GPU host (or from records of them).

A host is someone else's machine as often as not: every name it lists is untrusted. A
name is accepted only as one plain path component (no ``/``, ``\\``, ``..``, control
characters, leading ``-``, at most 255 bytes), and every local path built from such
names is checked to stay inside its root folder without passing through a symbolic link,
so nothing is ever written, read or opened outside ``outputs/<run id>/``.

Pure functions, no I/O beyond ``lstat``: used by the download walk
(:mod:`cosmos_tui.engine.outputs`), :mod:`cosmos_tui.remote.sftp`, ``cosmos verify``, the
TUI's open/play actions and the ``--json`` output.
"""

from __future__ import annotations

import os
import stat
import unicodedata
from pathlib import Path

from cosmos_tui.errors import OutsideFolder

__all__ = [
    "MAX_NAME_BYTES",
    "OutsideFolder",
    "contained_path",
    "name_problem",
    "output_file",
    "recorded_parts",
    "safe_outputs",
    "shown",
]

MAX_NAME_BYTES = 255
_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def shown(name: object) -> str:
    """Return ``name`` quoted for a message: control, bidi and non-ASCII characters escaped."""
    text = name if isinstance(name, str) else repr(name)
    return ascii(text)


def name_problem(name: object) -> str | None:
    """Say why ``name`` is not a plain file or folder name; None when it is one.

    Args:
        name: A name as a host listed it (a str; anything else is refused).

    """
    if not isinstance(name, str):
        return "not a text name"
    if not name or name in (".", ".."):
        return "an empty or dot name"
    if name.startswith("/"):
        return "an absolute path"
    if ".." in name:
        return "holds '..'"
    if "/" in name or "\\" in name:
        return "a path, not a plain name"
    if name.startswith("-"):
        return "starts with '-'"
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in name) or _BIDI & set(name):
        return "holds control characters"
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid UTF-8"
    if len(encoded) > MAX_NAME_BYTES:
        return f"longer than {MAX_NAME_BYTES} bytes"
    return None


def recorded_parts(recorded: str) -> tuple[str, ...] | None:
    """Split a recorded output name (``name`` or ``folder/name``); None when it is unsafe."""
    parts = tuple(recorded.split("/"))
    if not 1 <= len(parts) <= 2 or any(name_problem(p) is not None for p in parts):
        return None
    return parts


def contained_path(root: Path, *parts: str) -> Path:
    """Return ``root/parts...`` after checking it stays inside ``root``.

    Each part must be a plain name, and no existing component below ``root`` may be a
    symbolic link (a link planted there could point anywhere). ``root`` itself is
    resolved, so a configured outputs folder that is a symlink still works.

    Raises:
        OutsideFolder: When a part is not a plain name, the path leaves ``root``, or it
            passes through a symbolic link.

    """
    for part in parts:
        problem = name_problem(part)
        if problem is not None:
            raise OutsideFolder(f"refusing {shown(part)} under {root}: {problem}")
    base = Path(os.path.realpath(root))
    path = base.joinpath(*parts)
    if not path.is_relative_to(base):  # defence in depth: plain names cannot leave it
        raise OutsideFolder(f"refusing {path}: it is outside {base}")
    current = base
    for part in parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except OSError:  # not there (yet), or under a file: the write will say so
            break
        if stat.S_ISLNK(mode):
            raise OutsideFolder(
                f"refusing {current}: it is a symbolic link; remove it, outputs are only "
                "ever plain files"
            )
    return path


def output_file(folder: Path, recorded: str, must_exist: bool = True) -> Path | None:
    """Return the local file of a recorded output, or None when it is unsafe or absent.

    For everything that opens, plays, copies or prints an output path: the name must be
    a recorded plain name, every component inside ``folder`` and not a symlink, and the
    file a regular file (or, without ``must_exist``, not there yet: the caller says so).
    """
    parts = recorded_parts(recorded)
    if parts is None:
        return None
    try:
        path = contained_path(folder, *parts)
    except OutsideFolder:
        return None
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None if must_exist else path
    return path if stat.S_ISREG(mode) else None


def safe_outputs(recorded: tuple[str, ...] | list[str]) -> list[str]:
    """The recorded output names that are safe to show and use (plain names only)."""
    return [name for name in recorded if recorded_parts(name) is not None]
