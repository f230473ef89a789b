"""Placement only on healthy GPUs: faults, stale, throttled, MIG, exclusions, gpu_limit."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cosmos_tui.config import HostConfig
from cosmos_tui.domain import GpuHealth, GpuSample, HostState, HostStatus
from cosmos_tui.engine.queue import Allocation, host_view, place
from cosmos_tui.remote.gpu_policy import usable_indices, with_policy
from cosmos_tui.remote.smi import header_fields, parse_row

from .test_queue import group

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nvidia_smi"
AT = datetime(2026, 1, 1, tzinfo=UTC)
CONNECTED = HostStatus("h", HostState.CONNECTED)


def _replay_last_block(name: str) -> list[GpuSample]:
    blocks = (FIXTURES / name).read_text().split("\n\n")
    header, *first = blocks[0].splitlines()
    fields = header_fields(header)
    last = first if len(blocks) == 1 else blocks[-1].splitlines()
    samples = [parse_row(line, fields, "h", AT) for line in last if line.strip()]
    assert all(s is not None for s in samples)
    return [s for s in samples if s is not None]


def _capture(name: str, index: int = 0) -> GpuSample:
    header, row = (FIXTURES / name).read_text().splitlines()[:2]
    sample = parse_row(row, header_fields(header), "h", AT)
    assert sample is not None
    return dataclasses.replace(sample, index=index, uuid=f"GPU-{index}")


def test_gpu_1_requiring_a_reset_is_never_offered() -> None:
    host = HostConfig(name="h", hostname="x")
    samples = _replay_last_block("replay__2gpu__gpu1_requires_reset.csv")
    view = host_view(host, CONNECTED, samples)
    assert view.gpus == (0, 1) and view.unhealthy == {1: "requires reset"}
    plan = place([group("r1"), group("r2")], [view], [])
    assert [p.gpus for p in plan.placements] == [(0,)]
    assert "GPU 1 requires reset" in plan.waiting[0].reason
    assert plan.waiting[0].until_free


@pytest.mark.parametrize(
    "health", [GpuHealth.ERROR, GpuHealth.LOST, GpuHealth.STALE, GpuHealth.THROTTLED]
)
def test_no_unhealthy_gpu_is_offered(health: GpuHealth) -> None:
    host = HostConfig(name="h", hostname="x")
    good = _capture("linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01__idle.csv", 0)
    bad = dataclasses.replace(good, index=1, uuid="GPU-1", health=health)
    assert usable_indices(host, [good, bad]) == (0,)


def test_mig_gpus_only_when_the_host_allows_whole_gpu_placement() -> None:
    mig = _capture("linux-x86_64__nvidia-h100-mig__590.48.01__load.csv", 0)
    plain = _capture("linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01__idle.csv", 1)
    host = HostConfig(name="h", hostname="x")
    assert usable_indices(host, [mig, plain]) == (1,)
    assert host_view(host, CONNECTED, [mig, plain]).gpus == (1,)
    allowed = dataclasses.replace(host, gpu_mig=True)
    assert usable_indices(allowed, [mig, plain]) == (0, 1)


def test_exclusions_by_index_uuid_and_display_models() -> None:
    base = _capture("linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01__idle.csv", 0)
    samples = [
        base,
        dataclasses.replace(base, index=1, uuid="GPU-1"),
        dataclasses.replace(base, index=2, uuid="GPU-abc"),
        # The DGX Station's display GPU, named as nvidia-smi names it.
        dataclasses.replace(base, index=3, uuid="GPU-3", name="NVIDIA DGX Display"),
    ]
    host = HostConfig(name="h", hostname="x", gpu_exclude=["1", "GPU-abc"])
    judged = {s.index: s for s in with_policy(host, samples)}
    assert [judged[i].health for i in range(4)] == [
        GpuHealth.OK,
        GpuHealth.EXCLUDED,
        GpuHealth.EXCLUDED,
        GpuHealth.EXCLUDED,
    ]
    assert "display GPU" in (judged[3].health_reason or "")
    assert host_view(host, CONNECTED, samples).gpus == (0,)
    included = dataclasses.replace(host, gpu_include=["3"])
    assert usable_indices(included, samples) == (0, 3)


def test_gpu_limit_counts_gpus_held_not_the_first_indices() -> None:
    base = _capture("linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01__idle.csv", 0)
    samples = [dataclasses.replace(base, index=i, uuid=f"GPU-{i}") for i in range(4)]
    broken = dataclasses.replace(samples[0], health=GpuHealth.REQUIRES_RESET)
    host = HostConfig(name="h", hostname="x", gpu_limit=2)
    view = host_view(host, CONNECTED, [broken, *samples[1:]])
    plan = place([group("r1"), group("r2"), group("r3")], [view], [])
    assert [p.gpus for p in plan.placements] == [(1,), (2,)]  # not GPU 0, and only two
    held = [Allocation("h", (1,), "other")]
    plan = place([group("r4", 2)], [view], held)
    assert not plan.placements and plan.waiting[0].until_free
