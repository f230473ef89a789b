"""Host status reports and the `cosmos status` / `cosmos host trust` commands."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from pathlib import Path

from click.testing import CliRunner

from cosmos_tui.cli import cli
from cosmos_tui.domain import HostState
from cosmos_tui.remote import RemoteHost
from cosmos_tui.remote.docker import ContainerSpec
from cosmos_tui.remote.status import collect_status


def _host_toml(config, **overrides) -> str:
    values = {**dataclasses.asdict(config), **overrides}
    lines = ["[[hosts]]"]
    for key in (
        "name",
        "hostname",
        "port",
        "user",
        "identity_file",
        "known_hosts",
        "remote_tool_dir",
        "docker_image",
        "docker_socket",
        "gpu_request",
    ):
        value = values[key]
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


async def test_report_of_a_healthy_host(remote_host: RemoteHost, fake_gpu, busybox_image) -> None:
    fake_gpu.set_variant("2gpu")
    run_id = f"rn_st{time.monotonic_ns() % 10**9}"
    container_id = await remote_host.docker.create(
        ContainerSpec(run_id=run_id, image=busybox_image, command=("sleep", "30"), gpus=(1,))
    )
    await remote_host.docker.start(container_id)
    try:
        report = await collect_status(remote_host)
    finally:
        await remote_host.docker.remove(container_id, force=True)
    assert report.ok, report.problems
    assert report.status.state is HostState.CONNECTED and report.status.latency_ms
    assert report.docker_version and report.image_present
    assert [g.index for g in report.gpus] == [0, 1]
    assert report.gpu_runs == {1: (run_id,)}
    assert container_id in {c.id for c in report.containers}


async def test_report_lists_problems(host_config, fake_gpu, docker_daemon) -> None:
    fake_gpu.set_variant("nodriver")
    host = RemoteHost(dataclasses.replace(host_config, docker_image="cosmos-test/absent:1"))
    try:
        report = await collect_status(host)
    finally:
        await host.close()
    text = " | ".join(report.problems)
    assert "no NVIDIA driver" in text and "cosmos-test/absent:1 is not on" in text
    assert report.gpu_state == "no NVIDIA driver" and report.image_present is False


async def test_report_of_nvidia_smi_printing_garbage(host_config, fake_gpu) -> None:
    fake_gpu.set_variant("onlygarbage")
    host = RemoteHost(host_config)
    try:
        report = await collect_status(host)
    finally:
        await host.close()
    assert not report.ok and report.gpus == ()
    assert report.gpu_state == "failed"
    assert any("printed no GPU figures" in problem for problem in report.problems)


async def test_report_of_unknown_key(host_config, tmp_path) -> None:
    host = RemoteHost(dataclasses.replace(host_config, known_hosts=str(tmp_path / "none")))
    try:
        report = await collect_status(host)
    finally:
        await host.close()
    assert report.status.state is HostState.DOWN
    assert "cosmos host trust testhost" in report.problems[0]


async def test_latency_is_a_command_round_trip_not_the_connect(
    host_config, ssh_server, tmp_path: Path
) -> None:
    # A relay that holds each new TCP connection for 0.6 s: connecting is slow, commands
    # on the open connection are not.
    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.6)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", host_config.port)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    kind, key = ssh_server.host_key_pub.read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {kind} {key}\n")
    host = RemoteHost(dataclasses.replace(host_config, port=port, known_hosts=str(known)))
    try:
        report = await collect_status(host)
    finally:
        await host.close()
        server.close()
    assert report.status.state is HostState.CONNECTED
    assert report.status.latency_ms is not None and report.status.latency_ms < 400


def test_status_command_text_and_json(workspace: Path, host_config, fake_gpu) -> None:
    config = Path(os.environ["COSMOS_CONFIG"])
    config.write_text(config.read_text() + _host_toml(host_config))
    runner = CliRunner()
    result = runner.invoke(cli, ["status"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "testhost: connected" in result.output and "[0] NVIDIA H100" in result.output
    result = runner.invoke(cli, ["status", "testhost", "--json"], catch_exceptions=False)
    data = json.loads(result.output)
    assert data[0]["state"] == "connected" and data[0]["gpus"][0]["index"] == 0
    assert data[0]["problems"] == []


def test_status_shows_open_alerts_and_check_exits_1_while_any(
    workspace: Path, host_config, fake_gpu, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from cosmos_tui.config import load_config
    from cosmos_tui.domain import AlertKind
    from cosmos_tui.engine.metrics import AlertChange
    from cosmos_tui.services import Workbench
    from cosmos_tui.store.metrics_store import MetricsStore
    from tests.conftest import write_video

    config = Path(os.environ["COSMOS_CONFIG"])
    config.write_text(config.read_text() + _host_toml(host_config))
    runner = CliRunner()

    def ok(*args: str) -> str:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout.strip()

    write_video(tmp_path / "quay" / "color.mp4")
    run_id = ok("create", "run", ok("create", "prompt", "a quay", str(tmp_path / "quay")))
    assert runner.invoke(cli, ["status", "--check"]).exit_code == 0  # healthy, no alert

    async def alert(raised: bool) -> None:
        # What the queue's metrics recorder stores while the run holds GPU 0.
        change = AlertChange(
            run_id, AlertKind.TEMPERATURE, raised, datetime.now(UTC), host="testhost",
            gpu_index=0, value=91.0, threshold=85.0, message="GPU 0 at 91 C (limit 85 C)",
        )  # fmt: skip
        async with Workbench.open(load_config()) as bench:
            await MetricsStore(bench.store).apply([change])

    asyncio.run(alert(True))
    text = ok("status")  # a report: exit 0 whatever the health
    assert f"alert: {run_id} temperature GPU 0: GPU 0 at 91 C (limit 85 C)" in text
    data = json.loads(ok("status", "testhost", "--json"))
    assert [(a["run_id"], a["kind"], a["gpu_index"]) for a in data[0]["alerts"]] == [
        (run_id, "temperature", 0)
    ]
    checked = runner.invoke(cli, ["status", "--check", "--json"])
    assert checked.exit_code == 1 and json.loads(checked.stdout)[0]["alerts"]
    asyncio.run(alert(False))  # the GPU cooled down: the alert is cleared
    assert json.loads(ok("status", "--json"))[0]["alerts"] == []
    assert runner.invoke(cli, ["status", "--check"]).exit_code == 0


def test_status_check_exits_1_when_a_host_has_a_problem(
    workspace: Path, host_config, ssh_server, tmp_path: Path
) -> None:
    known = tmp_path / "kh" / "known_hosts"  # the host key is not trusted: a problem
    config = Path(os.environ["COSMOS_CONFIG"])
    config.write_text(config.read_text() + _host_toml(host_config, known_hosts=str(known)))
    runner = CliRunner()
    assert runner.invoke(cli, ["status"]).exit_code == 0
    result = runner.invoke(cli, ["status", "--check"])
    assert result.exit_code == 1 and "problem:" in result.output


def test_trust_command(workspace: Path, host_config, ssh_server, tmp_path: Path) -> None:
    known = tmp_path / "kh" / "known_hosts"
    config = Path(os.environ["COSMOS_CONFIG"])
    config.write_text(config.read_text() + _host_toml(host_config, known_hosts=str(known)))
    runner = CliRunner()
    result = runner.invoke(cli, ["status", "--json"], catch_exceptions=False)
    assert "cosmos host trust testhost" in json.loads(result.output)[0]["problems"][0]
    result = runner.invoke(cli, ["host", "trust", "testhost"], input="n\n")
    assert result.exit_code == 1 and "SHA256:" in result.output
    assert not known.exists()
    result = runner.invoke(cli, ["host", "trust", "testhost"], input="y\n")
    assert result.exit_code == 0, result.output
    assert ssh_server.host_key_pub.read_text().split()[1] in known.read_text()
    result = runner.invoke(cli, ["host", "trust", "testhost"])
    assert "already trusted" in result.output
    result = runner.invoke(cli, ["status", "--json"], catch_exceptions=False)
    assert json.loads(result.output)[0]["state"] == "connected"


def test_trust_without_an_answer_records_nothing(
    workspace: Path, host_config, tmp_path: Path
) -> None:
    known = tmp_path / "kh" / "known_hosts"
    config = Path(os.environ["COSMOS_CONFIG"])
    config.write_text(config.read_text() + _host_toml(host_config, known_hosts=str(known)))
    result = CliRunner().invoke(cli, ["host", "trust", "testhost"], input="")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "nothing was recorded" in result.output and "--yes" in result.output
    assert not known.exists()


def test_trust_into_an_unwritable_known_hosts_is_one_error_line(
    workspace: Path, host_config, tmp_path: Path
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    known = blocker / "known_hosts"
    config = Path(os.environ["COSMOS_CONFIG"])
    config.write_text(config.read_text() + _host_toml(host_config, known_hosts=str(known)))
    result = CliRunner().invoke(cli, ["host", "trust", "testhost", "--yes"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(known) in errors[0] and "known_hosts" in errors[0]


def status_of(host_config, fake_gpu, variant: str) -> dict:
    """`cosmos status testhost --json` with the nvidia-smi stand-in's ``variant``."""
    config = Path(os.environ["COSMOS_CONFIG"])
    config.write_text(config.read_text() + _host_toml(host_config))
    fake_gpu.set_variant(variant)
    result = CliRunner().invoke(cli, ["status", "testhost", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (host,) = json.loads(result.output)
    return host


def test_status_json_carries_throttle_ecc_fan_and_mig_instances(
    workspace: Path, host_config, fake_gpu
) -> None:
    host = status_of(host_config, fake_gpu, "health")
    gpus = {gpu["index"]: gpu for gpu in host["gpus"]}
    assert gpus[0]["health"] == "ok" and gpus[0]["throttle_reasons"] == []
    assert gpus[1]["health"] == "throttled"
    assert gpus[1]["throttle_reasons"] == ["HW slowdown", "HW thermal slowdown"]
    assert "HW thermal slowdown" in gpus[1]["health_reason"] and gpus[1]["fan_percent"] == 100
    assert gpus[2]["health"] == "error" and gpus[2]["ecc_uncorrected"] == 3
    assert "3 uncorrected ECC" in gpus[2]["health_reason"] and gpus[2]["fan_percent"] == 30
    assert gpus[3]["health"] == "MIG" and gpus[3]["mig_enabled"] is True
    assert gpus[3]["utilization"] is None and gpus[3]["fan_percent"] is None
    profiles = [("3g.40gb", 40.0), ("2g.20gb", 20.0), ("1g.10gb", 10.0), ("1g.10gb", 10.0)]
    assert gpus[3]["mig_instances"] == [
        {
            "profile": profile,
            "device": i,
            "uuid": f"MIG-0000000{i}-0000-0000-0000-00000000000{i}",
            "memory_gib": memory,
        }
        for i, (profile, memory) in enumerate(profiles)
    ]
    assert [g["pcie_gen"] for g in gpus.values()] == [5, 5, 5, 5]
    assert gpus[2]["bus_id"] == "00000000:03:00.0"
    problems = " | ".join(host["problems"])
    assert "GPU 2 error" in problems and "GPU 0" not in problems


def test_status_of_an_eight_gpu_host_with_a_lost_gpu_names_the_error(
    workspace: Path, host_config, fake_gpu
) -> None:
    host = status_of(host_config, fake_gpu, "partial8")
    assert [gpu["index"] for gpu in host["gpus"]] == list(range(7))
    assert "GPU is lost" in host["gpu_reason"] and "0000:08:00.0" in host["gpu_reason"]
    assert "H100" not in host["gpu_reason"] and "GPU-0000" not in host["gpu_reason"]
    assert any("GPU is lost" in problem for problem in host["problems"])
    text = CliRunner().invoke(cli, ["status", "testhost"], catch_exceptions=False).output
    assert "problem: nvidia-smi cannot open the GPU: GPU is lost" in text
    assert text.count("NVIDIA H100") == 7
    checked = CliRunner().invoke(cli, ["status", "--check"], catch_exceptions=False)
    assert checked.exit_code == 1
