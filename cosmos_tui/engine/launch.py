"""Where a run's files live on its host, and the container that runs it.

Remote layout, all under the host's tool directory (``remote_tool_dir``)::

    <tool>/inputs/<sha256>.mp4          content-addressed inputs, shared and never rewritten
    <tool>/runs/<run id>/spec.json      the controlnet spec of this run
    <tool>/runs/<run id>/output/        --video_save_folder: what the model writes

Inside the container (COSMOS.md section 1: the repo at /workspace, checkpoints at
/workspace/checkpoints, the Hugging Face cache, ``-w /workspace``) the inputs are mounted
read-only at ``/cosmos-tui/inputs`` and only this run's folder read-write at
``/cosmos-tui/run``, so a run can neither change the inputs nor touch another run's files.

Every container gets ``PYTHONPATH`` naming the repo mount (docs/cosmos.md, "Container
environment"): upstream runs ``PYTHONPATH=$(pwd) torchrun ...`` and its Dockerfile neither
sets it nor installs the package, so without it ``transfer.py`` dies at
``ModuleNotFoundError: No module named 'cosmos_transfer1'``. The working directory is set
explicitly too, so the image's own WORKDIR (the repository's or an NGC image's) never
matters. :func:`container_spec` is the one place that assembles a container (the launch
paths, single run, batch and enhancement, and ``--dry-run`` all use it), and
:func:`launch_container` the one place that starts one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from cosmos_tui.config import Config, HostConfig
from cosmos_tui.domain import InputFile, Prompt, Run
from cosmos_tui.engine.context import shm_size_bytes
from cosmos_tui.engine.profiles.base import MountSpec, profile_for, settings_for
from cosmos_tui.errors import CosmosError, ValidationError
from cosmos_tui.remote.docker_types import ContainerSpec, Mount
from cosmos_tui.safe_text import MIN_SECRET_LEN, is_secret_name

if TYPE_CHECKING:
    from cosmos_tui.remote.host import RemoteHost

CONTAINER_INPUTS = "/cosmos-tui/inputs"
CONTAINER_RUN = "/cosmos-tui/run"
CONTAINER_WORKDIR = "/workspace"
# Where the repository is mounted, and so what PYTHONPATH must name.
CONTAINER_REPO = CONTAINER_WORKDIR
LABEL_ATTEMPT = "cosmos.attempt"
LABEL_PROFILE = "cosmos.profile"
OUTPUT_DIR_NAME = "output"
SPEC_NAME = "spec.json"


@dataclass(frozen=True)
class RemoteLayout:
    """Absolute paths of one run on its host.

    Attributes:
        home: The login user's home (relative config paths are under it).
        tool_dir: The tool's directory.
        run_id: The run.

    """

    home: str
    tool_dir: str
    run_id: str

    def resolve(self, path: str) -> str:
        """Return ``path`` made absolute against the home directory."""
        return path if path.startswith("/") else str(PurePosixPath(self.home) / path)

    @property
    def inputs_dir(self) -> str:
        """Content-addressed inputs."""
        return str(PurePosixPath(self.tool_dir) / "inputs")

    @property
    def run_dir(self) -> str:
        """The run's own folder."""
        return str(PurePosixPath(self.tool_dir) / "runs" / self.run_id)

    @property
    def output_dir(self) -> str:
        """Where the model writes this run's outputs."""
        return str(PurePosixPath(self.run_dir) / OUTPUT_DIR_NAME)

    @property
    def spec_path(self) -> str:
        """The run's spec on the host."""
        return str(PurePosixPath(self.run_dir) / SPEC_NAME)


def wanted_roles(run: Run) -> set[str]:
    """Return the input roles a run sends (its profile decides)."""
    return profile_for(run.profile).wanted_roles(run.params)


def run_inputs(run: Run, prompt: Prompt | None) -> list[InputFile]:
    """Return the files a run sends: its prompt's inputs its family reads, then its own.

    Its own are the local files a family option names (``GenerationParams.run_files``),
    with the content recorded when the run was made.
    """
    wanted = wanted_roles(run)
    chosen = [item for item in (prompt.inputs if prompt else ()) if item.role in wanted]
    return [*chosen, *run.params.run_files()]


def content_key(item: InputFile) -> tuple[str, str]:
    """Inputs with the same recorded content and extension share one upload."""
    return (item.sha256, item.path.suffix.lower())


