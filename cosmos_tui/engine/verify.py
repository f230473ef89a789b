"""Integrity checks behind ``cosmos verify [--fix]``.

What is checked, and what ``--fix`` does (only what is safe and reversible):

- completed runs whose output files are missing locally: downloaded again from the run's
  folder on its host when the files are still there (checked against their size);
- prompts whose input videos moved: when a file with the same size and sha256 is found
  in the prompt's folder or a folder given with ``--search``, the prompt points at it; an
  input whose content changed is reported, never "fixed" (runs would differ);
- local output folders of runs that are not in the database: moved aside into
  ``<outputs>/.orphaned/`` (nothing is deleted);
- containers with our labels whose run (or batch) is unknown to the database, or that
  still run after their run ended (the same rule as the lifecycle's reconcile): removed
  when they have stopped; a running one is only reported, never stopped silently. Only
  this installation's containers count (:mod:`cosmos_tui.owner`): another installation's
  are listed in ``VerifyReport.foreign`` and never touched;
- recorded output names that are not plain names (from a hostile host, by an older
  version) are reported and never used as paths.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import re
import shutil
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cosmos_tui.containment import contained_path, recorded_parts, shown
from cosmos_tui.domain import Prompt, Run, RunState
from cosmos_tui.engine.batch_collect import read_samples
from cosmos_tui.engine.batch_outputs import map_outputs
from cosmos_tui.engine.batching import BatchLine
from cosmos_tui.engine.inputs import in_thread, sha256_of
from cosmos_tui.errors import CosmosError, NotFound, OutsideFolder
from cosmos_tui.owner import LABEL_OWNER, Ownership, ownership
from cosmos_tui.store.queue_store import QueueStore
from cosmos_tui.store.repositories import PromptFilter, RunFilter

if TYPE_CHECKING:
    from cosmos_tui.engine.context import BenchView
    from cosmos_tui.remote.host import RemoteHost

ORPHANED_DIR = ".orphaned"
_RUN_DIR = re.compile(r"^rs_[0-9a-f]{4,32}$")
_PAGE = 500


class FindingKind(enum.StrEnum):
    """What ``cosmos verify`` found."""

    MISSING_OUTPUTS = "missing_outputs"
    INPUT_MOVED = "input_moved"
    INPUT_CHANGED = "input_changed"
    ORPHAN_DIR = "orphan_dir"
    ORPHAN_CONTAINER = "orphan_container"
    FOREIGN_CONTAINER = "foreign_container"
    UNSAFE_OUTPUT_NAME = "unsafe_output_name"


@dataclass(frozen=True)
class Finding:
    """One problem, whether ``--fix`` can repair it, and whether it did.

    Attributes:
        kind: What kind of problem.
        subject: The run, prompt, folder or container concerned.
        detail: One line for people.
        fixable: Whether ``--fix`` repairs it.
        fixed: Whether it was repaired in this pass.
        host: The host, for container findings.

    """

    kind: FindingKind
    subject: str
    detail: str
    fixable: bool = False
    fixed: bool = False
    host: str | None = None


@dataclass(frozen=True)
class VerifyReport:
    """Everything ``cosmos verify`` found, and the hosts it could not check.

    ``foreign`` lists other installations' containers (see :mod:`cosmos_tui.owner`): they
    are shown, never touched, and are not problems of this installation.
    """

    findings: tuple[Finding, ...]
    unreachable: tuple[tuple[str, str], ...] = ()
    checked_runs: int = 0
    checked_prompts: int = 0
    foreign: tuple[Finding, ...] = ()


async def verify(
    bench: BenchView,
    fix: bool = False,
    check_hosts: bool = True,
    search: Sequence[Path] = (),
    deep: bool = False,
) -> VerifyReport:
    """Check runs, prompts, local folders and (optionally) hosts; repair with ``fix``.

    Args:
        bench: The open facade.
        fix: Repair what can be repaired safely.
        check_hosts: Also look at the hosts (orphan containers, re-downloads).
        search: More folders to look for moved input videos in.
        deep: Hash every input that is present, to find changed content.

    """
    findings: list[Finding] = []
    unreachable: list[tuple[str, str]] = []
    runs_checked = 0
    known_runs: set[str] = set()
    offset = 0
    while True:
        page = await bench.store.list_runs(RunFilter(), offset, _PAGE, sort="created")
        for run in page.items:
            known_runs.add(run.id)
            if run.state == RunState.COMPLETED:
                runs_checked += 1
                finding = await _check_outputs(bench, run, fix and check_hosts, unreachable)
                if finding:
                    findings.append(finding)
        offset += len(page.items)
        if offset >= page.total or not page.items:
            break
    prompts_checked = 0
    offset = 0
    while True:
        prompts = await bench.store.list_prompts(PromptFilter(), offset, _PAGE)
        for prompt in prompts.items:
            prompts_checked += 1
            findings += await _check_inputs(bench, prompt, fix, search, deep)
        offset += len(prompts.items)
        if offset >= prompts.total or not prompts.items:
            break
    findings += await _orphan_dirs(bench, known_runs, fix)
    foreign: list[Finding] = []
    if check_hosts:
        findings += await _orphan_containers(bench, fix, unreachable, foreign)
    return VerifyReport(
        tuple(findings), tuple(unreachable), runs_checked, prompts_checked, tuple(foreign)
    )


async def _check_outputs(
    bench: BenchView, run: Run, fix: bool, unreachable: list[tuple[str, str]]
) -> Finding | None:
    folder = bench.output_dir(run.id)
    unsafe = [name for name in run.outputs if recorded_parts(name) is None]
    if unsafe:  # recorded by an older version from a hostile host: never used as paths
        names = ", ".join(shown(n) for n in unsafe[:5])
        return Finding(FindingKind.UNSAFE_OUTPUT_NAME, run.id,
                       f"recorded output name(s) {names} are not plain names; they are "
                       "ignored (check the files around this run's folder by hand)")  # fmt: skip
    missing = [name for name in run.outputs if not _is_plain_file(folder, name)]
    if not missing:
        return None
    detail = f"{len(missing)} of {len(run.outputs)} output file(s) missing in {folder}"
    recoverable = [name for name in missing if name != "run.log"]
    if not run.host and recoverable:
        detail += "; the run has no host to download them from again"
    if not fix or not run.host or not recoverable:
        fixable = bool(recoverable and run.host)
        return Finding(FindingKind.MISSING_OUTPUTS, run.id, detail, fixable=fixable)
    host = bench.hosts.get(run.host)
    restored = 0
    try:
        remote_output = f"{await host.tool_dir()}/runs/{run.id}/output"
        if run.batch_id:
            remote_output = await _batch_sample_folder(bench, host, run) or remote_output
        for name in recoverable:
            sub, _, plain = name.rpartition("/")
            remote_dir = f"{remote_output}/{sub}" if sub else remote_output
            entries = {e.name: e for e in await host.files.listdir(remote_dir)}
            entry = entries.get(plain)
            if entry is None or entry.kind != "file":
                continue  # gone, or no longer a regular file (a link is never followed)
            local_dir = contained_path(folder, sub) if sub else folder
            await host.download(remote_dir, plain, local_dir, entry.size, True)
            restored += 1
    except CosmosError as exc:
        detail += f"; re-download failed: {exc.message}"
        if exc.transient:
            unreachable.append((run.host, exc.message))
    fixed = restored == len(recoverable)
    if not fixed:
        detail += f"; {restored} re-downloaded, the rest are gone from {run.host}"
    else:
        detail += f"; re-downloaded from {run.host}"
    return Finding(FindingKind.MISSING_OUTPUTS, run.id, detail, fixable=True, fixed=fixed)


def _is_plain_file(folder: Path, recorded: str) -> bool:
    """True when a recorded output is a regular file inside ``folder`` (no symlinks)."""
    try:
        path = contained_path(folder, *(recorded_parts(recorded) or ("..",)))
    except OutsideFolder:
        return False
    return path.is_file() and not path.is_symlink()


async def _batch_sample_folder(bench: BenchView, host: RemoteHost, run: Run) -> str | None:
    """Return the ``video_<idx>`` folder a batch wrote for ``run`` (matched by prompt)."""
    assert run.batch_id is not None
    try:
        manifest = await QueueStore(bench.store).batch_manifest(run.batch_id)
    except NotFound:
        return None
    lines = [BatchLine(i["run_id"], i["prompt"], None) for i in manifest.get("lines", [])]
    batch_output = f"{await host.tool_dir()}/runs/{run.batch_id}/output"
    samples = await read_samples(host, batch_output)
    folder = map_outputs(lines, samples).folders.get(run.id)
    return f"{batch_output}/{folder}" if folder else None


async def _check_inputs(
    bench: BenchView, prompt: Prompt, fix: bool, search: Sequence[Path], deep: bool
) -> list[Finding]:
    findings = []
    for item in prompt.inputs:
        path = item.path
        if path.is_file() and path.stat().st_size == item.size:
            if deep and (await in_thread(functools.partial(sha256_of, path)))[0] != item.sha256:
                findings.append(Finding(
                    FindingKind.INPUT_CHANGED, prompt.id,
                    f"{item.role} input {path} has new content (sha256 differs); runs of this "
                    "prompt used the old one",
                ))  # fmt: skip
            continue
        if path.is_file():
            findings.append(Finding(
                FindingKind.INPUT_CHANGED, prompt.id,
                f"{item.role} input {path} changed size ({path.stat().st_size} bytes, "
                f"recorded {item.size})",
            ))  # fmt: skip
            continue
        folders = [f for f in (prompt.video_dir, *search) if f is not None]
        found = await in_thread(functools.partial(_find_copy, folders, item.size, item.sha256))
        detail = f"{item.role} input {path} is gone"
        if found is None:
            hint = detail + "; give its new folder with --search DIR"
            findings.append(Finding(FindingKind.INPUT_MOVED, prompt.id, hint))
            continue
        if fix:
            await bench.store.set_input_path(prompt.id, item.role, found)
        findings.append(Finding(FindingKind.INPUT_MOVED, prompt.id,
                                f"{detail}; the same video is at {found}", True, fix))  # fmt: skip
    return findings


def _find_copy(
    folders: Iterable[Path], size: int, sha256: str, cancelled: threading.Event
) -> Path | None:
    for folder in folders:
        if not folder.is_dir():
            continue
        for candidate in sorted(folder.rglob("*")):
            try:
                same_size = candidate.is_file() and candidate.stat().st_size == size
                if same_size and sha256_of(candidate, cancelled)[0] == sha256:
                    return candidate.resolve()
            except OSError:
                continue
    return None


def _unknown_dirs(outputs: Path, known: set[str]) -> list[Path]:
    if not outputs.is_dir():
        return []
    return [
        entry
        for entry in sorted(outputs.iterdir())
        if entry.is_dir() and _RUN_DIR.match(entry.name) and entry.name not in known
    ]


async def _orphan_dirs(bench: BenchView, known: set[str], fix: bool) -> list[Finding]:
    outputs = bench.config.outputs_dir
    findings = []
    for entry in await asyncio.to_thread(_unknown_dirs, outputs, known):
        if await _is_run(bench, entry.name):
            continue  # created by another process since the runs were listed
        detail = f"{entry} belongs to no run in the database"
        fixed = False
        if fix:
            target = outputs / ORPHANED_DIR / entry.name
            copies = 1
            while target.exists():  # moved aside before: keep both
                copies += 1
                target = outputs / ORPHANED_DIR / f"{entry.name}.{copies}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(entry), str(target))
            detail += f"; moved to {target}"
            fixed = True
        findings.append(Finding(FindingKind.ORPHAN_DIR, entry.name, detail, True, fixed))
    return findings


async def _is_run(bench: BenchView, run_id: str) -> bool:
    try:
        await bench.store.get_run(run_id, with_events=False)
    except NotFound:
        return False
    return True


async def _orphan_containers(
    bench: BenchView, fix: bool, unreachable: list[tuple[str, str]], foreign: list[Finding]
) -> list[Finding]:
    findings = []
    for host_config in bench.config.hosts:
        host = bench.hosts.get(host_config.name)
        try:
            containers = await host.docker.list(everyone=True)
        except CosmosError as exc:
            unreachable.append((host_config.name, exc.message))
            continue
        for info in containers:
            owner = info.labels.get("cosmos.batch_id") or info.run_id
            known = await _is_known(bench, owner) if owner else False
            whose = ownership(info.labels, getattr(host.docker, "owner", None), known)
            if whose == Ownership.FOREIGN:
                detail = (f"container {info.name} ({info.status}) belongs to another "
                          f"installation (owner {info.labels.get(LABEL_OWNER) or 'not set'}, "
                          "run unknown here); left alone")  # fmt: skip
                foreign.append(Finding(FindingKind.FOREIGN_CONTAINER, info.id[:12], detail,
                                       host=host_config.name))  # fmt: skip
                continue
            reason = await _orphan_reason(bench, owner, info.running)
            if reason is None:
                continue
            fixed = False
            detail = f"container {info.name} ({info.status}) {reason}"
            if fix and not info.running:
                try:
                    await host.docker.remove(info.id)
                    fixed = True
                    detail += "; removed"
                except CosmosError as exc:
                    detail += f"; could not remove it: {exc.message}"
            elif info.running:
                detail += "; still running, left alone (stop it yourself if it is not needed)"
            findings.append(Finding(FindingKind.ORPHAN_CONTAINER, info.id[:12], detail,
                                    not info.running, fixed, host_config.name))  # fmt: skip
    return findings


async def _is_known(bench: BenchView, owner: str) -> bool:
    """True when this database knows the run or batch ``owner``."""
    if owner.startswith("bs_"):
        return bool((await bench.store.list_runs(RunFilter(batch_id=owner), 0, 1)).items)
    return await _is_run(bench, owner)


async def _orphan_reason(bench: BenchView, owner: str | None, running: bool) -> str | None:
    if not owner:
        return "has our labels but no run id"
    if owner.startswith("bs_"):
        runs = (await bench.store.list_runs(RunFilter(batch_id=owner), 0, 1000)).items
        if not runs:
            return f"belongs to batch {owner}, unknown to this database"
        if running and not any(r.state.is_active for r in runs):
            return f"still running after its batch {owner} ended"
        return None
    try:
        run = await bench.store.get_run(owner, with_events=False)
    except NotFound:
        return f"belongs to run {owner}, unknown to this database"
    if running and not run.state.is_active:
        return f"still running while its run {owner} is {run.state.value}"
    return None
