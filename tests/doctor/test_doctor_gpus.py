"""The doctor's GPU memory and architecture checks on REAL nvidia-smi output.

The simulated host's nvidia-smi replays captures from real machines
(tests/fixtures/nvidia_smi: H100, H200, L40S, RTX 2080/4080, MIG; Linux and Windows), so
the doctor's query goes over SSH and is answered with real rows; the checks read them with
the telemetry's parser and judge them with the scheduler's policy.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from cosmos_tui.config import Config
from cosmos_tui.doctor.model import Outcome
from cosmos_tui.doctor.runner import run_doctor
from cosmos_tui.remote import RemoteHost
from cosmos_tui.remote.status import collect_status
from cosmos_tui.sandbox import Sandbox
from tests.doctor.conftest import connect

pytestmark = pytest.mark.timeout(120)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nvidia_smi"
MANIFEST = tomllib.loads((FIXTURES / "manifest.toml").read_text())["fixture"]
CAPTURES = [f for f in MANIFEST if f["kind"] == "capture" and f["file"].endswith(".csv")]
TRANSCRIPTS = tomllib.loads((FIXTURES / "transcripts.toml").read_text())["message"]
GPU_CHECKS = frozenset({"gpu_memory", "gpu_arch"})
PASS, FAIL = Outcome.PASS, Outcome.FAIL
# gpu (as the manifest names it) -> (memory outcome, text in its detail or fix,
#                                    arch outcome, text in its detail)
EXPECTED = {
    "NVIDIA GeForce RTX 2080 SUPER": (FAIL, "at least 28 GB", FAIL, "compute capability 7.5"),
    "NVIDIA GeForce RTX 4080 SUPER": (FAIL, "at least 28 GB", PASS, "8.0 or newer"),
    "NVIDIA L40S": (PASS, "1 of 1 GPUs fit", PASS, "NVIDIA L40S"),
    "NVIDIA H100 80GB HBM3": (PASS, "1 of 1 GPUs fit", PASS, "NVIDIA H100 80GB HBM3"),
    "NVIDIA H100 80GB HBM3 (MIG enabled)": (FAIL, "gpu_mig = true", PASS, "H100"),
    "NVIDIA H200": (PASS, "1 of 1 GPUs fit", PASS, "NVIDIA H200"),
    "NVIDIA H200 (MIG enabled)": (FAIL, "gpu_mig = true", PASS, "H200"),
}


async def gpu_checks(host: RemoteHost):
    report = await run_doctor(host, Config(hosts=[host.config]), only=GPU_CHECKS, environ={})
    return report.result("gpu_memory"), report.result("gpu_arch")


async def test_every_real_capture_gets_the_right_memory_and_arch_verdict(
    sandbox: Sandbox, host: RemoteHost
):
    assert {c["gpu"] for c in CAPTURES} == set(EXPECTED)
    for capture in CAPTURES:
        sandbox.replay_smi(FIXTURES / capture["file"])
        memory, arch = await gpu_checks(host)
        want_memory, memory_text, want_arch, arch_text = EXPECTED[capture["gpu"]]
        where = (capture["file"], memory, arch)
        assert memory.outcome is want_memory, where
        assert memory_text in f"{memory.detail} {memory.fix}", where
        assert arch.outcome is want_arch and arch_text in arch.detail, where
        if want_arch is FAIL:
            assert "Ampere" in (arch.fix or ""), where


async def test_free_memory_is_read_from_the_rows_of_a_loaded_h100(sandbox, host):
    # 81559 MiB total, 19818 MiB used under load: 60 of 80 GiB free.
    sandbox.replay_smi(FIXTURES / "linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01__load.csv")
    memory, _ = await gpu_checks(host)
    assert memory.outcome is PASS and "GPU 0: 60/80 GiB free" in memory.detail


async def test_mig_gpus_count_once_the_host_allows_mig(sandbox: Sandbox):
    sandbox.replay_smi(FIXTURES / "linux-x86_64__nvidia-h100-mig__590.48.01__load.csv")
    config = dataclasses.replace(sandbox.host_config(), gpu_mig=True)
    remote = connect(config)
    try:
        memory, arch = await gpu_checks(remote)
    finally:
        await remote.close()
    assert memory.outcome is PASS and "1 of 1 GPUs fit" in memory.detail
    assert arch.outcome is PASS


async def test_a_gpu_that_requires_a_reset_is_not_counted(sandbox, host):
    # Two H100s from the real capture; GPU 1's cells are [GPU requires reset].
    sandbox.replay_smi(FIXTURES / "replay__2gpu__gpu1_requires_reset.csv", tick_s=600)
    memory, arch = await gpu_checks(host)
    assert memory.outcome is PASS and "1 of 2 GPUs fit" in memory.detail
    assert "not offered: GPU 1 requires reset" in memory.detail
    assert "[GPU requires reset]" in memory.detail
    assert arch.outcome is PASS


async def test_no_usable_gpu_fails_with_the_gpus_health_and_its_fix(sandbox, host):
    # GPU 0 (healthy) is excluded by the host; GPU 1 reads [GPU requires reset].
    sandbox.replay_smi(FIXTURES / "replay__2gpu__gpu1_requires_reset.csv", tick_s=600)
    config = dataclasses.replace(sandbox.host_config(), gpu_exclude=["0"])
    remote = connect(config)
    try:
        memory, _ = await gpu_checks(remote)
    finally:
        await remote.close()
    assert memory.outcome is FAIL
    assert memory.detail.startswith("no GPU is offered to runs (GPU 0 excluded")
    assert "GPU 1 requires reset" in memory.detail
    assert "gpu_exclude" in (memory.fix or "")


HOST_STATES = ("version mismatch", "no devices", "no driver")


@pytest.mark.parametrize("state", HOST_STATES)
async def test_a_broken_driver_fails_with_the_reason_cosmos_status_gives(sandbox, host, state):
    message = next(m for m in TRANSCRIPTS if m["state"] == state)
    sandbox.faults.smi_output = (message["text"] + "\n", message.get("exit_status", 255))
    memory, arch = await gpu_checks(host)
    report = await collect_status(host)
    assert report.gpu_reason and report.gpus == ()
    for result in (memory, arch):
        assert result.outcome is FAIL and result.detail == report.gpu_reason, result
        assert result.fix
