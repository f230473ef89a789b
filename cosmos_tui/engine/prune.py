"""``cosmos host prune``: what piles up on hosts, and its removal.

What goes (only this installation's, only what is older than ``--older-than``):

- exited (or never started) containers of runs that have ended; containers of this
  installation's owner id whose run this database no longer knows;
- ``.part`` files under the tool directory (abandoned uploads and spec writes): in
  ``<tool>/inputs`` and in each ``<tool>/runs/<id>``;
- content-addressed inputs (``<tool>/inputs/<sha256>.<ext>``) that no prompt of this
  database refers to; only while no container runs on the host (another installation
  sharing the tool folder may be about to mount one; it would be sent again anyway).

Never touched: running containers, other installations' containers (listed as foreign),
runs' folders, and anything outside the tool directory. Names listed by the host are
checked like downloads (:func:`cosmos_tui.containment.name_problem`): an entry whose
name is not plain is reported, never removed.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from cosmos_tui.containment import name_problem, shown
from cosmos_tui.errors import CosmosError, NotFound, ValidationError
from cosmos_tui.owner import Ownership, ownership
from cosmos_tui.remote.sftp_files import PART_SUFFIX
from cosmos_tui.store.repositories import PromptFilter, RunFilter

if TYPE_CHECKING:
    from cosmos_tui.domain import Run
    from cosmos_tui.engine.context import BenchView
    from cosmos_tui.remote.docker import ContainerInfo
    from cosmos_tui.remote.host import RemoteHost

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_INPUT = re.compile(r"^[0-9a-f]{64}(\.[A-Za-z0-9]{1,8})?$")
_PAGE = 500


def parse_age(text: str) -> float:
    """Return seconds for ``7d``, ``12h``, ``30m``, ``90s`` or ``0``.

    Raises:
        ValidationError: For anything else.

    """
    found = _AGE.match(text)
    if not found or float(found.group(1)) > 3650 * 86400:
        raise ValidationError(
            f"--older-than {text!a} is not an age; give a number with s, m, h, d or w "
            "(for example 7d or 12h), at most 10 years",
            field="older_than",
        )
    return float(found.group(1)) * _UNITS[found.group(2)]


@dataclass(frozen=True)
class PruneItem:
    """One thing to remove from a host.

    Attributes:
        host: The host.
        kind: ``container``, ``part`` or ``input``.
        subject: A container id, or a path under the tool directory.
        detail: Why it goes, for people.
        size: Bytes it frees (files), when known.

    """

    host: str
    kind: str
    subject: str
    detail: str
    size: int | None = None


@dataclass(frozen=True)
class PrunePlan:
    """What a prune removes, what it leaves alone, and the hosts it could not ask."""

    items: tuple[PruneItem, ...]
    foreign: tuple[PruneItem, ...] = ()
    skipped: tuple[PruneItem, ...] = ()
    unreachable: tuple[tuple[str, str], ...] = ()


async def plan_prune(
    bench: BenchView, hosts: list[str], older_than: float, now: float | None = None
) -> PrunePlan:
    """Work out what ``cosmos host prune`` removes on ``hosts`` (nothing is removed)."""
    cutoff = (time.time() if now is None else now) - older_than
    items: list[PruneItem] = []
    foreign: list[PruneItem] = []
    skipped: list[PruneItem] = []
    unreachable: list[tuple[str, str]] = []
    referenced = await _referenced_inputs(bench)
    for name in hosts:
        host = bench.hosts.get(name)
        try:
            listed = await host.docker.list(everyone=True)
            busy = any(c.running for c in listed)
            for info in listed:
                await _sort_container(bench, host, info, cutoff, items, foreign)
            await _sort_files(host, cutoff, referenced, busy, items, skipped)
        except CosmosError as exc:
            unreachable.append((name, exc.message))
    return PrunePlan(tuple(items), tuple(foreign), tuple(skipped), tuple(unreachable))


async def carry_out(bench: BenchView, plan: PrunePlan) -> list[tuple[PruneItem, str | None]]:
    """Remove each item of ``plan``; return each with None (removed) or the error."""
    done: list[tuple[PruneItem, str | None]] = []
    for item in plan.items:
        host = bench.hosts.get(item.host)
        try:
            if item.kind == "container":
                info = await host.docker.inspect(item.subject)
                if info.running:  # started again since the plan was made
                    done.append((item, "it runs again; left alone"))
                    continue
                await host.docker.remove(item.subject)
            else:
                await host.files.remove(item.subject)
        except CosmosError as exc:
            done.append((item, exc.message))
            continue
        done.append((item, None))
    return done


async def _sort_container(
    bench: BenchView,
    host: RemoteHost,
    info: ContainerInfo,
    cutoff: float,
    items: list[PruneItem],
    foreign: list[PruneItem],
) -> None:
    key = info.labels.get("cosmos.batch_id") or info.run_id or ""
    runs = await _runs_of(bench, key)
    whose = ownership(info.labels, getattr(host.docker, "owner", None), runs is not None)
    if whose == Ownership.FOREIGN:
        owner = info.labels.get("cosmos.owner") or "not set"
        detail = f"{info.name} ({info.status}): another installation's (owner {owner})"
        foreign.append(PruneItem(host.name, "container", info.id, detail))
        return
    if info.running or (runs and any(r.state.is_active for r in runs)):
        return
    finished = (await host.docker.inspect(info.id)).finished_at
    created = finished or datetime.fromtimestamp(0, UTC)
    if created.timestamp() > cutoff:
        return
    why = "its run ended" if runs else "its run is not in this database"
    detail = f"{info.name} ({info.status}): {why}"
    items.append(PruneItem(host.name, "container", info.id, detail))


async def _runs_of(bench: BenchView, key: str) -> list[Run] | None:
    """The runs a container belongs to; None when this database knows none."""
    if not key:
        return None
    if key.startswith("bs_"):
        page = await bench.store.list_runs(RunFilter(batch_id=key), 0, 10_000)
        return list(page.items) or None
    try:
        return [await bench.store.get_run(key, with_events=False)]
    except NotFound:
        return None


async def _sort_files(
    host: RemoteHost,
    cutoff: float,
    referenced: set[str],
    busy: bool,
    items: list[PruneItem],
    skipped: list[PruneItem],
) -> None:
    tool = await host.tool_dir()
    inputs = str(PurePosixPath(tool) / "inputs")
    for entry in await host.files.listdir(inputs):
        path = f"{inputs}/{entry.name}"
        problem = name_problem(entry.name)
        if problem is not None:
            detail = f"{shown(entry.name)} in {inputs}: not a plain name ({problem}); left"
            skipped.append(PruneItem(host.name, "input", inputs, detail))
            continue
        old = entry.mtime is not None and entry.mtime <= cutoff
        if entry.kind == "dir" or not old:
            continue
        if entry.name.endswith(PART_SUFFIX):
            items.append(PruneItem(host.name, "part", path, "an unfinished upload", entry.size))
        elif _INPUT.match(entry.name) and entry.name.split(".")[0] not in referenced:
            if busy:
                detail = f"{path}: unreferenced, kept while a container runs on the host"
                skipped.append(PruneItem(host.name, "input", path, detail, entry.size))
                continue
            detail = "an input no prompt of this database uses"
            items.append(PruneItem(host.name, "input", path, detail, entry.size))
    runs = str(PurePosixPath(tool) / "runs")
    for folder in await host.files.listdir(runs):
        if folder.kind != "dir" or name_problem(folder.name) is not None:
            continue
        for entry in await host.files.listdir(f"{runs}/{folder.name}"):
            old = entry.mtime is not None and entry.mtime <= cutoff
            plain = name_problem(entry.name) is None
            if plain and old and entry.name.endswith(PART_SUFFIX) and entry.kind != "dir":
                path = f"{runs}/{folder.name}/{entry.name}"
                items.append(PruneItem(host.name, "part", path, "an unfinished write", entry.size))


async def _referenced_inputs(bench: BenchView) -> set[str]:
    """The sha256 of every input of every prompt in this database."""
    found: set[str] = set()
    offset = 0
    while True:
        page = await bench.store.list_prompts(PromptFilter(), offset, _PAGE)
        for prompt in page.items:
            found.update(item.sha256 for item in prompt.inputs)
        offset += len(page.items)
        if offset >= page.total or not page.items:
            return found
