"""The one-line explanations of failure kinds: what happened and what to change.

Kept apart from the classifier so the wording can be read (and reviewed) in one place.
The GPU out-of-memory fix is chosen from the figures of PyTorch's message: one huge
allocation asks for a lower resolution or fewer frames, not more GPUs, because context
parallelism splits the activations over GPUs but every GPU still holds all the weights.
"""

from __future__ import annotations

from cosmos_tui.domain import FailureKind
from cosmos_tui.engine.logscan import oom_figures

_EXPLAIN: dict[FailureKind, str] = {
    FailureKind.GPU_OOM: (
        "the model ran out of GPU memory{detail}; keep the offload flags, run on more GPUs "
        "(--gpus) or lower the resolution or frames (about 28 GB per GPU is the floor)"
    ),
    FailureKind.HOST_OOM: (
        "the host killed the model for lack of RAM (SIGKILL){detail}; free host memory or lower "
        "max_runs for this host"
    ),
    FailureKind.MISSING_CHECKPOINT: (
        "a model checkpoint is missing on the host{detail}; download the checkpoints into "
        "the host's checkpoints_dir"
    ),
    FailureKind.SPEC_ERROR: "the model rejected the run's parameters{detail}; fix the parameters",
    FailureKind.GUARDRAIL: (
        "the safety guardrail blocked the prompt{detail}; rephrase the prompt and run again"
    ),
    FailureKind.IMAGE_MISSING: (
        "the Docker image is not on the host{detail}; pull it there ('docker pull IMAGE') "
        "or set docker_image for the host"
    ),
    FailureKind.DOCKER_DOWN: (
        "the Docker daemon on the host is not reachable{detail}; start it "
        "('systemctl start docker') or check docker_socket"
    ),
    FailureKind.SSH_LOST: "the SSH connection to the host was lost{detail}; it is retried",
    FailureKind.TIMEOUT: (
        "the run took longer than timeouts.run{detail} and was stopped; raise "
        "timeouts.run or use fewer steps"
    ),
    FailureKind.CANCELLED: "cancelled by the user{detail}",
    FailureKind.CONTAINER_GONE: (
        "the container disappeared (removed outside cosmos-tui, or the host's Docker was "
        "reset){detail}; run it again with 'cosmos inference RUN_ID'"
    ),
    FailureKind.GPU_UNAVAILABLE: (
        "Docker cannot give GPUs to containers on this host{detail}; install the NVIDIA "
        "Container Toolkit or set gpu_request = false for the host"
    ),
    FailureKind.GPU_FAULT: (
        "a GPU of the run failed while it ran{detail}; it is no longer offered to runs "
        "until nvidia-smi reports it ok again; run this again ('cosmos inference RUN_ID')"
    ),
    FailureKind.ENVIRONMENT: (
        "the container's Python environment does not match the code it runs{detail}; the "
        "image and the code are out of step (use the image built for this code version) or "
        "PYTHONPATH does not include the code's folder"
    ),
    FailureKind.DOWNLOAD: (
        "a model download was refused{detail}; accept the model's licence on huggingface.co "
        "with the account whose token the host uses (HF_TOKEN) and check the repository name"
    ),
    FailureKind.UNSUPPORTED_GPU: (
        "the GPU is not supported by the PyTorch build in the image{detail}; use an image "
        "built for this GPU (Blackwell sm_120 needs CUDA 12.8 or newer) or run on a "
        "supported GPU"
    ),
    FailureKind.STALLED: (
        "the run stalled{detail}: no new log line and no progress while its GPUs sat idle; "
        "a multi-GPU run that freezes like this usually waits on NCCL (try NCCL_P2P_DISABLE=1 "
        "or fewer GPUs); cancel it with 'cosmos cancel RUN_ID'"
    ),
    FailureKind.REFUSED_OUTPUT: (
        "the host offered outputs that are not plain files with plain names{detail}; "
        "they were not downloaded: check the image and the host (docs/security.md)"
    ),
    FailureKind.NCCL: (
        "the GPUs of a multi-GPU run failed to talk to each other (NCCL){detail}; run again "
        "with NCCL_P2P_DISABLE=1 (or NCCL_IB_DISABLE=1), give the container --ipc=host or a "
        "larger --shm-size, or run on fewer GPUs"
    ),
    FailureKind.UNKNOWN: "the run failed{detail}; see the log lines around the error",
}

