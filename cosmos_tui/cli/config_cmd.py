"""``cosmos config``: create, show, locate and edit the TOML configuration."""

from __future__ import annotations

import dataclasses
import os
import stat
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import click

from cosmos_tui.cli.context import CliContext, echo, echo_json, fail, guard
from cosmos_tui.cli.options import NEGATIVE_ARGS
from cosmos_tui.config import default_config_path
from cosmos_tui.errors import ConfigError
from cosmos_tui.safe_text import is_secret_name, mask_secrets

pass_cli = click.make_pass_decorator(CliContext)

TEMPLATE = """\
# cosmos-tui configuration. Every key is optional unless marked; see README "Configuration".
# Unknown keys are reported as errors, so a typo never goes unnoticed.

# One [[hosts]] table per GPU server reached over SSH.
# [[hosts]]
# name = "gpu1"                         # required: short name used by the CLI and UI
# hostname = "gpu1.example.org"         # required: host, address or ~/.ssh/config alias
# user = "me"
# identity_file = "~/.ssh/id_ed25519"
# remote_repo_dir = "cosmos-transfer1"  # checkout of cosmos-transfer1 (relative to home)
# checkpoints_dir = "cosmos-transfer1/checkpoints"
# docker_image = "nvcr.io/nvidia/cosmos/cosmos-transfer1:latest"
# gpu_limit = 8                         # at most this many GPUs held at once
# gpu_exclude = ["3", "GPU-..."]        # never offered: index or UUID ('nvidia-smi -L')
# gpu_mig = false                       # offer MIG-enabled GPUs (as whole GPUs)

[defaults]
# Generation defaults; every run can override them.
num_steps = 35
guidance = 5.0
seed = 1
sigma_max = 70.0
fps = 24
blur_strength = "medium"
canny_threshold = "medium"
vis_weight = 0.25
edge_weight = 0.25
depth_weight = 0.25
seg_weight = 0.25
num_gpus = 1

[timeouts]
connect = 10.0
command = 30.0
run = 14400.0

[batching]
enabled = true
max_size = 8

[ui]
theme = "textual-dark"

[keymap]
# "quit" = "ctrl+q"
"""


def _path(ctx: CliContext) -> Path:
    return ctx.config_path or default_config_path()


@click.group()
def config() -> None:
    """Create, show, locate or change the configuration file."""


@config.command("path")
@pass_cli
def config_path(ctx: CliContext) -> None:
    """Print where the config file is (or would be)."""
    echo(str(_path(ctx)))


@config.command("init")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@pass_cli
def config_init(ctx: CliContext, force: bool) -> None:
    """Write a commented config file with the defaults."""
    path = _path(ctx)
    if path.exists() and not force:
        fail(f"{path} already exists; edit it, or use --force to overwrite it")
    guard(lambda: _write_atomically(path, TEMPLATE))
    echo(f"wrote {path}")


@config.command("show")
@click.option("--json", "as_json", is_flag=True)
@click.option("--show-secrets", is_flag=True, help="Print env values and tokens instead of '***'.")
@pass_cli
def config_show(ctx: CliContext, as_json: bool, show_secrets: bool) -> None:
    """Print the effective configuration (file, environment and defaults merged).

    Values of every host's ``env`` and of keys named like a secret (TOKEN, KEY, SECRET,
    PASSWORD) are printed as '***' unless --show-secrets is given.
    """
    settings = ctx.load_config()
    data = dataclasses.asdict(settings)
    if not show_secrets:
        data = mask_secrets(data)
    data["source"] = str(settings.source) if settings.source else None
    data["data_dir"] = str(settings.data_dir)
    data["outputs_dir"] = str(settings.outputs_dir)
    data["inputs_dir"] = str(settings.inputs_dir)
    if as_json:
        echo_json(data)
        return
    # lazy: tomlkit (~10 ms) only for TOML output and edits; 'config path' and --json skip it
    import tomlkit

    data.pop("source")
    echo(f"# from {settings.source}")
    echo(tomlkit.dumps(_drop_none(data)))


