"""One Ray Job of a run's attempt: its names, shared folder, entrypoint, log and files.

What :class:`cosmos_tui.engine.ray_launch.RayLauncher` needs of a single attempt, with no
state of its own: the submission id and container name of an attempt (a retry gets new
ones), its folder in the shared folder, the entrypoint that runs the container the
usual :func:`launch.container_spec` builds, the job log's timestamped lines, the run's
progress from them, the note a retry leaves in ``run.log``, and the output copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shlex
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from cosmos_tui.config import ClusterConfig, Config, HostConfig
from cosmos_tui.domain import Run, RunState
from cosmos_tui.engine import launch
from cosmos_tui.engine.logs import _TIMESTAMP, Deduper, LocalLog, RawLine
from cosmos_tui.engine.progress import ProgressTracker, parser_for
from cosmos_tui.errors import CosmosError
from cosmos_tui.remote.docker_types import container_body
from cosmos_tui.store.repositories import Store

PROGRESS_SECONDS = 1.0
ENTRY_SCRIPT = Path(__file__).with_name("ray_entry_script.py")
# The entrypoint's line once its container runs (ray_entry_script.main): Ray's GPUs.
RUNNING_ON = re.compile(r"\[cosmos-tui\] container \S+ running on GPUs \[([0-9, ]*)\]")


def submission_id(run: Run) -> str:
    """The Ray submission id of a run's attempt: the run id, then ``<id>-a<N>`` on retries."""
    return attempt_name(run.id, run.attempt)


def attempt_name(run_id: str, attempt: int) -> str:
    """The name of one attempt: its submission id and its folder in the shared folder."""
    return run_id if attempt <= 1 else f"{run_id}-a{attempt}"


def attempt_layout(cluster: ClusterConfig, run_id: str, attempt: int) -> launch.RemoteLayout:
    """The shared-folder paths of one attempt.

    Each attempt has its own folder: after a node is lost its container may still be
    writing (the machine can outlive its raylet), and must not write into the retry's.
    """
    return launch.RemoteLayout("/", cluster.shared_dir, attempt_name(run_id, attempt))


def container_name(run: Run) -> str:
    """The container of a run's attempt (Docker refuses a second one of that name)."""
    return f"cosmos-{run.id}-a{max(1, run.attempt)}"


def cluster_host(cluster: ClusterConfig) -> HostConfig:
    """The HostConfig that :func:`launch.container_spec` reads, from a cluster's config."""
    return HostConfig(
        name=cluster.name,
        hostname=cluster.name,
        remote_repo_dir=cluster.remote_repo_dir,
        checkpoints_dir=cluster.checkpoints_dir,
        remote_tool_dir=cluster.shared_dir,
        docker_image=cluster.docker_image,
        docker_socket=cluster.docker_socket,
        gpu_request=cluster.gpu_request,
        shm_size=cluster.shm_size,
        env=dict(cluster.env),
        hf_cache_dir=None,
    )


def entrypoint(
    cluster: ClusterConfig,
    run: Run,
    config: Config,
    grace: float,
    layout: launch.RemoteLayout | None = None,
) -> str:
    """Return the job's entrypoint: the standalone script and the container's create body.

    ``layout`` is where the attempt's files are on the node (default: the shared folder).
    """
    host = cluster_host(cluster)
    layout = layout or attempt_layout(cluster, run.id, run.attempt)
    spec = launch.container_spec(
        run.id,
        launch.build_command(run, config),
        launch.image_for(run, host, config),
        host,
        layout,
        labels={launch.LABEL_ATTEMPT: str(run.attempt), launch.LABEL_PROFILE: run.profile},
    )
    job = {
        "socket": cluster.docker_socket,
        "name": container_name(run),
        "grace": max(1, int(grace)),
        "gpu_request": cluster.gpu_request,
        "body": container_body(spec, cluster.name, gpu_request=False),
    }
    script = ENTRY_SCRIPT.read_text(encoding="utf-8")
    return shlex.join([cluster.python, "-c", script, json.dumps(job)])


async def timestamped_lines(chunks: AsyncIterator[str], whole: bool = False) -> AsyncIterator[str]:
    """Keep the container's (and entrypoint's) timestamped lines of a job log stream.

    Ray adds lines of its own (runtime env, "Running entrypoint"); they carry no Docker
    timestamp, are not the run's, and are dropped. A stream that ends (or breaks) in
    the middle of a line leaves that line to the next read, which has all of it; only
    the ``whole`` log of an ended job keeps a last line without a newline.
    """
    buffer = ""
    async for chunk in chunks:
        buffer += chunk
        *lines, buffer = buffer.split("\n")
        for line in lines:
            if _TIMESTAMP.match(line.encode("utf-8", errors="surrogateescape") + b" "):
                yield line + "\n"
    last = buffer.encode("utf-8", errors="surrogateescape") + b" "
    if whole and buffer and _TIMESTAMP.match(last):
        yield buffer + "\n"


