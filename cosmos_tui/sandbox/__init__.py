"""The simulated GPU host behind ``cosmos demo`` and the fault-injection harness of tests.

A real asyncssh server, a Docker Engine API on a UNIX socket and simulated GPUs, all on
127.0.0.1 and under one temporary root; see :mod:`cosmos_tui.sandbox.host`. The project's
services reach it through their ordinary SSH and Docker code paths.

Names are imported lazily, so that ``cosmos_tui.sandbox.options`` stays cheap to import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cosmos_tui.sandbox.host import Sandbox
    from cosmos_tui.sandbox.options import SANDBOX_IMAGE, SIMULATED_LABEL, SandboxOptions

_EXPORTS = {
    "Sandbox": "host",
    "SandboxOptions": "options",
    "SANDBOX_IMAGE": "options",
    "SIMULATED_LABEL": "options",
}

__all__ = ["SANDBOX_IMAGE", "SIMULATED_LABEL", "Sandbox", "SandboxOptions"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"cosmos_tui.sandbox.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'cosmos_tui.sandbox' has no attribute {name!r}")
