"""Where the Cosmos stand-in scripts live (see their headers)."""

from __future__ import annotations

from pathlib import Path

STANDIN_NAME = "cosmos_standin.sh"
TRANSFER25_STANDIN_NAME = "transfer25_standin.sh"


def standin_script_path() -> Path:
    """Return the path of ``cosmos_standin.sh`` shipped inside the package."""
    return Path(__file__).resolve().parent / STANDIN_NAME


COSMOS3_STANDIN_NAME = "cosmos3_standin.sh"
COSMOS3_JSON_AWK = "cosmos3_json.awk"


def cosmos3_standin_path() -> Path:
    """Return the Cosmos 3 stand-in (it reads samples with ``cosmos3_json.awk`` beside it)."""
    return Path(__file__).resolve().parent / COSMOS3_STANDIN_NAME


def transfer25_standin_path() -> Path:
    """Return the path of ``transfer25_standin.sh``, the double of Transfer2.5's inference."""
    return Path(__file__).resolve().parent / TRANSFER25_STANDIN_NAME