class ProgressWriter:
    """A cluster run's progress from its log lines, stored when it moves (once a second).

    The entrypoint's first line names the GPUs Ray gave it (``CUDA_VISIBLE_DEVICES``);
    they are stored as the run's ``devices``, which the node's telemetry measures.
    """

    def __init__(self, store: Store, run: Run) -> None:
        self.store = store
        self.run_id = run.id
        self.tracker = ProgressTracker(parser_for(run.profile), time.time(), None)
        self.moved = False
        self.devices: tuple[int, ...] | None = None

    def feed(self, lines: list[str]) -> None:
        """Read a batch of new log lines."""
        if self.tracker.feed(lines, time.time()):
            self.moved = True
        for line in lines:
            found = RUNNING_ON.search(line)
            if found is not None:
                self.devices = tuple(int(d) for d in found.group(1).split(",") if d.strip())
                self.moved = True

    async def publish(self) -> None:
        """Store the progress each second it moved, and the ETA as time passes."""
        while True:
            await asyncio.sleep(PROGRESS_SECONDS)
            snapshot = self.tracker.snapshot(time.time())
            if not self.moved and snapshot.eta_seconds is None:
                continue
            self.moved = False
            eta = snapshot.eta_seconds
            fields: dict[str, object] = {} if self.devices is None else {"devices": self.devices}
            with contextlib.suppress(CosmosError):  # a busy database: the next second retries
                await self.store.update_run(
                    self.run_id,
                    progress_phase=snapshot.phase,
                    progress_percent=round(snapshot.percent, 1),
                    eta_seconds=round(eta, 1) if eta is not None else None,
                    **fields,
                )
                self.devices = None  # stored


def begin_attempt_log(local_log: LocalLog, run: Run) -> None:
    """Prepare ``run.log`` for the attempt about to be staged (``run.attempt + 1``).

    A user's retry of an ended run starts a fresh log, the earlier one kept as
    ``run.attempt<N>.log`` (as for SSH runs), so the new attempt's diagnosis never reads
    the old one's errors. A retry the tool made (a lost node, a job left pending) goes on
    in the same log; the cursor forgets the last timestamp, since the new attempt's node
    clock may be behind the old one's.
    """
    if run.attempt < 1:
        return
    requeues = [e.from_state for e in run.events if e.to_state == RunState.QUEUED]
    requeued_from = requeues[-1] if requeues else None
    path = local_log.path
    if requeued_from is not None and requeued_from.is_terminal:
        if path.exists() and path.stat().st_size > 0:
            path.rename(path.with_name(f"run.attempt{run.attempt}.log"))
        local_log.cursor_path.unlink(missing_ok=True)
        return
    if local_log.cursor_path.exists():
        local_log.open()
        local_log.cursor.new_attempt()
        local_log.flush_cursor()  # close() saves only after a write


def note_gap(local_log: LocalLog, text: str) -> None:
    """Append one ``[cosmos-tui]`` line to the run's log and start a new attempt's cursor.

    The next attempt's container lines come from another node, whose clock may be
    behind this one's: the cursor forgets the last timestamp so none of them is dropped.
    """
    local_log.open()
    local_log.cursor.new_attempt()
    local_log.append([RawLine(None, f"[cosmos-tui] {text}".encode())], Deduper(None, 0))
    local_log.close()


async def once(text: str) -> AsyncIterator[str]:
    """Yield ``text`` as a one-chunk stream (a whole job log read at once)."""
    yield text


def container_exit_code(lines: list[str]) -> int | None:
    """The container's exit code, from the entrypoint's last ``container exited N`` line."""
    for line in reversed(lines):
        marker = "[cosmos-tui] container exited "
        if marker in line:
            try:
                return int(line.rsplit(" ", 1)[1])
            except ValueError:
                return None
    return None


def copy_atomic(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` through a ``.part`` file renamed when complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".part")
    shutil.copyfile(source, temporary)
    temporary.replace(target)


def copy_outputs(source: Path, local_dir: Path) -> list[str]:
    """Copy the output folder's files (one level of sub-folders) and check their sizes."""
    copied: list[str] = []
    if not source.is_dir():
        return copied
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if not path.is_file() or path.is_symlink() or len(relative.parts) > 2:
            continue
        target = local_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        if target.stat().st_size != path.stat().st_size:
            raise CosmosError(f"output {relative} changed while it was copied")
        copied.append(str(relative))
    return copied


__all__ = [
    "ProgressWriter",
    "attempt_layout",
    "attempt_name",
    "begin_attempt_log",
    "cluster_host",
    "container_exit_code",
    "container_name",
    "copy_atomic",
    "copy_outputs",
    "entrypoint",
    "note_gap",
    "once",
    "submission_id",
    "timestamped_lines",
]


async def probed(
    chunks: AsyncIterator[str],
    live: Callable[[], Awaitable[bool]],
    idle: float,
    reopen_after: float | None = None,
) -> AsyncIterator[str]:
    """Yield ``chunks``; after ``idle`` seconds without one, ask ``live()`` (the job's state).

    Ray's log stream is a websocket with no heartbeat: a head that went away without a
    reset (a reboot, a path that drops packets) leaves it open and silent for good, and
    an idle socket never notices. The probe is one HTTP call, which does time out: it
    raises :class:`ClusterUnreachable` then (the caller resumes later), and the stream
    ends when ``live()`` says the job has ended (the caller reads the whole log once).
    A stream silent for ``reopen_after`` seconds while the job runs also ends: its
    socket may have died alone (a NAT that forgot it), and the caller opens a new one,
    which resumes from the log's cursor. A run silent that long (a model loading) pays
    one re-read of its log so far.
    """
    iterator = aiter(chunks)
    pending: asyncio.Future[str] = asyncio.ensure_future(anext(iterator))
    silent = 0.0
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=idle)
            if not done:
                if not await live():
                    return
                silent += idle
                if reopen_after is not None and silent >= reopen_after:
                    return
                continue
            silent = 0.0
            try:
                chunk = pending.result()
            except StopAsyncIteration:
                return
            yield chunk
            pending = asyncio.ensure_future(anext(iterator))
    finally:
        pending.cancel()
        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, CosmosError):
            await pending
