"""The new-run form: the model, its generation parameters validated as you type, host, GPUs.

Each model family reads only some of the shared parameters (``ModelProfile.shared_params``):
the form shows those and sends only those. The model starts as the one of the prompt's
newest run, so a prompt made for Cosmos 3 stays on Cosmos 3.
"""

from __future__ import annotations

import re
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical, VerticalScroll
from textual.widgets import Input, Label, Select, Static

from cosmos_tui.config import Config
from cosmos_tui.domain import BLUR_LEVELS, CONTROL_HINTS, GenerationParams, Prompt, Run, RunType
from cosmos_tui.engine.profiles.base import profile_for, profile_names
from cosmos_tui.engine.profiles.cosmos3 import options_of as cosmos3_options
from cosmos_tui.engine.profiles.cosmos3_rules import (
    ASPECT_RATIOS,
    BLUR_STRENGTHS,
    EDGE_THRESHOLDS,
    GUARDRAILS,
    HINTS,
    MODES,
    PARALLELISM_PRESETS,
    RESOLUTIONS,
    SIZES,
)
from cosmos_tui.engine.profiles.transfer25_args import HINTS as T25_HINTS
from cosmos_tui.engine.profiles.transfer25_args import RESOLUTIONS as T25_RESOLUTIONS
from cosmos_tui.errors import CosmosError, ValidationError
from cosmos_tui.params import validate_priority
from cosmos_tui.store.repositories import RunFilter
from cosmos_tui.ui.format import clip
from cosmos_tui.ui.protocol import UIServices
from cosmos_tui.ui.report import report_error, reported
from cosmos_tui.ui.screens.form import FormScreen

