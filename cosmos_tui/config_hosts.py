"""Add, change and remove ``[[hosts]]`` entries of the config file, keeping its comments.

The file is edited with tomlkit (comments, order and layout survive), the result is
validated as a whole before anything is written, and it is written atomically (a
temporary file renamed over the old one), so a bad value never leaves a broken file.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import ParseError

from cosmos_tui.config import Config, HostConfig
from cosmos_tui.config_parse import parse_config
from cosmos_tui.errors import ConfigError

NEW_FILE_HEADER = (
    "cosmos-tui configuration; see README \"Configuration\". Hosts are added by 'cosmos host add'."
)
HOST_FIELDS = tuple(f.name for f in dataclasses.fields(HostConfig))
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def read_document(path: Path) -> tomlkit.TOMLDocument:
    """Parse the config file for editing (an empty document when it does not exist)."""
    if not path.exists():
        document = tomlkit.document()
        document.add(tomlkit.comment(NEW_FILE_HEADER))
        return document
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except ParseError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=path, line=exc.line) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError("is not UTF-8 text; save it as UTF-8", path=path) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read the config file: {exc.strerror or exc}", path=path) from exc


def write_document(path: Path, document: tomlkit.TOMLDocument) -> Config:
    """Validate ``document`` as a whole config, then write it atomically; return it parsed.

    Raises:
        ConfigError: The result would not be a valid config (nothing is written), or the
            file cannot be written.
    """
    text = tomlkit.dumps(document)
    config = parse_config(tomllib.loads(text), path, text)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ConfigError(
            f"cannot write the config file: {exc.strerror or exc}", path=path
        ) from exc
    return config


def _hosts(document: tomlkit.TOMLDocument) -> Any:
    hosts = document.get("hosts")
    return hosts if hosts is not None else []


def _find(document: tomlkit.TOMLDocument, name: str, path: Path) -> Any:
    for entry in _hosts(document):
        if entry.get("name") == name:
            return entry
    known = ", ".join(str(h.get("name")) for h in _hosts(document)) or "none"
    raise ConfigError(f"no host named '{name}' (known: {known})", path=path)


def _check_keys(values: Mapping[str, Any], path: Path) -> None:
    unknown = sorted(set(values) - set(HOST_FIELDS))
    if unknown:
        raise ConfigError(
            f"unknown host key(s) {', '.join(unknown)} (known: {', '.join(HOST_FIELDS)})",
            path=path,
        )


def add_host(path: Path, values: Mapping[str, Any], comment: str | None = None) -> Config:
    """Append a ``[[hosts]]`` table with ``values`` (None values are left out).

    Raises:
        ConfigError: A host of that name exists, a key or value is invalid, or the file
            cannot be read or written.
    """
    _check_keys(values, path)
    document = read_document(path)
    name = str(values.get("name", ""))
    if any(entry.get("name") == name for entry in _hosts(document)):
        raise ConfigError(
            f"a host named '{name}' exists already: change it with 'cosmos host edit "
            f"{name} ...' or remove it with 'cosmos host remove {name}'",
            path=path,
        )
    entry = tomlkit.table()
    if comment:
        entry.add(tomlkit.comment(comment))
    for key in HOST_FIELDS:
        if values.get(key) is not None:
            entry[key] = values[key]
    entry.add(tomlkit.nl())
    if "hosts" not in document:
        document.add(tomlkit.nl())
        document["hosts"] = tomlkit.aot()
    hosts = document["hosts"]
    if not isinstance(hosts, tomlkit.items.AoT):
        raise ConfigError("'hosts' is not an array of [[hosts]] tables", path=path)
    hosts.append(entry)
    return write_document(path, document)


def edit_host(path: Path, name: str, changes: Mapping[str, Any]) -> Config:
    """Set (or, for None, remove) keys of the host ``name``; comments are kept.

    Raises:
        ConfigError: No such host, an unknown key, an invalid result.
    """
    _check_keys(changes, path)
    if "name" in changes and changes["name"] != name:
        raise ConfigError("a host's name cannot be edited: add it anew and remove the old one")
    document = read_document(path)
    entry = _find(document, name, path)
    for key, value in changes.items():
        if value is None:
            if key in entry:
                del entry[key]
        else:
            entry[key] = value
    return write_document(path, document)


def remove_host(path: Path, name: str) -> Config:
    """Remove the host ``name``'s table; every other line of the file is kept.

    Raises:
        ConfigError: No such host, or the file cannot be written.
    """
    document = read_document(path)
    entry = _find(document, name, path)
    hosts = document["hosts"]
    index = next(i for i, item in enumerate(hosts) if item is entry)
    del hosts[index]
    if not len(hosts):
        del document["hosts"]
    return write_document(path, document)


def ssh_config_aliases(path: Path) -> list[str]:
    """The host aliases an ``~/.ssh/config`` names, in file order (patterns left out).

    ``Host a b`` lines give ``a`` and ``b``; names with ``*``, ``?`` or ``!`` are patterns,
    not hosts one can pick. A missing or unreadable file gives no aliases.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    aliases: list[str] = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].replace("=", " ").split()
        if len(words) < 2 or words[0].lower() != "host":
            continue
        for alias in words[1:]:
            if not any(c in alias for c in "*?!") and alias not in aliases:
                aliases.append(alias)
    return aliases
