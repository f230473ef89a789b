"""What a model profile needs on its host: checkpoint files, GPU memory and architecture.

Taken from upstream cosmos-transfer1 (cited file by file in docs/cosmos.md, section
"Transfer1 checkpoints"): the checkpoint paths are its own constants, relative to the
``--checkpoint_dir`` that runs mount as ``/workspace/checkpoints``.

Cosmos 3 and Transfer2.5 download their weights into the host's Hugging Face cache at the
first run, after their own pre-run token check (engine/profiles/hf_token.py): for them the
doctor checks the checkout, the cache and the token instead (doctor/checks_hub.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from cosmos_tui.domain import CONTROL_HINTS, GenerationParams

# cosmos_transfer1/checkpoints.py:17-36 and scripts/download_checkpoints.py:61-91
TRANSFER1_7B = "nvidia/Cosmos-Transfer1-7B"
TRANSFER1_BASE = (f"{TRANSFER1_7B}/base_model.pt",)
TRANSFER1_CONTROLS = {
    "vis": f"{TRANSFER1_7B}/vis_control.pt",
    "edge": f"{TRANSFER1_7B}/edge_control.pt",
    "depth": f"{TRANSFER1_7B}/depth_control.pt",
    "seg": f"{TRANSFER1_7B}/seg_control.pt",
}
TRANSFER1_SHARED = (
    "nvidia/Cosmos-Tokenize1-CV8x8x8-720p/encoder.jit",
    "nvidia/Cosmos-Tokenize1-CV8x8x8-720p/decoder.jit",
    "google-t5/t5-11b/pytorch_model.bin",
    "nvidia/Cosmos-Guardrail1/video_content_safety_filter/safety_filter.pt",
    "meta-llama/Llama-Guard-3-8B/model-00001-of-00004.safetensors",
)
# Gated on Hugging Face: downloading it needs a token whose account accepted its terms
# (examples/inference_cosmos_transfer1_7b.md:11-19).
GATED_PREFIXES = ("meta-llama/Llama-Guard-3-8B",)
# docs/cosmos.md: every GPU loads the whole 7B model, about 28 GB each even with every
# offload flag; FlashAttention 2 and Transformer Engine in the image need Ampere (8.0).
TRANSFER1_MIN_GPU_MIB = 28 * 1024
TRANSFER1_MIN_COMPUTE = (8, 0)
# Transfer2.5: "about 65 GB" on one GPU (cosmos-transfer2.5 docs/inference.md:11-15).
TRANSFER25_MIN_GPU_MIB = 65 * 1024
# The families whose weights come from the Hugging Face cache (no checkout files checked).
HUB_FAMILIES = ("cosmos3", "transfer2.5")
# Free room in the tool dir for a run's inputs and outputs (a few 100 MB each).
MIN_FREE_DISK_MIB = 5 * 1024
# /dev/shm of the host (parallel torchrun shares tensors through it with --ipc=host).
MIN_SHM_MIB = 1024
# requirements the image was built with (Dockerfile: COPY ./requirements_docker.txt
# /requirements.txt) and the file in a checkout that should match them.
IMAGE_REQUIREMENTS = "/requirements.txt"
CHECKOUT_REQUIREMENTS = "requirements_docker.txt"
DOWNLOAD_COMMAND = (
    "PYTHONPATH=$(pwd) python scripts/download_checkpoints.py --output_dir checkpoints/"
)


@dataclass(frozen=True)
class ProfileNeeds:
    """What one profile's runs need on a host.

    Attributes:
        profile: The profile's name.
        checkpoints: Files under the checkpoints dir, each with why it is needed.
        min_gpu_memory_mib: The documented floor of memory per GPU (None: none documented).
        min_compute: The lowest GPU compute capability the image supports (None: none
            documented).
        gated: Checkpoint path prefixes whose download needs a Hugging Face token.
        hub_weights: Where the weights come from when it is the Hugging Face cache (the
            checkout, checkpoint and token checks are then doctor/checks_hub.py's), or
            None for Transfer1.
    """

    profile: str
    checkpoints: tuple[tuple[str, str], ...]
    min_gpu_memory_mib: int | None = TRANSFER1_MIN_GPU_MIB
    min_compute: tuple[int, int] | None = TRANSFER1_MIN_COMPUTE
    gated: tuple[str, ...] = GATED_PREFIXES
    hub_weights: str | None = None


def profile_needs(profile: str, defaults: GenerationParams) -> ProfileNeeds:
    """Return what ``profile`` needs, for runs with the configured default weights.

    A control whose default weight is 0 is not needed by default runs; its checkpoint is
    left out (a run that turns it on is checked when it starts).
    """
    if profile in HUB_FAMILIES:
        return ProfileNeeds(
            profile=profile,
            checkpoints=(),
            min_gpu_memory_mib=TRANSFER25_MIN_GPU_MIB if profile == "transfer2.5" else None,
            min_compute=None,
            gated=(),
            hub_weights=(
                f"{profile}'s weights download into the host's Hugging Face cache at the "
                "first run, after that run's own token check"
            ),
        )
    files: list[tuple[str, str]] = [(path, "base model") for path in TRANSFER1_BASE]
    for hint in CONTROL_HINTS:
        if defaults.weight(hint) > 0:
            files.append((TRANSFER1_CONTROLS[hint], f"{hint} control"))
    files += [(path, "tokenizer, text encoder, guardrail") for path in TRANSFER1_SHARED]
    return ProfileNeeds(profile=profile, checkpoints=tuple(files))


def all_checkpoint_files() -> tuple[str, ...]:
    """Every file any control may need (what the simulated host lays out)."""
    return (*TRANSFER1_BASE, *TRANSFER1_CONTROLS.values(), *TRANSFER1_SHARED)
