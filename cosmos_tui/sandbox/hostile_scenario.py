"""``cosmos demo --headless --hostile``: every hostile switch on, and proof of containment.

The simulated host lies in listings (``../../../../..``, absolute names), its image leaves
symlinks to the user's files and folders, a device file, a 50 GB sparse "output" and a
name with a newline and terminal escape sequences; every command's output starts with a
login greeting; a second installation's containers (one exited, one running) share its
Docker. Three runs (a batch of two and one alone) go through the ordinary queue.

Passes (exit 0) only when:

- every run ended ``failed`` with cause ``refused_output`` and a message that names what
  the host offered, with its valid video downloaded next to it (nothing else);
- nothing was written outside the workspace's outputs folder: a canary file beside it is
  untouched, no ``.bashrc`` appeared or changed in the folders above a run's folder, the
  rest of the workspace is as it was, and every output is a plain file in its run folder;
- the second installation's containers are exactly as they were after ``reconcile``,
  ``verify --fix`` and ``host prune``;
- the Hugging Face token the host's image prints into its log (``HF_TOKEN=...``) is in
  no file of the workspace: logs keep the line with the value masked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from cosmos_tui.domain import FailureKind, RunState
from cosmos_tui.engine.prune import carry_out, plan_prune
from cosmos_tui.sandbox.scenario import _drive_queue, cancellable, mp4_is_valid, sample_prompts
from cosmos_tui.sandbox.workspace import DemoWorkspace, add_sample_prompts
from cosmos_tui.services import Workbench

if TYPE_CHECKING:
    from cosmos_tui.config import Config
    from cosmos_tui.sandbox.options import SandboxHandle

PLAN: tuple[tuple[str, dict[str, object]], ...] = (
    ("warehouse-robot", {"seed": 11}),
    ("rainy-street", {"seed": 11}),
    ("forest-road", {"seed": 12}),
)
CANARY = "canary.txt"
# A made-up token in the demo host's env table: the hostile image prints it in its log.
DEMO_TOKEN = "hf_demoTokenNeverInAnyFile0123456789"  # noqa: S105 (made up)


def _fingerprint(path: Path) -> tuple[str, int] | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns
    except OSError:
        return None


def _tree(root: Path, skip: tuple[Path, ...]) -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = [d for d in dirs if here / d not in skip]
        for name in files:
            path = here / name
            if path in skip:
                continue
            stat = path.lstat()
            found[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return found


def _outputs_problems(outputs: Path) -> list[str]:
    """Every entry under outputs/ must be a run folder holding plain files (and folders)."""
    problems: list[str] = []
    if not outputs.is_dir():
        return problems
    for entry in outputs.iterdir():
        if entry.is_symlink() or not entry.is_dir() or not entry.name.startswith("rs_"):
            problems.append(f"unexpected {entry} in the outputs folder")
            continue
        for path in entry.rglob("*"):
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                problems.append(f"{path} is not a plain file or folder")
    return problems


def _files_holding(root: Path, secret: bytes) -> list[str]:
    """Every regular file under ``root`` (up to 64 MB each) that holds ``secret``."""
    found = []
    for path in root.rglob("*"):
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 64 << 20:
            continue
        if secret in path.read_bytes():
            found.append(str(path))
    return found


def with_demo_token(config: Config) -> Config:
    """``config`` with :data:`DEMO_TOKEN` as every host's ``HF_TOKEN``."""
    hosts = [dataclasses.replace(h, env={**h.env, "HF_TOKEN": DEMO_TOKEN}) for h in config.hosts]
    return dataclasses.replace(config, hosts=hosts)


def run_hostile_scenario(
    config: Config,
    space: DemoWorkspace,
    sandbox: SandboxHandle,
    echo: Callable[[str], None] = print,
    timeout: float = 600.0,
) -> int:
    """Run the hostile scenario, print what happened; 0 when everything was contained."""
    return asyncio.run(cancellable(_scenario(config, space, sandbox, echo, timeout), echo))


