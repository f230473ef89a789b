"""GPU telemetry from the nvidia-smi stand-in over a real SSH connection."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from cosmos_tui.config import RetryConfig
from cosmos_tui.domain import GpuHealth
from cosmos_tui.remote import RemoteHost
from cosmos_tui.remote.docker import ContainerSpec
from cosmos_tui.remote.gpu import GpuState, GpuTelemetry, parse_app_line, parse_gpu_line, query_gpus

AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_parse_full_line() -> None:
    line = "3, GPU-abc, NVIDIA H100 80GB HBM3, 97, 40, 70000, 81559, 71, 650.10, 700.00, 1980"
    sample = parse_gpu_line(line, "h", AT)
    assert sample is not None
    assert (sample.index, sample.uuid, sample.name) == (3, "GPU-abc", "NVIDIA H100 80GB HBM3")
    assert sample.utilization == 97 and sample.memory_used_mib == 70000
    assert sample.power_draw_w == 650.10 and sample.sm_clock_mhz == 1980


def test_parse_not_available_values() -> None:
    line = "1, GPU-x, NVIDIA A10G, [N/A], [N/A], 100, 23028, 40, [N/A], [Not Supported], [N/A]"
    sample = parse_gpu_line(line, "h", AT)
    assert sample is not None
    assert sample.utilization is None and sample.power_limit_w is None
    assert sample.memory_used_mib == 100


@pytest.mark.parametrize(
    "line",
    [
        "",
        "garbage",
        "1, GPU-x, short",
        "x, GPU, n, 1, 1, 1, 1, 1, 1, 1, 1",
        "0, GPU-x, n, abc, 1, 1, 1, 1, 1, 1, 1",
        "\u00b2, GPU-x, n, 1, 1, 1, 1, 1, 1, 1, 1",
    ],
)
def test_parse_rejects_garbage(line: str) -> None:
    assert parse_gpu_line(line, "h", AT) is None


def test_parse_app_line_rejects_a_non_decimal_pid() -> None:
    assert parse_app_line("\u00b2, GPU-x, 100, python3", "h") is None


def test_parse_app_line() -> None:
    app = parse_app_line("4242, GPU-abc, 30000, /usr/bin/python3", "h")
    assert app is not None and app.pid == 4242 and app.used_memory_mib == 30000
    assert parse_app_line("No running processes found", "h") is None


def _telemetry(host: RemoteHost, **kwargs) -> GpuTelemetry:
    host.ssh.retry = RetryConfig(max_attempts=3, backoff_base=0.05, backoff_max=0.2)
    return GpuTelemetry(
        host.ssh, host.docker, **{"interval_ms": 100, "apps_interval_s": 0, **kwargs}
    )


async def _batches(telemetry: GpuTelemetry, count: int, timeout: float = 10) -> list:
    got = []

    async def collect() -> None:
        async for batch in telemetry.samples():
            got.append(batch)
            if len(got) == count:
                return

    await asyncio.wait_for(collect(), timeout)
    return got


@pytest.mark.parametrize("variant,count", [("1gpu", 1), ("2gpu", 2), ("8gpu", 8)])
async def test_stream_gives_one_batch_per_interval(
    remote_host: RemoteHost, fake_gpu, variant: str, count: int
) -> None:
    fake_gpu.set_variant(variant)
    telemetry = _telemetry(remote_host)
    telemetry.start()
    try:
        batches = await _batches(telemetry, 4)
    finally:
        await telemetry.stop()
    assert all([s.index for s in b] == list(range(count)) for b in batches)
    assert telemetry.state is GpuState.STOPPED
    assert len(telemetry.history(0)) >= 4
    assert len(telemetry.latest()) == count
    # One long-lived process, not one per sample.
    assert [c for c in fake_gpu.calls() if "--query-gpu" in c] == [
        c for c in fake_gpu.calls() if "-lms 100" in c
    ]
    assert len(fake_gpu.calls()) == 1


async def test_not_available_and_garbage_lines(remote_host: RemoteHost, fake_gpu) -> None:
    fake_gpu.set_variant("na")
    telemetry = _telemetry(remote_host)
    telemetry.start()
    try:
        batch = (await _batches(telemetry, 2))[-1]
        assert batch[1].utilization is None and batch[1].power_limit_w is None
        assert batch[0].utilization is not None
        fake_gpu.set_variant("garbage")  # takes effect when the channel restarts
    finally:
        await telemetry.stop()
    telemetry = _telemetry(remote_host)
    telemetry.start()
    try:
        await _batches(telemetry, 3)
        assert telemetry.skipped_lines >= 2
        assert telemetry.state is GpuState.OK
    finally:
        await telemetry.stop()


def test_history_keeps_ten_minutes_at_one_hertz(remote_host: RemoteHost) -> None:
    assert GpuTelemetry(remote_host.ssh, None, interval_ms=1000).history_capacity >= 600
    assert GpuTelemetry(remote_host.ssh, None, interval_ms=250).history_capacity >= 2400


async def test_history_is_bounded(remote_host: RemoteHost, fake_gpu) -> None:
    telemetry = _telemetry(remote_host, history_seconds=0)
    telemetry._history_len = 3  # a tiny bound to observe it
    telemetry.start()
    try:
        await _batches(telemetry, 5)
    finally:
        await telemetry.stop()
    assert len(telemetry.history(0)) == 3


@pytest.mark.parametrize(
    "variant,state,reason",
    [
        ("nodriver", GpuState.NO_DRIVER, "no NVIDIA driver"),
        ("missing", GpuState.NOT_INSTALLED, "nvidia-smi missing"),
        ("mismatch", GpuState.VERSION_MISMATCH, "NVML library 570.124"),
        ("nodevices", GpuState.NO_DEVICES, "no devices"),
    ],
)
async def test_host_problem_is_a_state_and_recovers(
    remote_host: RemoteHost, fake_gpu, variant: str, state: GpuState, reason: str
) -> None:
    fake_gpu.set_variant(variant)
    reading = await query_gpus(remote_host.ssh)
    assert reading.state is state and reason in (reading.reason or "")
    telemetry = _telemetry(remote_host)
    telemetry.start()
    states = telemetry.states()
    try:
        deadline = time.monotonic() + 5
        while telemetry.state is not state and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert telemetry.state is state
        assert telemetry.reason == reading.reason  # the pane says what cosmos status says
        seen = [await asyncio.wait_for(anext(states), 5)]
        while seen[-1].state != state.value:
            seen.append(await asyncio.wait_for(anext(states), 5))
        assert seen[-1].reason == reading.reason
        fake_gpu.set_variant("1gpu")
        await _batches(telemetry, 1)
        assert telemetry.state is GpuState.OK
        while seen[-1].state != GpuState.OK.value:
            seen.append(await asyncio.wait_for(anext(states), 5))
    finally:
        await states.aclose()
        await telemetry.stop()


async def test_a_gpu_that_requires_a_reset_is_a_fault_not_an_idle_gpu(
    remote_host: RemoteHost, fake_gpu
) -> None:
    fake_gpu.set_variant("reset1")
    reading = await query_gpus(remote_host.ssh)
    assert [s.health for s in reading.samples] == [GpuHealth.OK, GpuHealth.REQUIRES_RESET]
    assert reading.samples[1].utilization is None and reading.samples[1].health.fault
    telemetry = _telemetry(remote_host)
    telemetry.start()
    try:
        batch = (await _batches(telemetry, 2))[-1]
    finally:
        await telemetry.stop()
    assert batch[1].health is GpuHealth.REQUIRES_RESET and batch[0].bus_id == "00000000:01:00.0"
    assert "[GPU requires reset]" in (batch[1].health_reason or "")


async def test_a_non_zero_exit_keeps_the_good_rows_and_processes(
    remote_host: RemoteHost, fake_gpu
) -> None:
    fake_gpu.set_variant("partial")
    fake_gpu.set_apps(["4242, GPU-00000000-1111-2222-3333-444444444440, 30000, python3"])
    reading = await query_gpus(remote_host.ssh)
    assert reading.state is GpuState.OK and [s.index for s in reading.samples] == [0, 1]
    assert "GPU is lost" in (reading.reason or "") and "exited 15" in (reading.reason or "")
    processes = await _telemetry(remote_host).poll_processes()
    assert [p.pid for p in processes] == [4242]


async def test_a_driver_without_the_extra_fields_gets_the_basic_ones(
    remote_host: RemoteHost, fake_gpu
) -> None:
    fake_gpu.set_variant("oldfields")
    reading = await query_gpus(remote_host.ssh)
    assert reading.state is GpuState.OK and len(reading.samples) == 2
    telemetry = _telemetry(remote_host)
    telemetry.start()
    try:
        batch = (await _batches(telemetry, 2))[-1]
    finally:
        await telemetry.stop()
    assert len(batch) == 2 and batch[0].bus_id is None and batch[0].utilization is not None


async def test_samples_that_stop_coming_turn_stale(remote_host: RemoteHost, fake_gpu) -> None:
    fake_gpu.set_variant("die-after-2")
    telemetry = _telemetry(remote_host, stale_s=0.3)
    telemetry._ssh.retry = RetryConfig(max_attempts=3, backoff_base=5, backoff_max=5)
    telemetry.start()
    try:
        await _batches(telemetry, 2)
        stale = None
        async for batch in telemetry.samples():
            if batch[0].health is GpuHealth.STALE:
                stale = batch[0]
                break
    finally:
        await telemetry.stop()
    assert stale is not None and "no sample for" in (stale.health_reason or "")
    assert telemetry.latest()[0].health is GpuHealth.STALE


async def test_dead_channel_is_restarted(remote_host: RemoteHost, fake_gpu) -> None:
    fake_gpu.set_variant("die-after-2")
    telemetry = _telemetry(remote_host)
    telemetry.start()
    try:
        await _batches(telemetry, 5)
    finally:
        await telemetry.stop()
    assert telemetry.restarts >= 2
    assert len([c for c in fake_gpu.calls() if "-lms" in c]) >= 3


async def test_hung_nvidia_smi_is_restarted(remote_host: RemoteHost, fake_gpu) -> None:
    fake_gpu.set_variant("hang")
    telemetry = _telemetry(remote_host, stall_s=0.5)
    telemetry.start()
    try:
        deadline = time.monotonic() + 10
        while telemetry.restarts < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert telemetry.restarts >= 2 and telemetry.state is GpuState.STALLED
        assert "nvidia-smi" in (telemetry.reason or "")
        fake_gpu.set_variant("1gpu")
        await _batches(telemetry, 2)
        assert telemetry.state is GpuState.OK
    finally:
        await telemetry.stop()
    for _ in range(100):  # every hung nvidia-smi was stopped on the host
        left = await remote_host.run(["pgrep", "-f", "^sleep 86399"], check=False)
        if left.exit_status == 1:
            break
        await asyncio.sleep(0.05)
    assert left.exit_status == 1, left.stdout


async def test_query_once(remote_host: RemoteHost, fake_gpu) -> None:
    fake_gpu.set_variant("2gpu")
    reading = await query_gpus(remote_host.ssh)
    assert reading.state is GpuState.OK and [s.index for s in reading.samples] == [0, 1]


async def test_query_that_prints_only_garbage_is_a_failure(
    remote_host: RemoteHost, fake_gpu
) -> None:
    fake_gpu.set_variant("onlygarbage")
    reading = await query_gpus(remote_host.ssh)
    assert reading.state is GpuState.FAILED and reading.samples == ()
    assert reading.reason and "printed no GPU figures" in reading.reason
    assert "Segmentation fault" in reading.reason


async def test_processes_attributed_to_runs(
    remote_host: RemoteHost, fake_gpu, busybox_image: str
) -> None:
    docker = remote_host.docker
    run_id = f"rn_gpu{time.monotonic_ns() % 10**9}"
    container_id = await docker.create(
        ContainerSpec(run_id=run_id, image=busybox_image, command=("sleep", "60"))
    )
    await docker.start(container_id)
    try:
        pid = (await docker.inspect(container_id)).pid
        assert pid
        fake_gpu.set_apps(
            [
                f"{pid}, GPU-00000000-1111-2222-3333-444444444440, 30000, python3",
                "1, GPU-00000000-1111-2222-3333-444444444440, 100, init",
            ]
        )
        telemetry = _telemetry(remote_host)
        processes = await telemetry.poll_processes()
    finally:
        await docker.remove(container_id, force=True)
    by_pid = {p.pid: p for p in processes}
    assert by_pid[pid].container_id == container_id and by_pid[pid].run_id == run_id
    assert by_pid[pid].used_memory_mib == 30000
    assert by_pid[1].container_id is None and by_pid[1].run_id is None


async def test_an_eight_gpu_host_names_the_lost_gpu_not_its_rows(
    remote_host: RemoteHost, fake_gpu
) -> None:
    # Seven good rows, then nvidia-smi cannot open GPU 7 and exits 15: the reason is
    # the error line, never the CSV rows that came before it.
    fake_gpu.set_variant("partial8")
    reading = await query_gpus(remote_host.ssh)
    assert reading.state is GpuState.OK
    assert [s.index for s in reading.samples] == list(range(7))
    reason = reading.reason or ""
    assert "0000:08:00.0" in reason and "GPU is lost" in reason and "exited 15" in reason
    assert "H100" not in reason and "GPU-0000" not in reason and "81559" not in reason
    telemetry = _telemetry(remote_host)
    states = telemetry.states()
    telemetry.start()
    try:
        batch = (await _batches(telemetry, 2))[-1]
        seen = [await asyncio.wait_for(anext(states), 5)]
        while not (seen[-1].state == "ok" and seen[-1].reason):
            seen.append(await asyncio.wait_for(anext(states), 5))
    finally:
        await states.aclose()
        await telemetry.stop()
    # the pane's host line says what cosmos status says: the GPU that cannot be opened
    assert "GPU is lost" in (seen[-1].reason or "") and "0000:08:00.0" in seen[-1].reason
    assert [s.index for s in batch] == list(range(7))
    assert all(s.health is GpuHealth.OK for s in batch)
    (error,) = telemetry.device_errors
    assert "GPU is lost" in error and "0000:08:00.0" in error and "H100" not in error


async def test_telemetry_lists_mig_instances_only_where_mig_is_on(
    remote_host: RemoteHost, fake_gpu
) -> None:
    fake_gpu.set_variant("2gpu")
    telemetry = _telemetry(remote_host, apps_interval_s=0.1)
    telemetry.start()
    try:
        await _batches(telemetry, 5)
    finally:
        await telemetry.stop()
    assert not [c for c in fake_gpu.calls() if c.split() == ["-L"]]  # no MIG: no poll
    fake_gpu.set_variant("health")
    telemetry = _telemetry(remote_host, apps_interval_s=0.1)
    telemetry.start()
    try:
        deadline = time.monotonic() + 10
        while not any(s.mig_instances for s in telemetry.latest()):
            assert time.monotonic() < deadline, telemetry.latest()
            await asyncio.sleep(0.05)
        latest = {s.index: s for s in telemetry.latest()}
    finally:
        await telemetry.stop()
    assert [c for c in fake_gpu.calls() if c.split() == ["-L"]]
    gpu3 = latest[3]
    assert gpu3.health is GpuHealth.MIG and gpu3.utilization is None
    assert [(m.profile, m.device, m.memory_gib) for m in gpu3.mig_instances] == [
        ("3g.40gb", 0, 40.0),
        ("2g.20gb", 1, 20.0),
        ("1g.10gb", 2, 10.0),
        ("1g.10gb", 3, 10.0),
    ]
    assert all(not latest[i].mig_instances for i in (0, 1, 2))