def container_input_path(remote_input_path: str) -> str:
    """Return where a content-addressed input is seen inside the container."""
    return f"{CONTAINER_INPUTS}/{PurePosixPath(remote_input_path).name}"


def build_run_spec(
    run: Run, prompt: Prompt | None, remote_inputs: Mapping[str, str]
) -> dict[str, Any]:
    """Return the spec JSON of a run whose inputs were uploaded (its profile builds it).

    Args:
        run: The run (type, profile, parameters).
        prompt: Its prompt (text); None only for runs without one.
        remote_inputs: Uploaded input path on the host, by role (``color``, ``depth``...).

    Raises:
        ValidationError: When the run cannot be expressed as a spec.

    """
    inside = {role: container_input_path(path) for role, path in remote_inputs.items()}
    return profile_for(run.profile).build_spec(run, prompt, inside)


def build_command(run: Run, config: Config) -> list[str]:
    """Return the container command of a run from its profile."""
    return profile_for(run.profile).build_command(run, settings_for(config, run.profile))


def mounts_for(host: HostConfig, layout: RemoteLayout) -> list[MountSpec]:
    """Return the mounts of COSMOS.md section 1 plus the run's inputs and folder.

    Least privilege: the repo, the checkpoints, the Hugging Face cache and the inputs are
    read-only; the run's own folder (spec in, outputs out) is the only writable mount.
    """
    repo = layout.resolve(host.remote_repo_dir)
    checkpoints = layout.resolve(host.checkpoints_dir)
    mounts = [MountSpec(repo, CONTAINER_WORKDIR, True, "remote_repo_dir")]
    if PurePosixPath(checkpoints) != PurePosixPath(repo) / "checkpoints":
        target = f"{CONTAINER_WORKDIR}/checkpoints"
        mounts.append(MountSpec(checkpoints, target, True, "checkpoints_dir"))
    if host.hf_cache_dir:
        cache = layout.resolve(host.hf_cache_dir)
        mounts.append(MountSpec(cache, "/root/.cache/huggingface", True, "hf_cache_dir"))
    mounts.append(MountSpec(layout.inputs_dir, CONTAINER_INPUTS, read_only=True))
    mounts.append(MountSpec(layout.run_dir, CONTAINER_RUN))
    return mounts


async def check_mount_sources(host: RemoteHost, mounts: list[MountSpec]) -> None:
    """Check that every configured folder to mount exists on the host (never created).

    Raises:
        ValidationError: Naming the config key and the path that is missing.

    """
    checked = [mount for mount in mounts if mount.key is not None]
    # all at once (one round trip); the first missing one in mount order is named
    found = await asyncio.gather(*(host.files.is_dir(mount.source) for mount in checked))
    for mount, is_dir in zip(checked, found, strict=True):
        if not is_dir:
            raise ValidationError(
                f"{mount.key} {mount.source} does not exist on {host.name} (or is not a "
                f"folder); fix {mount.key} for this host, it is never created",
                field=mount.key,
            )


