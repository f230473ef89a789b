"""The checkout, cache and token checks of the families whose weights come from the Hub.

Cosmos 3 and Transfer2.5 download their weights into the host's Hugging Face cache at the
first run (docs/cosmos.md, "Cosmos 3 contract" and "Transfer2.5 contract"), so the doctor
asks what that needs instead of Transfer1's checkpoint files:

- the checkout the container runs: Cosmos 3's image holds only the virtualenv and its
  entrypoint installs the checkout bound at ``/workspace`` at every start (cosmos-framework
  ``Dockerfile:38-53``, ``docker/entrypoint.sh:10``), so ``[profiles.cosmos3] repo_dir``
  must be a cosmos-framework checkout; Transfer2.5's image may carry its own (a
  ``repo_dir``, when set, must hold its ``pyproject.toml`` for ``uv sync``);
- the host's cache (``hf_cache_dir``), mounted so the weights download once per host:
  whether it already holds the default model;
- a token for that first download, found as a run's pre-run check finds it
  (engine/profiles/hf_token.py ``check_token``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cosmos_tui.doctor.context import PREFIX, DoctorContext, prefixed, quoted
from cosmos_tui.doctor.model import CheckResult, failed, passed
from cosmos_tui.engine.profiles.cosmos3_rules import DEFAULT_CHECKPOINT
from cosmos_tui.engine.profiles.hf_token import GUARDRAIL_MODEL, check_token
from cosmos_tui.engine.profiles.transfer25_profile import CHECKPOINT_MODEL
from cosmos_tui.errors import ValidationError


@dataclass(frozen=True)
class HubFamily:
    """What the doctor knows of one family whose weights come from the Hub."""

    section: str  # its [profiles.<section>] table
    model: str  # the default model a first run downloads (nvidia/<model>)
    package: str | None  # the checkout's pyproject name, when it is checked
    repo_url: str
    checkout_required: bool


def hub_family(profile: str) -> HubFamily:
    """The Hub facts of ``cosmos3`` or ``transfer2.5``."""
    if profile == "cosmos3":
        return HubFamily(
            "cosmos3", DEFAULT_CHECKPOINT, "cosmos-framework",
            "https://github.com/NVIDIA/cosmos-framework", checkout_required=True,
        )  # fmt: skip
    return HubFamily(
        "transfer2_5", CHECKPOINT_MODEL, None,
        "https://github.com/nvidia-cosmos/cosmos-transfer2.5", checkout_required=False,
    )  # fmt: skip


_PYPROJECT = (
    'if [ -f "$1/pyproject.toml" ]; then '
    f"printf '{PREFIX}found\\n'; q=\"'\"; "
    # the name of the [project] table, double- or single-quoted, however indented
    'sed -n "/^\\[project\\]/,/^\\[/s/^[[:space:]]*name[[:space:]]*=[[:space:]]*[\\"$q]'
    f'\\([^\\"$q]*\\).*/{PREFIX}name \\1/p" "$1/pyproject.toml" | head -n 1; '
    f"else printf '{PREFIX}missing\\n'; fi"
)


async def check_hub_checkout(ctx: DoctorContext) -> CheckResult:
    """The checkout the family's container installs or runs, where one is needed."""
    title = "Model checkout matches the image"
    family = hub_family(ctx.needs.profile)
    repo_setting = ctx.settings.repo_dir
    clone = f"git clone {family.repo_url} ~/{family.repo_url.rsplit('/', 1)[1]} (on the host)"
    where = f"[profiles.{family.section}] repo_dir"
    if not repo_setting:
        if family.checkout_required:
            return failed(
                "checkout",
                title,
                f"{where} is not set: the image holds only the virtualenv and installs the "
                "checkout bound at /workspace at every start (Dockerfile:38-53, "
                "docker/entrypoint.sh:10)",
                f"{clone}, then set {where} to it",
            )
        return passed("checkout", title, f"the image's own checkout ({where} is not set)")
    repo = ctx.resolve(repo_setting)
    lines = prefixed((await ctx.script(_PYPROJECT, repo)).stdout)
    if "found" not in lines:
        return failed(
            "checkout",
            title,
            f"no {family.package or 'model'} checkout at {repo} (no pyproject.toml)",
            f"{clone}, or point {where} at one",
        )
    name = next((line.split(" ", 1)[1] for line in lines if line.startswith("name ")), "")
    if family.package is not None and _normal(name) != _normal(family.package):
        return failed(
            "checkout",
            title,
            f"{repo} is not a {family.package} checkout (its pyproject.toml names "
            f"{name or 'no project'})",
            f"{clone}, or point {where} at one",
        )
    return passed("checkout", title, f"{family.package or 'a'} checkout at {quoted(repo)}")


