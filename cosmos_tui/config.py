"""Configuration: one TOML file, validated into frozen dataclasses.

The file is read with :mod:`tomllib` and edited with :mod:`tomlkit` so that users' comments
and layout survive ``cosmos config set``. Unknown keys are errors (a typo must not be
silently ignored) and every error names the file and line.

Precedence, lowest first: built-in defaults, the file, ``COSMOS_<SECTION>__<KEY>``
environment variables (for example ``COSMOS_DEFAULTS__NUM_STEPS=20``), and
``COSMOS_DATA_DIR`` for ``paths.data_dir``. Parsing and validation live in
:mod:`cosmos_tui.config_parse`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cosmos_tui.domain import GenerationParams
from cosmos_tui.errors import ConfigError

APP_NAME = "cosmos-tui"
ENV_PREFIX = "COSMOS_"
CONFIG_ENV = "COSMOS_CONFIG"
DATA_DIR_ENV = "COSMOS_DATA_DIR"

DEFAULT_NEGATIVE_PROMPT = (
    "The video captures a game playing, with bad crappy graphics and cartoonish frames. "
    "It represents a recording of old outdated games. The lighting looks very fake. The "
    "textures are very raw and basic. The geometries are very primitive. The images are "
    "very pixelated and of poor CG quality. There are many subtitles in the footage. "
    "Overall, the video is unrealistic at all."
)


@dataclass(frozen=True)
class HostConfig:
    """One GPU host reached over SSH.

    Attributes:
        name: Short name used in the CLI and UI.
        hostname: Host name, address or ~/.ssh/config alias.
        port: SSH port; None uses ~/.ssh/config or 22.
        user: Login user; None uses ~/.ssh/config or the local user.
        identity_file: Private key path; None uses ssh-agent and default keys.
        known_hosts: known_hosts file; None uses ~/.ssh/known_hosts.
        remote_repo_dir: Checkout of cosmos-transfer1 on the host (mounted as /workspace).
        checkpoints_dir: Model checkpoints on the host.
        remote_tool_dir: The tool's own directory on the host; relative paths are under
            the login user's home.
        docker_image: Image that runs the model.
        docker_socket: Path of the Docker Engine socket on the host.
        docker_sudo: Reach the socket through ``sudo -n docker system dial-stdio``.
        gpu_limit: Our runs hold at most this many GPUs of the host at once (any healthy
            ones, not the first N).
        gpu_exclude: GPUs never offered to runs, by index (``"1"``) or UUID (``"GPU-..."``).
        gpu_include: Display-only GPUs (e.g. "DGX Display", excluded by default) to offer.
        gpu_mig: Offer GPUs whose MIG mode is on (a run then gets the whole GPU).
        gpu_request: Ask Docker for GPUs (DeviceRequests); off for hosts without the
            NVIDIA Container Toolkit.
        max_runs: At most this many runs at once on the host.
        shm_size: Shared memory size of a container, e.g. ``8g``.
        env: Environment variables passed to containers (values, or ``$NAME`` to pass a
            local variable's value).
        hf_cache_dir: Hugging Face cache on the host, mounted into containers.
        max_output_size: Most bytes a run may download from the host (checked on the
            listing, before a byte moves), e.g. ``16g``.
        ipc_host: Share the host's IPC namespace with containers (opt-in: only for images
            whose parallel torchrun needs more than ``shm_size``; see docs/security.md).
        container_user: Run containers as this user (``uid:gid`` or a name the image
            knows); None keeps the image's user.

    """

    name: str
    hostname: str
    port: int | None = None
    user: str | None = None
    identity_file: str | None = None
    known_hosts: str | None = None
    remote_repo_dir: str = "cosmos-transfer1"
    checkpoints_dir: str = "cosmos-transfer1/checkpoints"
    remote_tool_dir: str = ".cosmos-tui"
    docker_image: str = "nvcr.io/nvidia/cosmos/cosmos-transfer1:latest"
    docker_socket: str = "/var/run/docker.sock"
    docker_sudo: bool = False
    gpu_limit: int | None = None
    gpu_exclude: list[str] = field(default_factory=list)
    gpu_include: list[str] = field(default_factory=list)
    gpu_mig: bool = False
    gpu_request: bool = True
    max_runs: int | None = None
    shm_size: str = "8g"
    env: dict[str, str] = field(default_factory=dict)
    hf_cache_dir: str | None = ".cache/huggingface"
    max_output_size: str = "16g"
    ipc_host: bool = False
    container_user: str | None = None


@dataclass(frozen=True)
class ClusterConfig:
    """A Ray cluster that runs queued runs as Ray Jobs (docs/cluster.md).

    Attributes:
        name: Short name; runs placed there show ``<name>/<node>`` as their host.
        kind: The engine; only ``ray`` exists.
        address: The head's dashboard URL, e.g. ``http://head:8265``.
        ssh_host: A configured ``[[hosts]]`` name to tunnel the dashboard port through
            (asyncssh local port forwarding); empty reaches ``address`` directly.
        dashboard_port: The dashboard port on the head, for the tunnel.
        docker_image: Image that runs the model on every node.
        docker_socket: Docker Engine socket on every node.
        gpu_request: Ask Docker for the GPUs Ray assigned (``CUDA_VISIBLE_DEVICES``).
        shared_dir: A folder every node and this machine see at the same path
            (inputs, specs and outputs of the runs).
        remote_repo_dir: The cosmos-transfer1 checkout on every node.
        checkpoints_dir: The checkpoints on every node.
        resources: Custom Ray resources every run asks for (e.g. a checkpoint set).
        python: The Python on the nodes that runs the job's entrypoint.
        shm_size: Shared memory size of a container.
        env: Environment variables passed to containers.
        pending_timeout: Seconds a submitted job may stay PENDING before it is
            stopped and its run queued again (well under Ray's
            ``RAY_JOB_START_TIMEOUT_SECONDS``).
        node_hosts: Node IP -> the ``[[hosts]]`` entry that reaches that node over SSH:
            its nvidia-smi telemetry measures the node's cluster runs (GPU metrics and
            alerts). A host whose hostname is the node's IP needs no entry.

    """

    name: str
    address: str = "http://127.0.0.1:8265"
    kind: str = "ray"
    ssh_host: str = ""
    dashboard_port: int = 8265
    docker_image: str = "nvcr.io/nvidia/cosmos/cosmos-transfer1:latest"
    docker_socket: str = "/var/run/docker.sock"
    gpu_request: bool = True
    shared_dir: str = "/shared/cosmos-tui"
    remote_repo_dir: str = "/shared/cosmos-transfer1"
    checkpoints_dir: str = "/shared/cosmos-transfer1/checkpoints"
    resources: dict[str, float] = field(default_factory=dict)
    python: str = "python3"
    shm_size: str = "8g"
    env: dict[str, str] = field(default_factory=dict)
    pending_timeout: float = 120.0
    node_hosts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProfileConfig:
    """A model family: which script runs and with which extra flags."""

    script: str = "cosmos_transfer1/diffusion/inference/transfer.py"
    extra_args: list[str] = field(
        default_factory=lambda: ["--offload_text_encoder_model", "--offload_guardrail_models"]
    )
    image: str | None = None
    # Cosmos 3 (docs/cosmos.md, "Cosmos 3 contract"): the module run with ``python -m``
    # or ``torchrun -m``, the host's cosmos-framework checkout (bound at /workspace), the
    # host's Hugging Face cache (weights download once per host) and where the token
    # comes from: a local environment variable, or a file on the host. Never stored.
    entry_point: str | None = None
    repo_dir: str | None = None
    hf_cache_dir: str | None = None
    token_env: str = "HF_TOKEN"  # noqa: S105 - the name of a variable, not a token
    token_file: str | None = None


@dataclass(frozen=True)
class TimeoutsConfig:
    """Time limits, in seconds."""

    connect: float = 10.0
    command: float = 30.0
    run: float = 4 * 3600.0
    cancel_grace: float = 10.0
    keepalive: float = 15.0
    stall: float = 900.0
    stall_action: str = "alert"


@dataclass(frozen=True)
class RetryConfig:
    """Retries of transient failures."""

    max_attempts: int = 3
    backoff_base: float = 2.0
    backoff_max: float = 60.0


@dataclass(frozen=True)
class BatchingConfig:
    """Smart batching of compatible queued runs."""

    enabled: bool = True
    max_size: int = 8


@dataclass(frozen=True)
class AlertsConfig:
    """Thresholds that raise alerts on a run's GPUs."""

    temperature_c: float = 85.0
    memory_headroom_mib: float = 1024.0
    idle_minutes: float = 5.0


