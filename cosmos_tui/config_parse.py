"""Validation of the configuration: the generic builder behind :func:`load_config`.

One builder walks the dataclasses of :mod:`cosmos_tui.config`, rejects unknown keys and
wrong types, checks ranges, and reports the file and line of the offending key (or the
environment variable that set it).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cosmos_tui.config import (
    DEFAULT_NEGATIVE_PROMPT,
    ENV_PREFIX,
    ClusterConfig,
    Config,
    HostConfig,
    ProfileConfig,
)
from cosmos_tui.config_checks import HOST_REQUIRED_TEXT, check_gpu_selectors, check_host_text
from cosmos_tui.domain import BLUR_LEVELS
from cosmos_tui.errors import ConfigError, ValidationError
from cosmos_tui.params import validate_params
from cosmos_tui.remote.docker_types import parse_size
from cosmos_tui.safe_text import MASK, is_secret_name

# Sections whose value is a mapping of free-form keys to a dataclass or a scalar.
_MAP_SECTIONS: dict[str, type | None] = {"profiles": ProfileConfig, "keymap": None}
# A profile's own default extra flags where Transfer1's offload flags do not apply.
_PROFILE_EXTRA_ARGS: dict[str, tuple[str, ...]] = {
    "cosmos3": (),
    "transfer2_5": (),
    "transfer2.5": (),
}
_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("defaults", "blur_strength"): BLUR_LEVELS,
    ("defaults", "canny_threshold"): BLUR_LEVELS,
    ("timeouts", "stall_action"): ("alert", "cancel"),
    ("ui", "image_protocol"): ("auto", "kitty", "sixel", "halfcell", "unicode"),
}


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
        elif key == "clusters":
            kwargs[key] = _parse_clusters(value, path, locate)
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
        for name, table in (data.get("profiles") or {}).items():
            if name in _PROFILE_EXTRA_ARGS and "extra_args" not in (table or {}):
                kwargs["profiles"][name] = dataclasses.replace(
                    kwargs["profiles"][name], extra_args=list(_PROFILE_EXTRA_ARGS[name])
                )
    config = Config(**kwargs, source=path)
    _check_values(config, path, locate)
    hosts = {h.name for h in config.hosts}
    for index, cluster in enumerate(config.clusters):
        if cluster.ssh_host and cluster.ssh_host not in hosts:
            raise ConfigError(
                f"'clusters[{index}].ssh_host' is '{cluster.ssh_host}', which is not a "
                f"[[hosts]] name (known: {', '.join(sorted(hosts)) or 'none'}); the dashboard "
                "is tunnelled through that host's SSH connection",
                path=path,
                line=locate.line(("clusters", index), "ssh_host"),
            )
        if not cluster.shared_dir and not cluster.node_hosts:
            raise ConfigError(
                f"'clusters[{index}].shared_dir' is empty: runs are then staged over SSH to "
                "the node Ray runs them on, which needs 'node_hosts' (node IP -> [[hosts]] "
                "name); or give a folder every node and this machine share",
                path=path,
                line=locate.line(("clusters", index), "shared_dir"),
            )
        for ip, name in cluster.node_hosts.items():
            if name not in hosts:
                raise ConfigError(
                    f"'clusters[{index}].node_hosts' names '{name}' for node {ip}, which is "
                    f"not a [[hosts]] name (known: {', '.join(sorted(hosts)) or 'none'}); "
                    "that host's telemetry measures the node's runs",
                    path=path,
                    line=locate.line(("clusters", index), "node_hosts"),
                )
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


def _check_cluster(
    cluster: ClusterConfig, where: str, path: Path | None, locate: _Locator, table: tuple[Any, ...]
) -> None:
    """Refuse cluster values that would only fail at submit time, naming the key."""
    problems = {
        "dashboard_port": None if 1 <= cluster.dashboard_port <= 65535
        else f"is {cluster.dashboard_port}; give a TCP port from 1 to 65535",
        "pending_timeout": None if math.isfinite(cluster.pending_timeout)
        and cluster.pending_timeout > 0
        else f"is {cluster.pending_timeout:g}; give a number of seconds above 0",
        "python": None if cluster.python.strip()
        else "is empty; give the nodes' Python, such as python3",
    }  # fmt: skip
    for key, problem in problems.items():
        if problem is not None:
            raise ConfigError(f"'{where}.{key}' {problem}", path=path,
                              line=locate.line(table, key))  # fmt: skip


def _parse_clusters(value: Any, path: Path | None, locate: _Locator) -> list[ClusterConfig]:
    if not isinstance(value, list):
        raise ConfigError(
            "'clusters' must be an array of tables ([[clusters]] entries)",
            path=path,
            line=locate.line(None, "clusters"),
        )
    clusters: list[ClusterConfig] = []
    for index, item in enumerate(value):
        table = ("clusters", index)
        cluster = _build(ClusterConfig, item, f"clusters[{index}]", path, locate, table=table)
        if cluster.kind != "ray":
            raise ConfigError(
                f"'clusters[{index}].kind' is '{cluster.kind}'; the only kind is \"ray\"",
                path=path,
                line=locate.line(table, "kind"),
            )
        _check_cluster(cluster, f"clusters[{index}]", path, locate, table)
        if any(c.name == cluster.name for c in clusters) or "/" in cluster.name:
            raise ConfigError(
                f"cluster name '{cluster.name}' is used twice or has a '/'; use a unique name",
                path=path,
                line=locate.line(table, "name"),
            )
        clusters.append(cluster)
    return clusters


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
            if not math.isfinite(value):
                raise ConfigError(f"'{where}' must be a finite number", path=path, line=line)
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
        if (  # a table of numbers: a cluster's Ray resources
            origin is dict
            and typing.get_args(option)[1:] == (float,)
            and isinstance(value, dict)
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value.values())
        ):
            return {k: float(v) for k, v in value.items()}
    names = {list: "a list of strings", dict: "a table of strings"}
    wanted = " or ".join(
        names.get(typing.get_origin(o) or o, getattr(o, "__name__", str(o)))
        for o in options
        if o is not type(None)
    )
    # An env table or a token may hold a secret: its value is not quoted back.
    leaf = where.rsplit(".", 1)[-1]
    shown = MASK if ".env" in where or is_secret_name(leaf) else repr(value)
    raise ConfigError(
        f"'{where}' must be {wanted}, not {type(value).__name__} {shown}",
        path=path,
        line=line,
    )


# (section, key) -> (lowest, highest, inclusive lowest); None means unbounded.
_RANGES: dict[tuple[str, str], tuple[float | None, float | None, bool]] = {
    ("timeouts", "connect"): (0, None, False),
    ("timeouts", "command"): (0, None, False),
    ("timeouts", "run"): (0, None, False),
    ("timeouts", "cancel_grace"): (0, None, True),
    ("timeouts", "keepalive"): (0, None, False),
    ("timeouts", "stall"): (0, None, True),
    ("retry", "max_attempts"): (1, None, True),
    ("retry", "backoff_base"): (0, None, False),
    ("retry", "backoff_max"): (0, None, False),
    ("batching", "max_size"): (1, None, True),
    ("alerts", "temperature_c"): (0, 150, False),
    ("alerts", "memory_headroom_mib"): (0, None, True),
    ("alerts", "idle_minutes"): (0, None, False),
    ("ui", "log_buffer_lines"): (100, None, True),
    ("ui", "gpu_interval_ms"): (100, None, True),
    ("ui", "page_size"): (1, None, True),
}
_HOST_RANGES: dict[str, tuple[int, int]] = {
    "port": (1, 65535),
    "gpu_limit": (1, 1024),
    "max_runs": (1, 1024),
}


def _range_text(low: float | None, high: float | None, inclusive: bool) -> str:
    if high is None:
        return f"at least {low:g}" if inclusive else f"greater than {low:g}"
    return f"between {low:g} and {high:g}"


def _check_values(config: Config, path: Path | None, locate: _Locator) -> None:
    for (section, key), choices in _CHOICES.items():
        value = getattr(getattr(config, section), key)
        if value not in choices:
            raise ConfigError(
                f"'{section}.{key}' must be one of {', '.join(choices)}, not {value!r}",
                path=path,
                line=locate.line((section,), key),
            )
    for (section, key), (low, high, inclusive) in _RANGES.items():
        value = getattr(getattr(config, section), key)
        too_low = low is not None and (value < low if inclusive else value <= low)
        too_high = high is not None and value > high
        if too_low or too_high:
            raise ConfigError(
                f"'{section}.{key}' is {value:g}; it must be {_range_text(low, high, inclusive)}",
                path=path,
                line=locate.line((section,), key),
            )
    for index, host in enumerate(config.hosts):
        for key in HOST_REQUIRED_TEXT:
            if not getattr(host, key).strip():
                raise ConfigError(
                    f"'hosts[{index}].{key}' is empty; give the host a {key} "
                    "(or remove the key to use the default)",
                    path=path,
                    line=locate.line(("hosts", index), key),
                )
        check_host_text(
            host,
            path,
            locate.line(("hosts", index), "shm_size"),
            locate.line(("hosts", index), "env"),
        )
        for key in ("gpu_exclude", "gpu_include"):
            check_gpu_selectors(host, key, path, locate.line(("hosts", index), key))
        for key, (low, high) in _HOST_RANGES.items():
            value = getattr(host, key)
            if value is not None and not low <= value <= high:
                raise ConfigError(
                    f"'{host.name}.{key}' is {value}; it must be between {low} and {high}",
                    path=path,
                    line=locate.line(("hosts", index), key),
                )
    _check_output_sizes(config, path, locate)
    try:
        validate_params(config.defaults)
    except ValidationError as exc:
        raise ConfigError(
            f"[defaults]: {exc.message}",
            path=path,
            line=locate.line(("defaults",), exc.field or ""),
        ) from exc


def _check_output_sizes(config: Config, path: Path | None, locate: _Locator) -> None:
    """Each host's ``max_output_size`` must be a positive size such as ``16g``."""
    for index, host in enumerate(config.hosts):
        try:
            max_output_bytes(host)
        except ConfigError as exc:
            raise ConfigError(
                exc.message, path=path, line=locate.line(("hosts", index), "max_output_size")
            ) from exc