# Wordings of a profile whose remedies differ from Transfer1's (docs/cosmos.md,
# "Transfer2.5 contract"): its flags are kebab-case, it downloads its own checkpoints from
# gated Hugging Face repositories, and it has no offload flag for the diffusion model.
_PROFILE_EXPLAIN: dict[tuple[str, FailureKind], str] = {
    ("transfer2.5", FailureKind.GPU_OOM): (
        "the model ran out of GPU memory{detail}; Transfer2.5-2B needs about 65 GB on one "
        "GPU: use an 80 GB GPU, add --offload-guardrail-models, lower the resolution (480) or "
        "num_video_frames_per_chunk, or use the distilled edge model (more GPUs split "
        "activations through context parallelism, not the weights)"
    ),
    ("transfer2.5", FailureKind.DOWNLOAD): (
        "a model download was refused{detail}; accept the licences of "
        "nvidia/Cosmos-Transfer2.5-2B and nvidia/Cosmos-Guardrail1 on huggingface.co with "
        "the account whose token the host passes as HF_TOKEN, and check that the token is set"
    ),
}

_VARIANTS: dict[str, str] = {
    "transient": (
        "a model download failed on the network{detail}; this is worth retrying (it is "
        "retried like a dropped connection)"
    ),
    "not_shown": (
        "the run ended{detail} but its log shows no error: the cause is not shown; look at "
        "the last lines, the host's 'dmesg' and 'docker logs'"
    ),
}


def explain(
    kind: FailureKind,
    detail: str = "",
    *,
    variant: str | None = None,
    phase: str | None = None,
    profile: str | None = None,
) -> str:
    """Return the one-line explanation with the fix for ``kind``.

    Args:
        kind: The cause.
        detail: Put in parentheses after the cause (the deciding line, a path...).
        variant: A wording for a special case of the kind (``transient``, ``not_shown``).
        phase: The last phase the run reached, appended when known.
        profile: The model family, whose own remedies replace the general ones.

    """
    template = _VARIANTS[variant] if variant else _EXPLAIN[kind]
    if not variant and profile is not None and (profile, kind) in _PROFILE_EXPLAIN:
        template = _PROFILE_EXPLAIN[(profile, kind)]
    text = template.format(detail=f" ({detail})" if detail else "")
    return f"{text}; last phase: {phase}" if phase else text


def oom_explanation(line: str, profile: str | None = None) -> str:
    """Choose the out-of-memory fix from the figures PyTorch printed on ``line``."""
    figures = oom_figures(line)
    capacity, requested = figures.capacity, figures.requested
    where = f" (tried to allocate {_size(requested)})" if requested is not None else ""
    if capacity is None:
        return explain(FailureKind.GPU_OOM, where.strip(" ()"), profile=profile)
    if figures.others >= max(2.0, 0.1 * capacity):
        return (
            f"the GPU ran out of memory{where}: other processes hold {_size(figures.others)} "
            f"of its {_size(capacity)}; free that GPU or run on other GPUs"
        )
    if requested is not None and requested >= 0.5 * capacity:
        return (
            f"the GPU ran out of memory: one allocation of {_size(requested)} on a "
            f"{_size(capacity)} GPU; lower the resolution or the number of frames (more "
            "GPUs do not help: context parallelism splits activations, not weights)"
        )
    if (
        figures.this_process is None
        or figures.this_process < 0.5 * capacity
        or (profile, FailureKind.GPU_OOM) in _PROFILE_EXPLAIN
    ):
        return explain(FailureKind.GPU_OOM, where.strip(" ()"), profile=profile)
    return (
        f"the GPU ran out of memory{where}: the model itself fills the {_size(capacity)} GPU; "
        "keep or add the offload flags (--offload_*) or use GPUs with more memory (more GPUs "
        "split activations through context parallelism, not the weights)"
    )


def _size(value: float) -> str:
    return f"{value:.1f} GiB" if value >= 1.0 else f"{value * 1024:.0f} MiB"