@dataclass(frozen=True)
class UIConfig:
    """Settings of the terminal UI."""

    theme: str = "textual-dark"
    log_buffer_lines: int = 5000
    gpu_interval_ms: int = 1000
    page_size: int = 200
    notifications: bool = True
    # how frame previews are drawn: auto (what the terminal supports), kitty, sixel,
    # halfcell (coloured half blocks, any terminal) or unicode (no colour)
    image_protocol: str = "auto"


@dataclass(frozen=True)
class PathsConfig:
    """Where local data lives; empty means the platform's user data directory."""

    data_dir: str | None = None
    outputs_dir: str | None = None
    inputs_dir: str | None = None


@dataclass(frozen=True)
class Config:
    """The whole configuration."""

    hosts: list[HostConfig] = field(default_factory=list)
    clusters: list[ClusterConfig] = field(default_factory=list)
    defaults: GenerationParams = field(
        default_factory=lambda: GenerationParams(negative_prompt=DEFAULT_NEGATIVE_PROMPT)
    )
    profiles: dict[str, ProfileConfig] = field(
        default_factory=lambda: {"transfer1": ProfileConfig()}
    )
    timeouts: TimeoutsConfig = field(default_factory=TimeoutsConfig)
    retry: RetryConfig = field(default_factory=RetryConfig)
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    ui: UIConfig = field(default_factory=UIConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    keymap: dict[str, str] = field(default_factory=dict)
    source: Path | None = None

    def host(self, name: str) -> HostConfig:
        """Return the host called ``name``.

        Raises:
            ConfigError: When no host has that name.

        """
        for host in self.hosts:
            if host.name == name:
                return host
        known = ", ".join(h.name for h in self.hosts) or "none configured"
        raise ConfigError(f"no host named '{name}' (known: {known})", path=self.source)

    @property
    def data_dir(self) -> Path:
        """Directory of the database and, by default, outputs."""
        if self.paths.data_dir:
            return Path(self.paths.data_dir).expanduser()
        # lazy: platformdirs (~9 ms) only without paths.data_dir; every start imports config
        import platformdirs

        return Path(platformdirs.user_data_dir(APP_NAME))

    @property
    def db_path(self) -> Path:
        """The SQLite database file."""
        return self.data_dir / "cosmos.db"

    @property
    def outputs_dir(self) -> Path:
        """Where each run's outputs and log go (``<outputs_dir>/<run id>/``)."""
        if self.paths.outputs_dir:
            return Path(self.paths.outputs_dir).expanduser()
        return self.data_dir / "outputs"

    @property
    def inputs_dir(self) -> Path:
        """Where the TUI's Inputs view looks for input folders (``<data dir>/inputs``)."""
        if self.paths.inputs_dir:
            return Path(self.paths.inputs_dir).expanduser()
        return self.data_dir / "inputs"


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """Return the config path from ``COSMOS_CONFIG`` or the platform's config dir."""
    env = (os.environ if environ is None else environ).get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    # lazy: platformdirs (~9 ms) only when COSMOS_CONFIG is not set
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def no_hosts_message(source: Path | None) -> str:
    """Say that no GPU host is configured and where to add one."""
    where = source or default_config_path()
    return (
        "no GPU hosts are configured; add one with 'cosmos host add NAME --hostname HOST' "
        f"or add a [[hosts]] table (name = ..., hostname = ...) to {where}"
    )


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read, merge and validate the configuration.

    Args:
        path: The config file; None uses :func:`default_config_path`. A missing default
            file means built-in defaults; a missing file named explicitly is an error.
        environ: Environment for ``COSMOS_*`` overrides; None uses ``os.environ``.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: With file, line and what to change, for any malformed or unknown key,
            or naming the environment variable that holds a bad value.

    """
    # cycle: config_parse imports this module's dataclasses; also keeps tomllib and the
    # parser (~15 ms) out of 'cosmos --help'
    from cosmos_tui.config_parse import apply_environment, parse_config, read_toml

    env = os.environ if environ is None else environ
    config_path = path or default_config_path(env)
    if config_path.exists() or path is not None:
        data, text = read_toml(config_path)
    else:
        data, text = {}, ""
    config = parse_config(data, config_path, text)
    config = apply_environment(config, data, text, env)
    data_dir = env.get(DATA_DIR_ENV)
    if data_dir:
        config = dataclasses.replace(
            config, paths=dataclasses.replace(config.paths, data_dir=data_dir)
        )
    return config