def host_env(host: HostConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """Return the host's ``env`` table, ``$NAME`` values read from ``environ`` (unset: left out).

    Every model family starts its container's environment from this.
    """
    env: dict[str, str] = {}
    for key, value in host.env.items():
        if value.startswith("$"):
            resolved = environ.get(value[1:])
            if resolved is not None:
                env[key] = resolved
        else:
            env[key] = value
    return env


def container_env(host: HostConfig, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return Transfer1's container environment: :func:`host_env` plus its own.

    ``HF_TOKEN`` is passed from the local environment when set and not configured.
    """
    local = os.environ if environ is None else environ
    env = host_env(host, local)
    if "HF_TOKEN" not in env and local.get("HF_TOKEN"):
        env["HF_TOKEN"] = local["HF_TOKEN"]
    env["PYTHONPATH"] = python_path(env.get("PYTHONPATH"))
    return env


def log_secrets(
    host: HostConfig,
    environ: Mapping[str, str] | None = None,
    profile: str = "transfer1",
    config: Config | None = None,
) -> tuple[str, ...]:
    """Return the secret values a run's container gets, to mask in its logs.

    The values of the container environment whose names say they are secrets
    (``HF_TOKEN``, ``*_KEY``, ``*PASSWORD*``: :func:`cosmos_tui.safe_text.is_secret_name`),
    ``$NAME`` references expanded: a model or a host's script that prints one must not
    leave it in ``run.log`` or on the screen. The environment is the one the run's model
    family builds (a profile's ``token_env`` included).
    """
    local = os.environ if environ is None else environ
    env = profile_for(profile).env(host, settings_for(config or Config(), profile), local)
    return tuple(
        value for key, value in env.items() if len(value) >= MIN_SECRET_LEN and is_secret_name(key)
    )


def python_path(configured: str | None) -> str:
    """Return the container's PYTHONPATH: the repo mount first, then what the host's env adds.

    A value from the host's ``env`` table is kept after the repo mount (an image may need
    its own entries); the repo mount is never listed twice.
    """
    entries = [e for e in (configured or "").split(":") if e and e != CONTAINER_REPO]
    return ":".join([CONTAINER_REPO, *entries])


def container_spec(
    key: str,
    command: list[str] | tuple[str, ...],
    image: str,
    host: HostConfig,
    layout: RemoteLayout,
    gpus: tuple[int, ...] = (),
    labels: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    profile: str = "transfer1",
    config: Config | None = None,
    run_env: Mapping[str, str] | None = None,
    run_mounts: Sequence[MountSpec] = (),
) -> ContainerSpec:
    """Return the container of one launch (a run, a batch or an enhancement).

    The one builder of containers: the launch paths and ``--dry-run`` share it, so a dry
    run shows exactly what a launch sends.

    Args:
        key: The run or batch id (names and labels the container).
        command: The container's argv.
        image: Image reference.
        host: The host's config (mounts, env table, shm size, IPC, container user).
        layout: The run's (or batch's) folders on the host.
        gpus: Host GPU indices (empty when not yet chosen).
        labels: Extra labels.
        environ: The local environment for ``$NAME`` values (default: this process's).
        profile: The model family, whose mounts and environment the container gets.
        config: The configuration holding the family's ``[profiles.<name>]`` settings.
        run_env: The run's own variables (``ModelProfile.run_env``), added last.
        run_mounts: The run's own folders (``ModelProfile.run_mounts``), added last.
    """
    local = os.environ if environ is None else environ
    family = profile_for(profile)
    settings = settings_for(config or Config(), profile)
    return ContainerSpec(
        run_id=key,
        image=image,
        command=tuple(command),
        gpus=tuple(gpus),
        env={**family.env(host, settings, local), **(run_env or {})},
        mounts=tuple(
            Mount(m.source, m.target, m.read_only)
            for m in (*family.mounts(host, layout, settings), *run_mounts)
        ),
        workdir=CONTAINER_WORKDIR,
        shm_size_bytes=shm_size_bytes(host.shm_size),
        ipc_host=host.ipc_host,
        labels=dict(labels or {}),
        user=host.container_user,
    )


async def launch_container(
    host: RemoteHost,
    layout: RemoteLayout,
    spec: ContainerSpec,
    *,
    profile: str = "transfer1",
    config: Config | None = None,
    before: Sequence[Awaitable[None]] = (),
    on_created: Callable[[], Awaitable[None]] | None = None,
    run_mounts: Sequence[MountSpec] = (),
) -> str:
    """Create and start the container of one launch; return its id.

    The one place a container starts (a run, a batch, an enhancement): the family's
    configured folders are checked first (never created), together with whatever the
    caller still has to do on the host (``before``: one round trip for all of them).

    Args:
        host: The host.
        layout: The launch's folders (the family's mounts are read from it).
        spec: The container, from :func:`container_spec`.
        profile: The model family whose mounts are checked.
        config: The configuration holding the family's settings.
        before: Host work to finish before the container is created.
        on_created: Called between create and start (the lifecycle's observer).
        run_mounts: The run's own folders, checked with the family's.

    Raises:
        ValidationError: A configured folder to mount is missing on the host.
        DockerError: The container could not be created or started (one that cannot
            start is removed).

    """
    settings = settings_for(config or Config(), profile)
    mounts = [*profile_for(profile).mounts(host.config, layout, settings), *run_mounts]
    await asyncio.gather(check_mount_sources(host, mounts), *before)
    container_id = await host.docker.create(spec)
    if on_created is not None:
        await on_created()
    try:
        await host.docker.start(container_id)
    except CosmosError as exc:
        if not exc.transient:
            # it will never start (its command, a device): not left behind. A lost link
            # leaves it for the retry, which adopts it by its run label.
            with contextlib.suppress(CosmosError):
                await host.docker.remove(container_id, force=True)
        raise
    return container_id


def image_for(run: Run, host: HostConfig, config: Config) -> str:
    """Return the image of a run: the profile's image, else the host's."""
    return settings_for(config, run.profile).image or host.docker_image
