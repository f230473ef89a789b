"""The tool over a shaped path (tests/wan/test_netshape.py's proxy in front of the real sshd).

Short and bounded: 40 ms of round-trip time, a bandwidth cap where a transfer must be
caught mid-way, and stalls longer than the keepalive's limit, so that a dead link is
noticed, the connection re-made and the work resumed exactly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cosmos_tui.config import Config, HostConfig, TimeoutsConfig
from cosmos_tui.domain import RunState
from cosmos_tui.engine.logs import read_log_lines
from cosmos_tui.errors import CosmosError
from cosmos_tui.remote import RemoteHost
from cosmos_tui.remote.sftp_io import marker_path
from cosmos_tui.sandbox.netshape import LinkShape, ShapedLink
from tests.lifecycle.conftest import (  # noqa: F401 (fixtures)
    bench_for,
    make_config,
    standin_image,
    video_dir,
)
from tests.lifecycle.test_resilience import container_log, wait_for_log

pytestmark = pytest.mark.timeout(180)

KEEPALIVE_S = 1.0
"""A dead link is noticed after three unanswered keepalives: about 3 s."""


@pytest.fixture
def link(ssh_server: Any) -> Iterator[ShapedLink]:
    with ShapedLink(ssh_server.port, LinkShape(rtt_ms=40, mbit=100)) as shaped:
        yield shaped


def through(host: HostConfig, ssh_server: Any, link: ShapedLink) -> HostConfig:
    """The same host reached through the shaped link (its key still verified)."""
    return dataclasses.replace(host, **ssh_server.connection_fields(link.port))


def shaped(config: Config, ssh_server: Any, link: ShapedLink) -> Config:
    """``config`` with its one host through the link and a keepalive of KEEPALIVE_S."""
    return dataclasses.replace(
        config,
        hosts=[through(config.hosts[0], ssh_server, link)],
        timeouts=dataclasses.replace(config.timeouts, keepalive=KEEPALIVE_S),
    )


async def test_upload_cut_by_a_stall_resumes_and_verifies(
    host_config: HostConfig, ssh_server: Any, link: ShapedLink, tmp_path: Path
) -> None:
    local = tmp_path / "color.mp4"
    # The whole file may be in flight at once (two 8 MiB chunks on each of six
    # channels). The channels share the link, so the first chunk is acknowledged after
    # about 4 s at 100 Mbit/s, with the second chunk of every channel (half the file)
    # still to come: the stall below lands there.
    local.write_bytes(os.urandom(96 * 1024 * 1024))
    sha = hashlib.sha256(local.read_bytes()).hexdigest()
    timeouts = TimeoutsConfig(connect=10.0, command=30.0, keepalive=KEEPALIVE_S)
    host = RemoteHost(through(host_config, ssh_server, link), timeouts=timeouts)
    try:
        await host.connect()
        upload = asyncio.ensure_future(
            host.upload_input(
                local, expected_sha256=sha, expected_size=local.stat().st_size
            )
        )  # fmt: skip
        # Stall once the host's record of what arrived (a marker beside the .part, kept
        # because chunks land out of order over several channels) passed the first chunk.
        part = host.files.partial_path(await host.tool_dir(), local)
        marker = Path(marker_path(part))  # the test host's files are on this machine
        while not marker.exists() or int(marker.read_text().strip() or 0) < 8 * 1024 * 1024:
            assert not upload.done(), upload
            await asyncio.sleep(0.02)
        link.stall(8)
        stalled_at = time.monotonic()
        with pytest.raises(CosmosError) as failure:
            await asyncio.wait_for(upload, 30)
        noticed_after = time.monotonic() - stalled_at
        assert failure.value.transient, failure.value.message
        assert noticed_after < 3 * KEEPALIVE_S + 3, f"dead link noticed after {noticed_after:.1f} s"
        link.resume()
        result = await asyncio.wait_for(
            host.upload_input(local, expected_sha256=sha, expected_size=local.stat().st_size), 60
        )
        assert host.ssh.generation >= 2  # a new connection after the dead one
        assert 8 * 1024 * 1024 <= result.resumed_from < local.stat().st_size
        assert not result.skipped and result.sha256 == sha
        assert await host.files.remote_sha256(result.remote_path) == sha
    finally:
        await host.close()


async def test_a_runs_log_resumes_exactly_after_a_stall(
    make_config: Any, bench_for: Any, video_dir: Path, ssh_server: Any, docker_daemon: Any,  # noqa: F811
    link: ShapedLink,
) -> None:  # fmt: skip
    config = make_config("flood", COSMOS_STANDIN_FLOOD_LINES="20000", COSMOS_STANDIN_SPEED="0.05")
    config = shaped(config, ssh_server, link)
    bench = await bench_for(config)
    prompt = await bench.create_prompt("a prompt", video_dir)
    run = await bench.create_run(prompt.id)
    driver = asyncio.create_task(bench.runs.drive(run.id))
    await wait_for_log(bench, run.id, "flood line 500 ", timeout=60)
    link.stall(6)
    final = await asyncio.wait_for(driver, 150)
    assert final.state == RunState.COMPLETED, final.failure_message
    # The stall outlived the keepalive: the log came back over a new connection.
    assert bench.hosts.get(config.hosts[0].name).ssh.generation >= 2
    local = read_log_lines(bench.runs.log_path(run.id))
    remote = container_log(docker_daemon, final.container_id)
    assert sorted(local) == sorted(remote)
    flood = [line for line in local if "flood line" in line]
    assert len(flood) == 20000 and len(set(flood)) == 20000


async def test_a_cancel_cut_by_a_dropped_link_still_stops_the_container(
    make_config: Any, bench_for: Any, video_dir: Path, ssh_server: Any, docker_daemon: Any,  # noqa: F811
    link: ShapedLink, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """The link dies while the container is being stopped (``cosmos demo --flaky-ssh``
    drops connections at random): the stop is asked again once the host is back, not
    given up with the container left running."""
    config = make_config("hang")
    config = shaped(config, ssh_server, link)
    bench = await bench_for(config)
    prompt = await bench.create_prompt("a prompt", video_dir)
    run = await bench.create_run(prompt.id)
    await bench.runs.start(run.id)
    await wait_for_log(bench, run.id, "Starting diffusion sampling", timeout=60)
    container = (await bench.get_run(run.id)).container_id
    cancelling = asyncio.ensure_future(bench.runs.cancel(run.id))
    link.stall(3 * KEEPALIVE_S + 2)  # the stop's requests wait, the link is found dead
    cancelled = await asyncio.wait_for(cancelling, 60)
    assert cancelled.state == RunState.CANCELLED
    running = docker_daemon.cli("inspect", "-f", "{{.State.Running}}", container)
    assert running.stdout.decode().strip() == "false"
    assert "asking again" in caplog.text  # the first stop was lost with the link
