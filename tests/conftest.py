"""Shared fixtures: a throwaway workspace (config + data dir) and sample video folders."""

from __future__ import annotations

import functools
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

pytest_plugins: list[str] = ["tests.fixtures.hosts"]


def encode_video(
    path: Path,
    frames: int = 3,
    size: tuple[int, int] = (16, 16),
    fps: int = 8,
    codec: str = "libx264",
) -> Path:
    """Encode a real, tiny video (a moving gradient) with PyAV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            pixels = np.zeros((height, width, 3), dtype=np.uint8)
            pixels[..., 0] = (np.arange(width) * 7 + index * 16) % 256
            pixels[..., 1] = (np.arange(height)[:, None] * 5 + index * 8) % 256
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@functools.cache
def _template_video() -> bytes:
    """One small real MP4 (3 frames, 16x16) encoded once per test process."""
    with tempfile.TemporaryDirectory() as folder:
        return encode_video(Path(folder) / "template.mp4").read_bytes()


def write_video(path: Path, payload: bytes = b"") -> Path:
    """Write a real small MP4 whose content differs with ``payload``.

    The payload goes into a trailing ``free`` box, which players skip: equal-length payloads
    give files of equal size and different content (what the input-change tests need).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    body = (payload or path.name.encode()) * 64
    free_box = struct.pack(">I", len(body) + 8) + b"free" + body
    path.write_bytes(_template_video() + free_box)
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put tests/ray's tests first, so the worker that takes them starts at once.

    They run on one worker (one Ray cluster, see below) for about five minutes; last in
    line, they would start when the other workers are nearly done and end the run alone.
    The sort is stable: every other test keeps its order.
    """
    items.sort(key=lambda item: not item.nodeid.startswith("tests/ray/"))


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With ``--dist loadfile``, keep tests/ray's files on one worker (one Ray cluster).

    Each worker starts the session fixtures it needs; a second local Ray cluster on the
    same two cores would double the start-up and the memory for nothing.
    """
    if config.getoption("dist", None) != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class _RayTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return "tests/ray" if scope.startswith("tests/ray/") else scope

    return _RayTogether(config, log)
