"""The simulated nvidia-smi, reached over the sandbox's SSH server."""

from __future__ import annotations

import asyncio

import asyncssh

from cosmos_tui.sandbox import Sandbox

QUERY = (
    "--query-gpu=index,uuid,name,utilization.gpu,utilization.memory,memory.used,"
    "memory.total,temperature.gpu,power.draw,power.limit,clocks.sm"
)


async def test_query_gpu_prints_one_csv_line_per_gpu(conn: asyncssh.SSHClientConnection):
    result = await conn.run(f"nvidia-smi {QUERY} --format=csv,noheader,nounits", encoding="utf-8")
    assert result.exit_status == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    fields = lines[1].split(", ")
    assert fields[0] == "1" and fields[1].startswith("GPU-") and "H100" in fields[2]
    assert fields[6] == "81559" and fields[9] == "700.00"


async def test_units_and_header_without_nounits(conn: asyncssh.SSHClientConnection):
    result = await conn.run(
        "nvidia-smi --query-gpu=index,memory.used,power.draw --format=csv", encoding="utf-8"
    )
    header, first, _ = result.stdout.splitlines()
    assert header == "index, memory.used [MiB], power.draw [W]"
    assert first.split(", ")[1].endswith(" MiB")


async def test_streaming_mode_keeps_one_process_sampling(conn: asyncssh.SSHClientConnection):
    process = await conn.create_process(
        f"nvidia-smi {QUERY} --format=csv,noheader,nounits -lms 50", encoding="utf-8"
    )
    lines = [await asyncio.wait_for(process.stdout.readline(), timeout=5) for _ in range(6)]
    assert all(line.count(",") == 10 for line in lines)
    process.close()


async def test_driver_failure_mid_stream(sandbox: Sandbox, conn: asyncssh.SSHClientConnection):
    process = await conn.create_process(
        "nvidia-smi --query-gpu=index --format=csv,noheader -lms 50", encoding="utf-8"
    )
    assert (await process.stdout.readline()).strip() in ("0", "1")
    sandbox.faults.smi_failure = True
    rest = await asyncio.wait_for(process.stdout.read(), timeout=5)
    assert "couldn't communicate with the NVIDIA driver" in rest
    assert (await process.wait()).exit_status == 9
    again = await conn.run("nvidia-smi -L", encoding="utf-8")
    assert again.exit_status == 9


async def test_stalled_stream_resumes_without_loss(
    sandbox: Sandbox, conn: asyncssh.SSHClientConnection
):
    process = await conn.create_process(
        "nvidia-smi --query-gpu=index --format=csv,noheader -lms 20", encoding="utf-8"
    )
    await process.stdout.readline()
    sandbox.faults.stall_streams()
    await asyncio.sleep(0.1)
    while True:  # drain what was sent before the stall
        try:
            await asyncio.wait_for(process.stdout.readline(), timeout=0.2)
        except TimeoutError:
            break
    with_stall = asyncio.create_task(process.stdout.readline())
    await asyncio.sleep(0.2)
    assert not with_stall.done()
    sandbox.faults.resume_streams()
    assert (await asyncio.wait_for(with_stall, timeout=5)).strip() in ("0", "1")
    process.close()


async def test_wrapped_command_lines_reach_the_shim(conn: asyncssh.SSHClientConnection):
    result = await conn.run("command -v nvidia-smi && nvidia-smi -L", encoding="utf-8")
    assert result.exit_status == 0
    assert result.stdout.splitlines()[1].startswith("GPU 0: NVIDIA H100")


async def test_compute_apps_and_bad_fields(conn: asyncssh.SSHClientConnection):
    idle = await conn.run(
        "nvidia-smi --query-compute-apps=pid,gpu_uuid,used_memory,process_name "
        "--format=csv,noheader,nounits",
        encoding="utf-8",
    )
    assert idle.exit_status == 0 and idle.stdout == ""
    bad = await conn.run("nvidia-smi --query-gpu=bogus --format=csv", encoding="utf-8")
    assert bad.exit_status == 2 and 'Field "bogus"' in bad.stdout


async def test_a_signal_ends_a_streaming_nvidia_smi(conn: asyncssh.SSHClientConnection):
    process = await conn.create_process(
        "nvidia-smi --query-gpu=index --format=csv,noheader -lms 50", encoding="utf-8"
    )
    await process.stdout.readline()
    process.send_signal("TERM")
    result = await asyncio.wait_for(process.wait(), timeout=5)
    assert result.exit_signal is not None and result.exit_signal[0] == "TERM"
