from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cosmos_tui.cli import cli


@pytest.fixture
def cosmos(workspace: Path) -> Callable[..., Result]:
    """Invoke the cosmos CLI entry in-process against the temporary workspace."""
    runner = CliRunner()

    def _invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return _invoke
