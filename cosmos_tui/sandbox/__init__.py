"""The simulated GPU host behind ``cosmos demo`` and the fault-injection harness of tests.

A real asyncssh server, a Docker Engine API on a UNIX socket and simulated GPUs, all on
127.0.0.1 and under one temporary root; see :mod:`cosmos_tui.sandbox.host`. The project's
services reach it through their ordinary SSH and Docker code paths.
"""

from __future__ import annotations

from cosmos_tui.sandbox.host import SANDBOX_IMAGE, SIMULATED_LABEL, Sandbox, SandboxOptions

__all__ = ["SANDBOX_IMAGE", "SIMULATED_LABEL", "Sandbox", "SandboxOptions"]
