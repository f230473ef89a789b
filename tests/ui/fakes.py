# ruff: noqa: E501
"""Test services for the UI: the real Workbench on a temp SQLite store, plus a small fake
of the live part of UIServices (host, GPU, run and log streams; run commands)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cosmos_tui.config import Config, PathsConfig
from cosmos_tui.domain import (
    GpuHostHealth,
    GpuSample,
    HostStatus,
    LogBatch,
    Progress,
    Run,
    RunState,
)
from cosmos_tui.ids import IdSource
from cosmos_tui.services import Workbench
from cosmos_tui.services.hosts import HostAdmin
from cosmos_tui.ui.facade import FacadeAdapter
from cosmos_tui.ui.protocol import GpuProcesses

T0 = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)


class FixedClock:
    """A clock that only moves when told."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def counting_ids() -> IdSource:
    """Ids ps_000000000001, rs_000000000002, ... in creation order."""
    counter = itertools.count(1)
    return IdSource(lambda n: f"{next(counter):0{2 * n}x}")


class Stream:
    """An async stream fed by the test; `close()` ends it."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    def put(self, item: Any) -> None:
        self.queue.put_nowait(item)

    def close(self) -> None:
        self.queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[Any]:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            yield item


class SilentProbe:
    """A host probe whose doctor checks nothing (see TestServices.host_admin)."""

    async def doctor(self, config: Any, names: Any, profile: str, only: Any) -> list[Any]:
        return []


class TestServices(FacadeAdapter):
    """UIServices over a real Workbench; the live part is driven by the test."""

    __test__ = False

    def __init__(self, bench: Workbench, hosts: tuple[str, ...] = ("gpu-a",)) -> None:
        super().__init__(bench)
        self.hosts = hosts
        self.host_stream = Stream()
        self.gpu_stream = Stream()
        self.process_stream = Stream()
        self.gpu_host_stream = Stream()
        self.run_stream = Stream()
        self.logs: dict[str, Stream] = {}
        self.log_history: dict[str, list[str]] = {}
        self.calls: list[tuple[str, Any]] = []
        # No host answers the doctor here: no host shows a doctor state unless a test
        # gives it a probe (tests/ui/test_hosts_screen.py).
        self.host_admin = HostAdmin(bench.config, SilentProbe())

    @property
    def store(self) -> Any:
        return self.bench.store

    def host_names(self) -> tuple[str, ...]:
        return self.hosts

    async def watch_hosts(self) -> AsyncIterator[HostStatus]:
        async for item in self.host_stream:
            yield item

    async def watch_gpus(self) -> AsyncIterator[GpuSample]:
        async for item in self.gpu_stream:
            yield item

    async def watch_gpu_hosts(self) -> AsyncIterator[GpuHostHealth]:
        async for item in self.gpu_host_stream:
            yield item

    async def watch_gpu_processes(self) -> AsyncIterator[GpuProcesses]:
        async for item in self.process_stream:
            yield item

    async def watch_runs(self, shown: Sequence[Run] | None = None) -> AsyncIterator[Run]:
        async for item in self.run_stream:
            yield item

    def log_stream(self, run_id: str) -> Stream:
        return self.logs.setdefault(run_id, Stream())

    async def keep_runs_moving(self) -> AsyncIterator[str]:
        self.calls.append(("keep_runs_moving", None))
        for item in ():
            yield item

    async def follow_log(self, run_id: str, tail: int | None) -> AsyncIterator[LogBatch]:
        self.calls.append(("follow_log", run_id))
        history = self.log_history.get(run_id, [])
        if history:
            yield LogBatch(run_id, tuple(history), 0)
        async for item in self.log_stream(run_id):
            yield item

    async def start_run(self, run_id: str, host: str | None) -> Run:
        self.calls.append(("start_run", (run_id, host)))
        return await self.bench.get_run(run_id)

    async def cancel_run(self, run_id: str) -> Run:
        self.calls.append(("cancel_run", run_id))
        return await self.store.transition(run_id, RunState.CANCELLED, "cancelled by user")

    async def retry_run(self, run_id: str) -> Run:
        self.calls.append(("retry_run", run_id))
        return await self.store.transition(run_id, RunState.QUEUED, "retry")

    async def upscale_run(self, run_id: str) -> Run:
        self.calls.append(("upscale_run", run_id))
        return await self.bench.get_run(run_id)

    async def enhance_prompt(self, prompt_id: str, profile: str = "transfer1") -> Run:
        from cosmos_tui.domain import RunType

        self.calls.append(
            ("enhance_prompt", prompt_id) if profile == "transfer1"
            else ("enhance_prompt", prompt_id, profile)
        )  # fmt: skip
        prompt = await self.bench.get_prompt(prompt_id)
        params = self.bench.run_params(prompt, {})
        return await self.store.add_run(prompt.id, params, RunType.ENHANCE, profile=profile)

    # helpers for tests ----------------------------------------------------------------

    async def push_run(self, run_id: str, state: RunState, **fields: Any) -> Run:
        """Move a run in the store and announce it on the run stream."""
        run = await self.store.transition(run_id, state, f"test: {state.value}", **fields)
        self.run_stream.put(run)
        return run

    async def advance_run(self, run_id: str, phase: str, percent: float, eta: float | None) -> Run:
        await self.store.update_run(
            run_id, progress_phase=phase, progress_percent=percent, eta_seconds=eta
        )
        run = await self.bench.get_run(run_id)
        self.run_stream.put(run)
        return run


def make_config(data_dir: Path, hosts: tuple[str, ...] = ("gpu-a",), **ui: Any) -> Config:
    from cosmos_tui.config import HostConfig, UIConfig

    return Config(
        hosts=[HostConfig(name=h, hostname=f"{h}.example") for h in hosts],
        paths=PathsConfig(data_dir=str(data_dir)),
        ui=UIConfig(**ui),
    )


def sample(
    host: str, index: int, at: datetime, util: float, mem: float, temp: float = 60.0
) -> GpuSample:
    return GpuSample(
        host=host, index=index, uuid=f"GPU-{host}-{index}", name="H100 80GB", at=at,
        utilization=util, memory_utilization=util, memory_used_mib=mem,
        memory_total_mib=81559.0, temperature_c=temp, power_draw_w=250.0 + util,
        power_limit_w=700.0, sm_clock_mhz=1980.0,
    )  # fmt: skip


def progress(phase: str, percent: float, eta: float | None = None) -> Progress:
    return Progress(phase, percent, eta)


@asynccontextmanager
async def services_for(
    config: Config, clock: FixedClock, holder: dict[str, Any]
) -> AsyncIterator[TestServices]:
    async with Workbench.open(config, ids=counting_ids(), clock=clock) as bench:
        services = TestServices(bench, tuple(h.name for h in config.hosts))
        holder["services"] = services
        yield services


LOG_LINES = (
    "[11-21 09:30:01|INFO|cosmos_transfer1/diffusion/inference/transfer.py:120:main] control_inputs: {'vis': 0.25}",
    "[11-21 09:30:02|INFO|cosmos_transfer1/diffusion/inference/transfer.py:140:main] Using random seed 1.",
    "[11-21 09:30:03|CRITICAL|cosmos_transfer1/utils/distributed.py:52:init] Initialized distributed training with local rank 0",
    "[11-21 09:30:04|INFO|cosmos_transfer1/diffusion/inference/world_generation_pipeline.py:88:_load] Start creating base model",
    "[11-21 09:30:40|WARNING|cosmos_transfer1/diffusion/inference/world_generation_pipeline.py:91:_load] Missing weight for hint 'seg': using 0.5",
    "[11-21 09:31:10|INFO|cosmos_transfer1/diffusion/inference/world_generation_pipeline.py:95:_load] Done loading the base model checkpoint.",
    "[11-21 09:31:12|INFO|cosmos_transfer1/diffusion/inference/transfer.py:210:main] Running guardrail checks on all prompts",
    "[11-21 09:31:20|INFO|cosmos_transfer1/diffusion/inference/transfer.py:230:main] Completed T5 compute",
    "[11-21 09:31:21|INFO|cosmos_transfer1/diffusion/inference/transfer.py:250:main] Starting diffusion sampling",
)
FAIL_LINES = (
    "[rank0]: Traceback (most recent call last):",
    '[rank0]:   File "cosmos_transfer1/diffusion/inference/transfer.py", line 301, in <module>',
    "[rank0]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
    "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:",
)


async def populate(services: TestServices, videos: Path, prompts: int = 6) -> list[str]:
    """Create prompts and runs in fixed states; return the run ids (newest last)."""
    from tests.conftest import write_video

    texts = (
        "A robot arm stacks red cubes on a wooden table in a bright lab",
        "Rainy street at night, neon reflections, a tram passes slowly",
        "Forklift moves pallets through a warehouse aisle, overhead lights",
        "Snowy forest road seen from a car dashboard at dawn",
        "Kitchen counter, hands chop vegetables, steam from a pot",
        "Drone flight over a harbour with container cranes at sunset",
    )
    prompt_ids = []
    for index in range(prompts):
        folder = videos / f"set{index}"
        write_video(folder / "color.mp4", f"v{index}".encode())
        if index % 2 == 0:
            write_video(folder / "depth.mp4", f"d{index}".encode())
        if index % 3 == 0:
            write_video(folder / "segmentation.mp4", f"s{index}".encode())
        prompt = await services.bench.create_prompt(
            texts[index % len(texts)], folder, name=f"scene-{index}" if index % 2 else None
        )
        prompt_ids.append(prompt.id)
    return prompt_ids


PATH_TO = {
    RunState.RUNNING: (RunState.UPLOADING, RunState.STARTING, RunState.RUNNING),
    RunState.COMPLETED: (
        RunState.UPLOADING, RunState.STARTING, RunState.RUNNING, RunState.DOWNLOADING,
        RunState.COMPLETED,
    ),
    RunState.FAILED: (RunState.UPLOADING, RunState.STARTING, RunState.RUNNING, RunState.FAILED),
    RunState.QUEUED: (),
}  # fmt: skip


async def make_run(
    services: TestServices,
    clock: FixedClock,
    prompt_id: str,
    state: RunState,
    announce: bool = False,
    **fields: Any,
) -> Run:
    """Create a run and walk it to ``state`` one minute per step; fields go on the last step."""
    run = await services.bench.create_run(prompt_id, {})
    steps = PATH_TO[state]
    for number, step in enumerate(steps):
        clock.advance(60)
        extra = fields if number == len(steps) - 1 else {}
        if step == RunState.UPLOADING:
            extra = {"host": fields.get("host", "gpu-a"), "gpus": fields.get("gpus", (0,)), **extra}
        run = await services.store.transition(run.id, step, f"test: {step.value}", **extra)
    if not steps and fields:
        await services.store.update_run(run.id, **fields)
        run = await services.bench.get_run(run.id)
    if announce:
        services.run_stream.put(run)
    return run


async def scenario(services: TestServices, clock: FixedClock, videos: Path) -> dict[str, Run]:
    """A populated workbench: completed, failed, running and queued runs."""
    prompt_ids = await populate(services, videos)
    done = await make_run(services, clock, prompt_ids[0], RunState.COMPLETED, gpus=(0,),
                          outputs=("output.mp4", "output.txt"))  # fmt: skip
    await services.store.rate(done.id, 4)
    failed = await make_run(
        services, clock, prompt_ids[1], RunState.FAILED, gpus=(0,),
        failure_kind="gpu_oom", failure_message="CUDA out of memory on GPU 0", exit_code=1,
    )  # fmt: skip
    running = await make_run(
        services, clock, prompt_ids[2], RunState.RUNNING, gpus=(1,),
        progress_phase="diffusion", progress_percent=42.0, eta_seconds=312.0,
    )  # fmt: skip
    queued = await make_run(services, clock, prompt_ids[3], RunState.QUEUED)
    clock.advance(90)
    return {
        "completed": await services.bench.get_run(done.id),
        "failed": await services.bench.get_run(failed.id),
        "running": await services.bench.get_run(running.id),
        "queued": await services.bench.get_run(queued.id),
    }


async def make_many(db_path: Path, prompts: int, runs: int, first_id: int = 0) -> None:
    """Bulk-fill a database: prompts a second apart, completed runs a second apart.

    Ids count from ``first_id`` (``ps_``/``rs_`` and 12 hex digits); give a high one when
    the test's services also make records (their ids count from 1).
    """
    import json

    from cosmos_tui.domain import GenerationParams
    from cosmos_tui.store.repositories import Store

    params = json.dumps(GenerationParams().to_dict())
    prompt_rows = [
        {
            "id": f"ps_{first_id + i:012x}",
            "name": f"p{i}",
            "text": f"scene {i}",
            "created_at": T0 + timedelta(seconds=i),
        }
        for i in range(prompts)
    ]
    run_rows = [
        {
            "id": f"rs_{first_id + i:012x}",
            "prompt_id": f"ps_{first_id + i % prompts:012x}",
            "type": "transfer",
            "profile": "transfer1",
            "state": RunState.COMPLETED.value,
            "priority": 0,
            "queue_seq": i,
            "params": params,
            "attempt": 0,
            "created_at": T0 + timedelta(seconds=i),
            "updated_at": T0 + timedelta(seconds=i),
        }
        for i in range(runs)
    ]
    async with Store.open(db_path) as store:
        await store.bulk_insert(prompt_rows, run_rows)
