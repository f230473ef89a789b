"""Checks of the host itself: SSH, latency, a quiet login shell, disk, shared memory.

The GPU checks are in :mod:`cosmos_tui.doctor.checks_gpu`.
"""

from __future__ import annotations

from cosmos_tui.doctor.context import PREFIX, DoctorContext, prefixed, quoted
from cosmos_tui.doctor.model import CheckResult, failed, passed
from cosmos_tui.doctor.needs import MIN_FREE_DISK_MIB, MIN_SHM_MIB
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
