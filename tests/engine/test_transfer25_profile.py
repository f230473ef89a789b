"""Transfer2.5 through the profile seam's methods (engine/profiles/base.py on wip/cosmos3).

Until the seam's ``GenerationParams.options`` is on this branch, the parameters are a
double with the same fields; the prompt and run are the real domain objects' shape.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from cosmos_tui.config import ProfileConfig
from cosmos_tui.engine.profiles.transfer25_profile import Transfer25Profile, default_settings
from cosmos_tui.engine.profiles.transfer25_progress import Transfer25Parser
from cosmos_tui.errors import ValidationError

from .upstream_transfer25 import upstream_command_line


@dataclass(frozen=True)
class Params:
    """The shared parameters with the seam's ``options`` (domain.GenerationParams)."""

    vis_weight: float = 0.0
    edge_weight: float = 0.5
    depth_weight: float = 0.0
    seg_weight: float = 0.0
    num_steps: int = 35
    seed: int = 1
    num_gpus: int = 1
    negative_prompt: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def weight(self, hint: str) -> float:
        return float(getattr(self, f"{hint}_weight"))


def prompt(*roles: str) -> SimpleNamespace:
    inputs = [SimpleNamespace(role=r) for r in roles]
    return SimpleNamespace(text="a street at dusk", inputs=inputs)


PROFILE = Transfer25Profile()


def test_check_turns_shared_weights_into_controls() -> None:
    params = PROFILE.check(Params(edge_weight=0.5, depth_weight=0.25), prompt("color"))
    hints = params.options["hints"]
    assert [(h["hint"], h["weight"]) for h in hints] == [("edge", 0.5), ("depth", 0.25)]
    assert params.options["seed"] == 1 and params.options["num_steps"] == 35


def test_check_refuses_a_prompt_without_video() -> None:
    with pytest.raises(ValidationError, match="input video"):
        PROFILE.check(Params(), prompt("image"))


def test_check_refuses_what_upstream_refuses() -> None:
    bad = Params(options={"guidance": 8, "hints": [{"hint": "edge", "weight": 1.0}]})
    with pytest.raises(ValidationError, match="guidance"):
        PROFILE.check(bad, prompt("color"))
    with pytest.raises(ValidationError, match="seed"):
        PROFILE.check(Params(seed=-1), prompt("color"))


def run_of(params: Params, gpus: int = 1) -> SimpleNamespace:
    checked = PROFILE.check(dataclasses.replace(params, num_gpus=gpus), prompt("color", "edge"))
    return SimpleNamespace(id="rs_abc123", params=checked)


def test_spec_uses_uploaded_controls_and_the_run_id_as_name() -> None:
    run = run_of(Params(edge_weight=0.5, seg_weight=0.3))
    assert PROFILE.wanted_roles(run.params) == {"color", "edge", "seg"}
    inside = {"color": "/cosmos-tui/inputs/color.mp4", "edge": "/cosmos-tui/inputs/edge.mp4"}
    spec = PROFILE.build_spec(run, prompt("color", "edge"), inside)
    assert spec["name"] == "rs_abc123" and spec["video_path"] == inside["color"]
    assert spec["edge"]["control_path"] == inside["edge"]
    assert "control_path" not in spec["seg"]  # computed by the model


def test_command_is_upstreams_and_has_no_transfer1_flags() -> None:
    settings = default_settings()
    for gpus in (1, 4):
        argv = PROFILE.build_command(run_of(Params(), gpus), settings)
        script = argv.index("examples/inference.py")
        assert upstream_command_line(argv[script + 1 :])[0] == 0, argv
        assert argv[0] == ("torchrun" if gpus > 1 else "python")
    transfer1 = ProfileConfig()  # a config without [profiles.transfer2_5] keeps Transfer1's
    argv = PROFILE.build_command(run_of(Params()), dataclasses.replace(transfer1, extra_args=[]))
    assert "examples/inference.py" in argv


def test_env_passes_the_token_and_the_cache_never_stores_it() -> None:
    settings = SimpleNamespace(hf_cache_dir="/data/hf", token_env="MY_TOKEN", token_file=None)
    env = PROFILE.env(SimpleNamespace(env={}), settings, {"MY_TOKEN": "hf_secret"})
    assert env == {"HF_HOME": "/root/.cache/huggingface", "HF_TOKEN": "hf_secret"}
    assert PROFILE.env(SimpleNamespace(env={}), SimpleNamespace(), {}) == {}
    # the host's [hosts.env] table comes first, $NAME read locally; a configured token wins
    host = SimpleNamespace(env={"NCCL_P2P_DISABLE": "1", "HF_TOKEN": "$OTHER", "X": "$UNSET"})
    env = PROFILE.env(host, settings, {"MY_TOKEN": "hf_secret", "OTHER": "hf_other"})
    assert env == {"NCCL_P2P_DISABLE": "1", "HF_TOKEN": "hf_other",
                   "HF_HOME": "/root/.cache/huggingface"}  # fmt: skip
    distilled = run_of(Params(num_steps=4, options={"distilled": True}))
    assert PROFILE.run_env(distilled) == {"COSMOS_EXPERIMENTAL_CHECKPOINTS": "1"}


def test_outputs_and_parser() -> None:
    assert PROFILE.has_output(["output/rs_abc123.mp4", "output/rs_abc123.json"])
    assert not PROFILE.has_output(["output/rs_abc123_control_edge.mp4", "output/config.yaml"])
    assert isinstance(PROFILE.progress_parser(), Transfer25Parser)


def test_transfer1s_built_in_negative_prompt_is_not_sent_to_transfer25() -> None:
    # [defaults] carries upstream Transfer1's negative prompt; Transfer2.5 has its own
    # default, so only a negative prompt the user chose is sent.
    from cosmos_tui.config import DEFAULT_NEGATIVE_PROMPT

    built_in = PROFILE.check(Params(negative_prompt=DEFAULT_NEGATIVE_PROMPT), prompt("color"))
    assert built_in.options.get("negative_prompt") is None
    chosen = PROFILE.check(Params(negative_prompt="blurry, low detail"), prompt("color"))
    assert chosen.options["negative_prompt"] == "blurry, low detail"
    spec = PROFILE.build_spec(
        SimpleNamespace(id="rs_n1", params=built_in), prompt("color"), {"color": "/c.mp4"}
    )
    assert "negative_prompt" not in spec
