"""Fetching a run's outputs from its host without trusting anything the host lists.

The host lists the run's ``output`` folder (and the folders directly in it). What is
downloaded: regular files with plain names (:func:`cosmos_tui.containment.name_problem`),
in the folder or one folder level down, within the size limit (``max_output_size`` of the
host, checked on the listing before a byte moves). What is refused, and named in the
run's message: names that are paths, absolute, hold ``..``, control characters or escape
sequences; symbolic links (to files or folders, wherever they point); devices, FIFOs and
sockets; files over the limit; entries past :data:`MAX_ENTRIES`. Every local path is
built with :func:`~cosmos_tui.containment.contained_path`, so nothing is written outside
``outputs/<run id>/``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from cosmos_tui.containment import contained_path, name_problem, shown
from cosmos_tui.domain import FailureKind, Run
from cosmos_tui.engine.failure_text import explain
from cosmos_tui.engine.failures import Failure

if TYPE_CHECKING:
    from cosmos_tui.remote.host import RemoteHost
    from cosmos_tui.remote.sftp import RemoteEntry

MAX_ENTRIES = 1000
_KIND_TEXT = {
    "symlink": "a symbolic link (never followed)",
    "special": "a device, FIFO or socket, not a regular file",
}


@dataclass(frozen=True)
class OutputFile:
    """A file that passed every check, to download.

    Attributes:
        folder: The folder it is in, relative to the output folder ('' for the top).
        name: Its plain name.
        size: Bytes, as listed.

    """

    folder: str
    name: str
    size: int

    @property
    def recorded(self) -> str:
        """How the run records it: ``name`` or ``folder/name``."""
        return f"{self.folder}/{self.name}" if self.folder else self.name


@dataclass(frozen=True)
class Refused:
    """An entry the host listed that is not downloaded, and why."""

    name: str
    reason: str

    def __str__(self) -> str:
        return f"{shown(self.name)} ({self.reason})"


@dataclass(frozen=True)
class OutputPlan:
    """What a host's output folder holds, sorted into accepted and refused."""

    files: tuple[OutputFile, ...]
    refused: tuple[Refused, ...]

    @property
    def total(self) -> int:
        """Bytes to download."""
        return sum(f.size for f in self.files)

    def refused_text(self, limit: int = 12) -> str:
        """One line naming the refused entries (the first ``limit``)."""
        items = [str(r) for r in self.refused[:limit]]
        more = len(self.refused) - limit
        if more > 0:
            items.append(f"and {more} more")
        return "; ".join(items)


def sort_entries(
    entries: Sequence[RemoteEntry], folder: str, max_bytes: int, budget: list[int]
) -> tuple[list[OutputFile], list[tuple[str, RemoteEntry]], list[Refused]]:
    """Split one listing into files to fetch, sub-folders to list, and refusals.

    ``budget`` holds the bytes still allowed (shared across folders; it is decremented).
    """
    files: list[OutputFile] = []
    folders: list[tuple[str, RemoteEntry]] = []
    refused: list[Refused] = []
    where = f"{folder}/" if folder else ""
    for entry in entries:
        shown_name = where + entry.name
        problem = name_problem(entry.name)
        if problem is not None:
            refused.append(Refused(shown_name, f"not a plain name: {problem}"))
            continue
        if entry.kind in _KIND_TEXT:
            refused.append(Refused(shown_name, _KIND_TEXT[entry.kind]))
            continue
        if entry.kind == "dir":
            if folder:
                refused.append(Refused(shown_name, "a folder nested two levels deep"))
            else:
                folders.append((entry.name, entry))
            continue
        if entry.size > budget[0]:
            refused.append(
                Refused(
                    shown_name,
                    f"{entry.size} bytes, over max_output_size ({max_bytes} bytes for the "
                    "run); raise it in the host's config if the file is expected",
                )
            )
            continue
        budget[0] -= entry.size
        files.append(OutputFile(folder, entry.name, entry.size))
    return files, folders, refused


