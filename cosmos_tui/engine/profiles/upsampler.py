"""Prompt enhancement with Cosmos-Transfer1's Pixtral-12B prompt upsampler.

Transfer1 has no command that only upsamples prompts, so cosmos-tui ships a short script
(:data:`SCRIPT`) that is written into the batch's folder on the host and run in the same
image, through ``torchrun`` (the upsampler reads ``RANK`` and friends, which only torchrun
sets; COSMOS.md sections 1 and 7). It loads the upsampler once and enhances every line of
its input JSONL (``{"name", "prompt", "video"}``), writing ``{"name", "prompt"}`` lines
to its output; the model is offloaded between prompts when there is a single one.
Results are matched back by ``name`` (the run id), never by position.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SCRIPT_NAME = "cosmos_tui_upsample.py"
INPUT_NAME = "enhance.jsonl"
OUTPUT_NAME = "enhanced.jsonl"

SCRIPT = '''\
"""cosmos-tui: enhance prompts with Cosmos-Transfer1's Pixtral prompt upsampler."""
import argparse
import json
import os

from cosmos_transfer1.auxiliary.upsampler.model.upsampler import PixtralPromptUpsampler

parser = argparse.ArgumentParser()
parser.add_argument("--checkpoint_dir", default="checkpoints")
parser.add_argument("--input", required=True)
parser.add_argument("--output", required=True)
parser.add_argument("--offload_prompt_upsampler", action="store_true")
args = parser.parse_args()
lines = [json.loads(text) for text in open(args.input, encoding="utf-8") if text.strip()]
upsampler = PixtralPromptUpsampler(
    checkpoint_dir=args.checkpoint_dir, offload_prompt_upsampler=args.offload_prompt_upsampler
)
os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
with open(args.output, "w", encoding="utf-8") as out:
    for line in lines:
        text = upsampler._prompt_upsample_with_offload(
            prompt=line["prompt"], video_path=line["video"]
        )
        if int(os.environ.get("RANK", "0")) == 0:
            out.write(json.dumps({"name": line["name"], "prompt": text}) + "\\n")
            out.flush()
            print(f"Upsampled prompt for {line['name']}", flush=True)
'''


@dataclass(frozen=True)
class EnhanceLine:
    """One prompt to enhance: its run id (the name), text and input video path."""

    name: str
    prompt: str
    video: str


def input_jsonl(lines: Sequence[EnhanceLine]) -> str:
    """Return the script's input file: one object a line, no blank lines."""
    return "".join(
        json.dumps({"name": ln.name, "prompt": ln.prompt, "video": ln.video}, sort_keys=True) + "\n"
        for ln in lines
    )


def build_argv(run_dir: str, count: int, checkpoint_dir: str = "checkpoints") -> list[str]:
    """Return the container command that enhances ``count`` prompts.

    Args:
        run_dir: The batch folder as the container sees it (script, input, output/).
        count: Number of prompts; a single one is offloaded (COSMOS.md section 7).
        checkpoint_dir: The checkpoints folder inside the container.

    """
    argv = [
        "torchrun",
        "--nproc_per_node=1",
        "--nnodes=1",
        "--node_rank=0",
        f"{run_dir}/{SCRIPT_NAME}",
        "--checkpoint_dir",
        checkpoint_dir,
        "--input",
        f"{run_dir}/{INPUT_NAME}",
        "--output",
        f"{run_dir}/output/{OUTPUT_NAME}",
    ]
    if count == 1:
        argv.append("--offload_prompt_upsampler")
    return argv


def parse_output(text: str, names: Sequence[str]) -> Mapping[str, str]:
    """Return the enhanced prompt of each name found in the script's output.

    Lines that are not JSON objects with a known name and a non-empty prompt are ignored.
    """
    wanted = set(names)
    found: dict[str, str] = {}
    for raw in text.splitlines():
        try:
            item = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if not isinstance(item, dict):
            continue
        name, prompt = item.get("name"), item.get("prompt")
        if name in wanted and isinstance(prompt, str) and prompt.strip():
            found[name] = prompt.strip()
    return found
