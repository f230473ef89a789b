"""Telemetry that stops arriving: the GPUs pane says "stalled" instead of showing the last
figures as if they were current, and goes back to live figures with the next reading.

A host counts as stalled when it is connected but no GPU reading arrived for three
sampling intervals (``ui.gpu_interval_ms``), at least 3 s: the SSH link stopped
delivering (a stall on the path) while the connection is not yet declared dead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cosmos_tui.domain import HostState, HostStatus
from tests.ui.conftest import Harness, plain, ready, settle
from tests.ui.fakes import sample

pytestmark = pytest.mark.timeout(60)


async def shown(h: Harness, pilot) -> str:
    main = h.app.main_screen
    main.gpus.redraw_dirty()
    await pilot.pause()
    card = main.gpus.card("gpu-a")
    assert card is not None
    return plain(card)


async def test_a_host_whose_readings_stop_shows_stalled_then_live_again(tmp_path: Path) -> None:
    h = Harness(tmp_path, gpu_interval_ms=1000)
    async with h.app.run_test(size=(120, 40)) as pilot:
        await ready(h, pilot)
        services = h.services
        services.host_stream.put(HostStatus("gpu-a", HostState.CONNECTED, latency_ms=150.0))
        services.gpu_stream.put(sample("gpu-a", 0, h.clock.now, 57.0, 30000))
        await settle(pilot)
        text = await shown(h, pilot)
        assert "connected" in text and "57%" in text and "stalled" not in text

        h.clock.advance(2.5)  # under three intervals: still live
        assert "stalled" not in await shown(h, pilot)

        h.clock.advance(1.0)  # 3.5 s without a reading
        text = await shown(h, pilot)
        assert "stalled: no reading for 4s" in text or "stalled: no reading for 3s" in text
        assert "connected" not in text
        h.clock.advance(10.0)
        assert "no reading for 14s" in await shown(h, pilot)  # the count goes on

        services.gpu_stream.put(sample("gpu-a", 0, h.clock.now, 12.0, 30000))
        await settle(pilot)
        text = await shown(h, pilot)
        assert "stalled" not in text and "connected" in text and "12%" in text


async def test_a_host_that_never_sent_a_reading_is_not_called_stalled(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    async with h.app.run_test(size=(120, 40)) as pilot:
        await ready(h, pilot)
        h.services.host_stream.put(HostStatus("gpu-a", HostState.CONNECTED))
        await settle(pilot)
        h.clock.advance(60)
        text = await shown(h, pilot)
        assert "stalled" not in text and "waiting for nvidia-smi" in text
