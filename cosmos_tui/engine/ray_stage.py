"""Where a cluster run's files live: a folder every node shares, or the node's own disk.

Two ways, one interface (:class:`Stage`), picked per cluster by its ``shared_dir``:

- :class:`SharedStage`: ``shared_dir`` is seen at the same path by every node and this
  machine (NFS or similar): inputs are copied into it (content-addressed), the spec
  written, the outputs copied back, all as local file operations.
- :class:`SshStage`: no shared folder (``shared_dir = ""``): the queue planned the run on
  a node, the cluster's ``node_hosts`` names the ``[[hosts]]`` entry that reaches that
  node, and the run goes through that host exactly as an SSH run does: inputs uploaded
  content-addressed and verified (``RemoteHost.upload_inputs``), the spec written over
  SFTP, the outputs listed, refused when unsafe, downloaded and verified
  (:mod:`cosmos_tui.engine.outputs`). The job is pinned to the node (``node:<ip>``), so
  its container mounts the folders the upload filled.

Each attempt has its own folder (``<run>`` then ``<run>-a<N>``): after a node is lost its
container may still be writing, and must not write into the retry's.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cosmos_tui.config import ClusterConfig
from cosmos_tui.domain import Prompt, Run
from cosmos_tui.engine import launch
from cosmos_tui.engine.ray_job import attempt_layout, attempt_name, copy_atomic, copy_outputs
from cosmos_tui.errors import TransferFailed
from cosmos_tui.safe_text import one_line

if TYPE_CHECKING:  # asyncssh and aiodocker stay out of the services' import
    from cosmos_tui.remote.host import RemoteHost


@dataclass(frozen=True)
class Fetched:
    """The outputs brought back: their names, and what was refused (empty: nothing)."""

    names: list[str]
    refused: str = ""


class Stage(Protocol):
    """Puts a run's inputs and spec where its node sees them, and brings outputs back."""

    async def layout(self, run_id: str, attempt: int) -> launch.RemoteLayout:
        """Return the folders of one attempt as the node sees them."""
        ...

    async def put(
        self, run: Run, prompt: Prompt | None, layout: launch.RemoteLayout
    ) -> dict[str, Any]:
        """Place the inputs and the spec, empty the output folder; return the spec."""
        ...

    async def fetch(self, layout: launch.RemoteLayout, local_dir: Path) -> Fetched:
        """Bring the attempt's outputs into ``local_dir`` (verified); return their names."""
        ...


class SharedStage:
    """A folder every node and this machine see at the same path."""

    def __init__(self, cluster: ClusterConfig) -> None:
        """Stage into ``cluster.shared_dir``."""
        self.cluster = cluster

    async def layout(self, run_id: str, attempt: int) -> launch.RemoteLayout:
        """Return the attempt's folders in the shared folder."""
        return attempt_layout(self.cluster, run_id, attempt)

    async def put(
        self, run: Run, prompt: Prompt | None, layout: launch.RemoteLayout
    ) -> dict[str, Any]:
        """Copy inputs (content-addressed) and write the spec; the container's user writes."""
        remote_inputs: dict[str, str] = {}
        for item in launch.run_inputs(run, prompt):
            target = Path(layout.inputs_dir) / f"{item.sha256}{item.path.suffix.lower()}"
            if not target.exists() or target.stat().st_size != item.size:
                await asyncio.to_thread(copy_atomic, item.path, target)
            remote_inputs[item.role] = str(target)
        spec = launch.build_run_spec(run, prompt, remote_inputs)
        output = Path(layout.output_dir)
        await asyncio.to_thread(shutil.rmtree, output, True)
        output.mkdir(parents=True, exist_ok=True)
        output.chmod(0o777)  # the container's user writes here
        Path(layout.spec_path).write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
        return spec

    async def fetch(self, layout: launch.RemoteLayout, local_dir: Path) -> Fetched:
        """Copy the output folder's files back, sizes checked."""
        names = await asyncio.to_thread(copy_outputs, Path(layout.output_dir), local_dir)
        return Fetched(names)


class SshStage:
    """The node's own disk, through the SSH host that reaches it."""

    def __init__(self, host: RemoteHost, max_output_bytes: int) -> None:
        """Stage through ``host``; download at most ``max_output_bytes`` of outputs."""
        self.host = host
        self.max_output_bytes = max_output_bytes

    async def layout(self, run_id: str, attempt: int) -> launch.RemoteLayout:
        """Return the attempt's folders under the host's tool folder (as SSH runs use)."""
        home, tool_dir = await asyncio.gather(self.host.files.home(), self.host.tool_dir())
        return launch.RemoteLayout(home, tool_dir, attempt_name(run_id, attempt))

    async def put(
        self, run: Run, prompt: Prompt | None, layout: launch.RemoteLayout
    ) -> dict[str, Any]:
        """Upload the inputs (verified), empty the output folder, write the spec.

        Raises:
            TransferFailed: An upload failed, or the folders cannot be made.

        """
        items = launch.run_inputs(run, prompt)
        results = await self.host.upload_inputs([(i.path, i.sha256, i.size) for i in items])
        remote_inputs = {item.role: r.remote_path for item, r in zip(items, results, strict=True)}
        spec = launch.build_run_spec(run, prompt, remote_inputs)
        # One command: the container's user (not the SSH user) writes the outputs.
        script = 'rm -rf -- "$1" && mkdir -p -- "$1" "$2" && chmod 777 -- "$1"'
        argv = ["sh", "-c", script, "sh", layout.output_dir, layout.inputs_dir]
        result = await self.host.run(argv, check=False)
        if result.exit_status != 0:
            raise TransferFailed(
                f"cannot prepare {layout.output_dir} on {self.host.name}: "
                f"{one_line(result.stderr)[-300:] or f'exit status {result.exit_status}'}"
            )
        await self.host.files.write_text(layout.spec_path, json.dumps(spec, indent=2) + "\n")
        return spec

    async def fetch(self, layout: launch.RemoteLayout, local_dir: Path) -> Fetched:
        """List, sort (unsafe entries refused) and download the outputs, verified."""
        # lazy: the download code is for drivers (as in engine/lifecycle.py)
        from cosmos_tui.engine.outputs import fetch_outputs, plan_outputs

        plan = await plan_outputs(self.host, layout.output_dir, self.max_output_bytes)
        names = await fetch_outputs(self.host, layout.output_dir, plan, local_dir)
        return Fetched(names, plan.refused_text() if plan.refused else "")
