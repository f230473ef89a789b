"""Cosmos 3's failure signatures and remedies.

See docs/cosmos.md, "Log lines, progress and failures".

:class:`~cosmos_tui.engine.logscan.LogScanner` looks for :data:`SIGNATURES` in a cosmos3
run's log and :func:`refine` turns the shared classifier's verdict into Cosmos 3's own:
the install step of the image's entrypoint, a sample file upstream refused, a parallel
layout WORLD_SIZE cannot hold, Hugging Face refusing the weights, CUDA out of memory with
upstream's remedies, and NCCL's segfault.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

from cosmos_tui.domain import FailureKind

if TYPE_CHECKING:
    from cosmos_tui.engine.failures import Failure
    from cosmos_tui.engine.logscan import Found, LogScanner

SIGNATURES: tuple[tuple[str, re.Pattern[str]], ...] = (
    # docker/entrypoint.sh:10 (uv's refusal) and python -m without the package
    (
        "install",
        re.compile(
            r"does not appear to be a Python project|"
            r"No module named 'cosmos_framework'"
        ),
    ),
    # common.py:1065-1070
    ("sample", re.compile(r"Error validating parameters from '[^']*' at sample \d+")),
    # args.py:1321-1339
    ("world", re.compile(r"must (?:divide|be <=) WORLD_SIZE\(\d+\)")),
    # checkpoint_db.py:171-183; Hugging Face's 401 for gated repos and missing tokens
    (
        "gated",
        re.compile(
            r"GatedRepoError|Cannot access gated repo|Access to model \S+ is "
            r"restricted|401 Client Error"
        ),
    ),
    ("hf_command", re.compile(r"\bhf download\b")),
    # infer.md:312-344
    ("nccl", re.compile(r"ProcessGroupNCCL|NCCL INFO Failed to initialize NET plugin")),
    ("segfault", re.compile(r"Fatal Python error: Segmentation fault")),
)

_KEEP = frozenset({FailureKind.CANCELLED, FailureKind.TIMEOUT, FailureKind.GUARDRAIL})
_REPO = re.compile(r"\b(nvidia/[\w.-]+)")


def refine(failure: Failure, scan: LogScanner) -> Failure:
    """Return the verdict for a cosmos3 log: its own kinds and remedies where it knows."""
    if failure.kind in _KEEP:
        return failure
    seen = scan.signatures
    if "install" in seen:
        return _as(failure, FailureKind.ENVIRONMENT, seen["install"], (
            "the image's entrypoint could not install cosmos-framework from /workspace "
            "(docker/entrypoint.sh), so 'cosmos_framework' does not import; set repo_dir in "
            "[profiles.cosmos3] to the host's cosmos-framework checkout"
        ))  # fmt: skip
    if "segfault" in seen and "nccl" in seen:
        return _as(failure, FailureKind.ENVIRONMENT, seen["segfault"], (
            "NCCL crashed the workers (segmentation fault); when the log shows a NET plugin "
            "failing set NCCL_NET_PLUGIN=none in the host's env table, else rerun with "
            "NCCL_DEBUG=INFO and TORCH_DISTRIBUTED_DEBUG=DETAIL to see where"
        ))  # fmt: skip
    if "sample" in seen:
        found = seen["sample"]
        detail = _pydantic_detail(found)
        return _as(failure, FailureKind.SPEC_ERROR, found, (
            f"Cosmos 3 refused the sample file{': ' + detail if detail else ''}; fix the "
            "option (cosmos-tui's checks should have caught it: please report it)"
        ), detail)  # fmt: skip
    if "world" in seen:
        return _as(failure, FailureKind.SPEC_ERROR, seen["world"], (
            "the parallel layout does not fit the GPU count; use an even --gpus with the "
            "latency preset or --parallelism throughput"
        ))  # fmt: skip
    if "gated" in seen:  # a 401: the token (a 403 or a network error keeps its own words)
        found = seen["gated"]
        named = _REPO.search("\n".join(found.context)) if found else None
        repo = named.group(1) if named else None
        where = f" of {repo}" if repo else ""
        return _as(failure, FailureKind.DOWNLOAD, found, (
            f"Hugging Face refused the download{where} (401: no token or a gated model); set "
            "HF_TOKEN locally (or token_env / token_file in [profiles.cosmos3]) to a token "
            f"whose account accepted the licence on huggingface.co{'/' + repo if repo else ''}"
            "; the log shows the 'hf download' command to retry by hand"
        ))  # fmt: skip
    if failure.kind == FailureKind.DOWNLOAD:
        return dataclasses.replace(failure, message=(
            f"{failure.message}; the log shows the 'hf download' command to retry by hand "
            "(a Cosmos 3 checkpoint pinned to an old revision can lose its files on Hugging "
            "Face's CDN: update the cosmos-framework checkout)"
        ))  # fmt: skip
    if failure.kind == FailureKind.GPU_OOM:
        return dataclasses.replace(failure, message=(
            "the GPU ran out of memory; set PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True "
            "in the host's env table, run on more GPUs (the weights are sharded over "
            "--dp-shard-size, all GPUs by default), use --guardrails offload, or lower the "
            "resolution tier or frames"
        ))  # fmt: skip
    return failure


def _as(
    failure: Failure, kind: FailureKind, found: Found | None, message: str, detail: str = ""
) -> Failure:
    if found is None:
        return dataclasses.replace(failure, kind=kind, message=message, retryable=False)
    return dataclasses.replace(
        failure, kind=kind, message=message, detail=detail or found.text[:200],
        error_line=found.index, rank=found.rank, context=tuple(found.context),
        retryable=False,
    )  # fmt: skip


def _pydantic_detail(found: Found) -> str:
    """The field and message pydantic printed after 'N validation error(s) for ...'."""
    lines = found.context
    for index, line in enumerate(lines):
        if "validation error" in line and index + 2 < len(lines):
            return f"{lines[index + 1].strip()}: {lines[index + 2].strip()}"[:200]
    return ""
