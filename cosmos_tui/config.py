"""Configuration: one TOML file, validated into frozen dataclasses.

The file is read with :mod:`tomllib` and edited with :mod:`tomlkit` so that users' comments
and layout survive ``cosmos config set``. Unknown keys are errors (a typo must not be
silently ignored) and every error names the file and line.

Precedence, lowest first: built-in defaults, the file, ``COSMOS_<SECTION>__<KEY>``
environment variables (for example ``COSMOS_DEFAULTS__NUM_STEPS=20``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cosmos_tui.domain import BLUR_LEVELS, GenerationParams
from cosmos_tui.errors import ConfigError, ValidationError

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
        gpu_limit: Use at most this many GPUs of the host.
        gpu_request: Ask Docker for GPUs (DeviceRequests); off for hosts without the
            NVIDIA Container Toolkit.
        max_runs: At most this many runs at once on the host.
        shm_size: Shared memory size of a container, e.g. ``8g``.
        env: Environment variables passed to containers (values, or ``$NAME`` to pass a
            local variable's value).
        hf_cache_dir: Hugging Face cache on the host, mounted into containers.
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
    gpu_request: bool = True
    max_runs: int | None = None
    shm_size: str = "8g"
    env: dict[str, str] = field(default_factory=dict)
    hf_cache_dir: str | None = ".cache/huggingface"


@dataclass(frozen=True)
class ProfileConfig:
    """A model family: which script runs and with which extra flags."""

    script: str = "cosmos_transfer1/diffusion/inference/transfer.py"
    extra_args: list[str] = field(
        default_factory=lambda: ["--offload_text_encoder_model", "--offload_guardrail_models"]
    )
    image: str | None = None


@dataclass(frozen=True)
class TimeoutsConfig:
    """Time limits, in seconds."""

    connect: float = 10.0
    command: float = 30.0
    run: float = 4 * 3600.0
    cancel_grace: float = 10.0
    keepalive: float = 15.0


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


@dataclass(frozen=True)
class PathsConfig:
    """Where local data lives; empty means the platform's user data directory."""

    data_dir: str | None = None
    outputs_dir: str | None = None


@dataclass(frozen=True)
class Config:
    """The whole configuration."""

    hosts: list[HostConfig] = field(default_factory=list)
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
        env = os.environ.get(DATA_DIR_ENV)
        if env:
            return Path(env).expanduser()
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


# Sections whose value is a mapping of free-form keys to a dataclass or a scalar.
_MAP_SECTIONS: dict[str, type | None] = {"profiles": ProfileConfig, "keymap": None}
_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("defaults", "blur_strength"): BLUR_LEVELS,
    ("defaults", "canny_threshold"): BLUR_LEVELS,
}


def default_config_path() -> Path:
    """Return the config path from ``COSMOS_CONFIG`` or the platform's config dir."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read, merge and validate the configuration.

    Args:
        path: The config file; None uses :func:`default_config_path`. A missing file
            means built-in defaults.
        environ: Environment for ``COSMOS_*`` overrides; None uses ``os.environ``.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: With file, line and what to change, for any malformed or unknown key.
    """
    config_path = path or default_config_path()
    env = os.environ if environ is None else environ
    text = ""
    data: dict[str, Any] = {}
    if config_path.exists():
        try:
            text = config_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the config file: {exc}", path=config_path) from exc
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            match = re.search(r"line (\d+)", str(exc))
            line = int(match.group(1)) if match else None
            raise ConfigError(
                f"not valid TOML: {exc}; fix the syntax", path=config_path, line=line
            ) from exc
    elif path is not None:
        raise ConfigError(
            "config file does not exist; create it with 'cosmos config init'", path=config_path
        )
    _apply_env(data, env, config_path)
    return parse_config(data, config_path, text)


def parse_config(data: Mapping[str, Any], path: Path | None, text: str = "") -> Config:
    """Validate a parsed TOML mapping into a :class:`Config`.

    Args:
        data: Parsed TOML.
        path: File the data came from, for messages.
        text: The file's text, used to find line numbers for messages.
    """
    locate = _Locator(text)
    kwargs: dict[str, Any] = {}
    known = {f.name for f in dataclasses.fields(Config)} - {"source"}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(
                f"unknown section or key '{key}' (known: {', '.join(sorted(known))})",
                path=path,
                line=locate.line(None, key),
            )
        if key == "hosts":
            kwargs[key] = _parse_hosts(value, path, locate)
        elif key in _MAP_SECTIONS:
            kwargs[key] = _parse_map(key, value, _MAP_SECTIONS[key], path, locate)
        else:
            kwargs[key] = _build(typing.get_type_hints(Config)[key], value, key, path, locate)
    if "defaults" in kwargs and "negative_prompt" not in data.get("defaults", {}):
        kwargs["defaults"] = dataclasses.replace(
            kwargs["defaults"], negative_prompt=DEFAULT_NEGATIVE_PROMPT
        )
    if "profiles" in kwargs:
        kwargs["profiles"] = {"transfer1": ProfileConfig(), **kwargs["profiles"]}
    config = Config(**kwargs, source=path)
    _check_values(config, path, locate)
    return config


def _parse_hosts(value: Any, path: Path | None, locate: _Locator) -> list[HostConfig]:
    if not isinstance(value, list):
        raise ConfigError(
            "'hosts' must be an array of tables ([[hosts]] entries)",
            path=path,
            line=locate.line(None, "hosts"),
        )
    hosts: list[HostConfig] = []
    seen: set[str] = set()
    for index, item in enumerate(value):
        section = f"hosts[{index}]"
        host = _build(HostConfig, item, section, path, locate, table=("hosts", index))
        if host.name in seen:
            raise ConfigError(
                f"two hosts are named '{host.name}'; host names must be unique",
                path=path,
                line=locate.line(("hosts", index), "name"),
            )
        seen.add(host.name)
        hosts.append(host)
    return hosts


