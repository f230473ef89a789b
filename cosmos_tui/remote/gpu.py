"""GPU telemetry of one host from nvidia-smi.

One long-lived ``nvidia-smi --query-gpu=... -lms <interval>`` channel per host streams a
sample of every GPU per interval (never a process per sample). Rows are parsed by
:mod:`cosmos_tui.remote.smi` into :class:`~cosmos_tui.domain.GpuSample` with a health
each; a GPU nvidia-smi cannot open (``Unable to determine the device handle``) gets a
fault sample, and lines that are neither are kept to explain a failure. Each GPU keeps a
bounded history (at least ten minutes at 1 Hz). A GPU whose newest sample is older than
a few intervals is reported ``stale`` (with its age), never as current. Compute
processes (and, on MIG GPUs, the MIG instances) are polled every few seconds and
processes are attributed to our containers through ``/proc/<pid>/cgroup`` and so to
runs. The host's state (no driver, version mismatch, no devices, nvidia-smi missing,
stalled) is published to subscribers; a channel that dies is restarted with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

from cosmos_tui.domain import GpuHealth, GpuHostHealth, GpuProcess, GpuSample, MigInstance
from cosmos_tui.errors import CommandTimedOut, CosmosError, RemoteCommandFailed
from cosmos_tui.remote.docker import DockerClient
from cosmos_tui.remote.gpu_query import (
    APP_FIELDS,
    CONTAINER_ID,
    CSV,
    GPU_FIELDS,
    MIN_HISTORY_SECONDS,
    GpuReading,
    apply_device_errors,
    gpu_query_argv,
    parse_app_line,
    parse_gpu_line,
    query_gpus,
    query_mig,
    with_mig,
)
from cosmos_tui.remote.smi import (
    BASE_FIELDS,
    FULL_FIELDS,
    DeviceError,
    GpuState,
    host_problem,
    parse_device_error,
    parse_row,
    query_argv,
    stale_after_s,
    unsupported_field,
    with_staleness,
)
from cosmos_tui.remote.ssh import SshHost

__all__ = [
    "APP_FIELDS",
    "CSV",
    "GPU_FIELDS",
    "GpuReading",
    "GpuState",
    "GpuTelemetry",
    "gpu_query_argv",
    "parse_app_line",
    "parse_gpu_line",
    "query_gpus",
]

logger = logging.getLogger(__name__)


class GpuTelemetry:
    """The telemetry channel, GPU health and history of one host.

    Args:
        ssh: The host's connection.
        docker: The host's Docker client (to map containers to runs).
        interval_ms: Sampling interval.
        history_seconds: How much history to keep per GPU (at least ten minutes).
        apps_interval_s: Seconds between compute-process polls (0: none).
        stall_s: Seconds without output after which a hung nvidia-smi is restarted;
            None means five intervals, at least thirty seconds.
        stale_s: Age after which a GPU's sample is stale; None means three intervals,
            at least three seconds.
        rng: Random source for restart jitter.
        clock: Returns the time stamped on samples.

    """

    def __init__(
        self,
        ssh: SshHost,
        docker: DockerClient | None,
        interval_ms: int = 1000,
        history_seconds: float = MIN_HISTORY_SECONDS,
        apps_interval_s: float = 5.0,
        stall_s: float | None = None,
        stale_s: float | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._ssh = ssh
        self._docker = docker
        self.interval_ms = interval_ms
        seconds = max(history_seconds, MIN_HISTORY_SECONDS)
        self._history_len = max(1, int(seconds * 1000 / interval_ms))
        self._apps_interval_s = apps_interval_s
        self._stall_s = stall_s if stall_s is not None else max(30.0, interval_ms * 5 / 1000)
        self.stale_s = stale_s if stale_s is not None else stale_after_s(interval_ms)
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not security)
        self._clock = clock
        self._fields = FULL_FIELDS
        self._history: dict[int, deque[GpuSample]] = {}
        self._current: dict[int, GpuSample] = {}
        self._mig: dict[str, tuple[MigInstance, ...]] = {}
        self._processes: tuple[GpuProcess, ...] = ()
        # The first process query answered or failed (placement waits for it); True at
        # once when processes are not polled at all.
        self.processes_read = apps_interval_s <= 0
        self._poll_bug_logged = False
        self._subscribers: set[asyncio.Queue[tuple[GpuSample, ...]]] = set()
        self._watchers: set[asyncio.Queue[GpuHostHealth | None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.state = GpuState.STOPPED
        self.reason: str | None = None
        self.device_errors: tuple[str, ...] = ()
        self.skipped_lines = 0
        self.restarts = 0

    # reading -------------------------------------------------------------------------------

    @property
    def history_capacity(self) -> int:
        """How many samples are kept per GPU."""
        return self._history_len

    def latest(self) -> tuple[GpuSample, ...]:
        """The current sample of every GPU, by index; old ones are marked stale."""
        now = self._clock()
        return tuple(
            with_staleness(sample, now, self.stale_s) for _, sample in sorted(self._current.items())
        )

    def history(self, index: int) -> tuple[GpuSample, ...]:
        """The kept samples of one GPU, oldest first."""
        return tuple(self._history.get(index, ()))

    def processes(self) -> tuple[GpuProcess, ...]:
        """The compute processes of the last poll, attributed to runs where they are ours."""
        return self._processes

    def health(self) -> GpuHostHealth:
        """The host's telemetry state now, with its reason.

        While the state is ok, the reason names the GPUs nvidia-smi cannot open (a lost
        GPU among eight), as ``cosmos status`` does; None when there are none.
        """
        reason = self.reason
        if self.state is GpuState.OK and self.device_errors:
            reason = "; ".join(self.device_errors)
        return GpuHostHealth(self._ssh.name, self.state.value, reason)

    async def samples(self) -> AsyncIterator[tuple[GpuSample, ...]]:
        """Yield each new set of samples (one per interval; stale marks too) until stopped."""
        queue: asyncio.Queue[tuple[GpuSample, ...]] = asyncio.Queue(maxsize=8)
        self._subscribers.add(queue)
        try:
            while True:
                batch = await queue.get()
                if not batch:
                    return
                yield batch
        finally:
            self._subscribers.discard(queue)

    async def states(self) -> AsyncIterator[GpuHostHealth]:
        """Yield the host's telemetry state now, then each change, until stopped."""
        queue: asyncio.Queue[GpuHostHealth | None] = asyncio.Queue(maxsize=16)
        self._watchers.add(queue)
        try:
            yield self.health()
            while True:
                item = await queue.get()
                if item is None:
                    return
                yield item
        finally:
            self._watchers.discard(queue)

    # running -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the sampling channel, the staleness check and the process poll (idempotent)."""
        if self._tasks:
            return
        self._set_state(GpuState.STARTING, None)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._stream_forever()),
            loop.create_task(self._watch_staleness()),
        ]
        if self._apps_interval_s > 0:
            self._tasks.append(loop.create_task(self._poll_processes_forever()))

    async def stop(self) -> None:
        """Stop sampling; subscribers' iterators end."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.state = GpuState.STOPPED
        self._publish(())
        for queue in list(self._watchers):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)

    def _set_state(self, state: GpuState, reason: str | None) -> None:
        if (state, reason) == (self.state, self.reason):
            return
        self.state, self.reason = state, reason
        self._announce()

    def _announce(self) -> None:
        """Tell the state watchers the host's health now."""
        item = self.health()
        for queue in list(self._watchers):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(item)

    def _publish(self, batch: tuple[GpuSample, ...]) -> None:
        for queue in list(self._subscribers):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(batch)

    def _record(self, batch: list[GpuSample], errors: list[DeviceError]) -> None:
        now = self._clock()
        batch, unmatched = apply_device_errors(batch, errors, self._current, now)
        device_errors = tuple(f"{e.message} (bus {e.bus_id})" for e in unmatched)
        if device_errors != self.device_errors:
            self.device_errors = device_errors
            self._announce()
        out = []
        for sample in with_mig(batch, self._mig):
            self._current[sample.index] = sample
            out.append(sample)
            if sample.health.fault and sample.utilization is None:
                continue  # a fault without figures: nothing for the history
            history = self._history.get(sample.index)
            if history is None:
                history = self._history[sample.index] = deque(maxlen=self._history_len)
            history.append(sample)
        self._publish(tuple(out))

    async def _watch_staleness(self) -> None:
        """Publish a GPU's stale mark once when its samples stop (a hung or dead channel)."""
        marked: set[int] = set()
        while True:
            await asyncio.sleep(min(1.0, self.stale_s / 3))
            stale = [s for s in self.latest() if s.health is GpuHealth.STALE]
            fresh = [s for s in stale if s.index not in marked]
            marked = {s.index for s in stale}
            if fresh:
                self._publish(tuple(fresh))

    async def _stream_forever(self) -> None:
        failures = 0
        while True:
            try:
                got_samples = await self._stream_once()
            except RemoteCommandFailed as exc:
                got_samples = False
                state = GpuState.STALLED if exc.timed_out else GpuState.RESTARTING
                self._set_state(state, exc.message)
            except CosmosError as exc:
                got_samples = False
                self._set_state(GpuState.RESTARTING, exc.message)
            if got_samples:
                failures = 0
            failures += 1
            retry = self._ssh.retry
            if self.state.host_problem:
                delay = retry.backoff_max
            else:
                delay = min(retry.backoff_max, retry.backoff_base * 2 ** (failures - 1))
                if self.state is not GpuState.STALLED:
                    self._set_state(GpuState.RESTARTING, self.reason)
            self.restarts += 1
            logger.info(
                "gpu telemetry of %s: %s; again in %.1f s", self._ssh.name, self.reason, delay
            )
            await asyncio.sleep(delay * self._rng.uniform(0.5, 1.0))

    async def _stream_once(self) -> bool:
        """Run one nvidia-smi channel until it ends; return True if it gave samples."""
        got_samples = False
        pending: list[GpuSample] = []
        errors: list[DeviceError] = []
        flush_after = max(0.05, min(0.2, self.interval_ms / 4000))
        fields = self._fields
        async with self._ssh.stream(query_argv(fields, self.interval_ms)) as lines:
            # A reader task feeds a queue so that waiting with a timeout (to flush the
            # last GPU's line of a tick) never cancels the line iterator itself.
            queue: asyncio.Queue[str | None] = asyncio.Queue()
            failure: list[CosmosError] = []

            async def pump() -> None:
                try:
                    async for text in lines:
                        queue.put_nowait(text)
                except CosmosError as exc:
                    failure.append(exc)
                finally:
                    queue.put_nowait(None)

            reader = asyncio.create_task(pump())
            try:
                other: deque[str] = deque(maxlen=5)  # a garbage line per tick, for days
                while True:
                    try:
                        # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns
                        # the line and swallows a cancel that arrives with it, so stop()
                        # could wait for ever on a busy stream.
                        async with asyncio.timeout(
                            flush_after if pending or errors else self._stall_s
                        ):
                            line = await queue.get()
                    except TimeoutError:
                        if not pending and not errors:  # a hung driver: leaving stops it
                            raise CommandTimedOut(
                                self._ssh.name,
                                ["nvidia-smi"],
                                f"no output for {self._stall_s:.0f} s (stalled)",
                            ) from None
                        self._record(pending, errors)
                        pending, errors = [], []
                        continue
                    if line is None:
                        break
                    sample = parse_row(line, fields, self._ssh.name, self._clock())
                    if sample is None:
                        error = parse_device_error(line)
                        if error is not None:
                            errors.append(error)
                        elif line.strip():
                            self.skipped_lines += 1
                            other.append(line)
                        continue
                    if pending and sample.index <= pending[-1].index:
                        self._record(pending, errors)
                        pending, errors = [], []
                    pending.append(sample)
                    got_samples = True
                    self._set_state(GpuState.OK, None)
                if pending or errors:
                    self._record(pending, errors)
                await reader
                if failure:
                    raise failure[0]
            finally:
                reader.cancel()
            status = await lines.wait()
            output = "\n".join(other) + lines.stderr_tail
        if not got_samples and fields != BASE_FIELDS and unsupported_field(output):
            logger.info("nvidia-smi of %s rejects extra fields; basic ones only", self._ssh.name)
            self._fields = BASE_FIELDS
            return True  # not a failure: ask again at once with the basic fields
        problem = host_problem(status, output)
        if problem is not None and not got_samples:
            self._set_state(*problem)
        else:
            self.reason = f"nvidia-smi ended (status {status}): {output.strip()[-300:]}"
        return got_samples

    async def _poll_processes_forever(self) -> None:
        while True:
            if not self.state.host_problem:
                try:
                    self._processes = await self.poll_processes()
                    if any(s.mig_enabled for s in self._current.values()):
                        await self._poll_mig()
                except CosmosError as exc:
                    logger.info("gpu process poll of %s failed: %s", self._ssh.name, exc)
                except Exception as exc:  # a bug must not end the polls: placement reads them
                    if not self._poll_bug_logged:  # the traceback once, then one line
                        logger.exception("gpu process poll of %s failed", self._ssh.name)
                        self._poll_bug_logged = True
                    else:
                        logger.info("gpu process poll of %s failed: %r", self._ssh.name, exc)
                finally:
                    # Placement goes on after a failed poll rather than never (logged).
                    self.processes_read = True
            await asyncio.sleep(self._apps_interval_s)

    async def _poll_mig(self) -> None:
        self._mig = await query_mig(self._ssh)

    async def poll_processes(self) -> tuple[GpuProcess, ...]:
        """Query compute processes once and attribute them to our containers and runs.

        Rows are kept when nvidia-smi exits non-zero (one lost GPU among eight), so that
        other users' jobs on the good GPUs stay visible to placement.
        """
        argv = ["nvidia-smi", f"--query-compute-apps={APP_FIELDS}", CSV]
        result = await self._ssh.run(argv, check=False)
        apps = [
            p for p in (parse_app_line(x, self._ssh.name) for x in result.stdout.splitlines()) if p
        ]
        if not apps:
            return ()
        containers = await self._containers_of([p.pid for p in apps])
        runs: dict[str, str] = {}
        if self._docker is not None and containers:
            with contextlib.suppress(CosmosError):
                runs = {c.id: c.run_id for c in await self._docker.list() if c.run_id}
        attributed = []
        for app in apps:
            container_id = containers.get(app.pid)
            attributed.append(
                GpuProcess(
                    app.host,
                    app.gpu_uuid,
                    app.pid,
                    app.used_memory_mib,
                    app.process_name,
                    container_id=container_id,
                    run_id=runs.get(container_id) if container_id else None,
                )
            )
        return tuple(attributed)

    async def _containers_of(self, pids: list[int]) -> dict[int, str]:
        paths = [f"/proc/{pid}/cgroup" for pid in pids]
        result = await self._ssh.run(["grep", "-H", "", *paths], check=False)
        found: dict[int, str] = {}
        for line in result.stdout.splitlines():
            path, _, cgroup = line.partition(":")
            match = CONTAINER_ID.search(cgroup.partition(":")[2].partition(":")[2])
            pid_text = path.split("/")[2] if path.count("/") >= 3 else ""
            if match and pid_text.isdigit():
                found[int(pid_text)] = match.group(1)
        return found