def read_toml(path: Path) -> tuple[dict[str, Any], str]:
    """Read and parse a TOML file; return the data and the text (for line numbers).

    Raises:
        ConfigError: When the file is missing, unreadable, not UTF-8 or not TOML.

    """
    if not path.exists():
        raise ConfigError(
            "config file does not exist; create it with 'cosmos config init'", path=path
        )
    if path.is_dir():
        raise ConfigError("is a directory, not a config file; point --config at a file", path=path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"is not UTF-8 text (byte {exc.start}); save it as UTF-8", path=path
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read the config file: {exc.strerror or exc}", path=path) from exc
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) if match else None
        raise ConfigError(f"not valid TOML: {exc}; fix the syntax", path=path, line=line) from exc


def apply_environment(
    config: Config, data: Mapping[str, Any], text: str, environ: Mapping[str, str]
) -> Config:
    """Apply ``COSMOS_<SECTION>__<KEY>`` overrides on top of the file's data.

    Each override is validated on its own so that an error names the variable, not a
    line of the file. Values are taken as TOML literals for numbers and booleans and as
    plain text for string settings.

    Raises:
        ConfigError: Naming the environment variable and what is wrong with it.

    """
    overrides = sorted(
        (name, *name[len(ENV_PREFIX) :].lower().partition("__")[::2], raw)
        for name, raw in environ.items()
        if name.startswith(ENV_PREFIX) and "__" in name
    )
    if not overrides:
        return config
    merged = copy.deepcopy(dict(data))
    hints = typing.get_type_hints(Config)
    for name, section, key, raw in overrides:
        section_type = hints.get(section)
        if section in ("hosts", "profiles") or not section or not key:
            raise ConfigError(
                f"environment variable {name} cannot be used: set [{section or '?'}] "
                "in the config file instead"
            )
        target = merged.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(f"environment variable {name} cannot override '{section}'")
        target[key] = _env_value(section_type, key, raw)
        try:
            parse_config(merged, None, "")
        except ConfigError as exc:
            raise ConfigError(f"environment variable {name}: {exc.detail}") from exc
    return parse_config(merged, config.source, text)


def _env_value(section_type: Any, key: str, raw: str) -> Any:
    if dataclasses.is_dataclass(section_type):
        hint = typing.get_type_hints(section_type).get(key)
        options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        if str in options:
            return raw
    elif section_type is not None and typing.get_origin(section_type) is dict:
        return raw
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


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


DEFAULT_MAX_OUTPUT = "16g"
"""A host's default ``max_output_size``: what one run may bring back."""


def max_output_bytes(host: HostConfig) -> int:
    """Return the host's ``max_output_size`` in bytes.

    Raises:
        ConfigError: When it is not a size such as ``16g`` or ``500m``.

    """
    text = getattr(host, "max_output_size", DEFAULT_MAX_OUTPUT) or DEFAULT_MAX_OUTPUT
    try:
        value = parse_size(text)
    except ValueError:
        value = -1
    if value <= 0:
        raise ConfigError(
            f"max_output_size of host {host.name} is {text!r}; give a size such as '16g'"
        )
    return value
