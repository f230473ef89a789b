"""The doctor against the SIMULATED GPU HOST: healthy passes every check; each set-up fault
fails its own check alone, with its fix, and passes again once repaired."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from cosmos_tui.config import Config, RetryConfig, TimeoutsConfig
from cosmos_tui.doctor.model import Outcome
from cosmos_tui.doctor.runner import CHECK_IDS, run_doctor
from cosmos_tui.remote import RemoteHost
from cosmos_tui.sandbox import Sandbox

pytestmark = pytest.mark.timeout(120)

EDGE = "nvidia/Cosmos-Transfer1-7B/edge_control.pt"
GATED = "meta-llama/Llama-Guard-3-8B/model-00001-of-00004.safetensors"


def config_for(sandbox: Sandbox) -> Config:
    return Config(hosts=[sandbox.host_config()])


async def doctor(sandbox: Sandbox, host: RemoteHost, **options):
    options.setdefault("environ", {})
    return await run_doctor(host, config_for(sandbox), **options)


def outcomes(report) -> dict[str, Outcome]:
    return {r.check: r.outcome for r in report.results}


async def test_a_healthy_simulated_host_passes_every_check(sandbox, host):
    report = await doctor(sandbox, host)
    assert [r.check for r in report.results] == list(CHECK_IDS)
    assert report.ok
    assert set(outcomes(report).values()) == {Outcome.PASS}, [
        (r.check, r.detail) for r in report.results if r.outcome is not Outcome.PASS
    ]
    assert "2 GPUs visible" in report.result("gpu_container").detail
    # the probe container is gone again
    assert not [c for c in sandbox.containers() if "cosmos.doctor" in c.labels]


BREAKAGES: dict[str, tuple[str, Callable, Callable, str]] = {
    # name: (check that fails, break, repair, text the fix must contain)
    "no NVIDIA runtime": (
        "gpu_container",
        lambda s: s.setup.no_nvidia_runtime(True),
        lambda s: s.setup.no_nvidia_runtime(False),
        "nvidia-container-toolkit",
    ),
    "checkpoint missing": (
        "checkpoints",
        lambda s: s.setup.checkpoint(EDGE, "missing"),
        lambda s: s.setup.checkpoint(EDGE, "ok"),
        "download_checkpoints.py",
    ),
    "checkpoint empty": (
        "checkpoints",
        lambda s: s.setup.checkpoint(EDGE, "empty"),
        lambda s: s.setup.checkpoint(EDGE, "ok"),
        "download_checkpoints.py",
    ),
    "checkout does not match the image": (
        "checkout",
        lambda s: s.setup.checkout_mismatch(True),
        lambda s: s.setup.checkout_mismatch(False),
        "docker build",
    ),
    "GPU too small": (
        "gpu_memory",
        lambda s: s.setup.gpu("small"),
        lambda s: s.setup.gpu("h100"),
        "at least 28 GB",
    ),
    "GPU too old": (
        "gpu_arch",
        lambda s: s.setup.gpu("old"),
        lambda s: s.setup.gpu("h100"),
        "Ampere",
    ),
    "login shell greeting": (
        "greeting",
        lambda s: s.setup.greeting(),
        lambda s: s.setup.greeting(""),
        ".bashrc",
    ),
    "full disk": (
        "disk",
        lambda s: s.setup.disk_full(True),
        lambda s: s.setup.disk_full(False),
        "--remote-tool-dir",
    ),
    "small /dev/shm": (
        "shm",
        lambda s: s.setup.small_shm(True),
        lambda s: s.setup.small_shm(False),
        "remount,size=16G /dev/shm",
    ),
    "a distant host": (
        "latency",
        lambda s: s.setup.slow_link(0.8),
        lambda s: s.setup.slow_link(0),
        "ProxyJump",
    ),
}


@pytest.mark.parametrize("name", list(BREAKAGES))
async def test_each_broken_piece_fails_its_check_alone_with_its_fix(sandbox, host, name):
    check, breaking, repair, fix_text = BREAKAGES[name]
    breaking(sandbox)
    report = await doctor(sandbox, host)
    failures = [r.check for r in report.failures]
    assert failures == [check], [(r.check, r.detail) for r in report.failures]
    result = report.result(check)
    assert fix_text in (result.fix or ""), result
    assert result.detail
    repair(sandbox)
    again = await doctor(sandbox, host)
    assert again.ok, [(r.check, r.detail) for r in again.failures]


async def test_a_missing_checkpoint_is_named(sandbox, host):
    sandbox.setup.checkpoint(EDGE, "missing")
    sandbox.setup.checkpoint("nvidia/Cosmos-Transfer1-7B/vis_control.pt", "empty")
    result = (await doctor(sandbox, host)).result("checkpoints")
    assert f"missing: {EDGE}" in result.detail
    assert "empty (an interrupted download?): nvidia/Cosmos-Transfer1-7B/vis_control.pt" in (
        result.detail
    )


async def test_a_control_with_weight_zero_needs_no_checkpoint(sandbox, host):
    sandbox.setup.checkpoint(EDGE, "missing")
    config = config_for(sandbox)
    defaults = dataclasses.replace(config.defaults, edge_weight=0)
    config = dataclasses.replace(config, defaults=defaults)
    report = await run_doctor(host, config, environ={})
    assert report.ok


async def test_a_gated_checkpoint_missing_needs_a_token(sandbox, host):
    sandbox.setup.checkpoint(GATED, "missing")
    without = await doctor(sandbox, host)
    assert [r.check for r in without.failures] == ["checkpoints", "hf_token"]
    assert "HF_TOKEN" in (without.result("hf_token").fix or "")
    with_token = await doctor(sandbox, host, environ={"HF_TOKEN": "hf_test"})
    assert [r.check for r in with_token.failures] == ["checkpoints"]
    assert "HF_TOKEN is set" in with_token.result("hf_token").detail


async def test_a_missing_image_fails_and_fix_pulls_it_with_progress(sandbox, host):
    sandbox.setup.remove_image()
    report = await doctor(sandbox, host)
    assert [r.check for r in report.failures] == ["image"]
    assert "--fix" in (report.result("image").fix or "")
    # what needs the image is skipped, not failed
    assert outcomes(report)["gpu_container"] is Outcome.SKIP
    assert outcomes(report)["checkout"] is Outcome.SKIP
    events = []
    fixed = await doctor(sandbox, host, fix=True, on_pull=events.append)
    assert fixed.ok, [(r.check, r.detail) for r in fixed.failures]
    assert "pulled now" in fixed.result("image").detail
    downloading = [e for e in events if e.status == "Downloading"]
    assert downloading and all(e.total and e.current for e in downloading)
    assert {e.layer for e in downloading} and any(e.current == e.total for e in downloading)
    assert outcomes(fixed)["gpu_container"] is Outcome.PASS


async def test_an_image_the_registry_lacks_fails_with_its_fix(sandbox, host):
    config = config_for(sandbox)
    other = dataclasses.replace(sandbox.host_config(), docker_image="example.org/none:1")
    remote = RemoteHost(other, timeouts=TimeoutsConfig(connect=5.0), retry=RetryConfig(1))
    try:
        report = await run_doctor(remote, config, fix=True, environ={})
    finally:
        await remote.close()
    result = report.result("image")
    assert result.outcome is Outcome.FAIL
    assert "pull access denied" in result.detail
    # the doctor's own pull sends no credentials: the fix pulls on the host after a login
    assert result.fix == (
        "on the host: docker login example.org (nvcr.io needs an NGC API key), then "
        "docker pull example.org/none:1"
    )


async def test_an_untrusted_host_key_fails_ssh_and_skips_the_rest(sandbox, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    config = dataclasses.replace(sandbox.host_config(), known_hosts=str(empty))
    remote = RemoteHost(config, timeouts=TimeoutsConfig(connect=5.0), retry=RetryConfig(1))
    try:
        report = await run_doctor(remote, config_for(sandbox), environ={})
    finally:
        await remote.close()
    assert [r.check for r in report.failures] == ["ssh"]
    assert report.result("ssh").fix == "cosmos host trust simulated-gpu-host"
    assert {r.outcome for r in report.results[1:]} == {Outcome.SKIP}
