"""The GPUs pane shows each GPU's health, its detail on d, and why nvidia-smi is silent."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from textual.pilot import Pilot

from cosmos_tui.domain import GpuHealth, GpuHostHealth, GpuSample, HostState, HostStatus
from cosmos_tui.remote.smi import header_fields, host_problem, parse_mig_list, parse_row
from tests.ui.conftest import Harness, plain, ready, settle

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nvidia_smi"


@pytest.fixture
def h(harness: Callable[..., Harness]) -> Harness:
    return harness()


@pytest.fixture
async def pilot(h: Harness) -> AsyncIterator[Pilot]:
    async with h.app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(h, pilot)
        h.services.host_stream.put(HostStatus("gpu-a", HostState.CONNECTED, latency_ms=9))
        await settle(pilot)
        yield pilot


def capture(name: str, h: Harness, index: int = 0) -> GpuSample:
    header, row = (FIXTURES / name).read_text().splitlines()[:2]
    sample = parse_row(row, header_fields(header), "gpu-a", h.clock.now)
    assert sample is not None
    return dataclasses.replace(sample, index=index, uuid=f"GPU-a{index}")


def replay_rows(name: str, h: Harness) -> list[GpuSample]:
    lines = (FIXTURES / name).read_text().splitlines()
    fields = header_fields(lines[0])
    samples = [parse_row(line, fields, "gpu-a", h.clock.now) for line in lines[1:] if line]
    return [s for s in samples if s is not None]


async def shown(h: Harness, pilot: Pilot) -> str:
    await settle(pilot)
    gpus = h.app.main_screen.gpus
    gpus.redraw_dirty()
    await pilot.pause()
    card = gpus.card("gpu-a")
    assert card is not None
    return plain(card)


async def test_gpu_1_requiring_a_reset_is_shown_and_alerted(h: Harness, pilot: Pilot) -> None:
    for sample in replay_rows("replay__2gpu__gpu1_requires_reset.csv", h):
        h.services.gpu_stream.put(sample)
    text = await shown(h, pilot)
    lines = text.splitlines()
    assert any("\u25cf ok" in line for line in lines)
    assert any("\u2716 requires reset" in line for line in lines)
    assert any("GPU 1 requires reset" in n.message for n in h.app._notifications)
    await pilot.press("tab")  # focus moves between panes; d works on the GPUs pane
    h.app.main_screen.gpus.query_one("#gpu-cards").focus()
    await pilot.press("d")
    text = await shown(h, pilot)
    assert "[GPU requires reset] for" in text and "PCIe gen 5 x16" in text


async def test_a_sample_that_stops_coming_turns_stale_with_its_age(
    h: Harness, pilot: Pilot
) -> None:
    good = capture("linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01__load.csv", h)
    h.services.gpu_stream.put(good)
    assert "\u25cf ok" in await shown(h, pilot)
    h.clock.now += timedelta(seconds=12)
    text = await shown(h, pilot)
    assert "\u25cc stale 12s" in text and "\u25cf ok" not in text


async def test_mig_gpu_under_load_never_looks_idle(h: Harness, pilot: Pilot) -> None:
    loaded = capture("linux-x86_64__nvidia-h100-mig__590.48.01__load.csv", h)
    listing = (FIXTURES / "linux-x86_64__nvidia-h100-mig__590.48.01__list.txt").read_text()
    instances = next(iter(parse_mig_list(listing).values()))
    loaded = dataclasses.replace(loaded, mig_instances=instances)
    gpus = h.app.main_screen.gpus
    gpus.set_holders({("gpu-a", 0): "rs_mig"})
    for _ in range(9):  # 45 minutes
        h.clock.now += timedelta(minutes=5)
        h.services.gpu_stream.put(dataclasses.replace(loaded, at=h.clock.now))
        await settle(pilot)
    text = await shown(h, pilot)
    assert "idle" not in text and "\u25a6 MIG" in text
    assert not any("idle" in n.message for n in h.app._notifications)
    gpus.query_one("#gpu-cards").focus()
    await pilot.press("d")
    text = await shown(h, pilot)
    assert "MIG 0: 3g.40gb 40G" in text and "MIG 3: 1g.10gb 10G" in text


@pytest.mark.parametrize(
    "message",
    [
        "Failed to initialize NVML: Driver/library version mismatch",
        "No devices were found",
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
    ],
)
async def test_the_pane_says_why_there_are_no_figures(
    h: Harness, pilot: Pilot, message: str
) -> None:
    found = host_problem(None, message)
    assert found is not None
    state, reason = found
    assert "waiting for nvidia-smi" in await shown(h, pilot)
    h.services.gpu_host_stream.put(GpuHostHealth("gpu-a", state.value, reason))
    text = await shown(h, pilot)
    assert "waiting for nvidia-smi" not in text
    assert " ".join(reason.split()[:6]) in " ".join(text.split())


async def test_excluded_and_display_gpus_are_marked(h: Harness, pilot: Pilot) -> None:
    base = capture("linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01__idle.csv", h)
    display = dataclasses.replace(base, index=1, uuid="GPU-a1", name="NVIDIA DGX Display")
    h.services.gpu_stream.put(base)
    h.services.gpu_stream.put(display)
    text = await shown(h, pilot)
    assert "- excluded" in text
    assert GpuHealth.EXCLUDED.value == "excluded"


async def test_a_gpu_nvidia_smi_cannot_open_is_named_on_the_card(h: Harness, pilot: Pilot) -> None:
    # seven GPUs answer, the eighth cannot be opened: the card says so, as status does
    good = capture("linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01__load.csv", h)
    for index in range(7):
        h.services.gpu_stream.put(dataclasses.replace(good, index=index, uuid=f"GPU-a{index}"))
    reason = "nvidia-smi cannot open the GPU: GPU is lost. Reboot the system (bus 0000:08:00.0)"
    h.services.gpu_host_stream.put(GpuHostHealth("gpu-a", "ok", reason))
    text = await shown(h, pilot)
    assert "\u26a0 nvidia-smi cannot open the GPU: GPU is lost" in text
    assert "0000:08:00.0" in text and text.count("\u25cf ok") == 7
    h.services.gpu_host_stream.put(GpuHostHealth("gpu-a", "ok", None))  # all back
    assert "cannot open" not in await shown(h, pilot)
