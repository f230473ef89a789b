"""The driver's side of the one claim: take a run and its GPUs, or wait for GPUs.

Every run, however it was started, is claimed by :meth:`QueueStore.claim` (one
transaction: the run still queued and not someone else's, its GPUs held by no other
container, the host under ``max_runs``). The scheduler claims the runs it places; a run
driven by itself (a detached ``cosmos worker``, the TUI's run form, a retry) is claimed
here by its :class:`~cosmos_tui.engine.lifecycle.RunDriver`, so two drivers that chose
the same free GPU never both get it.
"""

from __future__ import annotations

from cosmos_tui.domain import Run, RunState
from cosmos_tui.engine.batching import LaunchGroup
from cosmos_tui.engine.context import GPU_WAIT_SECONDS, EngineContext
from cosmos_tui.engine.queue import Placement
from cosmos_tui.errors import ClaimedElsewhere, InvalidTransition, NoFreeGpus
from cosmos_tui.store.queue_store import QueueStore


def driver_id(host: str, pid: int) -> str:
    """Return the claim name of a run driver (``host:pid``; a scheduler's has no colon)."""
    return f"{host}:{pid}"


def is_driver_claim(claimer: str) -> bool:
    """True when a claim is a run driver's, not a scheduler's (see :func:`driver_id`)."""
    return ":" in claimer


# A run waiting for GPUs looks at the store this often for one of ours that let go.
GPU_POLL_SECONDS = 0.5
WAITING_FOR_GPU = "waiting for a free GPU"


async def claim_run(
    ctx: EngineContext, run: Run, claimer: str, host: str, gpus: tuple[int, ...]
) -> None:
    """Take ``run`` and ``gpus`` on ``host`` for ``claimer`` through the one claim.

    Raises:
        NoFreeGpus: Another run took one of the GPUs first, or the host is at
            ``max_runs``: the run stays queued and waits.
        ClaimedElsewhere: A scheduler claimed the run meanwhile; it is theirs.
        InvalidTransition: The run is no longer queued (cancelled meanwhile).

    """
    placement = Placement(LaunchGroup((run,)), host, gpus)
    limit = ctx.config.host(host).max_runs
    queue = QueueStore(ctx.store)
    if await queue.claim(placement, claimer, limit, ignore_pause=True) is not None:
        return
    current = await ctx.store.get_run(run.id, with_events=False)
    if current.state != RunState.QUEUED:
        raise InvalidTransition(run.id, current.state.value, RunState.UPLOADING.value)
    holder = await queue.claimer(run.id)
    if holder not in (None, claimer):
        raise ClaimedElsewhere(run.id, str(holder), RunState.UPLOADING.value)
    raise NoFreeGpus(
        f"{host} GPU {','.join(map(str, gpus))} was taken by another run (or the host is "
        f"at max_runs); run {run.id} waits for a run to finish"
    )


async def wait_for_gpus(ctx: EngineContext) -> None:
    """Wait up to GPU_WAIT_SECONDS, less when a run of ours lets GPUs go.

    The store is read every GPU_POLL_SECONDS (cheap, local); nvidia-smi is asked again
    only when the next claim is tried.
    """
    queue = QueueStore(ctx.store)
    before = await queue.allocations()
    for _ in range(round(GPU_WAIT_SECONDS / GPU_POLL_SECONDS)):
        await ctx.sleep(GPU_POLL_SECONDS)
        if await queue.allocations() != before:
            return