def _parse_map(
    section: str, value: Any, cls: type | None, path: Path | None, locate: _Locator
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(
            f"'{section}' must be a table", path=path, line=locate.line(None, section)
        )
    result: dict[str, Any] = {}
    for key, item in value.items():
        if cls is None:
            if not isinstance(item, str):
                raise ConfigError(
                    f"'{section}.{key}' must be a string (a key such as \"ctrl+q\")",
                    path=path,
                    line=locate.line((section,), key),
                )
            result[key] = item
        else:
            result[key] = _build(cls, item, f"{section}.{key}", path, locate, table=(section, key))
    return result


def _build(
    cls: type,
    value: Any,
    section: str,
    path: Path | None,
    locate: _Locator,
    table: tuple[Any, ...] | None = None,
) -> Any:
    table = table or tuple(section.split("."))
    if not isinstance(value, dict):
        raise ConfigError(
            f"'{section}' must be a table", path=path, line=locate.line(None, section)
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, item in value.items():
        if key not in fields:
            raise ConfigError(
                f"unknown key '{key}' in [{section}] (known: {', '.join(sorted(fields))})",
                path=path,
                line=locate.line(table, key),
            )
        kwargs[key] = _coerce(hints[key], item, f"{section}.{key}", path, locate.line(table, key))
    missing = [
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and name not in kwargs
    ]
    if missing:
        raise ConfigError(
            f"[{section}] is missing required key(s): {', '.join(missing)}",
            path=path,
            line=locate.header(table),
        )
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str, path: Path | None, line: int | None) -> Any:
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    for option in options:
        origin = typing.get_origin(option) or option
        if origin is bool and isinstance(value, bool):
            return value
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if origin is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if origin is str and isinstance(value, str):
            return value
        if origin is list and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        if (
            origin is dict
            and isinstance(value, dict)
            and all(isinstance(v, str) for v in value.values())
        ):
            return dict(value)
    wanted = " or ".join(
        getattr(typing.get_origin(o) or o, "__name__", str(o))
        for o in options
        if o is not type(None)
    )
    raise ConfigError(
        f"'{where}' must be {wanted}, not {type(value).__name__} {value!r}",
        path=path,
        line=line,
    )


def _check_values(config: Config, path: Path | None, locate: _Locator) -> None:
    for (section, key), choices in _CHOICES.items():
        value = getattr(getattr(config, section), key)
        if value not in choices:
            raise ConfigError(
                f"'{section}.{key}' must be one of {', '.join(choices)}, not {value!r}",
                path=path,
                line=locate.line((section,), key),
            )
    positive = [
        ("timeouts", "connect"),
        ("timeouts", "command"),
        ("timeouts", "run"),
        ("retry", "max_attempts"),
        ("batching", "max_size"),
        ("ui", "log_buffer_lines"),
        ("ui", "gpu_interval_ms"),
        ("ui", "page_size"),
    ]
    for section, key in positive:
        if getattr(getattr(config, section), key) <= 0:
            raise ConfigError(
                f"'{section}.{key}' must be greater than 0",
                path=path,
                line=locate.line((section,), key),
            )
    from cosmos_tui.engine.params import validate_params

    try:
        validate_params(config.defaults)
    except ValidationError as exc:
        raise ConfigError(
            f"[defaults]: {exc.message}",
            path=path,
            line=locate.line(("defaults",), exc.field or ""),
        ) from exc


def _apply_env(data: dict[str, Any], environ: Mapping[str, str], path: Path) -> None:
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if not section or not key:
            continue
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        target = data.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(f"environment variable {name} cannot override '{section}'", path=path)
        target[key] = value


class _Locator:
    """Finds the line of a key in TOML text, for error messages."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?")

    def __init__(self, text: str) -> None:
        self._lines = text.splitlines()

    def header(self, table: tuple[Any, ...] | None) -> int | None:
        """Return the line of the header of ``table``."""
        start, _ = self._span(table)
        return start

    def line(self, table: tuple[Any, ...] | None, key: str) -> int | None:
        """Return the 1-based line where ``key`` is set inside ``table``."""
        if not self._lines:
            return None
        start, end = self._span(table)
        if start is None and table:
            return None
        begin = start or 0
        pattern = re.compile(r'^\s*["\']?' + re.escape(key) + r'["\']?\s*=')
        for number in range(begin, end):
            if pattern.match(self._lines[number]):
                return number + 1
        header = re.compile(r"^\s*\[\[?\s*" + re.escape(key) + r"[\].]")
        for number, text in enumerate(self._lines):
            if header.match(text):
                return number + 1
        return start

    def _span(self, table: tuple[Any, ...] | None) -> tuple[int | None, int]:
        if not table:
            first_header = next(
                (i for i, t in enumerate(self._lines) if self._HEADER.match(t)), len(self._lines)
            )
            return None, first_header
        name = ".".join(str(t) for t in table if not isinstance(t, int))
        occurrence = next((t for t in table if isinstance(t, int)), 0)
        seen = 0
        for number, text in enumerate(self._lines):
            match = self._HEADER.match(text)
            if match and match.group(2) == name:
                if seen == occurrence:
                    end = next(
                        (
                            i
                            for i in range(number + 1, len(self._lines))
                            if self._HEADER.match(self._lines[i])
                        ),
                        len(self._lines),
                    )
                    return number + 1, end
                seen += 1
        return None, len(self._lines)
