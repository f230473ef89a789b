"""Checks of the host itself: SSH, latency, a quiet login shell, disk, shared memory, GPUs."""

from __future__ import annotations

from cosmos_tui.doctor.context import PREFIX, DoctorContext, prefixed, quoted
from cosmos_tui.doctor.model import CheckResult, failed, passed, skipped
from cosmos_tui.errors import (
    AuthenticationFailed,
    ConfigError,
    HostKeyUnknown,
    HostUnreachable,
)

MAX_LATENCY_MS = 500.0
GIB = 1024


async def check_ssh(ctx: DoctorContext) -> CheckResult:
    """Log in with the configured key, verifying the host key; learn the home directory."""
    title = "SSH login and host key"
    target = f"{ctx.config.user + '@' if ctx.config.user else ''}{ctx.config.hostname}"
    port = f" -p {ctx.config.port}" if ctx.config.port else ""
    try:
        result = await ctx.script(f"printf '{PREFIX}%s\\n' \"$HOME\"")
    except HostKeyUnknown as exc:
        if exc.changed:
            fix = (
                f"ssh-keygen -R '[{ctx.config.hostname}]:{ctx.config.port or 22}' (only if "
                f"the host was reinstalled), then: cosmos host trust {ctx.name}"
            )
        else:
            fix = f"cosmos host trust {ctx.name}"
        return failed("ssh", title, exc.message, fix)
    except AuthenticationFailed as exc:
        key = ctx.config.identity_file or "~/.ssh/id_ed25519"
        return failed("ssh", title, exc.message, f"ssh-copy-id -i {key}.pub{port} {target}")
    except (HostUnreachable, ConfigError) as exc:
        return failed(
            "ssh",
            title,
            exc.message,
            f"ssh{port} {target} true   # must work; fix hostname/port/user with "
            f"'cosmos host edit {ctx.name} --hostname ... --port ...'",
        )
    values = prefixed(result.stdout)
    if result.exit_status != 0 or not values or not values[-1].startswith("/"):
        return failed(
            "ssh",
            title,
            f"logged in, but a command did not run (exit {result.exit_status}: "
            f"{(result.stderr or result.stdout).strip()[-200:]})",
            f"ssh{port} {target} 'echo ok' must print ok: remove any ForceCommand or "
            "restricted shell for this user",
        )
    ctx.home = values[-1]
    return passed("ssh", title, f"{target}{port}, home {ctx.home}")


async def check_latency(ctx: DoctorContext) -> CheckResult:
    """A trivial command's round trip."""
    title = "Latency"
    result = await ctx.host.run(["true"], check=False)
    ms = result.duration_s * 1000
    ctx.facts["greeting"] = result.stdout
    if ms > MAX_LATENCY_MS:
        return failed(
            "latency",
            title,
            f"{ms:.0f} ms per command (more than {MAX_LATENCY_MS:.0f} ms): logs and "
            "status will lag",
            "use a closer network path to the host (its own VPN or a jump host near it: "
            f"cosmos host edit {ctx.name} --hostname ALIAS with ProxyJump in ~/.ssh/config)",
        )
    return passed("latency", title, f"{ms:.0f} ms per command")


async def check_greeting(ctx: DoctorContext) -> CheckResult:
    """A command over SSH prints nothing but its own output."""
    title = "Quiet login shell"
    if "greeting" not in ctx.facts:  # the latency check was left out
        ctx.facts["greeting"] = (await ctx.host.run(["true"], check=False)).stdout
    extra = str(ctx.facts["greeting"])
    if extra.strip():
        shown = extra.strip().splitlines()[0][:60]
        return failed(
            "greeting",
            title,
            f"'true' printed {len(extra)} bytes ('{shown}'): the login shell talks to "
            "non-interactive commands",
            "on the host, print greetings only in interactive shells: wrap the line in "
            '~/.bashrc (or ~/.ssh/rc) in: if [ -n "$PS1" ]; then ...; fi',
        )
    return passed("greeting", title, "commands print only their own output")


_DF = (
    'd=$1; while [ ! -e "$d" ]; do d=$(dirname "$d"); done; '
    f"df -Pk \"$d\" | tail -n 1 | sed 's/^/{PREFIX}/'"
)


async def _free_kib(ctx: DoctorContext, path: str) -> int | None:
    result = await ctx.script(_DF, path)
    for value in reversed(prefixed(result.stdout)):
        fields = value.split()
        if len(fields) >= 4 and fields[3].isdigit():
            return int(fields[3])
    return None


async def check_disk(ctx: DoctorContext) -> CheckResult:
    """Free disk space where runs' inputs and outputs go."""
    from cosmos_tui.doctor.needs import MIN_FREE_DISK_MIB

    title = "Free disk in the tool dir"
    free = await _free_kib(ctx, ctx.tool_dir)
    if free is None:
        return failed("disk", title, f"'df -Pk {ctx.tool_dir}' gave no figure", "install coreutils")
    mib = free // 1024
    if mib < MIN_FREE_DISK_MIB:
        return failed(
            "disk",
            title,
            f"{mib} MiB free under {ctx.tool_dir} (need {MIN_FREE_DISK_MIB} MiB)",
            f"free space there (du -sh {quoted(ctx.tool_dir)}/runs/* shows old runs) or "
            f"move the tool dir: cosmos host edit {ctx.name} --remote-tool-dir /BIG/DISK/cosmos",
        )
    return passed("disk", title, f"{mib / GIB:.1f} GiB free under {ctx.tool_dir}")


