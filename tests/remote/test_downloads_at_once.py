"""Verified downloads several at once (a run's outputs, five control videos back).

A download with a hash check has the host hash its copy while the bytes travel: a
command, which needs a session slot. It takes that slot before the transfer takes its
own, so a transfer holding a slot never waits for another: several downloads at once
cannot hold every slot and wait on each other, even when long-lived streams (telemetry,
log follows) hold most of the connection's slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from cosmos_tui.remote import RemoteHost, sftp, sftp_io
from cosmos_tui.remote.ssh import DEFAULT_MAX_SESSIONS

MIB = 1024 * 1024


async def _five_on_the_host(remote_host: RemoteHost, tmp_path: Path) -> list[tuple[str, int, str]]:
    """Upload five files of just over one chunk; return (name, size, sha256) each."""
    made = []
    for i in range(5):
        local = tmp_path / f"out{i}.mp4"
        local.write_bytes(os.urandom(sftp_io.CHUNK_BYTES + MIB + i))
        sha = hashlib.sha256(local.read_bytes()).hexdigest()
        result = await remote_host.upload_input(local, expected_sha256=sha)
        made.append((Path(result.remote_path).name, result.size, sha))
    return made


def _count_at_once(monkeypatch: pytest.MonkeyPatch, wanted: int) -> list[int]:
    """Record the most receive_file calls under way at the same time.

    Each one waits (up to 10 s) until ``wanted`` are under way before it moves: the
    count then says whether they can be, not how fast this machine started them.
    """
    state = {"now": 0}
    most = [0]
    enough = asyncio.Event()
    original = sftp_io.receive_file

    async def counted(*args: Any, **kwargs: Any) -> None:
        state["now"] += 1
        most[0] = max(most[0], state["now"])
        if state["now"] >= wanted:
            enough.set()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(enough.wait(), 10)
            await original(*args, **kwargs)
        finally:
            state["now"] -= 1

    monkeypatch.setattr(sftp, "receive_file", counted)
    return most


async def _fetch_all(remote_host: RemoteHost, made: list[tuple[str, int, str]], into: Path) -> None:
    inputs = str(Path(await remote_host.tool_dir()) / "inputs")
    results = await asyncio.gather(
        *(
            remote_host.download(inputs, name, into, size, verify_hash=True)
            for name, size, _ in made
        )
    )
    for result, (name, _, sha) in zip(results, made, strict=True):
        assert result.sha256 == sha
        assert hashlib.sha256((into / name).read_bytes()).hexdigest() == sha


async def test_five_verified_downloads_move_together(
    remote_host: RemoteHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = await _five_on_the_host(remote_host, tmp_path)
    most = _count_at_once(monkeypatch, 4)
    into = tmp_path / "back"
    into.mkdir()
    await asyncio.wait_for(_fetch_all(remote_host, made, into), 60)
    assert most[0] >= 4  # two at a time before
    assert remote_host.ssh._slots_held == 1  # the shared SFTP session only: none left


async def test_verified_downloads_finish_while_streams_hold_most_slots(
    remote_host: RemoteHost, tmp_path: Path
) -> None:
    # Telemetry and log follows hold slots for hours: with two left, five downloads
    # (each a session and a hash command) still finish, none holding a slot while it
    # waits for one.
    made = await _five_on_the_host(remote_host, tmp_path)
    into = tmp_path / "back"
    into.mkdir()
    ssh = remote_host.ssh
    async with contextlib.AsyncExitStack() as held:
        for _ in range(DEFAULT_MAX_SESSIONS - 3):  # the shared SFTP session holds one
            await asyncio.wait_for(held.enter_async_context(ssh.session_slot()), 5)
        assert ssh._slots_held == DEFAULT_MAX_SESSIONS - 2
        await asyncio.wait_for(_fetch_all(remote_host, made, into), 60)
    assert ssh._slots_held == 1


async def test_downloads_leave_a_slot_for_a_command(
    remote_host: RemoteHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While downloads move (held here until the command has run), a command (a cancel,
    # a launch) still starts: with telemetry and a log follow holding two slots, their
    # own sessions leave one free.
    made = await _five_on_the_host(remote_host, tmp_path)
    moving = {"now": 0}
    go = asyncio.Event()
    original = sftp_io.receive_file

    async def held(*args: Any, **kwargs: Any) -> None:
        moving["now"] += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(go.wait(), 30)
        await original(*args, **kwargs)

    monkeypatch.setattr(sftp, "receive_file", held)
    into = tmp_path / "back"
    into.mkdir()
    ssh = remote_host.ssh
    async with contextlib.AsyncExitStack() as streams:
        for _ in range(2):
            await asyncio.wait_for(streams.enter_async_context(ssh.session_slot()), 5)
        fetching = asyncio.ensure_future(_fetch_all(remote_host, made, into))
        try:
            for _ in range(500):
                await asyncio.sleep(0.02)
                if moving["now"] >= 2:
                    break
            assert moving["now"] >= 2
            await asyncio.sleep(0.5)  # the others take what they may meanwhile
            assert ssh._slots_held <= DEFAULT_MAX_SESSIONS - 1
            result = await asyncio.wait_for(remote_host.run(["echo", "still here"]), 5)
            assert result.stdout.strip() == "still here"
        finally:
            go.set()
        await asyncio.wait_for(fetching, 60)


async def test_a_command_that_leaves_a_slot_waits_until_it_can(remote_host: RemoteHost) -> None:
    # The download's hash command and own session start only while a slot stays free
    # for others; they wait (holding nothing) until one is released.
    ssh = remote_host.ssh
    await remote_host.tool_dir()  # the shared SFTP session may or may not hold one
    async with contextlib.AsyncExitStack() as held:
        while ssh._slots_held < DEFAULT_MAX_SESSIONS - 1:
            await asyncio.wait_for(held.enter_async_context(ssh.session_slot()), 5)
        polite = asyncio.ensure_future(ssh.run(["echo", "polite"], leave_free=1))
        await asyncio.sleep(0.3)
        assert not polite.done()  # one free: taking it would leave none
        plain = await asyncio.wait_for(ssh.run(["echo", "plain"]), 5)
        assert plain.stdout.strip() == "plain"  # the free one is there for others
        await held.aclose()  # streams end: room again
        assert (await asyncio.wait_for(polite, 5)).stdout.strip() == "polite"
