"""``cosmos demo --headless``: a scripted scenario against the sandbox, with a summary.

Seven runs of the sample prompts go through the ordinary queue, scheduler and run
lifecycle, over SSH and the Docker Engine API, to the simulated host:

- four runs with the same settings, which the scheduler batches into one container; the
  second one's prompt is blocked by the guardrail, so (batch size 1, as Transfer1 does) the
  container dies on it after the first finished, and the last two never start there;
- one run alone (other settings);
- one run whose container the sandbox makes run out of GPU memory (injected OOM);
- one run that is cancelled while it runs.

Before the runs, the sample image sequence is rendered and prepared into control videos
(``cosmos prepare``). The scenario passes when the batch's first run and the single run
complete with valid MP4 outputs, the blocked run ends ``blocked`` by the guardrail, the
batch's last two runs went back in the queue and then completed with valid outputs, the
OOM run fails classified as ``gpu_oom`` and the cancelled run ends ``cancelled``.
"""

from __future__ import annotations

import asyncio
import signal
import struct
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cosmos_tui.domain import FailureKind, Prompt, Run, RunState
from cosmos_tui.engine.prepare import prepare_sequence
from cosmos_tui.sandbox.workspace import SAMPLE_PROMPTS, DemoWorkspace, add_sample_prompts
from cosmos_tui.services import Workbench
from cosmos_tui.services.queue import QueueService
from cosmos_tui.store.repositories import PromptFilter

if TYPE_CHECKING:
    from cosmos_tui.config import Config
    from cosmos_tui.sandbox.options import SandboxHandle
    from cosmos_tui.store.queue_store import Claim

# role -> (sample prompt name, overrides); equal overrides batch together.
PLAN: tuple[tuple[str, str, dict[str, object]], ...] = (
    ("batch", "warehouse-robot", {"seed": 1}),
    ("blocked", "night-market", {"seed": 1}),
    ("requeued", "rainy-street", {"seed": 1}),
    ("requeued", "forest-road", {"seed": 1}),
    ("single", "forest-road", {"seed": 2}),
    ("oom", "forest-road", {"seed": 3}),
    ("cancel", "warehouse-robot", {"seed": 4}),
)
EXPECTED: dict[str, tuple[RunState, FailureKind | None]] = {
    "batch": (RunState.COMPLETED, None),
    "blocked": (RunState.BLOCKED, FailureKind.GUARDRAIL),
    "requeued": (RunState.COMPLETED, None),
    "single": (RunState.COMPLETED, None),
    "oom": (RunState.FAILED, FailureKind.GPU_OOM),
    "cancel": (RunState.CANCELLED, FailureKind.CANCELLED),
}
# A prompt the stand-in's guardrail blocks (its marker), on the rainy street's videos.
BLOCKED_PROMPT = (
    "night-market",
    "A crowded night market seen from above, lanterns swaying in the wind [standin:guardrail]",
    "rainy-street",
)
_MP4_BOXES = {b"ftyp", b"moov", b"mdat"}


@dataclass(frozen=True)
class ScenarioRun:
    """One run of the scenario and what became of it."""

    role: str
    prompt_name: str
    run: Run
    output: Path | None
    output_valid: bool
    ooms_injected: bool = False
    requeued: bool = False

    @property
    def as_expected(self) -> bool:
        """True when the run ended as its role says (with a valid video when completed).

        With ``--oom-rate`` any run may run out of GPU memory; that counts as expected.
        """
        state, kind = EXPECTED[self.role]
        if self.ooms_injected and self.run.failure_kind == FailureKind.GPU_OOM:
            return True
        if self.run.state != state:
            return False
        if kind is not None and kind != FailureKind.CANCELLED and self.run.failure_kind != kind:
            return False
        if self.role == "requeued" and not self.requeued and not self.ooms_injected:
            return False
        return state != RunState.COMPLETED or self.output_valid


def mp4_is_valid(path: Path) -> bool:
    """True when ``path`` is an ISO-BMFF file whose top-level boxes hold ftyp, moov, mdat."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    seen: set[bytes] = set()
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1 and offset + 16 <= len(data):
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        elif size == 0:
            size = len(data) - offset
        if size < 8 or offset + size > len(data):
            return False
        seen.add(kind)
        offset += size
    return offset == len(data) and seen >= _MP4_BOXES


def run_scenario(
    config: Config,
    space: DemoWorkspace,
    sandbox: SandboxHandle,
    echo: Callable[[str], None] = print,
    timeout: float = 600.0,
) -> int:
    """Run the scenario, print a summary; return 0 when every run ended as expected.

    SIGTERM or SIGHUP cancels the scenario (its services close as on any error) and
    returns 128 + the signal number; the caller then stops the sandbox.
    """
    return asyncio.run(cancellable(_scenario(config, space, sandbox, echo, timeout), echo))


async def cancellable(scenario: Coroutine[Any, Any, int], echo: Callable[[str], None]) -> int:
    """Run a scenario; SIGTERM or SIGHUP cancels it (its clean-up runs) and gives 128+N."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(scenario)
    received: list[int] = []

    def stop(signum: int) -> None:
        received.append(signum)
        task.cancel()

    for signum in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, stop, signum)
    try:
        return await task
    except asyncio.CancelledError:
        if not received:
            raise
        echo(f"stopped by signal {received[0]}; the sandbox and its runs are being stopped")
        return 128 + received[0]
    finally:
        for signum in (signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)