async def check_shm(ctx: DoctorContext) -> CheckResult:
    """Shared memory: parallel torchrun shares tensors through /dev/shm (--ipc=host)."""
    from cosmos_tui.doctor.needs import MIN_SHM_MIB

    title = "Shared memory (/dev/shm)"
    free = await _free_kib(ctx, "/dev/shm")
    if free is None or free // 1024 < MIN_SHM_MIB:
        found = "no /dev/shm" if free is None else f"{free // 1024} MiB free"
        return failed(
            "shm",
            title,
            f"{found} (need {MIN_SHM_MIB} MiB)",
            "sudo mount -o remount,size=16G /dev/shm",
        )
    return passed("shm", title, f"{free // 1024 / GIB:.1f} GiB free")


_GPU_QUERY = [
    "nvidia-smi",
    "--query-gpu=index,name,memory.total,memory.used",
    "--format=csv,noheader,nounits",
]


async def _gpus(ctx: DoctorContext) -> list[tuple[int, str, float, float]] | str:
    """(index, name, total MiB, used MiB) per GPU, or why there are none."""
    if "gpus" in ctx.facts:
        return ctx.facts["gpus"]  # type: ignore[return-value]
    result = await ctx.host.run(_GPU_QUERY, check=False)
    rows: list[tuple[int, str, float, float]] = []
    for line in result.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 4 and parts[0].isdigit():
            try:
                rows.append((int(parts[0]), parts[1], float(parts[2]), float(parts[3])))
            except ValueError:
                continue
    found: list[tuple[int, str, float, float]] | str = rows
    if not rows:
        found = (result.stdout + result.stderr).strip()[-200:] or f"exit {result.exit_status}"
    ctx.facts["gpus"] = found
    return found


_DRIVER_FIX = (
    "install the NVIDIA driver on the host (e.g. sudo apt-get install -y nvidia-driver-550) "
    "and check that 'nvidia-smi' works there"
)


async def check_gpu_memory(ctx: DoctorContext) -> CheckResult:
    """Free memory of the host's GPUs against the profile's floor per GPU."""
    title = "GPU memory"
    gpus = await _gpus(ctx)
    floor = ctx.needs.min_gpu_memory_mib
    if isinstance(gpus, str):
        return failed("gpu_memory", title, f"nvidia-smi lists no GPU: {gpus}", _DRIVER_FIX)
    free = {index: total - used for index, _, total, used in gpus}
    fit = [index for index, mib in free.items() if mib >= floor]
    listed = ", ".join(
        f"GPU {i}: {free[i] / GIB:.0f}/{t / GIB:.0f} GiB free" for i, _, t, _ in gpus
    )
    if not fit:
        big = any(total >= floor for _, _, total, _ in gpus)
        fix = (
            "free the GPUs: nvidia-smi --query-compute-apps=pid,used_memory --format=csv "
            "shows who holds them"
            if big
            else f"use a host whose GPUs have at least {floor / GIB:.0f} GB each "
            "(A100 or H100 class)"
        )
        return failed(
            "gpu_memory",
            title,
            f"no GPU has the {floor / GIB:.0f} GiB {ctx.needs.profile} needs free ({listed})",
            fix,
        )
    return passed("gpu_memory", title, f"{len(fit)} of {len(gpus)} GPUs fit ({listed})")


async def check_gpu_arch(ctx: DoctorContext) -> CheckResult:
    """The GPUs' compute capability against the image's minimum."""
    title = "GPU architecture"
    result = await ctx.host.run(
        ["nvidia-smi", "--query-gpu=index,name,compute_cap", "--format=csv,noheader"], check=False
    )
    low = ctx.needs.min_compute
    caps: list[tuple[str, tuple[int, int]]] = []
    for line in result.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[0].isdigit():
            major, _, minor = parts[2].partition(".")
            if major.isdigit() and minor.isdigit():
                caps.append((parts[1], (int(major), int(minor))))
    if not caps:
        if isinstance(await _gpus(ctx), str):
            return failed("gpu_arch", title, "nvidia-smi lists no GPU", _DRIVER_FIX)
        return skipped("gpu_arch", title, "this driver's nvidia-smi does not report compute_cap")
    fit = [name for name, cap in caps if cap >= low]
    if not fit:
        name, cap = caps[0]
        return failed(
            "gpu_arch",
            title,
            f"{name} is compute capability {cap[0]}.{cap[1]}; the image needs "
            f"{low[0]}.{low[1]} or newer (Ampere)",
            "use a host with Ampere, Hopper or newer GPUs (A100, L40S, H100)",
        )
    return passed("gpu_arch", title, f"{fit[0]}: compute capability {low[0]}.{low[1]} or newer")
