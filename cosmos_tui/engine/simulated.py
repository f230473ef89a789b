"""A launcher that imitates Cosmos timings without any host: for benchmarks and tests.

A container spends ``load_seconds`` loading the model once, then ``sample_seconds`` per
run it holds (a batch holds several), all multiplied by ``time_scale``. Each run goes
through the real state machine of the store (uploading -> starting -> running ->
downloading -> completed), so what the scheduler sees is what it would see for real.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from cosmos_tui.domain import RunState
from cosmos_tui.engine.scheduler import start_reason
from cosmos_tui.errors import InvalidTransition
from cosmos_tui.store.queue_store import Claim, QueueStore
from cosmos_tui.store.repositories import Store


@dataclass
class SimulatedLauncher:
    """Runs claims as timed simulations.

    Attributes:
        store: The store whose runs are moved.
        load_seconds: Model load per container (unscaled).
        sample_seconds: Generation per run (unscaled).
        time_scale: Multiplies every delay (0.001: one simulated minute takes 60 ms).
        on_launch: Called with each claim as it starts (tests record launches with it).
        gpu_seconds: Simulated GPU time used, unscaled, summed over containers.

    """

    store: Store
    load_seconds: float = 60.0
    sample_seconds: float = 30.0
    time_scale: float = 0.001
    on_launch: Callable[[Claim], None] | None = None
    gpu_seconds: float = 0.0
    containers: int = 0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def launch(self, claim: Claim) -> None:
        """Simulate the claim's container from start to finish."""
        if self.on_launch is not None:
            self.on_launch(claim)
        queue = QueueStore(self.store)
        ids = []
        for run_id in claim.run_ids:
            try:
                await queue.start(run_id, claim.scheduler_id, start_reason(claim))
                ids.append(run_id)
            except InvalidTransition:
                continue  # cancelled after the claim: it never starts
        if not ids:
            return
        self.containers += 1
        for run_id in ids:
            await self.store.transition(run_id, RunState.STARTING, "container created")
        await asyncio.sleep(self.load_seconds * self.time_scale)
        for run_id in ids:
            await self.store.transition(run_id, RunState.RUNNING, "model loaded")
        for run_id in ids:
            await asyncio.sleep(self.sample_seconds * self.time_scale)
            await self.store.transition(run_id, RunState.DOWNLOADING, "sample written")
            await self.store.transition(run_id, RunState.COMPLETED, "outputs downloaded")
        unscaled = self.load_seconds + self.sample_seconds * len(ids)
        self.gpu_seconds += unscaled * len(claim.gpus)