# field -> (label, kind); kind is "float", "int" or "text".
NUMBER_FIELDS: tuple[tuple[str, str, str], ...] = (
    *((f"{hint}_weight", f"{hint} weight", "float") for hint in CONTROL_HINTS),
    ("num_steps", "steps", "int"),
    ("guidance", "guidance", "float"),
    ("seed", "seed", "int"),
    ("sigma_max", "sigma_max", "float"),
    ("fps", "fps", "int"),
    ("num_gpus", "GPUs", "int"),
    ("priority", "priority", "int"),
)
AUTO_HOST = "(any host)"
AUTO_MODE = "(from the inputs)"
DEFAULT_CHOICE = "(model's default)"  # not sent: the family picks (per mode for aspect)
# Each family's own options (stored in GenerationParams.options; the family's check
# validates them): (field id, label, option key, choices or None for a typed number,
# default shown). Cosmos 3: cosmos3_rules.py; Transfer2.5: transfer25_args.py.
FAMILY_FIELDS: dict[str, tuple[tuple[str, str, str, tuple[str, ...] | None, str], ...]] = {
    "cosmos3": (
        ("c3_mode", "mode", "mode", (AUTO_MODE, *MODES), AUTO_MODE),
        ("c3_size", "size", "checkpoint", tuple(SIZES.values()), "Cosmos3-Nano"),
        # a checkpoint folder on the host instead of a size (empty: the size)
        ("c3_checkpoint", "or checkpoint folder", "checkpoint", None, ""),
        ("c3_resolution", "resolution", "resolution", RESOLUTIONS, "480"),
        ("c3_aspect", "aspect", "aspect_ratio", (DEFAULT_CHOICE, *ASPECT_RATIOS), DEFAULT_CHOICE),
        ("c3_frames", "frames", "num_frames", None, ""),
        # sampling overrides (empty: the mode's default, args.py:1095-1106)
        ("c3_steps", "steps", "num_steps", None, ""),
        ("c3_guidance", "guidance", "guidance", None, ""),
        ("c3_fps", "fps", "fps", None, ""),
        ("c3_parallelism", "parallelism", "parallelism", PARALLELISM_PRESETS, "latency"),
        ("c3_guardrails", "guardrails", "guardrails", GUARDRAILS, "on"),
        # video2video's transfer hints: a weight each (empty: not used) and the edge
        # threshold and blur strength of those two (args.py:225-296)
        *((f"c3_hint_{h}", f"{h} weight", f"hints.{h}", None, "") for h in HINTS),
        (
            "c3_edge_preset",
            "edge threshold",
            "hints.edge.preset",
            (DEFAULT_CHOICE, *EDGE_THRESHOLDS),
            DEFAULT_CHOICE,
        ),
        (
            "c3_blur_preset",
            "blur strength",
            "hints.blur.preset",
            (DEFAULT_CHOICE, *BLUR_STRENGTHS),
            DEFAULT_CHOICE,
        ),
    ),
    "transfer2.5": (
        ("t25_resolution", "resolution", "resolution", tuple(T25_RESOLUTIONS), "720"),
        ("t25_guidance", "guidance", "guidance", None, "3"),
        ("t25_sigma_max", "sigma_max", "sigma_max", None, ""),
        ("t25_chunk", "chunk frames", "num_video_frames_per_chunk", None, ""),
        ("t25_edge_preset", "edge threshold", "preset_edge_threshold", BLUR_LEVELS, "medium"),
        ("t25_blur_preset", "blur strength", "preset_blur_strength", BLUR_LEVELS, "medium"),
        ("t25_distilled", "distilled", "distilled", ("no", "yes"), "no"),
        ("t25_guardrails", "guardrails", "guardrails", GUARDRAILS, "on"),
        # the style reference: an image here, or a frame of the input video (config.py:487-491)
        ("t25_style_image", "style image", "image_context_path", None, ""),
        ("t25_style_frame", "or style frame of the video", "context_frame_index", None, ""),
        # each weighted control's own files and words (text; empty: not used), keyed
        # "t25.<hint>.<key>" (transfer25_args.HintOptions, config.py:428-474)
        *(
            field
            for h in T25_HINTS
            for field in (
                (f"{h}_control", f"{h} control video", f"t25.{h}.control_path", None, ""),
                (f"{h}_mask", f"{h} mask video", f"t25.{h}.mask_path", None, ""),
                (f"{h}_mask_prompt", f"{h} mask prompt", f"t25.{h}.mask_prompt", None, ""),
            )
        ),
        ("seg_control_prompt", "seg: what to segment", "t25.seg.control_prompt", None, ""),
    ),
}
# The prefix of Transfer2.5's per-control text fields.
T25_HINT_KEY = "t25."
# Typed family fields that take any number (the others take whole numbers), and text.
FLOAT_FIELDS = frozenset({"c3_guidance", "t25_sigma_max"})
TEXT_FIELDS = frozenset({"c3_checkpoint", "t25_style_image"})
# Transfer2.5's choices that are switches of its own (transfer25_args.Transfer25Options).
T25_SWITCHES: dict[str, dict[str, dict[str, bool]]] = {
    "t25_distilled": {"no": {"distilled": False}, "yes": {"distilled": True}},
    "t25_guardrails": {
        "on": {},
        "off": {"disable_guardrails": True},
        "offload": {"offload_guardrail_models": True},
    },
}


def parse_number(raw: str, kind: str, field: str, label: str | None = None) -> float | int:
    """Parse a typed number of ``kind``; raise ValidationError for ``field``.

    The message names the field as the form shows it (``label``), the error's ``field``
    is what marks it.
    """
    try:
        return int(raw) if kind == "int" else float(raw)
    except ValueError as exc:
        wanted = "a whole number" if kind == "int" else "a number"
        raise ValidationError(
            f"{label or field} must be {wanted}, not '{raw}'", field=field
        ) from exc


