"""The TUI over a shaped path: a host 150 ms away, then a 10 s stall of the link.

The real app over the real Workbench (as ``cosmos tui`` builds it), its one host reached
through the shaping proxy in front of the real sshd. Keys must be answered at the UI's
own pace (the UI path never waits on the network: no key waits for the stalled link),
and the GPUs pane must say "stalled" while the link delivers nothing, then show live
figures again once it does. Run with ``-s`` to see keypress-to-frame p50/p95.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from textual import events

from cosmos_tui.config import Config, HostConfig, PathsConfig, TimeoutsConfig, UIConfig
from cosmos_tui.domain import HostState
from cosmos_tui.sandbox.netshape import LinkShape, ShapedLink
from cosmos_tui.services import Workbench
from cosmos_tui.ui.app import CosmosApp
from cosmos_tui.ui.facade import FacadeAdapter
from tests.ui.conftest import plain

pytestmark = pytest.mark.timeout(120)

RTT_MS = 150
STALL_S = 10.0
PRESSES = 20


@pytest.fixture
def far_link(ssh_server: Any) -> Iterator[ShapedLink]:
    with ShapedLink(ssh_server.port, LinkShape(rtt_ms=RTT_MS, mbit=100)) as shaped:
        yield shaped


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


async def anchor_times(config: Config) -> list[float]:
    """The same keys in the same app with no host at all: this machine's frame cost now."""

    @asynccontextmanager
    async def services():
        async with Workbench.open(config) as bench:
            yield FacadeAdapter(bench, poll_seconds=0.5)

    app = CosmosApp(services, config)
    async with app.run_test(size=(120, 40)) as pilot:
        while app.services is None:
            await pilot.pause(0.05)
        await pilot.pause(0.5)
        times = await key_times(pilot, PRESSES)
        await pilot.press("q")
    return times


def ms(times: list[float]) -> str:
    return f"p50 {statistics.median(times) * 1000:.0f} ms, p95 {p95(times) * 1000:.0f} ms"


def p95(times: list[float]) -> float:
    return sorted(times)[max(0, int(len(times) * 0.95) - 1)]


async def test_keys_stay_answered_150_ms_away_and_through_a_10_s_stall(
    host_config: HostConfig, ssh_server: Any, far_link: ShapedLink, fake_gpu: Any, tmp_path: Path
) -> None:
    host = dataclasses.replace(host_config, **ssh_server.connection_fields(far_link.port))
    # The keepalive limit (3 x 15 s) is longer than the stall: the connection is not
    # declared dead, the link is just silent, as a real stall mostly is.
    config = Config(
        hosts=[host],
        timeouts=TimeoutsConfig(connect=20.0, command=30.0, keepalive=15.0),
        paths=PathsConfig(data_dir=str(tmp_path / "data")),
        ui=UIConfig(gpu_interval_ms=500),
    )

    @asynccontextmanager
    async def services():
        async with Workbench.open(config) as bench:
            yield FacadeAdapter(bench, poll_seconds=0.5)

    anchor = await anchor_times(dataclasses.replace(config, hosts=[]))
    app = CosmosApp(services, config)
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.main_screen

        def card_text() -> str:
            main.gpus.redraw_dirty()
            card = main.gpus.card(host.name)
            return plain(card) if card is not None else ""

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            card = main.gpus.card(host.name)
            if card is not None and card.gpus and card.status.state == HostState.CONNECTED:
                break
            await pilot.pause(0.05)
        else:
            raise AssertionError(f"no GPU reading over the shaped link: {card_text()}")

        far = await key_times(pilot, PRESSES)

        far_link.stall(STALL_S)
        stalled_at = time.monotonic()
        during: list[float] = []
        seen_stalled = ""
        while time.monotonic() - stalled_at < STALL_S - 1.0:
            during.extend(await key_times(pilot, 2))
            text = card_text()
            if "stalled: no reading" in text:
                seen_stalled = text
            await pilot.pause(0.1)
        print(
            f"\nkeypress-to-frame: host {RTT_MS} ms away {ms(far)}; during a {STALL_S:.0f} s "
            f"stall {ms(during)}, max {max(during) * 1000:.0f} ms ({len(during)} keys); "
            f"anchor, same app with no host: {ms(anchor)}; one RTT: {RTT_MS} ms"
        )
        # The decisive check: while the link delivers nothing for 10 s, no key waits for
        # it (a UI path that waited on the network would take seconds here). Bounds are
        # loose for a loaded 2-core CI machine; the figures printed are the measurement
        # (docs/remote.md has them from a quieter run).
        assert max(during) < 2.0, during
        assert statistics.median(during) < 1.0 and statistics.median(far) < 1.0, (far, during)
        assert seen_stalled, f"the GPUs pane never said stalled: {card_text()}"
        assert "figures below are old" in seen_stalled

        # The link delivers again: live figures, not "stalled".
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if "stalled" not in card_text() and "connected" in card_text():
                break
            await pilot.pause(0.1)
        assert "stalled" not in card_text() and "connected" in card_text(), card_text()
        await pilot.press("q")
