"""What a sandbox is asked to be, and what the demo needs from a running one.

Light on purpose (no asyncssh, no aiohttp): ``cosmos demo`` reads it before it starts the
sandbox process, so that the heavy imports happen there, in parallel with the TUI's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cosmos_tui.config import HostConfig

SANDBOX_IMAGE = "nvcr.io/nvidia/cosmos/cosmos-transfer1:sandbox"
SIMULATED_LABEL = "SIMULATED GPU HOST"


@dataclass(frozen=True)
class SandboxOptions:
    """How the simulated host behaves.

    Attributes:
        gpus: Number of simulated GPUs.
        time_scale: Multiplies the stand-in's delays (1: a run takes about 20 s;
            0.05 in tests).
        oom_rate: Share of runs that fail with CUDA out of memory.
        flaky_ssh: Drop SSH connections now and then.
        flaky_interval: Mean seconds between drops with ``flaky_ssh``.
        docker_image: The image the host has (the demo config names the same one).
        user: Login user name (the home directory's name).
        seed: Seed of every random choice (fault draws, GPU jitter).
        hostile: Turn on every hostile switch (see :mod:`cosmos_tui.sandbox.hostile`):
            lying listings, planted links and devices, a 50 GB sparse output, escape
            sequences in names, a login greeting and a second installation's containers.
        smi_replay: A replay file (captured nvidia-smi output, see sandbox/smi_replay.py)
            that nvidia-smi answers from instead of the simulated GPUs.
        smi_replay_tick_s: Seconds per block of the replay.

    """

    gpus: int = 2
    time_scale: float = 1.0
    oom_rate: float = 0.0
    flaky_ssh: bool = False
    flaky_interval: float = 20.0
    docker_image: str = SANDBOX_IMAGE
    user: str = "demo"
    seed: int = 7
    hostile: bool = False
    smi_replay: str | None = None
    smi_replay_tick_s: float = 1.0


class SandboxHandle(Protocol):
    """A running sandbox as the demo uses it (in a thread or in a child process)."""

    options: SandboxOptions

    @property
    def port(self) -> int:
        """The SSH port on 127.0.0.1."""
        ...

    def host_config(self, name: str = "simulated-gpu-host") -> HostConfig:
        """The host entry that reaches the sandbox."""
        ...

    def force_oom(self, run_id: str) -> None:
        """Make the run ``run_id`` fail with CUDA out of memory when its container starts."""
        ...