class RunForm(FormScreen[Run]):
    """Create a run of a prompt and start it; each change is validated at once."""

    SAVE_LABEL = "Create and start"
    BINDINGS = [
        Binding("ctrl+s", "save", "Create and start", id="form.save"),
        Binding("escape", "cancel", "Cancel", id="form.cancel"),
    ]

    def __init__(self, services: UIServices, prompt: Prompt, config: Config) -> None:
        super().__init__()
        self.services = services
        self.prompt = prompt
        self.config = config
        self.params: GenerationParams | None = None

    def compose(self) -> ComposeResult:
        """Parameter fields in a grid; host; negative prompt; buttons."""
        defaults = (
            self.services.run_params(self.prompt, {}) if self.prompt else self.config.defaults
        )
        with VerticalScroll(id="run-form", classes="dialog form"):
            yield Static(
                f"{self.prompt.id}  {clip(self.prompt.text, 70)}", id="run-prompt", markup=False
            )
            with Grid(id="param-grid"):
                with Vertical(classes="param"):
                    yield Label("model")
                    yield Select(
                        [(name, name) for name in profile_names()],
                        value="transfer1",
                        allow_blank=False,
                        id="profile",
                    )
                for field, label, _kind in NUMBER_FIELDS:
                    value = 0 if field == "priority" else getattr(defaults, field)
                    with Vertical(classes="param", id=f"param-{field}"):
                        yield Label(label)
                        yield Input(
                            f"{value:g}" if isinstance(value, float) else str(value), id=field
                        )
                with Vertical(classes="param", id="param-blur_strength"):
                    yield Label("blur")
                    yield Select(
                        [(v, v) for v in BLUR_LEVELS],
                        value=defaults.blur_strength,
                        allow_blank=False,
                        id="blur_strength",
                    )
                with Vertical(classes="param", id="param-canny_threshold"):
                    yield Label("canny")
                    yield Select(
                        [(v, v) for v in BLUR_LEVELS],
                        value=defaults.canny_threshold,
                        allow_blank=False,
                        id="canny_threshold",
                    )
                with Vertical(classes="param"):
                    yield Label("host")
                    # A cluster is a target too: the run goes to the queue, pinned there.
                    hosts = [(AUTO_HOST, AUTO_HOST)] + [(n, n) for n in self.services.host_names()]
                    hosts += [(f"{n} (Ray cluster)", n) for n in self.services.cluster_names()]
                    yield Select(hosts, value=AUTO_HOST, allow_blank=False, id="host")
            with Grid(id="family-grid"):
                for fields in FAMILY_FIELDS.values():
                    for field_id, label, key, choices, default in fields:
                        with Vertical(classes="param", id=f"param-{field_id}"):
                            yield Label(label)
                            if choices is None:
                                yield Input(
                                    default, id=field_id, placeholder=self._placeholder(key)
                                )
                            else:
                                options = [(c, c) for c in choices]
                                yield Select(options, value=default, allow_blank=False, id=field_id)
                with Vertical(classes="param", id="param-c3_pixels"):
                    yield Label("pixels")
                    yield Static("", id="c3_pixels", markup=False)
            with Vertical(id="param-negative_prompt"):
                yield Label("Negative prompt")
                yield Input(defaults.negative_prompt or "", id="negative_prompt")
            yield from self.form_footer()

    def _placeholder(self, key: str) -> str:
        """What an empty field means (the model's default), where that needs saying."""
        if key == "checkpoint":
            return "/path/on/the/host"
        if key == "image_context_path":
            return "an image here (png, jpg), uploaded"
        if key == "context_frame_index":
            return "frame index: 1 is the second"
        if not key.startswith(T25_HINT_KEY):
            return ""
        _prefix, hint, name = key.split(".")
        if name == "control_path":
            own = self.prompt.input(hint) if self.prompt else None
            return f"the prompt's {own.path.name}" if own else "computed by the model"
        if name == "mask_path":
            return "a video here (white: apply)"
        if name == "mask_prompt":
            return "words to mask (or a video)"
        return "the prompt's first words"

    def on_mount(self) -> None:
        """Title, focus the first weight, validate the defaults; find the prompt's model."""
        self.query_one("#run-form").border_title = "New run"
        self.query_one("#vis_weight", Input).focus()
        self._show_fields()
        self.validate_form()
        if self.prompt is not None:
            self._remembered_profile()

    @property
    def profile(self) -> str:
        """The chosen model family."""
        return str(self.query_one("#profile", Select).value)

    def shown(self, field: str) -> bool:
        """Whether the chosen family reads ``field`` (priority is the queue's, always)."""
        return field == "priority" or field in profile_for(self.profile).shared_params

    def _cosmos3_mode(self) -> str:
        """The Cosmos 3 mode the run will have (the inputs decide when it is automatic)."""
        chosen = str(self.query_one("#c3_mode", Select).value)
        if chosen != AUTO_MODE:
            return chosen
        roles = {item.role for item in self.prompt.inputs} if self.prompt else set()
        if "color" in roles:
            return "video2video"
        return "image2video" if "image" in roles else "text2video"

    def _family_shows(self, family: str, key: str) -> bool:
        """Whether a family field applies: its family is chosen (and hints: video2video).

        A Transfer2.5 control's own fields show while its weight is above 0.
        """
        if family != self.profile:
            return False
        if key.startswith(T25_HINT_KEY):
            return self._weight(key.split(".")[1]) > 0
        return not key.startswith("hints.") or self._cosmos3_mode() == "video2video"

    def _weight(self, hint: str) -> float:
        """The typed weight of a shared control (0 while it is not a number)."""
        try:
            return float(self.query_one(f"#{hint}_weight", Input).value)
        except ValueError:
            return 0.0

    def _show_fields(self) -> None:
        for field, _label, _kind in NUMBER_FIELDS:
            self.query_one(f"#param-{field}").set_class(not self.shown(field), "-hidden")
        for field in ("blur_strength", "canny_threshold", "negative_prompt"):
            self.query_one(f"#param-{field}").set_class(not self.shown(field), "-hidden")
        for family, fields in FAMILY_FIELDS.items():
            for field_id, _label, key, _choices, _default in fields:
                shown = self._family_shows(family, key)
                self.query_one(f"#param-{field_id}").set_class(not shown, "-hidden")
        self.query_one("#param-c3_pixels").set_class(self.profile != "cosmos3", "-hidden")
        self.query_one("#family-grid").set_class(self.profile not in FAMILY_FIELDS, "-hidden")
        focused = self.focused
        if focused is not None and any(n.has_class("-hidden") for n in focused.ancestors_with_self):
            self.query_one("#profile", Select).focus()  # never type into a hidden field

    @work(exclusive=True, group="run-form-profile", exit_on_error=False)
    @reported
    async def _remembered_profile(self) -> None:
        """Start on the model of the prompt's newest run, unless one was chosen since."""
        # transfer runs only: an enhancement or upscale is recorded as Transfer1's
        page = await self.services.list_runs(
            RunFilter(prompt_id=self.prompt.id, type=RunType.TRANSFER), 0, 1, "created", True
        )
        select = self.query_one("#profile", Select)
        latest = page.items[0].profile if page.items else None
        if latest in profile_names() and select.value == "transfer1" and latest != "transfer1":
            select.value = latest

    def overrides(self) -> tuple[dict[str, Any], int]:
        """Read every field; return parameter overrides and the priority."""
        values: dict[str, Any] = {"profile": self.profile}
        priority = 0
        for field, _label, kind in NUMBER_FIELDS:
            if not self.shown(field):
                continue
            raw = self.query_one(f"#{field}", Input).value.strip()
            number = parse_number(raw, kind, field)
            if field == "priority":
                priority = int(number)
            else:
                values[field] = number
        for field in ("blur_strength", "canny_threshold"):
            if self.shown(field):
                values[field] = self.query_one(f"#{field}", Select).value
        if self.shown("negative_prompt"):
            negative = self.query_one("#negative_prompt", Input).value.strip()
            values["negative_prompt"] = negative or None
        options = self.family_options()
        if options:
            values["options"] = options
        return values, priority

    def family_options(self) -> dict[str, Any]:
        """The chosen family's own options, as its check takes them (typed, not checked).

        Hint fields (``hints.<name>`` and ``hints.<name>.preset``) become Cosmos 3's
        ``hints`` table: a weight turns a hint on; a preset needs its hint's weight.

        Raises:
            ValidationError: A typed value that is not a number, or a preset of a hint
                that has no weight.
        """
        options: dict[str, Any] = {}
        hints: dict[str, dict[str, Any]] = {}
        presets: dict[str, tuple[str, str, str]] = {}
        own: dict[str, dict[str, str]] = {}  # Transfer2.5: each control's files and words
        for field_id, label, key, choices, _default in FAMILY_FIELDS.get(self.profile, ()):
            if not self._family_shows(self.profile, key):
                continue
            if key.startswith(T25_HINT_KEY):
                text = self.query_one(f"#{field_id}", Input).value.strip()
                if text:
                    _prefix, hint, name = key.split(".")
                    own.setdefault(hint, {})[name] = text
                continue
            if choices is not None:
                value = str(self.query_one(f"#{field_id}", Select).value)
                if value in (AUTO_MODE, DEFAULT_CHOICE):
                    continue
                if field_id in T25_SWITCHES:
                    options.update(T25_SWITCHES[field_id][value])
                    continue
                if key.endswith(".preset"):
                    presets[key.split(".")[1]] = (value, label, field_id)
                else:
                    options[key] = value
                continue
            raw = self.query_one(f"#{field_id}", Input).value.strip()
            if not raw:  # empty: the family's default (a hint: not used)
                continue
            if field_id in TEXT_FIELDS:
                options[key] = raw
                continue
            if key.startswith("hints."):
                weight = parse_number(raw, "float", field_id, label)
                hints[key.split(".")[1]] = {"weight": weight}
            else:
                kind = "float" if field_id in FLOAT_FIELDS else "int"
                options[key] = parse_number(raw, kind, key, label)
        for hint, (value, label, field_id) in presets.items():
            if hint not in hints:
                raise ValidationError(
                    f"{label} applies to the {hint} hint: give the {hint} hint a weight, or "
                    "leave it at the model's default",
                    field=field_id,
                )
            hints[hint]["preset"] = value
        if hints:
            options["hints"] = hints
        if own:
            # Named controls replace the shared weights' (engine/profiles/transfer25_profile.py)
            options["hints"] = [
                {"hint": h, "weight": self._weight(h), **own.get(h, {})}
                for h in T25_HINTS
                if self._weight(h) > 0
            ]
        return options

    def validate_form(self) -> bool:
        """Validate every field now; mark the wrong one and say what to change."""
        self.clear_errors()
        try:
            overrides, priority = self.overrides()
            validate_priority(priority)
            self.params = self.services.run_params(self.prompt, overrides)
            self._show_pixels(self.params)
        except ValidationError as exc:
            self.params = None
            marked: list[str] = []
            if exc.field:
                # a family option's error names its key (num_frames): mark its field
                keys = {key: field_id for field_id, _l, key, _c, _d in
                        FAMILY_FIELDS.get(self.profile, ())}  # fmt: skip
                # the hints' rules name them all ("hints"): mark each weight given
                marked = [keys.get(exc.field, exc.field)]
                if exc.field == "hints":
                    weights = [f for k, f in keys.items() if re.fullmatch(r"hints\.\w+", k)]
                    marked = [f for f in weights if self.query_one(f"#{f}", Input).value]
            self.show_error(exc, marked)
            return False
        return True

    def _show_pixels(self, params: GenerationParams) -> None:
        """Show the width and height a Cosmos 3 run's tier and aspect make."""
        if self.profile != "cosmos3":
            return
        width, height = cosmos3_options(params).pixel_size
        self.query_one("#c3_pixels", Static).update(f"{width} x {height}")

    @on(Input.Changed)
    @on(Select.Changed)
    def _changed(self, event: Input.Changed | Select.Changed) -> None:
        control = event.control.id or ""
        if control in ("profile", "c3_mode") or control.endswith("_weight"):
            self._show_fields()
        self.validate_form()

    def action_save(self) -> None:
        """Create and start the run when every field is valid."""
        if self.validate_form():
            self._save()

    @work(exclusive=True, group="save", exit_on_error=False)
    @reported
    async def _save(self) -> None:
        overrides, priority = self.overrides()
        host = self.query_one("#host", Select).value
        run = await self.services.create_run(self.prompt.id, overrides, priority)
        try:
            run = await self.services.start_run(run.id, None if host == AUTO_HOST else str(host))
        except CosmosError as exc:
            report_error(self.app, exc)
        self.dismiss(run)
