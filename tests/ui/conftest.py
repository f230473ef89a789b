"""Fixtures for UI tests: an app over test services with a fixed clock and ids."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cosmos_tui.ui.app import CosmosApp
from tests.ui.fakes import FixedClock, TestServices, make_config, services_for


class Harness:
    """An app plus handles to its test services and clock."""

    def __init__(self, tmp_path: Path, **config_ui: Any) -> None:
        self.clock = FixedClock()
        hosts = config_ui.pop("hosts", ("gpu-a",))
        keymap = config_ui.pop("keymap", {})
        self.config = make_config(tmp_path / "data", hosts, **config_ui)
        if keymap:
            import dataclasses

            self.config = dataclasses.replace(self.config, keymap=keymap)
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
