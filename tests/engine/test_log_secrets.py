"""Secrets a host or model prints into a run's log are masked before it is kept or shown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from cosmos_tui.config import HostConfig
from cosmos_tui.engine.launch import log_secrets
from cosmos_tui.engine.logs import LocalLog, LogFollower, LogHub, read_log_lines
from cosmos_tui.safe_text import MASK

BASE = 1_795_000_000 * 1_000_000_000
TOKEN = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345"


def frame(ns: int, text: str) -> bytes:
    from datetime import UTC, datetime

    seconds, frac = divmod(ns, 1_000_000_000)
    when = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{when}.{frac:09d}Z {text}\n".encode()


async def frames_of(items: list[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


async def follow(path: Path, items: list[bytes], secrets: tuple[str, ...]) -> list[str]:
    log = LocalLog(path, secrets=secrets)
    log.open()
    seen: list[str] = []
    await LogFollower("rs_1", log, LogHub(), on_lines=seen.extend).follow(frames_of(items))
    log.close()
    return seen


async def test_a_token_the_model_prints_is_masked_in_the_file_and_the_live_lines(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rs_1" / "run.log"
    items = [
        frame(BASE + 1, f"HF_TOKEN={TOKEN}"),
        frame(BASE + 2, f"login with {TOKEN} and {TOKEN}!"),
        frame(BASE + 3, "PYTHONPATH=/workspace seed 7"),
    ]
    seen = await follow(path, items, (TOKEN, "abc"))
    expected = [
        f"HF_TOKEN={MASK}",
        f"login with {MASK} and {MASK}!",
        "PYTHONPATH=/workspace seed 7",
    ]
    assert seen == expected
    assert read_log_lines(path) == expected
    assert TOKEN.encode() not in path.read_bytes()


async def test_without_secrets_lines_are_kept_as_printed(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    seen = await follow(path, [frame(BASE + 1, f"token {TOKEN}")], ())
    assert seen == [f"token {TOKEN}"]


async def test_a_longer_secret_is_masked_before_one_it_contains(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    seen = await follow(
        path, [frame(BASE + 1, "key secret-value-long")], ("secret", "secret-value-long")
    )
    assert seen == [f"key {MASK}"]


def test_log_secrets_are_the_secret_values_of_the_container_environment() -> None:
    host = HostConfig(
        name="h",
        hostname="h",
        env={
            "HF_TOKEN": "$MY_HF",
            "WANDB_API_KEY": "wandb-key-1234",
            "DB_PASSWORD": "pw",  # too short to mask without masking ordinary text
            "PYTHONPATH": "/opt/extra",
            "COSMOS_SEED": "12345678",
        },
    )
    secrets = log_secrets(host, {"MY_HF": TOKEN})
    assert set(secrets) == {TOKEN, "wandb-key-1234"}


def test_a_local_hf_token_passed_to_the_container_is_a_log_secret() -> None:
    host = HostConfig(name="h", hostname="h")
    assert log_secrets(host, {"HF_TOKEN": TOKEN}) == (TOKEN,)
    assert log_secrets(host, {}) == ()
