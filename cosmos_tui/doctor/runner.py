"""Run the doctor's checks on one host, or on several at once.

Checks run in a fixed order on one host (later ones use what earlier ones learned: the
home directory, whether Docker answers, whether the image is there); hosts run in
parallel. SSH failing skips the rest: nothing else can be asked.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence

from cosmos_tui.config import Config
from cosmos_tui.doctor.checks_docker import (
    check_checkout,
    check_docker,
    check_gpu_container,
    check_image,
)
from cosmos_tui.doctor.checks_gpu import check_gpu_arch, check_gpu_memory
from cosmos_tui.doctor.checks_host import (
    check_disk,
    check_greeting,
    check_latency,
    check_shm,
    check_ssh,
)
from cosmos_tui.doctor.checks_model import check_checkpoints, check_hf_token
from cosmos_tui.doctor.context import DoctorContext
from cosmos_tui.doctor.model import CheckResult, DoctorReport, Outcome, failed, skipped
from cosmos_tui.doctor.needs import profile_needs
from cosmos_tui.engine.profiles.base import profile_names, settings_for
from cosmos_tui.errors import ConfigError, CosmosError
from cosmos_tui.remote.docker_probe import PullProgress
from cosmos_tui.remote.host import RemoteHost

Check = Callable[[DoctorContext], Awaitable[CheckResult]]

CHECKS: tuple[tuple[str, str, Check], ...] = (
    ("ssh", "SSH login and host key", check_ssh),
    ("latency", "Latency", check_latency),
    ("greeting", "Quiet login shell", check_greeting),
    ("docker", "Docker reachable and permitted", check_docker),
    ("image", "Model image present", check_image),
    ("gpu_container", "NVIDIA runtime: GPUs inside a container", check_gpu_container),
    ("checkout", "Model checkout matches the image", check_checkout),
    ("checkpoints", "Checkpoints present", check_checkpoints),
    ("hf_token", "Hugging Face token (gated models)", check_hf_token),
    ("gpu_memory", "GPU memory", check_gpu_memory),
    ("gpu_arch", "GPU architecture", check_gpu_arch),
    ("disk", "Free disk in the tool dir", check_disk),
    ("shm", "Shared memory (/dev/shm)", check_shm),
)
CHECK_IDS = tuple(check_id for check_id, _title, _check in CHECKS)
# Quick enough to run before a host's first run of a session: no test container, and
# not the GPUs' free memory (runs of the queue may hold them; placement waits for them).
CHEAP_CHECKS = frozenset(
    {"ssh", "latency", "greeting", "docker", "image", "checkout", "checkpoints", "hf_token",
     "disk"}
)  # fmt: skip
# For Cosmos 3 and Transfer2.5 these two are the launch's (hf_token.check_token, with the
# run's own model), not the quick checks before a run.
HUB_LAUNCH_CHECKS = frozenset({"checkpoints", "hf_token"})


def profile_image(config: Config, profile: str, host_image: str) -> str:
    """The image runs of ``profile`` use on a host (the profile's, else the host's)."""
    return settings_for(config, profile).image or host_image


def check_profile(config: Config, profile: str) -> None:
    """Raise ConfigError when ``profile`` is neither configured nor a known family."""
    if profile not in config.profiles and profile not in profile_names():
        known = ", ".join(sorted({*config.profiles, *profile_names()}))
        raise ConfigError(f"no profile named '{profile}' (known: {known})", path=config.source)


async def run_doctor(
    host: RemoteHost,
    config: Config,
    profile: str = "transfer1",
    *,
    only: frozenset[str] | None = None,
    fix: bool = False,
    on_pull: Callable[[PullProgress], None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> DoctorReport:
    """Check one host for runs of ``profile``; never raises for what the host gets wrong.

    Args:
        host: The host (its connection opens here).
        config: The configuration (defaults, profiles).
        profile: The model profile whose needs are checked.
        only: Run just these checks (the others are left out of the report).
        fix: Repair what can be repaired (pull a missing image).
        on_pull: Receives the pull's progress events.
        environ: The local environment (``HF_TOKEN``); None reads os.environ.
    """
    check_profile(config, profile)
    ctx = DoctorContext(
        host=host,
        config=host.config,
        needs=profile_needs(profile, config.defaults),
        image=profile_image(config, profile, host.config.docker_image),
        environ=os.environ if environ is None else environ,
        fix=fix,
        on_pull=on_pull,
        settings=settings_for(config, profile),
    )
    results: list[CheckResult] = []
    for check_id, title, check in CHECKS:
        if only is not None and check_id not in only:
            continue
        if results and results[0].check == "ssh" and results[0].outcome is Outcome.FAIL:
            results.append(skipped(check_id, title, "needs SSH"))
            continue
        try:
            results.append(await check(ctx))
        except CosmosError as exc:  # the connection dropped mid-way, a timeout...
            results.append(failed(check_id, title, exc.message, f"cosmos doctor {ctx.name}"))
    return DoctorReport(host.name, profile, tuple(results))


async def run_doctors(
    hosts: Sequence[RemoteHost], config: Config, profile: str = "transfer1", **options: object
) -> list[DoctorReport]:
    """Check several hosts at once; reports in the order of ``hosts``."""
    return list(
        await asyncio.gather(*(run_doctor(h, config, profile, **options) for h in hosts))  # type: ignore[arg-type]
    )
