"""Files and folders only their owner can read: the database, run logs and outputs.

Prompts, outputs and logs may be confidential, and a log may quote a token. So every
file the tool creates in its data and outputs folders is created 0600 and every folder
0700, whatever the process's umask (a permissive umask of 0 must not make them
world-readable; a strict one must not make them unusable). Existing files and folders
keep the modes their owner gave them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents as 0700 folders; return ``path``.

    Raises:
        OSError: When a folder cannot be created (callers translate it).
    """
    missing: list[Path] = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # created by another process meanwhile: its mode is its own
        os.chmod(folder, DIR_MODE)  # mkdir's mode is reduced by the umask
    return path


def create_private_file(path: Path) -> bool:
    """Create ``path`` as an empty 0600 file unless it exists; return whether it was made."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(descriptor, FILE_MODE)
    finally:
        os.close(descriptor)
    return True


def open_private(path: Path, mode: str = "ab", **kwargs: Any) -> IO[Any]:
    """Open ``path`` like :func:`open`; a file it creates is 0600 (umask-independent).

    Args:
        path: The file.
        mode: An :func:`open` mode that writes ("w", "a", with "b" or "+" as needed).
        **kwargs: Passed to :func:`open` (encoding, buffering).
    """
    create_private_file(path)
    return open(path, mode, **kwargs)
