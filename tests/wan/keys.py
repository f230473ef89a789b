"""Keypress-to-frame in the real TUI with its host behind a shaped link, then a stall.

Shared by tests/wan/test_tui_shaped.py (which asserts on it) and bench/wan_keypress.py
(which prints the figures, with ``--json``). Not a test module.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from textual import events

from cosmos_tui.config import Config
from cosmos_tui.domain import HostState
from cosmos_tui.sandbox.netshape import ShapedLink
from cosmos_tui.services import Workbench
from cosmos_tui.ui.app import CosmosApp
from cosmos_tui.ui.facade import FacadeAdapter
from tests.ui.conftest import plain


@dataclass
class KeyFigures:
    """Seconds from key to frame: far (the host a link away), during its stall, anchor."""

    far: list[float] = field(default_factory=list)
    during: list[float] = field(default_factory=list)
    anchor: list[float] = field(default_factory=list)
    stalled_text: str = ""  # the host's card while stalled, as the GPUs pane said it
    recovered_text: str = ""  # the card once the link delivered again

    def summary(self) -> dict[str, Any]:
        """p50, p95 and max of each series in milliseconds, and the keys counted."""
        return {name: stats(getattr(self, name)) for name in ("far", "during", "anchor")}


def stats(times: list[float]) -> dict[str, float]:
    """p50, p95 and max in milliseconds, and how many keys."""
    if not times:
        return {"keys": 0}
    return {
        "p50_ms": round(statistics.median(times) * 1000, 1),
        "p95_ms": round(p95(times) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
        "keys": len(times),
    }


def p95(times: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    return sorted(times)[max(0, int(len(times) * 0.95) - 1)]


def ms(times: list[float]) -> str:
    """``p50 N ms, p95 N ms``."""
    return f"p50 {statistics.median(times) * 1000:.0f} ms, p95 {p95(times) * 1000:.0f} ms"


async def key_times(pilot: Any, presses: int) -> list[float]:
    """Seconds from each key (tab) until its effect (the focus moved) is on a frame.

    The key goes in as the terminal driver posts it; the time ends at the first refresh
    after the focus moved (``call_after_refresh``). Not ``pilot.press``: that also waits
    for the whole process to go idle, which the live streams never let it be for long.
    """
    app = pilot.app
    times = []
    for _ in range(presses):
        before = app.focused
        drawn = asyncio.Event()
        start = time.perf_counter()
        app.post_message(events.Key("tab", None))
        while app.focused is before:
            await asyncio.sleep(0.001)
        app.call_after_refresh(drawn.set)
        await asyncio.wait_for(drawn.wait(), 5)
        times.append(time.perf_counter() - start)
        await asyncio.sleep(0.02)
    return times


def app_for(config: Config) -> CosmosApp:
    """The app as ``cosmos tui`` builds it over ``config`` (runs polled every 0.5 s)."""

    @asynccontextmanager
    async def services() -> AsyncIterator[FacadeAdapter]:
        async with Workbench.open(config) as bench:
            yield FacadeAdapter(bench, poll_seconds=0.5)

    return CosmosApp(services, config)


async def anchor_times(config: Config, presses: int) -> list[float]:
    """The same keys in the same app with no host at all: this machine's frame cost now."""
    app = app_for(dataclasses.replace(config, hosts=[]))
    async with app.run_test(size=(120, 40)) as pilot:
        while app.services is None:
            await pilot.pause(0.05)
        await pilot.pause(0.5)
        times = await key_times(pilot, presses)
        await pilot.press("q")
    return times


async def measure(
    config: Config, host: str, link: ShapedLink, presses: int, stall_s: float
) -> KeyFigures:
    """Keys with ``host`` a shaped link away, then during a stall of ``stall_s``, and the
    anchor (no host), all in this one run.

    Raises:
        AssertionError: The host never gave a GPU reading over the link.
    """
    figures = KeyFigures(anchor=await anchor_times(config, presses))
    app = app_for(config)
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.main_screen

        def card_text() -> str:
            main.gpus.redraw_dirty()
            card = main.gpus.card(host)
            return plain(card) if card is not None else ""

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            card = main.gpus.card(host)
            if card is not None and card.gpus and card.status.state == HostState.CONNECTED:
                break
            await pilot.pause(0.05)
        else:
            raise AssertionError(f"no GPU reading over the shaped link: {card_text()}")

        figures.far = await key_times(pilot, presses)

        link.stall(stall_s)
        stalled_at = time.monotonic()
        while time.monotonic() - stalled_at < stall_s - 1.0:
            figures.during.extend(await key_times(pilot, 2))
            text = card_text()
            if "stalled: no reading" in text:
                figures.stalled_text = text
            await pilot.pause(0.1)

        # The link delivers again: live figures, not "stalled".
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            figures.recovered_text = card_text()
            if "stalled" not in figures.recovered_text and "connected" in figures.recovered_text:
                break
            await pilot.pause(0.1)
        await pilot.press("q")
    return figures
