"""The doctor's GPU checks: free memory and compute capability of the GPUs runs may get.

One nvidia-smi query serves both checks, read by the same parser as the telemetry and
``cosmos status`` (:func:`cosmos_tui.remote.gpu_query.query_gpus`) and judged by the same
policy as the scheduler (:mod:`cosmos_tui.remote.gpu_policy`): a GPU that requires a reset,
is lost, errors, is throttled, is excluded or has MIG on (without ``gpu_mig``) is not
counted, and a host whose nvidia-smi gives no rows fails with the reason ``cosmos status``
and the GPUs pane give.
"""

from __future__ import annotations

from cosmos_tui.doctor.context import DoctorContext
from cosmos_tui.doctor.model import CheckResult, failed, passed, skipped
from cosmos_tui.domain import GpuHealth, GpuSample
from cosmos_tui.remote.gpu_policy import offered, with_policy
from cosmos_tui.remote.gpu_query import GpuReading, query_gpus
from cosmos_tui.remote.smi import FULL_FIELDS, GpuState
from cosmos_tui.safe_text import one_line

GIB = 1024
# The telemetry's fields plus the compute capability; a driver that rejects one of them
# is asked the basic fields (query_gpus), and the architecture check is then skipped.
DOCTOR_FIELDS = (*FULL_FIELDS, "compute_cap")

DRIVER_FIX = (
    "install the NVIDIA driver on the host (e.g. sudo apt-get install -y nvidia-driver-550) "
    "and check that 'nvidia-smi' works there"
)
_STATE_FIX = {
    GpuState.VERSION_MISMATCH: (
        "reboot the host (or reload the nvidia kernel modules) so that the loaded driver "
        "matches the installed libraries"
    ),
    GpuState.NO_DEVICES: (
        "check that the host sees its GPUs: lspci | grep -i nvidia, and the NVRM lines of "
        "sudo dmesg"
    ),
}
_HEALTH_FIX = {
    GpuHealth.REQUIRES_RESET: (
        "reset GPU {index} when nothing uses it (sudo nvidia-smi --gpu-reset -i {index}) "
        "or reboot the host"
    ),
    GpuHealth.LOST: "reboot the host; if GPU {index} stays lost, check the kernel log for Xid 79",
    GpuHealth.ERROR: (
        "check the kernel log for Xid errors (sudo dmesg | grep -i xid), then reset GPU "
        "{index} (sudo nvidia-smi --gpu-reset -i {index}) or reboot the host"
    ),
    GpuHealth.THROTTLED: (
        "GPU {index} runs with its clocks held down: check its cooling and power "
        "(nvidia-smi -q -d PERFORMANCE)"
    ),
    GpuHealth.MIG: (
        "turn MIG off (sudo nvidia-smi -i {index} -mig 0, then reset the GPU) or set "
        "gpu_mig = true for the host (runs then get whole GPUs)"
    ),
    GpuHealth.EXCLUDED: (
        "remove GPU {index} from the host's gpu_exclude (a display GPU: list it in gpu_include)"
    ),
}


async def gpu_reading(ctx: DoctorContext) -> GpuReading:
    """The host's GPUs, queried once per doctor run."""
    if "gpus" not in ctx.facts:
        ctx.facts["gpus"] = await query_gpus(ctx.host.ssh, DOCTOR_FIELDS)
    return ctx.facts["gpus"]  # type: ignore[return-value]


def _no_rows(check: str, title: str, reading: GpuReading) -> CheckResult:
    """A failure for a host whose nvidia-smi gave no GPU rows: its reason and fix."""
    detail = one_line(reading.reason or f"nvidia-smi lists no GPU ({reading.state.value})")
    return failed(check, title, detail, _STATE_FIX.get(reading.state, DRIVER_FIX))


def _judged(ctx: DoctorContext, reading: GpuReading) -> tuple[list[GpuSample], list[GpuSample]]:
    """The GPUs a run may get, and the others (each with its health), as placement judges."""
    judged = with_policy(ctx.config, reading.samples)
    usable = [s for s in judged if offered(ctx.config, s)]
    return usable, [s for s in judged if not offered(ctx.config, s)]


def _unusable_text(samples: list[GpuSample]) -> str:
    return "; ".join(
        f"GPU {s.index} {s.health.value}"
        + (f": {one_line(s.health_reason)}" if s.health_reason else "")
        for s in samples
    )


def _free_mib(sample: GpuSample) -> float | None:
    if sample.memory_total_mib is None or sample.memory_used_mib is None:
        return None
    return sample.memory_total_mib - sample.memory_used_mib


async def check_gpu_memory(ctx: DoctorContext) -> CheckResult:
    """Free memory of the GPUs runs may get, against the profile's floor per GPU."""
    title = "GPU memory"
    reading = await gpu_reading(ctx)
    if not reading.samples:
        return _no_rows("gpu_memory", title, reading)
    usable, others = _judged(ctx, reading)
    floor = ctx.needs.min_gpu_memory_mib
    if not usable:
        first = others[0]
        return failed(
            "gpu_memory",
            title,
            f"no GPU is offered to runs ({_unusable_text(others)})",
            _HEALTH_FIX.get(first.health, DRIVER_FIX).format(index=first.index),
        )
    listed = ", ".join(
        f"GPU {s.index}: {(_free_mib(s) or 0) / GIB:.0f}/{(s.memory_total_mib or 0) / GIB:.0f} "
        "GiB free"
        for s in usable
    )
    if floor is None:
        return passed(
            "gpu_memory", title, f"{listed}; no documented floor per GPU for {ctx.needs.profile}"
        )
    fit = [s for s in usable if (_free_mib(s) or 0) >= floor]
    if not fit:
        big = any((s.memory_total_mib or 0) >= floor for s in usable)
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
    detail = f"{len(fit)} of {len(reading.samples)} GPUs fit ({listed})"
    if others:
        detail += f"; not offered: {_unusable_text(others)}"
    return passed("gpu_memory", title, detail)


def _capability(text: str | None) -> tuple[int, int] | None:
    """``"8.9"`` as (8, 9); None when not reported or not a capability."""
    major, _, minor = (text or "").partition(".")
    if major.isdecimal() and minor.isdecimal():
        return int(major), int(minor)
    return None


async def check_gpu_arch(ctx: DoctorContext) -> CheckResult:
    """The compute capability of the GPUs runs may get, against the image's minimum."""
    title = "GPU architecture"
    reading = await gpu_reading(ctx)
    if not reading.samples:
        return _no_rows("gpu_arch", title, reading)
    usable, others = _judged(ctx, reading)
    # With no GPU offered (the memory check says why) the hardware is still judged.
    candidates = usable or [s for s in others if s.health is not GpuHealth.EXCLUDED]
    low = ctx.needs.min_compute
    if low is None:
        return skipped("gpu_arch", title, f"no documented minimum for {ctx.needs.profile}")
    caps = [(s, cap) for s in candidates if (cap := _capability(s.compute_cap))]
    if not caps:
        return skipped("gpu_arch", title, "this driver's nvidia-smi does not report compute_cap")
    fit = [s for s, cap in caps if cap >= low]
    if not fit:
        sample, cap = caps[0]
        return failed(
            "gpu_arch",
            title,
            f"{one_line(sample.name)} is compute capability {cap[0]}.{cap[1]}; the image "
            f"needs {low[0]}.{low[1]} or newer (Ampere)",
            "use a host with Ampere, Hopper or newer GPUs (A100, L40S, H100)",
        )
    name = one_line(fit[0].name)
    return passed("gpu_arch", title, f"{name}: compute capability {low[0]}.{low[1]} or newer")
