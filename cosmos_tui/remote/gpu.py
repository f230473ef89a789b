"""GPU telemetry of one host from nvidia-smi.

One long-lived ``nvidia-smi --query-gpu=... -lms <interval>`` channel per host streams a
sample of every GPU per interval (never a process per sample). Lines are parsed into
:class:`~cosmos_tui.domain.GpuSample`; ``[N/A]`` and ``[Not Supported]`` become None and lines
that do not parse are skipped and counted. Each GPU keeps a bounded history (at least ten
minutes at 1 Hz). Compute processes are polled every few seconds and attributed to our
containers through ``/proc/<pid>/cgroup`` and so to runs. A host without a driver is a
state (:attr:`GpuState.NO_DRIVER`), and a channel that dies is restarted with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import re
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cosmos_tui.domain import GpuProcess, GpuSample
from cosmos_tui.errors import CosmosError, RemoteCommandFailed
from cosmos_tui.remote.docker import DockerClient
from cosmos_tui.remote.ssh import SshHost

logger = logging.getLogger(__name__)

GPU_FIELDS = (
    "index,uuid,name,utilization.gpu,utilization.memory,memory.used,memory.total,"
    "temperature.gpu,power.draw,power.limit,clocks.sm"
)
APP_FIELDS = "pid,gpu_uuid,used_memory,process_name"
CSV = "--format=csv,noheader,nounits"
NO_DRIVER_TEXT = "couldn't communicate with the NVIDIA driver"
MIN_HISTORY_SECONDS = 600
_CONTAINER_ID = re.compile(r"(?:docker-|/docker/|containerd-)?([0-9a-f]{64})")


class GpuState(enum.StrEnum):
    """What a host's telemetry channel is doing."""

    STOPPED = "stopped"
    STARTING = "starting"
    OK = "ok"
    NO_DRIVER = "no NVIDIA driver"
    RESTARTING = "restarting"
    FAILED = "failed"


@dataclass(frozen=True)
class GpuReading:
    """One-shot result of querying a host's GPUs."""

    state: GpuState
    samples: tuple[GpuSample, ...]
    reason: str | None = None


def gpu_query_argv(interval_ms: int | None = None) -> list[str]:
    """Return the nvidia-smi argv of the GPU query (streaming when ``interval_ms``)."""
    argv = ["nvidia-smi", f"--query-gpu={GPU_FIELDS}", CSV]
    if interval_ms is not None:
        argv += ["-lms", str(interval_ms)]
    return argv


def _number(text: str) -> float | None:
    value = text.strip()
    if not value or value.startswith("[") or value.upper() == "N/A":
        return None
    return float(value)


def parse_gpu_line(line: str, host: str, at: datetime) -> GpuSample | None:
    """Parse one ``--query-gpu`` CSV line; None when it is not a sample.

    Figures the driver does not report (``[N/A]``, ``[Not Supported]``) become None.
    """
    parts = [part.strip() for part in line.split(", ")]
    if len(parts) != 11 or not parts[0].isdecimal() or not parts[1]:
        return None
    try:
        figures = [_number(part) for part in parts[3:]]
    except ValueError:
        return None
    return GpuSample(host, int(parts[0]), parts[1], parts[2], at, *figures)


def parse_app_line(line: str, host: str) -> GpuProcess | None:
    """Parse one ``--query-compute-apps`` CSV line; None when it is not one."""
    parts = [part.strip() for part in line.split(", ", 3)]
    if len(parts) != 4 or not parts[0].isdecimal():
        return None
    try:
        memory = _number(parts[2])
    except ValueError:
        memory = None
    return GpuProcess(host, parts[1], int(parts[0]), memory, parts[3])


def _no_driver_reason(exit_status: int | None, output: str) -> str | None:
    if NO_DRIVER_TEXT in output:
        return "no NVIDIA driver: nvidia-smi could not communicate with the NVIDIA driver"
    if exit_status == 127 or "not found" in output:
        return "no NVIDIA driver: nvidia-smi is not installed"
    return None


async def query_gpus(ssh: SshHost) -> GpuReading:
    """Take one sample of every GPU (for ``cosmos status``).

    Raises:
        HostUnreachable: When the host cannot be reached.

    """
    result = await ssh.run(gpu_query_argv(), check=False)
    reason = _no_driver_reason(result.exit_status, result.stdout + result.stderr)
    if reason:
        return GpuReading(GpuState.NO_DRIVER, (), reason)
    at = datetime.now(UTC)
    samples = tuple(
        s for s in (parse_gpu_line(x, ssh.name, at) for x in result.stdout.splitlines()) if s
    )
    tail = (result.stderr or result.stdout).strip()[-300:]
    if result.exit_status != 0:
        return GpuReading(GpuState.FAILED, samples, f"nvidia-smi failed: {tail}")
    if not samples:
        return GpuReading(
            GpuState.FAILED,
            (),
            f"nvidia-smi printed no GPU figures ({tail or 'no output'}): run "
            "'nvidia-smi' on the host to see what is wrong with the driver",
        )
    return GpuReading(GpuState.OK, samples)