def _normal(name: str) -> str:
    """A project name as packaging compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _cache(ctx: DoctorContext) -> str | None:
    setting = ctx.settings.hf_cache_dir or ctx.config.hf_cache_dir
    return ctx.resolve(setting) if setting else None


async def _holds(ctx: DoctorContext, cache: str, model: str) -> bool:
    folder = f"{cache}/hub/models--nvidia--{model}"
    return (await ctx.host.run(["test", "-d", folder], check=False)).exit_status == 0


async def check_hub_cache(ctx: DoctorContext) -> CheckResult:
    """The host's Hugging Face cache is configured; whether it holds the default model."""
    title = "Checkpoints present"
    family = hub_family(ctx.needs.profile)
    cache = _cache(ctx)
    if cache is None:  # runs work, at the price of a download each
        return passed(
            "checkpoints",
            title,
            "no Hugging Face cache on the host is configured: every run downloads "
            f"nvidia/{family.model} again inside its container (set hf_cache_dir in "
            f"[profiles.{family.section}] or the host's, e.g. .cache/huggingface)",
        )
    if await _holds(ctx, cache, family.model):
        return passed("checkpoints", title, f"{cache} holds nvidia/{family.model}")
    return passed(
        "checkpoints",
        title,
        f"the first run downloads nvidia/{family.model} into {cache} (not there yet)",
    )


async def check_hub_token(ctx: DoctorContext) -> CheckResult:
    """A token for the first download, found as a run's pre-run check finds it."""
    # lazy: engine.launch pulls SQLAlchemy (~300 ms), which no other check needs
    from cosmos_tui.engine.launch import RemoteLayout, host_env

    title = "Hugging Face token (gated models)"
    family = hub_family(ctx.needs.profile)
    settings = ctx.settings
    layout = RemoteLayout(ctx.home, ctx.tool_dir, "doctor")
    try:
        await check_token(ctx.host, layout, settings, ctx.environ, section=family.section,
                          models=[family.model, GUARDRAIL_MODEL])  # fmt: skip
    except ValidationError as exc:
        if exc.field == "token_file":
            fix = (
                f"put a Hugging Face token in {layout.resolve(settings.token_file or '')} on "
                f"the host, or remove token_file from [profiles.{family.section}]"
            )
        else:
            fix = (
                f"export {settings.token_env}=hf_... before running cosmos, or set token_env "
                f"or token_file in [profiles.{family.section}]; accept the licence of "
                f"nvidia/{family.model} and nvidia/{GUARDRAIL_MODEL} on huggingface.co"
            )
        return failed("hf_token", title, exc.message, fix)
    if settings.token_file:
        detail = f"the token file {layout.resolve(settings.token_file)} is on the host"
    elif ctx.environ.get(settings.token_env):
        detail = f"${settings.token_env} is set (passed to containers)"
    elif {"HF_TOKEN", "HF_TOKEN_PATH"} & set(host_env(ctx.config, ctx.environ)):
        detail = "the host's env table gives containers a token"
    else:
        detail = (
            f"not needed yet: {_cache(ctx)} already holds nvidia/{family.model} and "
            f"nvidia/{GUARDRAIL_MODEL}"
        )
    return passed("hf_token", title, detail)
