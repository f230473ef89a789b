"""What a launch would send, built by the launch code itself and sent nowhere.

``cosmos inference --dry-run`` and ``cosmos create run --dry-run`` print, for each
container a launch would start, exactly what the container would see: its argv, its
environment (secret values masked), its mounts and working directory, the spec JSON and,
for a batch, the JSONL, plus the Docker Engine API body of the create call. Every piece
comes from the functions the launch paths use (:func:`launch.build_run_spec`,
:func:`launch.build_command`, :func:`launch.container_spec`,
:func:`batching.build_batch_input`, :func:`batch_launch.batch_command`,
:func:`docker_types.container_body`), so a dry run cannot drift from a launch.

No host is contacted: host paths relative to the login home are shown as ``~/...``
(the launch resolves them with ``pwd`` on the host), inputs are named by their recorded
content as the upload names them (``<sha256><ext>``), and GPUs show as chosen at launch
unless the run already holds some.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from cosmos_tui.config import Config, HostConfig
from cosmos_tui.domain import InputFile, Prompt, Run
from cosmos_tui.engine import launch
from cosmos_tui.engine.batch_launch import batch_command
from cosmos_tui.engine.batching import build_batch_input
from cosmos_tui.engine.profiles.base import profile_for
from cosmos_tui.remote.docker_types import ContainerSpec, container_body

HOME = "~"
MASK = "********"
# Environment keys whose values are secrets (besides values passed from the local env).
_SECRET_KEY = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|(^|_)KEY$|API_?KEY", re.I)


@dataclass(frozen=True)
class ContainerPreview:
    """One container a launch would start.

    Attributes:
        run_ids: The runs it would run (several for a batch).
        host: The configured host it would start on.
        spec: The container (env not yet masked).
        files: Files written on the host before the start, by container path.
        masked: Environment keys whose values are masked in the output.
        gpu_request: Whether the host asks Docker for GPUs.
    """

    run_ids: tuple[str, ...]
    host: str
    spec: ContainerSpec
    files: Mapping[str, str]
    masked: frozenset[str]
    gpu_request: bool

    def to_json(self) -> dict[str, Any]:
        """Return the preview as JSON data (secret values masked everywhere)."""
        env = {k: (MASK if k in self.masked else v) for k, v in self.spec.env.items()}
        body = container_body(self.spec, self.host, self.gpu_request)
        body["Env"] = [f"{k}={v}" for k, v in env.items()]
        spec_text = next((t for p, t in self.files.items() if p.endswith(launch.SPEC_NAME)), None)
        jsonl_text = next((t for p, t in self.files.items() if p.endswith(".jsonl")), None)
        return {
            "run_ids": list(self.run_ids),
            "host": self.host,
            "name": f"cosmos-{self.spec.run_id}",
            "image": self.spec.image,
            "argv": list(self.spec.command),
            "env": env,
            "workdir": self.spec.workdir,
            "mounts": [
                {"source": m.source, "target": m.target, "read_only": m.read_only}
                for m in self.spec.mounts
            ],
            "gpus": list(self.spec.gpus) or None,
            "spec": json.loads(spec_text) if spec_text is not None else None,
            "jsonl": jsonl_text,
            "files": dict(self.files),
            "create_body": body,
        }


def masked_keys(host: HostConfig, env: Mapping[str, str]) -> frozenset[str]:
    """Return the keys of ``env`` to mask: secret-like names, and values from the local env."""
    from_local = {k for k, v in host.env.items() if v.startswith("$")}
    return frozenset(k for k in env if _SECRET_KEY.search(k) or k in from_local or k == "HF_TOKEN")


def dry_layout(host: HostConfig, key: str) -> launch.RemoteLayout:
    """Return the folders of ``key`` on the host with the home shown as ``~``."""
    tool = host.remote_tool_dir
    tool_dir = tool if tool.startswith("/") else str(PurePosixPath(HOME) / tool)
    return launch.RemoteLayout(HOME, tool_dir, key)


def input_paths(layout: launch.RemoteLayout, items: Sequence[InputFile]) -> dict[str, str]:
    """Return where each input is uploaded on the host, by role (``<sha256><ext>``)."""
    return {i.role: f"{layout.inputs_dir}/{i.sha256}{i.path.suffix.lower()}" for i in items}


def preview_run(
    run: Run,
    prompt: Prompt | None,
    host: HostConfig,
    config: Config,
    environ: Mapping[str, str] | None = None,
) -> ContainerPreview:
    """Return the container of one run as the run lifecycle would start it.

    Raises:
        ValidationError: When the run cannot be expressed as a spec.
    """
    layout = dry_layout(host, run.id)
    items = launch.run_inputs(run, prompt)
    spec_json = launch.build_run_spec(run, prompt, input_paths(layout, items))
    container = launch.container_spec(
        run.id,
        launch.build_command(run, config),
        launch.image_for(run, host, config),
        host,
        layout,
        gpus=run.gpus,
        labels={launch.LABEL_ATTEMPT: str(run.attempt + 1), launch.LABEL_PROFILE: run.profile},
        environ=environ,
        profile=run.profile,
        config=config,
        run_env=profile_for(run.profile).run_env(run),
        run_mounts=profile_for(run.profile).run_mounts(run),
    )
    files = {f"{launch.CONTAINER_RUN}/{launch.SPEC_NAME}": json.dumps(spec_json, indent=2) + "\n"}
    return ContainerPreview(
        (run.id,), host.name, container, files, masked_keys(host, container.env), host.gpu_request
    )


def preview_batch(
    batch_id: str,
    members: Sequence[tuple[Run, Prompt]],
    host: HostConfig,
    config: Config,
    environ: Mapping[str, str] | None = None,
) -> ContainerPreview:
    """Return the container the queue would start for ``members`` as one batch.

    Raises:
        BatchError: When the runs cannot share a container.
    """
    layout = dry_layout(host, batch_id)

    def _container_path(item: InputFile) -> str:
        remote = input_paths(layout, [item])[item.role]
        return launch.container_input_path(remote)

    batch = build_batch_input(members, _container_path)
    first = members[0][0]
    names = batch.files()
    container = launch.container_spec(
        batch_id,
        batch_command(first, config, list(names)),
        launch.image_for(first, host, config),
        host,
        layout,
        labels={"cosmos.batch_id": batch_id, launch.LABEL_PROFILE: first.profile,
                "cosmos.batch_runs": ",".join(batch.run_ids)},
        environ=environ,
        profile=first.profile,
        config=config,
        run_env=profile_for(first.profile).run_env(first),
        run_mounts=profile_for(first.profile).run_mounts(first),
    )  # fmt: skip
    files = {f"{launch.CONTAINER_RUN}/{name}": text for name, text in names.items()}
    return ContainerPreview(
        tuple(batch.run_ids), host.name, container, files,
        masked_keys(host, container.env), host.gpu_request,
    )  # fmt: skip
