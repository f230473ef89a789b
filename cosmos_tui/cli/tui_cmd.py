"""``cosmos tui``: open the terminal UI over the same services as the CLI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import click

from cosmos_tui.cli.context import CliContext
from cosmos_tui.cli.terminal import run_tui

if TYPE_CHECKING:
    from cosmos_tui.config import Config
    from cosmos_tui.ui.facade import FacadeAdapter


@click.command("tui")
@click.pass_obj
def tui(ctx: CliContext) -> None:
    """Open the terminal UI (q quits; runs keep going on their hosts).

    Closing the terminal (SIGHUP) or SIGTERM quits it the same way, in bounded time.
    """
    config = ctx.load_config()
    # lazy: Textual (~450 ms) loads after the config is checked; this module stays
    # Textual-free (tests/ui/test_boundaries.py)
    from cosmos_tui.ui.app import CosmosApp

    run_tui(CosmosApp(lambda: tui_services(config), config))


@asynccontextmanager
async def tui_services(config: Config) -> AsyncIterator[FacadeAdapter]:
    """The services of ``cosmos tui``; leaving them hands this app's runs over.

    The runs the app was driving, and its queue, go on in detached processes
    (``RunService.close(hand_over=True)``), so quitting never leaves a run without a
    driver until the next reconcile.
    """
    # lazy: after the first frame; SQLAlchemy and the services are heavy (docs/architecture.md)
    from cosmos_tui.services import Workbench
    from cosmos_tui.ui.facade import FacadeAdapter

    async with Workbench.open(config) as bench:
        try:
            yield FacadeAdapter(bench)
        finally:
            await bench.runs.close(hand_over=True)  # its stops are bounded, then it hands over