async def _scenario(
    config: Config,
    space: DemoWorkspace,
    sandbox: SandboxHandle,
    echo: Callable[[str], None],
    timeout: float,
) -> int:
    started = time.monotonic()
    echo(
        f"cosmos demo --headless: SIMULATED GPU HOST on 127.0.0.1:{sandbox.port} "
        f"with {sandbox.options.gpus} simulated GPUs"
    )
    async with Workbench.open(config) as bench:
        await add_sample_prompts(bench, space)
        echo(await asyncio.to_thread(_prepare_sample, space))
        prompts = await sample_prompts(bench, space)
        planned: list[tuple[str, str, Run]] = []
        for role, name, overrides in PLAN:
            run = await bench.create_run(prompts[name].id, dict(overrides))
            planned.append((role, name, run))
            echo(f"queued {run.id}  {name:<16} ({role})")
        oom_id = next(run.id for role, _, run in planned if role == "oom")
        cancel_id = next(run.id for role, _, run in planned if role == "cancel")

        sandbox.force_oom(oom_id)
        canceller = asyncio.create_task(_cancel_when_running(bench, cancel_id, echo))
        try:
            await asyncio.wait_for(
                _drive_queue(bench, [run.id for _, _, run in planned], echo), timeout
            )
            await asyncio.wait_for(canceller, 30)
        finally:
            canceller.cancel()
        injected = sandbox.options.oom_rate > 0
        results = [
            await _result(bench, role, name, run.id, injected) for role, name, run in planned
        ]
    _summary(results, time.monotonic() - started, echo)
    return 0 if all(r.as_expected for r in results) else 1


def _prepare_sample(space: DemoWorkspace) -> str:
    """Render the sample image sequence and prepare its videos, as `cosmos prepare` does."""
    folder = space.render_sample_sequence()
    result = prepare_sequence(folder, folder)
    done = "encoded " + ", ".join(result.encoded) if result.encoded else "unchanged"
    return (
        f"prepared {folder.name}: {result.frames} frames, {result.width}x{result.height} "
        f"at {result.fps:g} fps ({done})"
    )


async def sample_prompts(bench: Workbench, space: DemoWorkspace) -> dict[str, Prompt]:
    """Return the sample prompts by name, creating any that a reused workspace lacks."""
    samples = {sample.name: sample for sample in SAMPLE_PROMPTS}
    wanted = [(s.name, s.text, s) for s in SAMPLE_PROMPTS]
    name, text, videos_of = BLOCKED_PROMPT
    wanted.append((name, text, samples[videos_of]))
    found: dict[str, Prompt] = {}
    for name, text, sample in wanted:
        page = await bench.list_prompts(PromptFilter(text=text), 0, 10)
        same = [p for p in page.items if p.text == text]
        if same:
            found[name] = same[0]
        else:
            found[name] = await bench.create_prompt(text, space.video_dir(sample), name=name)
    return found


async def _drive_queue(bench: Workbench, run_ids: list[str], echo: Callable[[str], None]) -> None:
    """Drive the queue (as ``cosmos queue run`` does) until every run has ended.

    The scheduler stops when nothing can start now; telemetry a moment old may still
    show a finished container's process on a GPU, so look again until all have ended.
    """

    def claimed(claim: Claim) -> None:
        batch = f" (batch {claim.batch_id})" if claim.batch_id else ""
        gpus = ",".join(str(g) for g in claim.gpus)
        echo(f"start {', '.join(claim.run_ids)} on {claim.host} GPU {gpus}{batch}")

    while True:
        await QueueService.of(bench).drive(until_idle=True, on_claim=claimed)
        states = [(await bench.get_run(run_id)).state for run_id in run_ids]
        if all(state.is_terminal for state in states):
            return
        await asyncio.sleep(0.5)


async def _cancel_when_running(bench: Workbench, run_id: str, echo: Callable[[str], None]) -> None:
    while True:
        run = await bench.get_run(run_id)
        if run.state == RunState.RUNNING:
            await asyncio.sleep(0.5)
            await bench.runs.cancel(run_id)
            echo(f"cancelled {run_id} while it ran")
            return
        if run.state.is_terminal:
            return
        await asyncio.sleep(0.1)


async def _result(
    bench: Workbench, role: str, name: str, run_id: str, ooms_injected: bool
) -> ScenarioRun:
    run = await bench.get_run(run_id)
    output = bench.output_dir(run_id) / "output.mp4"
    valid = await asyncio.to_thread(mp4_is_valid, output)
    # Back in the queue from a running batch: its line never started in that container.
    requeued = any(
        e.from_state == RunState.RUNNING and e.to_state == RunState.QUEUED for e in run.events
    )
    return ScenarioRun(
        role, name, run, output if output.exists() else None, valid, ooms_injected, requeued
    )


def _summary(results: list[ScenarioRun], seconds: float, echo: Callable[[str], None]) -> None:
    echo("")
    echo(f"{'run':<20} {'prompt':<16} {'role':<8} {'state':<10} {'cause':<12} {'batch':<8} output")
    for item in results:
        run = item.run
        cause = run.failure_kind.value if run.failure_kind else "-"
        batch = "yes" if run.batch_id else "-"
        if item.output is not None:
            output = f"{item.output} ({'valid MP4' if item.output_valid else 'NOT a valid MP4'})"
        else:
            output = "-"
        mark = "" if item.as_expected else "   <- unexpected"
        echo(
            f"{run.id:<20} {item.prompt_name:<16} {item.role:<8} {run.state.value:<10} "
            f"{cause:<12} {batch:<8} {output}{mark}"
        )
    requeued = [r.run.id for r in results if r.requeued]
    if requeued:
        echo(f"\nback in the queue after their batch died, then run again: {', '.join(requeued)}")
    passed = all(r.as_expected for r in results)
    verdict = "scenario OK" if passed else "scenario FAILED"
    echo(f"\n{verdict}: {len(results)} runs in {seconds:.1f} s on the SIMULATED GPU HOST")
