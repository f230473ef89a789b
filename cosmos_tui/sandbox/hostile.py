"""A hostile GPU host: what a malicious image, a lying SSH server or a shared Docker does.

Switched on through :class:`~cosmos_tui.sandbox.faults.Faults` (``cosmos demo --hostile``
turns on every switch; tests pick some):

- ``hostile_names``: SFTP listings of a run's ``output`` folder (and a batch's ``video_N``
  sample folders) also show entries no real
  file system can hold, as a patched SSH server could: a folder named ``../../../../..``,
  a file named ``../../../../../.bashrc``, an absolute ``/tmp/cosmos-owned``. Opening
  ``output/../../../../..`` on this server resolves to a real folder above the run (the
  traversal an unchecked client would follow).
- ``hostile_outputs``: when a run's container exits, its output folder also gets what a
  malicious image can write: symlinks to a file and to a folder outside the run folder, a
  device file (a FIFO where ``mknod`` is not allowed), a 50 GB sparse ``huge.mp4``, a name
  with a newline and terminal escape sequences, and a ``spec.json.part`` symlink in the run
  folder (so a re-upload of the spec would write through it).
- ``leak_secrets``: a run's container prints the secret values of its environment
  (:func:`leaked_env`) into its log, as an image that dumps its environment does.
- ``greeting``: text printed on stdout before every command's own output, as a
  ``~/.bashrc`` that echoes does on many hosts.
- :func:`foreign_container_bodies`: containers of a second installation on the same
  Docker (another owner id), one exited and one running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncssh

from cosmos_tui.safe_text import is_secret_name

logger = logging.getLogger(__name__)

TRAVERSAL_DIR = "../../../../.."
TRAVERSAL_FILE = "../../../../../.bashrc"
ABSOLUTE_FILE = "/tmp/cosmos-owned"
ESCAPE_NAME = "evil\nname\x1b]0;owned\x07\x1b[2J.mp4"
HUGE_NAME = "huge.mp4"
HUGE_BYTES = 50 * 1000**3
FOREIGN_OWNER = "ow_0therinstallation0000"
GREETING = "Welcome to gpu-box! Last login: never\n\x1b[1mMOTD\x1b[0m: be nice\n"


def lied_entries() -> list[asyncssh.SFTPName]:
    """The impossible names a lying SFTP server adds to a listing of an output folder."""
    directory = asyncssh.SFTPAttrs(permissions=stat.S_IFDIR | 0o755, size=4096)
    regular = asyncssh.SFTPAttrs(permissions=stat.S_IFREG | 0o644, size=64)
    return [
        asyncssh.SFTPName(TRAVERSAL_DIR.encode(), attrs=directory),
        asyncssh.SFTPName(TRAVERSAL_FILE.encode(), attrs=regular),
        asyncssh.SFTPName(ABSOLUTE_FILE.encode(), attrs=regular),
    ]


async def with_lies(
    names: AsyncIterator[asyncssh.SFTPName], path: bytes
) -> AsyncIterator[asyncssh.SFTPName]:
    """Yield a real listing, plus :func:`lied_entries` when ``path`` is an output folder."""
    async for name in names:
        yield name
    folder = os.path.basename(os.path.normpath(path))
    if folder == b"output" or folder.startswith(b"video_"):
        for name in lied_entries():
            yield name


def plant_outputs(run_dir: Path, home: Path) -> list[str]:
    """Write what a malicious image leaves behind into ``run_dir`` (and its ``output``).

    Args:
        run_dir: The run's folder on the host (``<tool>/runs/<id>``).
        home: The login user's home: the symlinks point at it and at a file in it.

    Returns:
        The names planted (for logs and tests).

    """
    output = run_dir / "output"
    output.mkdir(parents=True, exist_ok=True)
    secret = home / ".hostile-secret"
    if not secret.exists():
        secret.write_text("a file of the host user outside the run folder\n", encoding="utf-8")
    planted: list[str] = []

    def link(name: str, target: Path, where: Path = output) -> None:
        with contextlib.suppress(FileExistsError):
            (where / name).symlink_to(target)
        planted.append(name)

    link("secret.mp4", secret)
    link("home", home)
    link("spec.json.part", home / ".profile", where=run_dir)
    device = output / "device.mp4"
    if not device.exists():
        try:
            os.mknod(device, stat.S_IFCHR | 0o644, os.makedev(1, 5))  # /dev/zero
        except PermissionError:
            os.mkfifo(device)  # a special file all the same: reading it never ends
    planted.append(device.name)
    huge = output / HUGE_NAME
    with huge.open("wb") as handle:
        handle.truncate(HUGE_BYTES)  # sparse: no disk used
    planted.append(HUGE_NAME)
    (output / ESCAPE_NAME).write_bytes(b"not a video\n")
    planted.append(ESCAPE_NAME)
    for sample in output.glob("video_*"):  # a batch's sample folders get theirs too
        link("secret.mp4", secret, where=sample)
        (sample / ESCAPE_NAME).write_bytes(b"not a video\n")
    logger.info("hostile host: planted %d entries in %s", len(planted), run_dir)
    return planted


def foreign_container_bodies(image: str) -> list[tuple[str, dict[str, Any], bool]]:
    """Create bodies of a second installation's containers: (name, body, leave running)."""
    bodies = []
    for suffix, running in (("exited", False), ("running", True)):
        run_id = f"rs_f0e1{suffix[:2].encode().hex()}"
        labels = {
            "cosmos.managed": "true",
            "cosmos.run_id": run_id,
            "cosmos.owner": FOREIGN_OWNER,
            "cosmos.host": "their-host",
        }
        command = ["sleep", "3600"] if running else ["true"]
        body = {"Image": image, "Cmd": command, "Labels": labels, "HostConfig": {}}
        bodies.append((f"cosmos-{run_id}", body, running))
    return bodies


def leaked_env(env: dict[str, str]) -> bytes:
    """The log lines of an image that prints its secret environment values (``K=V``)."""
    return b"".join(
        f"{key}={value}\n".encode() for key, value in env.items() if is_secret_name(key)
    )
