"""Fixtures for UI tests: an app over test services with a fixed clock and ids."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cosmos_tui.domain import Run
from cosmos_tui.ui.app import CosmosApp
from tests.ui.fakes import FixedClock, TestServices, make_config, scenario, services_for


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "app(notifications=False, **ui): how test_flows.py's app fixtures set it up"
    )


class Harness:
    """An app plus handles to its test services and clock."""

    def __init__(self, tmp_path: Path, **config_ui: Any) -> None:
        self.clock = FixedClock()
        hosts = config_ui.pop("hosts", ("gpu-a",))
        keymap = config_ui.pop("keymap", {})
        clusters = config_ui.pop("clusters", ())
        self.config = make_config(tmp_path / "data", hosts, **config_ui)
        if keymap or clusters:
            import dataclasses

            from cosmos_tui.config import ClusterConfig

            self.config = dataclasses.replace(
                self.config,
                keymap=keymap or self.config.keymap,
                clusters=[
                    ClusterConfig(name=c, address="http://127.0.0.1:1", shared_dir="/srv")
                    for c in clusters
                ],
            )
        self.holder: dict[str, Any] = {}
        self.app = CosmosApp(
            lambda: services_for(self.config, self.clock, self.holder),
            self.config,
            clock=self.clock,
            opener=lambda path: ["true", path],
        )

    @property
    def services(self) -> TestServices:
        return self.holder["services"]


@pytest.fixture
def harness(tmp_path: Path) -> Callable[..., Harness]:
    return lambda **ui: Harness(tmp_path, **ui)


LONG_RUNNING = {
    "services",
    "stream-reconcile",
    "stream-hosts",
    "stream-gpus",
    "stream-gpu-hosts",
    "stream-processes",
    "stream-runs",
    "stream-clusters",
    "log-follow",
}


async def settle(pilot: Any, rounds: int = 4) -> None:
    """Wait until every short worker has finished and the screen has handled its messages."""
    from textual.worker import WorkerCancelled, WorkerFailed

    app = pilot.app
    for _ in range(rounds):
        await pilot.pause()
        pending = [w for w in app.workers if w.group not in LONG_RUNNING and not w.is_finished]
        for worker in pending:
            with contextlib.suppress(WorkerCancelled, WorkerFailed):
                await worker.wait()
    await pilot.pause()


async def ready(harness: Harness, pilot: Any) -> None:
    """Wait for the services to open and the panes to load."""
    while "services" not in harness.holder:
        await pilot.pause()
    await settle(pilot)


async def populated(harness: Harness, pilot: Any, tmp_path: Path) -> dict[str, Run]:
    """Load the scenario's prompts and runs (completed, failed, running, queued) into the panes."""
    await ready(harness, pilot)
    runs = await scenario(harness.services, harness.clock, tmp_path / "videos")
    main = harness.app.main_screen
    main.prompts.reload()
    main.runs.reload()
    await settle(pilot)
    return runs


def plain(widget: Any) -> str:
    """Return the text a Static shows (Rich renderables rendered without styles)."""
    from rich.console import Console

    console = Console(width=200, record=True, file=__import__("io").StringIO())
    from rich.text import Text

    content = widget.content
    console.print(Text(content) if isinstance(content, str) else content)
    return console.export_text()
