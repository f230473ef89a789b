"""``--profile`` and the options of model families beyond Transfer1's parameters.

``cosmos create run`` and ``cosmos inference`` take ``--profile NAME`` and, for Cosmos 3,
``--mode``, ``--size``/``--checkpoint``, ``--hint NAME[=WEIGHT[:PRESET]]`` (repeatable),
``--resolution``, ``--aspect``, ``--frames``, ``--parallelism`` and ``--guardrails``; the
shared ``--steps``, ``--guidance`` and ``--fps`` become the family's sampling overrides.
``--profile transfer2.5`` takes ``--hint NAME[=WEIGHT][,control=PATH][,mask=PATH]
[,mask_prompt=TEXT][,prompt=TEXT]`` (the videos are files on this machine, uploaded with
the run), ``--resolution``, ``--style-image PATH`` and ``--style-frame N`` beside the
shared flags.
Values are only parsed here: the profile's ``check`` (engine/profiles) validates them
with upstream's rules, so the CLI, the TUI and the services refuse the same things.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from cosmos_tui.cli.options import Number
from cosmos_tui.engine.profiles import transfer25
from cosmos_tui.engine.profiles.base import profile_names
from cosmos_tui.engine.profiles.cosmos3_rules import (
    ASPECT_RATIOS,
    GUARDRAILS,
    MODES,
    PARALLELISM_PRESETS,
    RESOLUTIONS,
)
from cosmos_tui.errors import ValidationError

# Flags that only Transfer1 has, by the option name click gives them.
TRANSFER1_ONLY = {"weights": "--weights", "sigma_max": "--sigma-max", "blur": "--blur",
                  "canny": "--canny"}  # fmt: skip
COSMOS3_ONLY = {"mode": "--mode", "size": "--size", "checkpoint": "--checkpoint",
                "hints": "--hint", "resolution": "--resolution", "aspect": "--aspect",
                "frames": "--frames", "parallelism": "--parallelism",
                "guardrails": "--guardrails"}  # fmt: skip
# Flags that only Transfer2.5 has.
TRANSFER25_ONLY = {"chunk_frames": "--chunk-frames", "distilled": "--distilled",
                   "style_image": "--style-image", "style_frame": "--style-frame"}  # fmt: skip


def profile_options(function: Any) -> Any:
    """Attach ``--profile`` and the Cosmos 3 options."""
    options = [
        click.option(
            "--profile",
            type=click.Choice(profile_names()),
            help="Model family (default transfer1).",
        ),
        click.option(
            "--mode",
            type=click.Choice(MODES),
            help="cosmos3: generation mode (default: from the prompt's inputs).",
        ),
        click.option("--size", help="cosmos3: Edge, Nano (default) or Super."),
        click.option("--checkpoint", help="cosmos3: a checkpoint folder on the host instead."),
        click.option(
            "--hint",
            "hints",
            multiple=True,
            metavar="NAME[=W[:PRESET]]",
            help="cosmos3 video2video: a transfer hint (edge, blur, depth, seg, wsm) with "
            "its weight and edge threshold or blur strength, e.g. edge=0.5:high; "
            "transfer2.5: a control (edge, vis, depth, seg) with its weight and its own "
            "control=VIDEO, mask=VIDEO (files here, uploaded with the run), mask_prompt= "
            "or seg's prompt=, e.g. depth=0.4,control=depth.mp4. Repeatable.",
        ),
        click.option(
            "--resolution",
            metavar="TIER",
            help=f"cosmos3: resolution tier, {'/'.join(RESOLUTIONS)} (default 480); "
            "transfer2.5: its tiers (default 720). Checked by the profile.",
        ),
        click.option(
            "--aspect",
            type=click.Choice(ASPECT_RATIOS),
            help="cosmos3: aspect ratio (default 16,9; 1,1 for text2image).",
        ),
        click.option(
            "--frames",
            type=Number(int, 1, 400, enforce=False),
            help="cosmos3: frames (24 up to 400/300/200 by tier; 1 for images).",
        ),
        click.option(
            "--parallelism",
            type=click.Choice(PARALLELISM_PRESETS),
            help="cosmos3: parallelism preset (default latency).",
        ),
        click.option(
            "--guardrails",
            type=click.Choice(GUARDRAILS),
            help="cosmos3 and transfer2.5: guardrails on (default), offload (to CPU) or off.",
        ),
        click.option(
            "--chunk-frames",
            type=int,  # parsed only: the profile checks the range and names the field
            help="transfer2.5: frames per generated chunk (num_video_frames_per_chunk, "
            "default 93).",
        ),
        click.option(
            "--distilled",
            is_flag=True,
            default=None,
            help="transfer2.5: the distilled edge model (edge alone, 4 steps).",
        ),
        click.option(
            "--style-image",
            metavar="PATH",
            help="transfer2.5: a reference image here (png, jpg, jpeg, or a video's first "
            "frame) that sets the output's style (image_context_path; uploaded with the "
            "run; not with the vis control).",
        ),
        click.option(
            "--style-frame",
            type=int,  # parsed only: the profile checks the range and names the field
            metavar="N",
            help="transfer2.5: use the input video's frame at index N as the style "
            "reference (context_frame_index; counted from 0 as upstream does, which "
            "refuses 0: 1 is the second frame).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def profile_overrides(options: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    """Return ``shared`` (GenerationParams overrides) with the profile and its options.

    Raises:
        ValidationError: A flag of the other family, a bad size or hint.
    """
    profile = options.get("profile") or "transfer1"
    given = {k for k, v in options.items() if v not in (None, (), [])}
    t25_only = sorted(TRANSFER25_ONLY[k] for k in given & set(TRANSFER25_ONLY))
    if t25_only and profile != "transfer2.5":
        raise ValidationError(
            f"{', '.join(t25_only)} apply to --profile transfer2.5, not {profile}",
            field="profile",
        )
    if profile == "transfer1":
        wrong = sorted(COSMOS3_ONLY[k] for k in given & set(COSMOS3_ONLY))
        if wrong:
            raise ValidationError(
                f"{', '.join(wrong)} apply to --profile cosmos3, not transfer1", field="profile"
            )
        return dict(shared) | ({"profile": profile} if options.get("profile") else {})
    if profile == "transfer2.5":
        own = transfer25_options(options, given, shared)
        mapped = ("guidance", "sigma_max", "blur_strength", "canny_threshold")
        rest = {k: v for k, v in shared.items() if k not in mapped}
        return rest | {"profile": profile, "options": own}
    wrong = sorted(TRANSFER1_ONLY[k] for k in given & set(TRANSFER1_ONLY))
    if wrong:
        raise ValidationError(
            f"{', '.join(wrong)} apply to transfer1, not --profile {profile}", field="profile"
        )
    return {k: v for k, v in shared.items() if k not in ("num_steps", "guidance", "fps")} | {
        "profile": profile,
        "options": cosmos3_options(options, shared),
    }


def transfer25_options(
    options: dict[str, Any], given: set[str], shared: dict[str, Any]
) -> dict[str, Any]:
    """Map the CLI flags to the stored Transfer2.5 options.

    ``--hint``, ``--resolution``, ``--guidance`` (a whole number upstream),
    ``--sigma-max``, ``--canny`` and ``--blur`` (Transfer1's levels are Transfer2.5's edge
    threshold and blur strength, config.py:425, :453, :463), ``--chunk-frames``,
    ``--distilled``, ``--style-image``, ``--style-frame`` (image_context_path and
    context_frame_index, config.py:487-491) and ``--guardrails`` become options; the
    shared ``--steps``, ``--seed``, ``--negative`` and ``--weights`` stay shared
    parameters, which the profile's check turns into the sample's
    (engine/profiles/transfer25_profile.py).

    Raises:
        ValidationError: A flag Transfer2.5 does not have, or a bad hint or guidance.
    """
    own = {"hints", "resolution", "sigma_max", "blur", "canny", "guardrails", *TRANSFER25_ONLY}
    wrong = sorted({**COSMOS3_ONLY, **TRANSFER1_ONLY}[k] for k in given - own
                   if k in COSMOS3_ONLY or (k in TRANSFER1_ONLY and k != "weights"))  # fmt: skip
    if wrong:
        raise ValidationError(
            f"{', '.join(wrong)} do not apply to --profile transfer2.5 (it takes --hint "
            "NAME[=WEIGHT][,control=PATH], --resolution, --guidance, --sigma-max, --canny, "
            "--blur, --chunk-frames, --distilled, --style-image, --style-frame, --guardrails "
            "and the shared flags)",
            field="profile",
        )
    result: dict[str, Any] = {}
    if options.get("hints") and "weights" in given:
        raise ValidationError(
            "give --hint or --weights for --profile transfer2.5, not both: --hint names "
            "the controls and their weights",
            field="hints",
        )
    if options.get("hints"):
        hints = [transfer25.parse_hint(text) for text in options["hints"]]
        names = [h.hint for h in hints]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValidationError(f"hint {twice[0]!r} is given twice", field="hints")
        result["hints"] = [dataclasses.asdict(h) for h in hints]
    if options.get("resolution") is not None:
        result["resolution"] = options["resolution"]
    if shared.get("sigma_max") is not None:
        result["sigma_max"] = float(shared["sigma_max"])
    presets = {"canny_threshold": "preset_edge_threshold", "blur_strength": "preset_blur_strength"}
    for key, option in presets.items():
        if shared.get(key) is not None:
            result[option] = shared[key]
    if options.get("chunk_frames") is not None:
        result["num_video_frames_per_chunk"] = options["chunk_frames"]
    if options.get("distilled"):
        result["distilled"] = True
    if options.get("style_image"):
        result["image_context_path"] = options["style_image"]
    if options.get("style_frame") is not None:
        result["context_frame_index"] = options["style_frame"]
    guardrails = options.get("guardrails")
    if guardrails == "off":
        result["disable_guardrails"] = True
    elif guardrails == "offload":
        result["offload_guardrail_models"] = True
    if shared.get("fps") is not None:
        raise ValidationError(
            "--fps does not apply to --profile transfer2.5: the output keeps the input "
            "video's frame rate",
            field="fps",
        )
    guidance = shared.get("guidance")
    if guidance is not None:
        if float(guidance) != int(guidance):
            raise ValidationError(
                f"Transfer2.5's guidance is a whole number from 0 to 7, not {guidance:g}",
                field="guidance",
            )
        result["guidance"] = int(guidance)
    return result


def cosmos3_options(options: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    """Map the CLI flags to the stored Cosmos 3 options (only those given)."""
    # lazy: profiles.cosmos3 (~5 ms) only for --profile cosmos3; 'cosmos list' imports this
    from cosmos_tui.engine.profiles.cosmos3 import parse_hint, size_option

    result: dict[str, Any] = {}
    if options.get("size") and options.get("checkpoint"):
        raise ValidationError("give --size or --checkpoint, not both", field="checkpoint")
    if options.get("size"):
        result["checkpoint"] = size_option(options["size"])
    elif options.get("checkpoint"):
        result["checkpoint"] = options["checkpoint"]
    if options.get("hints"):
        hints: dict[str, Any] = {}
        for text in options["hints"]:
            name, hint = parse_hint(text)
            if name in hints:
                raise ValidationError(f"hint {name!r} is given twice", field="hints")
            hints[name] = hint
        result["hints"] = hints
    pairs = {
        "mode": "mode",
        "resolution": "resolution",
        "aspect": "aspect_ratio",
        "frames": "num_frames",
        "parallelism": "parallelism",
        "guardrails": "guardrails",
    }
    for flag, key in pairs.items():
        if options.get(flag) is not None:
            result[key] = options[flag]
    for key in ("num_steps", "guidance", "fps"):
        if shared.get(key) is not None:
            result[key] = shared[key]
    return result
