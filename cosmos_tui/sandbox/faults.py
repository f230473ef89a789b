"""Fault switches of the sandbox: what a test (or ``cosmos demo --flaky-ssh``) can break.

One :class:`Faults` object is shared by the SSH server, the Docker API and the GPU
simulation of one sandbox. Tests flip its switches at any time; the components check
them at each step, so a fault takes effect mid-stream.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field


@dataclass
class Faults:
    """Run-time fault switches.

    Attributes:
        oom_rate: Share (0..1) of model runs that end with a CUDA out-of-memory error.
        flaky_ssh: Drop every SSH connection now and then (see ``flaky_interval``).
        flaky_interval: Mean seconds between drops while ``flaky_ssh`` is on.
        refuse_ssh: Refuse new SSH connections (the host looks down).
        smi_failure: nvidia-smi prints the "couldn't communicate with the NVIDIA driver"
            error and exits 9, including an already streaming one.
        smi_output: nvidia-smi prints this text and exits with this status (a host-level
            failure copied from a real machine: version mismatch, no devices...).
        forced_ooms: How many of the next model runs end in OOM regardless of ``oom_rate``.
        oom_run_ids: Runs (``cosmos.run_id`` label) whose model run ends in OOM.
        no_nvidia_runtime: Docker has no NVIDIA runtime: a container that asks for GPUs
            fails to start with Docker's "could not select device driver" error.
        greeting: Text the login shell prints before every command's output (a chatty
            ~/.bashrc).
        command_delay_s: Seconds every command waits before it starts (a distant or
            congested host, as the doctor's latency check sees it).
        hostile_names: SFTP listings of output folders show traversal and absolute names.
        hostile_outputs: A run's container leaves symlinks, a device file, a 50 GB sparse
            file and a name with escape sequences in its output folder (see
            :mod:`cosmos_tui.sandbox.hostile`).
        leak_secrets: A run's container prints its secret environment values
            (``HF_TOKEN=...``) at the top of its log, as an image whose entrypoint dumps
            its environment does.
        rng: Source of randomness, seeded for repeatable tests.

    """

    oom_rate: float = 0.0
    flaky_ssh: bool = False
    flaky_interval: float = 20.0
    refuse_ssh: bool = False
    smi_failure: bool = False
    smi_output: tuple[str, int] | None = None
    forced_ooms: int = 0
    oom_run_ids: set[str] = field(default_factory=set)
    no_nvidia_runtime: bool = False
    greeting: str = ""
    command_delay_s: float = 0.0
    hostile_names: bool = False
    hostile_outputs: bool = False
    leak_secrets: bool = False
    rng: random.Random = field(default_factory=lambda: random.Random(7))  # noqa: S311 (simulation, not security)
    _unstalled: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def __post_init__(self) -> None:
        self._unstalled.set()

    @property
    def stalled(self) -> bool:
        """True while streams (logs, nvidia-smi, command output) are held back."""
        return not self._unstalled.is_set()

    def stall_streams(self) -> None:
        """Hold back every stream's output until :meth:`resume_streams`."""
        self._unstalled.clear()

    def resume_streams(self) -> None:
        """Let held-back streams flow again; nothing is lost."""
        self._unstalled.set()

    async def wait_unstalled(self) -> None:
        """Return at once, or when streams are resumed."""
        await self._unstalled.wait()

    def force_oom(self, count: int = 1, run_id: str | None = None) -> None:
        """Make the next ``count`` model runs (or the run ``run_id``) run out of memory."""
        if run_id is not None:
            self.oom_run_ids.add(run_id)
        else:
            self.forced_ooms += count

    def draw_oom(self, run_id: str | None = None) -> bool:
        """Decide whether a model run that is starting now will run out of memory."""
        if run_id is not None and run_id in self.oom_run_ids:
            self.oom_run_ids.discard(run_id)
            return True
        if self.forced_ooms > 0:
            self.forced_ooms -= 1
            return True
        return self.oom_rate > 0 and self.rng.random() < self.oom_rate
