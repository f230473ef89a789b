"""Where the Cosmos stand-in script lives (see the header of cosmos_standin.sh)."""

from __future__ import annotations

from pathlib import Path

STANDIN_NAME = "cosmos_standin.sh"


def standin_script_path() -> Path:
    """Return the path of ``cosmos_standin.sh`` shipped inside the package."""
    return Path(__file__).resolve().parent / STANDIN_NAME
