"""A stand-in for Cosmos-Transfer1's Pixtral prompt upsampler, run by the sandbox's image.

When a container runs ``torchrun <script.py> ...`` and the script uses
``PixtralPromptUpsampler`` (the prompt-enhancement script cosmos-tui ships), the sandbox
runs this module instead, with the same arguments: it logs the model loading and one line
per prompt, and writes ``{"name", "prompt"}`` lines to ``--output`` as the real script
does. The "enhanced" prompt is the original one with a sentence of visual detail added.

    python -m cosmos_tui.sandbox.upsampler_standin --input IN.jsonl --output OUT.jsonl

``COSMOS_STANDIN_SPEED`` scales the delays, as for the transfer stand-in.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path

DETAIL = (
    " The scene is rendered with photorealistic materials, soft volumetric light, natural "
    "motion and a steady, cinematic camera."
)
SIGNATURE = "PixtralPromptUpsampler"


def _log(level: str, message: str) -> None:
    stamp = datetime.now().strftime("%m-%d %H:%M:%S")
    where = "cosmos_transfer1/auxiliary/upsampler/model/upsampler.py:120:upsample"
    print(f"[{stamp}|{level}|{where}] {message}", flush=True)


def _imports_cosmos(python_path: str) -> bool:
    """True when a PYTHONPATH entry holds ``cosmos_transfer1`` (the script imports it).

    Like Python, an empty entry is the working directory; an empty PYTHONPATH adds nothing.
    """
    entries = python_path.split(":") if python_path else []
    return any((Path(entry or ".") / "cosmos_transfer1").is_dir() for entry in entries)


def main(argv: list[str]) -> int:
    """Enhance every prompt of the input file; return the exit status."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--checkpoint_dir", default="checkpoints")
    parser.add_argument("--offload_prompt_upsampler", action="store_true")
    args, _ = parser.parse_known_args(argv)
    if not _imports_cosmos(os.environ.get("PYTHONPATH", "")):
        print(
            "Traceback (most recent call last):\n"
            "ModuleNotFoundError: No module named 'cosmos_transfer1'",
            file=sys.stderr,
            flush=True,
        )
        return 1
    speed = float(os.environ.get("COSMOS_STANDIN_SPEED", "1") or 0)
    try:
        lines = [
            json.loads(text)
            for text in Path(args.input).read_text(encoding="utf-8").splitlines()
            if text.strip()
        ]
    except (OSError, json.JSONDecodeError) as exc:
        print(f"[rank0]: FileNotFoundError: {exc}", file=sys.stderr, flush=True)
        return 1
    _log("INFO", "Loading the prompt upsampler (Pixtral-12B) from checkpoints/nvidia/...")
    time.sleep(3.0 * speed)
    _log("INFO", "Done loading the prompt upsampler")
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as out:
        for line in lines:
            _log("INFO", f"Upsampling prompt for {line['name']}")
            time.sleep(2.0 * speed)
            text = str(line["prompt"]).rstrip() + DETAIL
            out.write(json.dumps({"name": line["name"], "prompt": text}) + "\n")
            out.flush()
            print(f"Upsampled prompt for {line['name']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
