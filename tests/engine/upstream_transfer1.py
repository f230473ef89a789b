"""A transcription of Cosmos-Transfer1's command line, to hold the stand-in against.

Transcribed from nvidia-cosmos/cosmos-transfer1 at commit 5005e823 (2026-06-07),
``cosmos_transfer1/diffusion/inference/transfer.py:52-174`` (``parse_arguments``): every
flag with its type, choices, default and ``required``, in upstream's order, and the
parser's own settings (``conflict_handler="resolve"``; ``allow_abbrev`` left at its
default, True). Help texts are left out: they do not change what is accepted. The long
default prompt texts are abbreviated here; tests never compare them.

This is test data, not product code: the stand-in (cosmos_tui/sandbox/cosmos_standin.sh)
must accept exactly what this parser accepts.
"""

from __future__ import annotations

import argparse

LEVELS = ["very_low", "low", "medium", "high", "very_high"]

# (flag, keyword arguments) in transfer.py's order; line numbers of the add_argument calls.
ARGUMENTS: list[tuple[str, dict]] = [
    ("--prompt", {"type": str, "default": "The video captures a stunning ..."}),  # :56
    ("--negative_prompt", {"type": str, "default": "The video captures a game ..."}),  # :62
    ("--input_video_path", {"type": str, "default": ""}),  # :68
    ("--num_input_frames", {"type": int, "default": 1, "choices": [1]}),  # :74
    ("--sigma_max", {"type": float, "default": 70.0}),  # :81
    ("--blur_strength", {"type": str, "default": "medium", "choices": LEVELS}),  # :82
    ("--canny_threshold", {"type": str, "default": "medium", "choices": LEVELS}),  # :89
    ("--controlnet_specs", {"type": str, "required": True}),  # :96
    ("--is_av_sample", {"action": "store_true"}),  # :102
    ("--checkpoint_dir", {"type": str, "default": "checkpoints"}),  # :105
    ("--tokenizer_dir", {"type": str, "default": "Cosmos-Tokenize1-CV8x8x8-720p"}),  # :108
    ("--video_save_name", {"type": str, "default": "output"}),  # :114
    ("--video_save_folder", {"type": str, "default": "outputs/"}),  # :120
    ("--batch_input_path", {"type": str}),  # :126
    ("--batch_size", {"type": int, "default": 1}),  # :131
    ("--num_steps", {"type": int, "default": 35}),  # :132
    ("--guidance", {"type": float, "default": 5}),  # :133
    ("--fps", {"type": int, "default": 24}),  # :134
    ("--seed", {"type": int, "default": 1}),  # :135
    ("--num_gpus", {"type": int, "default": 1}),  # :136
    ("--offload_diffusion_transformer", {"action": "store_true"}),  # :137
    ("--offload_text_encoder_model", {"action": "store_true"}),  # :142
    ("--offload_guardrail_models", {"action": "store_true"}),  # :147
    ("--upsample_prompt", {"action": "store_true"}),  # :152
    ("--offload_prompt_upsampler", {"action": "store_true"}),  # :157
    ("--use_distilled", {"action": "store_true"}),  # :162
    ("--save_input_noise", {"action": "store_true"}),  # :163
    ("--benchmark", {"action": "store_true"}),  # :169
]


def make_parser() -> argparse.ArgumentParser:
    """Return upstream's parser (transfer.py:53), with prog as under torchrun."""
    parser = argparse.ArgumentParser(
        prog="transfer.py",
        description="Control to world generation demo script",
        conflict_handler="resolve",
    )
    for flag, kwargs in ARGUMENTS:
        parser.add_argument(flag, **kwargs)
    return parser


def upstream_accepts(argv: list[str]) -> tuple[bool, str]:
    """Return (accepted, error message) of upstream's parse_args on ``argv``."""
    parser = make_parser()
    messages: list[str] = []

    def _error(message: str) -> None:
        messages.append(message)
        raise SystemExit(2)

    parser.error = _error  # type: ignore[method-assign]
    try:
        parser.parse_args(argv)
    except SystemExit:
        return False, messages[0] if messages else ""
    return True, ""
