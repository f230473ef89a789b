"""Checks of the model's files: each checkpoint the profile needs, and the Hugging Face token."""

from __future__ import annotations

from cosmos_tui.doctor.checks_hub import check_hub_cache, check_hub_token
from cosmos_tui.doctor.context import PREFIX, DoctorContext, prefixed, quoted
from cosmos_tui.doctor.model import CheckResult, failed, passed
from cosmos_tui.doctor.needs import DOWNLOAD_COMMAND

# For each path: "<size> <path>" when it is a file, "missing <path>" otherwise.
_SIZES = (
    'base=$1; shift; for f in "$@"; do '
    'if [ -f "$base/$f" ]; then '
    f'printf \'{PREFIX}%s %s\\n\' "$(wc -c < "$base/$f" | tr -d \' \')" "$f"; '
    f"else printf '{PREFIX}missing %s\\n' \"$f\"; fi; done"
)


async def _sizes(ctx: DoctorContext, paths: list[str]) -> dict[str, int | None]:
    result = await ctx.script(_SIZES, ctx.checkpoints_dir, *paths)
    wanted = set(paths)
    sizes: dict[str, int | None] = {}
    for value in prefixed(result.stdout):
        size, _, path = value.partition(" ")
        if path in wanted:
            sizes[path] = int(size) if size.isdigit() else None
    return sizes


async def check_checkpoints(ctx: DoctorContext) -> CheckResult:
    """Every checkpoint file the profile's controls need is present and not empty."""
    title = "Checkpoints present"
    if ctx.needs.hub_weights:
        return await check_hub_cache(ctx)
    paths = [path for path, _why in ctx.needs.checkpoints]
    sizes = await _sizes(ctx, paths)
    missing = [p for p in paths if sizes.get(p) is None]
    empty = [p for p in paths if sizes.get(p) == 0]
    if missing or empty:
        parts = []
        if missing:
            parts.append(f"missing: {', '.join(missing)}")
        if empty:
            parts.append(f"empty (an interrupted download?): {', '.join(empty)}")
        repo = quoted(ctx.repo_dir)
        return failed(
            "checkpoints",
            title,
            f"under {ctx.checkpoints_dir}: " + "; ".join(parts),
            f"on the host: cd {repo} && HF_TOKEN=hf_... {DOWNLOAD_COMMAND}"
            + (f" (then move them to {ctx.checkpoints_dir})" if not _under_repo(ctx) else ""),
        )
    total = sum(size or 0 for size in sizes.values())
    return passed(
        "checkpoints",
        title,
        f"{len(paths)} files, {total / 1024**3:.1f} GiB, {ctx.checkpoints_dir}",
    )


def _under_repo(ctx: DoctorContext) -> bool:
    return ctx.checkpoints_dir == f"{ctx.repo_dir}/checkpoints"


_TOKEN = f'test -s "$1/token" && echo "{PREFIX}token"; exit 0'


async def check_hf_token(ctx: DoctorContext) -> CheckResult:
    """A Hugging Face token where a gated model still has to be downloaded."""
    title = "Hugging Face token (gated models)"
    if ctx.needs.hub_weights:
        return await check_hub_token(ctx)
    gated = [path for path, _why in ctx.needs.checkpoints if path.startswith(ctx.needs.gated)]
    sizes = await _sizes(ctx, gated) if gated else {}
    if all(sizes.get(path) for path in gated):
        return passed("hf_token", title, "not needed: the gated checkpoints are downloaded")
    if ctx.environ.get("HF_TOKEN") or "HF_TOKEN" in ctx.config.env:
        return passed("hf_token", title, "HF_TOKEN is set (passed to containers)")
    if ctx.config.hf_cache_dir:
        result = await ctx.script(_TOKEN, ctx.resolve(ctx.config.hf_cache_dir))
        if "token" in prefixed(result.stdout):
            return passed("hf_token", title, "a token is saved in the host's Hugging Face cache")
    names = ", ".join(sorted({"/".join(p.split("/")[:2]) for p in gated}))
    return failed(
        "hf_token",
        title,
        f"{names} is gated and not downloaded, and no Hugging Face token is available",
        "accept the model's terms on huggingface.co, then: export HF_TOKEN=hf_... (before "
        "running cosmos), or huggingface-cli login on the host",
    )