async def plan_outputs(
    host: RemoteHost,
    remote_output_dir: str,
    max_bytes: int,
    keep: Callable[[str], bool] | None = None,
) -> OutputPlan:
    """List a run's output folder (one level of sub-folders) and sort what it holds.

    An output folder that is itself a symbolic link (the container replaced it) is not
    listed at all.

    Args:
        host: The run's host.
        remote_output_dir: The output folder on the host.
        max_bytes: The most bytes to download.
        keep: When given, only top-level entries whose name it accepts are looked at
            (one run's files in a folder a batch shares); the rest are not the run's.
    """
    # The kind check and the listing go out together (one round trip, not two); what a
    # symbolic link's target holds is read but never used.
    kind, listing = await asyncio.gather(
        host.files.kind(remote_output_dir),
        host.files.listdir(remote_output_dir),
        return_exceptions=True,
    )
    if kind == "symlink":
        link = Refused(PurePosixPath(remote_output_dir).name, _KIND_TEXT["symlink"])
        return OutputPlan((), (link,))
    for outcome in (kind, listing):
        if isinstance(outcome, BaseException):
            raise outcome
    assert not isinstance(listing, BaseException)
    if keep is not None:
        listing = [entry for entry in listing if keep(entry.name)]
    budget = [max_bytes]
    files, folders, refused = sort_entries(listing, "", max_bytes, budget)
    inner_listings = await asyncio.gather(
        *(host.files.listdir(str(PurePosixPath(remote_output_dir) / n)) for n, _ in folders)
    )
    for (name, _entry), inner in zip(folders, inner_listings, strict=True):
        more, _, refusals = sort_entries(inner, name, max_bytes, budget)
        files += more
        refused += refusals
    if len(files) > MAX_ENTRIES:
        past = f"past the first {MAX_ENTRIES} files"
        refused += [Refused(f.recorded, past) for f in files[MAX_ENTRIES:]]
        files = files[:MAX_ENTRIES]
    return OutputPlan(tuple(files), tuple(refused))


async def fetch_outputs(
    host: RemoteHost, remote_output_dir: str, plan: OutputPlan, local_root: Path
) -> list[str]:
    """Download every accepted file of ``plan`` under ``local_root``; return recorded names.

    Raises:
        OutsideFolder: A local path would leave ``local_root`` (a planted symlink).
        TransferFailed, TransferCorrupted: As :meth:`RemoteHost.download`.

    """
    jobs = []
    for item in plan.files:  # every path is checked before anything is fetched
        parts = (item.folder,) if item.folder else ()
        local_dir = contained_path(local_root, *parts)
        contained_path(local_root, *parts, item.name)
        remote_dir = str(PurePosixPath(remote_output_dir, *parts))
        jobs.append((remote_dir, item, local_dir))
    # Side by side (the transfer layer bounds how many move at once): each file's round
    # trips (stat, the host's sha256, open, close) overlap the others'.
    downloads = [
        asyncio.ensure_future(
            host.download(remote_dir, item.name, local_dir, item.size, verify_hash=True)
        )
        for remote_dir, item, local_dir in jobs
    ]
    try:
        await asyncio.gather(*downloads)
    except BaseException:
        for download in downloads:
            download.cancel()
        await asyncio.gather(*downloads, return_exceptions=True)
        raise
    return [item.recorded for _remote_dir, item, _local_dir in jobs]


def refused_failure(run: Run, refused: str, fetched: Sequence[str]) -> Failure:
    """The failure of a run whose host offered outputs that were refused."""
    kept = f"{len(fetched)} safe file(s) were downloaded" if fetched else "nothing was downloaded"
    detail = f"on {run.host}: {refused}; {kept}"
    return Failure(FailureKind.REFUSED_OUTPUT, explain(FailureKind.REFUSED_OUTPUT, detail))