async def _scenario(
    config: Config,
    space: DemoWorkspace,
    sandbox: SandboxHandle,
    echo: Callable[[str], None],
    timeout: float,
) -> int:
    started = time.monotonic()
    echo(f"cosmos demo --headless --hostile: a HOSTILE SIMULATED GPU HOST on 127.0.0.1:"
         f"{sandbox.port}")  # fmt: skip
    outputs = config.outputs_dir
    canary = space.root / CANARY
    canary.write_text(f"canary {time.time_ns()}\n", encoding="utf-8")
    canary_before = _fingerprint(canary)
    problems: list[str] = []
    async with Workbench.open(with_demo_token(config)) as bench:
        await add_sample_prompts(bench, space)
        prompts = await sample_prompts(bench, space)
        skip = (space.data_dir, space.root / "demo.log")
        tree_before = _tree(space.root, skip)
        foreign_before = await _foreign(bench)
        echo(f"a second installation has {len(foreign_before)} container(s) on the host's Docker")
        run_ids = []
        for name, overrides in PLAN:
            run = await bench.create_run(prompts[name].id, dict(overrides))
            run_ids.append(run.id)
            echo(f"queued {run.id}  {name}")
        ancestors = [p / ".bashrc" for p in list((outputs / run_ids[0]).parents)[:6]]
        bashrc_before = {p: _fingerprint(p) for p in ancestors}
        await asyncio.wait_for(_drive_queue(bench, run_ids, echo), timeout)
        await _housekeeping(bench, echo)
        foreign_after = await _foreign(bench)
        if foreign_after != foreign_before:
            problems.append(f"foreign containers changed: {foreign_before} -> {foreign_after}")
        runs = [await bench.get_run(run_id) for run_id in run_ids]
    for run in runs:
        video = outputs / run.id / "output.mp4"
        valid = await asyncio.to_thread(mp4_is_valid, video)
        mark = ""
        if run.state != RunState.FAILED or run.failure_kind != FailureKind.REFUSED_OUTPUT:
            problems.append(f"{run.id} ended {run.state.value}, expected failed/refused_output")
            mark = "   <- unexpected"
        elif not valid:
            problems.append(f"{run.id}: its safe video was not downloaded")
        echo(f"\n{run.id} {run.state.value} ({run.failure_kind or '-'}){mark}")
        echo(f"  {run.failure_message}")
        echo(f"  kept: {', '.join(run.outputs) or 'nothing'}")
    if _fingerprint(canary) != canary_before:
        problems.append(f"the canary {canary} changed")
    for path, before in bashrc_before.items():
        if _fingerprint(path) != before:
            problems.append(f"{path} was written")
    if _tree(space.root, (space.data_dir, space.root / "demo.log")) != tree_before:
        problems.append("files outside the outputs folder changed in the workspace")
    if Path("/tmp/cosmos-owned").exists():
        problems.append("/tmp/cosmos-owned exists")
    problems += _outputs_problems(outputs)
    leaked = await asyncio.to_thread(_files_holding, space.root, DEMO_TOKEN.encode())
    problems += [f"{path} holds the host's HF_TOKEN unmasked" for path in leaked]
    echo("")
    for problem in problems:
        echo(f"NOT CONTAINED: {problem}")
    seconds = time.monotonic() - started
    if problems:
        echo(f"hostile scenario FAILED in {seconds:.1f} s")
        return 1
    echo(f"hostile scenario OK: {len(runs)} runs contained, canary {canary} untouched, "
         f"{len(foreign_before)} foreign container(s) untouched, in {seconds:.1f} s")  # fmt: skip
    return 0


async def _foreign(bench: Workbench) -> list[tuple[str, str]]:
    """(id, state) of every container on the hosts that another installation owns."""
    found = []
    for host in bench.config.hosts:
        docker = bench.hosts.get(host.name).docker
        for info in await docker.list(everyone=True):
            owner = info.labels.get("cosmos.owner")
            if owner and owner != docker.owner:
                found.append((info.id, info.status))
    return sorted(found)


async def _housekeeping(bench: Workbench, echo: Callable[[str], None]) -> None:
    """Reconcile, verify --fix and host prune, as a user tidying up would."""
    report = await bench.runs.reconcile()
    echo(f"reconcile: {len(report.foreign)} foreign container(s) listed, left alone")
    verified = await bench.verify(fix=True)
    echo(f"verify --fix: {len(verified.foreign)} foreign container(s) listed, left alone")
    plan = await plan_prune(bench, [h.name for h in bench.config.hosts], older_than=0)
    done = await carry_out(bench, plan)
    removed = sum(1 for _, error in done if error is None)
    echo(f"host prune: removed {removed} of ours, {len(plan.foreign)} foreign left alone")
