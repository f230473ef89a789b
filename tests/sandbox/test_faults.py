"""Fault switches: OOM draws, and flaky SSH that the remote layer rides through."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

from cosmos_tui.config import RetryConfig, TimeoutsConfig
from cosmos_tui.errors import CosmosError
from cosmos_tui.remote.host import RemoteHost
from cosmos_tui.sandbox import Sandbox, SandboxOptions
from cosmos_tui.sandbox.faults import Faults


def test_oom_draws_follow_rate_forced_count_and_run_ids():
    assert not Faults(oom_rate=0.0).draw_oom()
    assert Faults(oom_rate=1.0).draw_oom()
    faults = Faults(oom_rate=0.5, rng=random.Random(3))
    draws = [faults.draw_oom() for _ in range(400)]
    assert 150 < sum(draws) < 250
    faults = Faults()
    faults.force_oom(2)
    assert [faults.draw_oom() for _ in range(3)] == [True, True, False]
    faults.force_oom(run_id="rs_1")
    assert not faults.draw_oom("rs_2")
    assert faults.draw_oom("rs_1")
    assert not faults.draw_oom("rs_1")


async def test_flaky_ssh_drops_and_the_client_reconnects(tmp_path: Path):
    options = SandboxOptions(flaky_ssh=True, flaky_interval=0.3, time_scale=0.05)
    async with Sandbox.running(options, tmp_path / "c") as sandbox:
        retry = RetryConfig(max_attempts=20, backoff_base=0.05, backoff_max=0.3)
        host = RemoteHost(sandbox.host_config(), TimeoutsConfig(connect=2), retry)
        try:
            ok = failed = 0
            generations = set()
            deadline = time.monotonic() + 2.5
            while time.monotonic() < deadline:
                try:
                    result = await host.run(["echo", "alive"], timeout=5)
                    assert result.stdout == "alive\n"
                    ok += 1
                    generations.add(host.ssh.generation)
                except CosmosError as exc:
                    assert exc.transient, exc
                    failed += 1
                await asyncio.sleep(0.02)
            assert ok >= 3
            assert len(generations) >= 2  # it reconnected at least once
            sandbox.faults.flaky_ssh = False  # the host comes back and stays up
            deadline = time.monotonic() + 10
            while True:
                try:
                    assert (await host.run(["true"], timeout=5)).exit_status == 0
                    break
                except CosmosError as exc:
                    assert exc.transient and time.monotonic() < deadline, exc
                    await asyncio.sleep(0.1)
        finally:
            await host.close()
