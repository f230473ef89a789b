"""Shared set-up of the lifecycle benchmarks: a real sshd + dockerd on 127.0.0.1.

Uses the test fixtures' helpers (tests/fixtures/hosts.py), so it needs root, like the
tests. Not a test module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _ssh_host import host_config

from cosmos_tui.config import (
    Config,
    PathsConfig,
    RetryConfig,
    TimeoutsConfig,
)
from tests.fixtures.hosts import (
    TEST_USER,
    make_image_builder,
    start_docker_daemon,
    start_ssh_server,
)


@contextlib.contextmanager
def test_host(files: Mapping[str, str | bytes], tag: str) -> Iterator[tuple[Config, Path]]:
    """Start sshd + dockerd, build ``tag`` from busybox + ``files``; yield (config, tmp)."""
    import os
    import pwd

    work = Path(tempfile.mkdtemp(prefix="cosmos-bench-"))
    work.chmod(0o755)
    ssh = start_ssh_server(work / "sshd")
    docker = start_docker_daemon(work / "dockerd")
    try:
        image = make_image_builder(docker)(tag, dict(files), cmd=["torchrun"])
        tool_dir = work / "sshd" / "tool"
        tool_dir.mkdir()
        user = pwd.getpwnam(TEST_USER)
        os.chown(tool_dir, user.pw_uid, user.pw_gid)
        host = host_config(
            ssh,
            remote_tool_dir=str(tool_dir),
            docker_image=image,
            docker_socket=str(docker.socket_path),
            gpu_request=False,
            hf_cache_dir=None,
        )
        config = Config(
            hosts=[host],
            timeouts=TimeoutsConfig(run=3600.0, cancel_grace=2.0),
            retry=RetryConfig(max_attempts=3, backoff_base=0.2, backoff_max=1.0),
            paths=PathsConfig(data_dir=str(work / "data")),
        )
        yield config, work
    finally:
        docker.stop()
        ssh.stop()
        shutil.rmtree(work, ignore_errors=True)


def with_env(config: Config, **env: str) -> Config:
    """Return ``config`` with extra container environment variables for its host."""
    host = dataclasses.replace(config.hosts[0], env={**config.hosts[0].env, **env})
    return dataclasses.replace(config, hosts=[host])


def write_mp4(path: Path, size: int) -> Path:
    """Write a real tiny MP4 padded with a trailing ``free`` box to ``size`` bytes."""
    import os
    import struct

    import av
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        for index in range(3):
            pixels = np.full((16, 16, 3), index * 60, dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode(None))
    remaining = max(size - path.stat().st_size, 8)
    with path.open("ab") as handle:
        handle.write(struct.pack(">I", remaining) + b"free")
        remaining -= 8
        while remaining > 0:
            chunk = os.urandom(min(remaining, 1 << 20))
            handle.write(chunk)
            remaining -= len(chunk)
    return path