class GpuTelemetry:
    """The telemetry channel and history of one host.

    Args:
        ssh: The host's connection.
        docker: The host's Docker client (to map containers to runs).
        interval_ms: Sampling interval.
        history_seconds: How much history to keep per GPU (at least ten minutes).
        apps_interval_s: Seconds between compute-process polls.
        stall_s: Seconds without output after which a hung nvidia-smi is restarted;
            None means five intervals, at least thirty seconds.
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
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not security)
        self._clock = clock
        self._history: dict[int, deque[GpuSample]] = {}
        self._processes: tuple[GpuProcess, ...] = ()
        self._subscribers: set[asyncio.Queue[tuple[GpuSample, ...]]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.state = GpuState.STOPPED
        self.reason: str | None = None
        self.skipped_lines = 0
        self.restarts = 0

    # reading -------------------------------------------------------------------------------

    @property
    def history_capacity(self) -> int:
        """How many samples are kept per GPU."""
        return self._history_len

    def latest(self) -> tuple[GpuSample, ...]:
        """The newest sample of every GPU, by index."""
        return tuple(h[-1] for _, h in sorted(self._history.items()) if h)

    def history(self, index: int) -> tuple[GpuSample, ...]:
        """The kept samples of one GPU, oldest first."""
        return tuple(self._history.get(index, ()))

    def processes(self) -> tuple[GpuProcess, ...]:
        """The compute processes of the last poll, attributed to runs where they are ours."""
        return self._processes

    async def samples(self) -> AsyncIterator[tuple[GpuSample, ...]]:
        """Yield each new set of samples (one per interval, every GPU) until stopped."""
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

    # running -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the sampling channel and the process poll (idempotent)."""
        if self._tasks:
            return
        self.state = GpuState.STARTING
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._stream_forever())]
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

    def _publish(self, batch: tuple[GpuSample, ...]) -> None:
        for queue in list(self._subscribers):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(batch)

    def _record(self, batch: list[GpuSample]) -> None:
        for sample in batch:
            history = self._history.get(sample.index)
            if history is None:
                history = self._history[sample.index] = deque(maxlen=self._history_len)
            history.append(sample)
        self._publish(tuple(batch))

    async def _stream_forever(self) -> None:
        failures = 0
        while True:
            try:
                got_samples = await self._stream_once()
            except CosmosError as exc:
                got_samples = False
                self.state, self.reason = GpuState.RESTARTING, exc.message
            if got_samples:
                failures = 0
            failures += 1
            retry = self._ssh.retry
            if self.state is GpuState.NO_DRIVER:
                delay = retry.backoff_max
            else:
                delay = min(retry.backoff_max, retry.backoff_base * 2 ** (failures - 1))
                self.state = GpuState.RESTARTING
            self.restarts += 1
            logger.info(
                "gpu telemetry of %s: %s; again in %.1f s", self._ssh.name, self.reason, delay
            )
            await asyncio.sleep(delay * self._rng.uniform(0.5, 1.0))

    async def _stream_once(self) -> bool:
        """Run one nvidia-smi channel until it ends; return True if it gave samples."""
        got_samples = False
        pending: list[GpuSample] = []
        flush_after = max(0.05, min(0.2, self.interval_ms / 4000))
        async with self._ssh.stream(gpu_query_argv(self.interval_ms)) as lines:
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
                        async with asyncio.timeout(flush_after if pending else self._stall_s):
                            line = await queue.get()
                    except TimeoutError:
                        if not pending:  # a hung driver: leaving the block stops nvidia-smi
                            raise RemoteCommandFailed(
                                self._ssh.name, ["nvidia-smi"], None, "no output", timed_out=True
                            ) from None
                        self._record(pending)
                        pending = []
                        continue
                    if line is None:
                        break
                    sample = parse_gpu_line(line, self._ssh.name, self._clock())
                    if sample is None:
                        if line.strip():
                            self.skipped_lines += 1
                            other.append(line)
                        continue
                    if pending and sample.index <= pending[-1].index:
                        self._record(pending)
                        pending = []
                    pending.append(sample)
                    got_samples = True
                    self.state, self.reason = GpuState.OK, None
                if pending:
                    self._record(pending)
                await reader
                if failure:
                    raise failure[0]
            finally:
                reader.cancel()
            status = await lines.wait()
            output = "\n".join(other) + lines.stderr_tail
        reason = _no_driver_reason(status, output)
        if reason:
            self.state, self.reason = GpuState.NO_DRIVER, reason
        else:
            self.reason = f"nvidia-smi ended (status {status}): {output.strip()[-300:]}"
        return got_samples

    async def _poll_processes_forever(self) -> None:
        while True:
            if self.state is not GpuState.NO_DRIVER:
                try:
                    self._processes = await self.poll_processes()
                except CosmosError as exc:
                    logger.info("gpu process poll of %s failed: %s", self._ssh.name, exc)
            await asyncio.sleep(self._apps_interval_s)

    async def poll_processes(self) -> tuple[GpuProcess, ...]:
        """Query compute processes once and attribute them to our containers and runs."""
        argv = ["nvidia-smi", f"--query-compute-apps={APP_FIELDS}", CSV]
        result = await self._ssh.run(argv, check=False)
        if result.exit_status != 0:
            return ()
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
            match = _CONTAINER_ID.search(cgroup.partition(":")[2].partition(":")[2])
            pid_text = path.split("/")[2] if path.count("/") >= 3 else ""
            if match and pid_text.isdigit():
                found[int(pid_text)] = match.group(1)
        return found
