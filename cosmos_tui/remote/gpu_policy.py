"""Which GPUs of a host a run may be given: health, exclusions, MIG and other users.

One function decides, for the scheduler, ``cosmos status`` and the GPUs pane alike. It
starts from the health nvidia-smi's row gave (:mod:`cosmos_tui.remote.smi`) and applies
the host's policy:

- ``excluded``: listed in the host's ``gpu_exclude`` (by index or UUID), or a known
  display-only model (the DGX Station's "DGX Display") unless listed in ``gpu_include``;
- ``MIG``: MIG mode is on; runs are placed on whole GPUs only, so such a GPU is offered
  only when the host sets ``gpu_mig = true`` (the run then gets the whole GPU);
- ``busy``: a compute process that is not one of our runs uses it.

A GPU is offered to a run only when its health is ``ok`` (or ``MIG`` with ``gpu_mig``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace

from cosmos_tui.config import HostConfig
from cosmos_tui.domain import GpuHealth, GpuProcess, GpuSample

# Display-only GPUs that share a host with compute GPUs (matched in the nvidia-smi name).
DISPLAY_MODELS: tuple[str, ...] = ("DGX Display",)


def is_display_model(name: str) -> bool:
    """True for a known display-only GPU model."""
    return any(model.lower() in name.lower() for model in DISPLAY_MODELS)


def foreign_indices(
    samples: Sequence[GpuSample], processes: Iterable[GpuProcess], ours: Collection[str]
) -> frozenset[int]:
    """Indices with a compute process that is not one of ``ours`` (runs, containers)."""
    by_uuid = {s.uuid: s.index for s in samples}
    own = set(ours)
    busy: set[int] = set()
    for process in processes:
        if process.run_id is not None and process.run_id in own:
            continue  # a container of ours (telemetry found its run label)
        if process.container_id and (
            process.container_id in own or process.container_id[:12] in own
        ):
            continue
        index = by_uuid.get(process.gpu_uuid)
        if index is not None:
            busy.add(index)
    return frozenset(busy)


def _excluded(host: HostConfig, sample: GpuSample) -> str | None:
    listed = set(host.gpu_exclude)
    if str(sample.index) in listed or sample.uuid in listed:
        return "excluded by the host's gpu_exclude"
    included = set(host.gpu_include)
    if is_display_model(sample.name) and not (
        str(sample.index) in included or sample.uuid in included
    ):
        return f"{sample.name} is a display GPU (list it in gpu_include to use it)"
    return None


def with_policy(
    host: HostConfig,
    samples: Sequence[GpuSample],
    processes: Iterable[GpuProcess] = (),
    ours: Collection[str] = (),
) -> tuple[GpuSample, ...]:
    """Return ``samples`` with the host's policy applied to each GPU's health."""
    busy = foreign_indices(samples, processes, ours)
    out = []
    for sample in samples:
        reason = _excluded(host, sample)
        if reason is not None:
            sample = replace(sample, health=GpuHealth.EXCLUDED, health_reason=reason)
        elif sample.health is GpuHealth.OK and sample.index in busy:
            sample = replace(
                sample, health=GpuHealth.BUSY, health_reason="a process of someone else uses it"
            )
        out.append(sample)
    return tuple(out)


def offered(host: HostConfig, sample: GpuSample) -> bool:
    """True when a run may be given this GPU (after :func:`with_policy`)."""
    if sample.health is GpuHealth.OK:
        return True
    return sample.health is GpuHealth.MIG and host.gpu_mig


def usable_indices(
    host: HostConfig,
    samples: Sequence[GpuSample],
    processes: Iterable[GpuProcess] = (),
    ours: Collection[str] = (),
) -> tuple[int, ...]:
    """The indices a run may be given now, in order."""
    return tuple(
        sorted(s.index for s in with_policy(host, samples, processes, ours) if offered(host, s))
    )
