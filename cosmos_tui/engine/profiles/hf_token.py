"""The Hugging Face token check shared by the families that download gated weights.

Cosmos 3 and Transfer2.5 download their checkpoints into the host's Hugging Face cache at
the first run (docs/cosmos.md, "Cosmos 3 contract" and "Transfer2.5 contract"). Without a
token that download fails only after the upload and the container start, so each
family's ``preflight`` asks this module first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from cosmos_tui.errors import ValidationError

if TYPE_CHECKING:
    from cosmos_tui.config import HostConfig, ProfileConfig
    from cosmos_tui.engine.launch import RemoteLayout
    from cosmos_tui.remote import RemoteHost


def chosen_negative_prompt(params: object) -> str | None:
    """The run's negative prompt unless it is ``[defaults]``' built-in one.

    That text is upstream Transfer1's; Cosmos 3 and Transfer2.5 keep their own default
    unless the user chose another text.
    """
    # lazy: config (~10 ms) stays out of 'cosmos diagnose', which loads profiles.cosmos3
    # (and so this module) for its log parser
    from cosmos_tui.config import DEFAULT_NEGATIVE_PROMPT

    text = getattr(params, "negative_prompt", None)
    return None if not text or text == DEFAULT_NEGATIVE_PROMPT else text


# The gated guardrail models a guarded Cosmos 3 or Transfer2.5 run downloads (Cosmos 3:
# auxiliary/guardrail/common/core.py:13-16; Transfer2.5: docs/setup.md:112-115).
GUARDRAIL_MODEL = "Cosmos-Guardrail1"
CONTAINER_HF_HOME = "/root/.cache/huggingface"  # huggingface_hub's default for root
CONTAINER_TOKEN = "/cosmos-tui/secrets/hf_token"  # noqa: S105 - a path, not a token


def hf_env(host: HostConfig, settings: ProfileConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """Return a gated-weights family's container environment (Cosmos 3, Transfer2.5).

    The host's env table (``$NAME`` read from ``environ``), ``HF_HOME`` when a cache is
    mounted (unless the table sets it), the token from the settings' ``token_env`` (unless
    the table sets ``HF_TOKEN``), and ``HF_TOKEN_PATH`` when a token file is mounted.
    """
    # lazy: engine.launch pulls SQLAlchemy (~300 ms); the doctor and 'cosmos diagnose'
    # load this module without it
    from cosmos_tui.engine.launch import host_env

    env = host_env(host, environ)
    if getattr(settings, "hf_cache_dir", None) or getattr(host, "hf_cache_dir", None):
        env.setdefault("HF_HOME", CONTAINER_HF_HOME)
    token = environ.get(getattr(settings, "token_env", "HF_TOKEN"))
    if token and "HF_TOKEN" not in env:
        env["HF_TOKEN"] = token
    if getattr(settings, "token_file", None):
        env["HF_TOKEN_PATH"] = CONTAINER_TOKEN
    return env


# One round trip for every model a run downloads: prints "missing <model>" for one the
# cache lacks (no folder, or one with no snapshot: a refused first attempt leaves refs/
# alone), "cut <model>" for one whose download stopped mid-file (huggingface_hub keeps a
# blob as <hash>.incomplete until it is whole), then "checked".
_CACHE_SCRIPT = """cache=$1; shift
for model; do
  dir="$cache/hub/models--nvidia--$model"
  if [ -z "$(ls -A "$dir/snapshots" 2>/dev/null)" ]; then echo "missing $model"
  elif [ -n "$(find "$dir/blobs" -name '*.incomplete' 2>/dev/null | head -n 1)" ]; then
    echo "cut $model"
  fi
done
echo checked"""


async def check_token(
    host: RemoteHost,
    layout: RemoteLayout,
    settings: ProfileConfig,
    environ: Mapping[str, str],
    *,
    section: str,
    models: Sequence[str],
) -> None:
    """Refuse a run with no token whose gated weights are not in the host's cache yet.

    Args:
        host: The run's host.
        layout: Its folders (resolves ``~``-relative settings).
        settings: The family's ``[profiles.<section>]`` settings.
        environ: The local environment (the token variable is read here, never stored).
        section: The settings table's name, for the message.
        models: The Hugging Face models the run downloads (``nvidia/<model>``); none
            when it needs no download (a local checkpoint folder).

    Raises:
        ValidationError: A missing or empty token file, or no token while a model is
            not in the cache (or its download was interrupted), saying where to put a
            token.
    """
    if settings.token_file:
        path = layout.resolve(settings.token_file)
        found = await host.run(["test", "-s", path], check=False)
        if found.exit_status != 0:
            raise ValidationError(
                f"the token file {path} ([profiles.{section}] token_file) is missing or "
                f"empty on {host.name}; put a Hugging Face token there",
                field="token_file",
            )
        return
    if environ.get(settings.token_env) or not models:
        return
    # lazy: engine.launch pulls SQLAlchemy (~300 ms); the doctor and 'cosmos diagnose'
    # load this module without it
    from cosmos_tui.engine.launch import host_env

    if {"HF_TOKEN", "HF_TOKEN_PATH"} & set(host_env(host.config, environ)):
        return  # the host's [hosts.env] table gives the container a token
    cache = settings.hf_cache_dir or host.config.hf_cache_dir
    report: dict[str, str] | None = None
    if cache:
        argv = ["sh", "-c", _CACHE_SCRIPT, "sh", layout.resolve(cache), *models]
        report = read_cache_report((await host.run(argv, check=False)).stdout, models)
    if report == {}:
        return
    if report is None and cache:
        raise ValidationError(
            f"no Hugging Face token: ${settings.token_env} is not set here and "
            f"{host.name}'s cache ({cache}) could not be looked into, so a gated download "
            "may fail in the container; set the variable (or token_env / token_file in "
            f"[profiles.{section}])",
            field="token",
        )
    lacks = []
    missing = [m for m in models if report is None or report.get(m) == "missing"]
    cut = [m for m in models if report is not None and report.get(m) == "cut"]
    if missing:
        lacks.append(f"has no {' or '.join(missing)} yet")
    if cut:
        lacks.append(
            f"holds an interrupted download of {' and '.join(cut)} (a *.incomplete file in "
            f"{' and '.join(f'hub/models--nvidia--{m}/blobs' for m in cut)}; delete it if no "
            "download is under way)"
        )
    raise ValidationError(
        f"no Hugging Face token: ${settings.token_env} is not set here and "
        f"{host.name}'s cache ({cache or 'none configured'}) {' and '.join(lacks)}, so "
        "its gated download would fail; set the variable (or token_env / token_file in "
        f"[profiles.{section}]) and accept the licence on huggingface.co",
        field="token",
    )


def read_cache_report(stdout: str, models: Sequence[str]) -> dict[str, str] | None:
    """Read the cache script's lines: model -> ``missing`` or ``cut`` (None: no report).

    Lines that are not the script's (a login banner, a logout message) are passed over;
    a report without its ``checked`` line did not run to its end.
    """
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if "checked" not in lines:
        return None
    report = {}
    for line in lines[: len(lines) - 1 - lines[::-1].index("checked")]:
        word, _, model = line.partition(" ")
        if word in ("missing", "cut") and model in models:
            report[model] = word
    return report