@config.command("set", context_settings=NEGATIVE_ARGS)
@click.argument("key")
@click.argument("value")
@pass_cli
def config_set(ctx: CliContext, key: str, value: str) -> None:
    """Set KEY (dotted, e.g. defaults.num_steps or hosts.gpu1.user) to VALUE.

    VALUE is read as TOML (20, -1, 0.5, true, "text", ["a", "b"]); anything else is a
    string (a text starting with '-' works too: cosmos config set defaults.negative_prompt
    -- "-blurry").
    The result is validated before it is written; comments in the file are kept.
    """
    # lazy: tomlkit and the parser (~25 ms) are not needed by 'config path' or 'config init'
    import tomlkit

    from cosmos_tui.config_parse import parse_config

    path = _path(ctx)
    document = guard(lambda: _read_document(path))
    parts = key.split(".")
    if len(parts) < 2 or not all(parts):
        fail(f"'{key}' is not a dotted key; use SECTION.KEY, e.g. defaults.num_steps")
    parsed = _parse_value(value)
    if parts[0] == "hosts":
        if len(parts) != 3:
            fail("host keys are hosts.NAME.KEY, e.g. hosts.gpu1.user")
        hosts = document.get("hosts")
        match = [h for h in (hosts or []) if h.get("name") == parts[1]]
        if not match:
            fail(f"no host named '{parts[1]}' in {path}; add a [[hosts]] table first")
        match[0][parts[2]] = parsed
    else:
        table: Any = document
        for depth, part in enumerate(parts[:-1]):
            if part not in table:
                table[part] = tomlkit.table()
            table = table[part]
            if not isinstance(table, dict):
                fail(f"'{'.'.join(parts[: depth + 1])}' is a value, not a table; set it directly")
        table[parts[-1]] = parsed
    new_text = tomlkit.dumps(document)
    guard(lambda: parse_config(tomllib.loads(new_text), path, new_text))
    guard(lambda: _write_atomically(path, new_text))
    shown = tomlkit.item(parsed).as_string()
    if _is_secret_key(parts):
        shown = "\"***\" (hidden; 'cosmos config show --show-secrets' prints it)"
    echo(f"{key} = {shown}")


def _is_secret_key(parts: list[str]) -> bool:
    """Whether the dotted key names an env table, an env value or a secret-looking key."""
    return "env" in parts[:-1] or parts[-1] == "env" or is_secret_name(parts[-1])


def _read_document(path: Path) -> Any:
    if not path.exists():
        return _parse_document("", path)
    try:
        return _parse_document(path.read_text(encoding="utf-8"), path)
    except UnicodeDecodeError as exc:
        raise ConfigError("is not UTF-8 text; save it as UTF-8", path=path) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read the config file: {exc.strerror or exc}", path=path) from exc


def _write_atomically(path: Path, text: str) -> None:
    """Replace the config file's content with ``text`` in one rename.

    A symlinked config is followed: the file it points to is replaced and the link
    stays. The file keeps its permission bits (a 0600 file holding a token stays 0600);
    a new file is created 0600, whatever the umask. The temporary file is created
    private (mkstemp) beside the target, so it is never readable by others either.
    """
    target = Path(os.path.realpath(path))
    temporary: Path | None = None
    try:
        mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o600
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        temporary = Path(name)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fchmod(stream.fileno(), mode)
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except OSError as exc:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise ConfigError(
            f"cannot write the config file: {exc.strerror or exc}", path=path
        ) from exc


def _parse_document(text: str, path: Path) -> Any:
    # lazy: see config_show
    import tomlkit
    from tomlkit.exceptions import ParseError

    try:
        return tomlkit.parse(text)
    except ParseError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=path, line=exc.line) from exc


def _parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value
