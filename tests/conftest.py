"""Shared fixtures: a throwaway workspace (config + data dir) and sample video folders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

pytest_plugins: list[str] = ["tests.fixtures.hosts"]

MP4_HEADER = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


def write_video(path: Path, payload: bytes = b"") -> Path:
    """Write a small file that starts like an MP4 (enough for input checks)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(MP4_HEADER + (payload or path.name.encode()) * 64)
    return path


@pytest.fixture
def make_video_dir(tmp_path: Path) -> Callable[..., Path]:
    """Return a factory of video folders holding color.mp4 and the named controls."""
    counter = iter(range(10_000))

    def _make(*controls: str, name: str | None = None) -> Path:
        folder = tmp_path / "videos" / (name or f"set{next(counter)}")
        write_video(folder / "color.mp4", folder.name.encode())
        for control in controls:
            write_video(folder / control, (folder.name + control).encode())
        return folder

    return _make


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point COSMOS_CONFIG and COSMOS_DATA_DIR at a fresh temporary workspace."""
    root = tmp_path / "ws"
    root.mkdir()
    config = root / "config.toml"
    config.write_text("# test config\n[defaults]\nnum_steps = 35\n", encoding="utf-8")
    monkeypatch.setenv("COSMOS_CONFIG", str(config))
    monkeypatch.setenv("COSMOS_DATA_DIR", str(root / "data"))
    for name in list(__import__("os").environ):
        if name.startswith("COSMOS_") and "__" in name:
            monkeypatch.delenv(name)
    return root
