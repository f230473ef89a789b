"""The cosmos3 profile: upstream's rules at their boundaries, the sample file and the argv.

Each case names the upstream line (NVIDIA/cosmos-framework at 5eee9ed5; docs/cosmos.md,
"Cosmos 3 contract") whose rule it mirrors. Every accepted case is also built into a
sample and held against tests/engine/upstream_cosmos3.py, the transcription of upstream's
pydantic models.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cosmos_tui.config import Config, HostConfig, ProfileConfig
from cosmos_tui.domain import GenerationParams, InputFile, Prompt, Run, RunState, RunType
from cosmos_tui.engine import launch
from cosmos_tui.engine.profiles.base import profile_for, settings_for
from cosmos_tui.engine.profiles.cosmos3_rules import PIXEL_SIZES, Cosmos3Options
from cosmos_tui.errors import ValidationError
from tests.engine.upstream_cosmos3 import build_check

NOW = datetime.now(UTC)
PROFILE = profile_for("cosmos3")


def prompt_with(*roles: str) -> Prompt:
    inputs = tuple(
        InputFile(role, Path(f"/v/{role}.{'jpg' if role == 'image' else 'mp4'}"), "ab" * 32, 9)
        for role in roles
    )
    return Prompt("ps_1", "a red car in rain", None, None, NOW, inputs)


def params(num_gpus: int = 1, **options: Any) -> GenerationParams:
    return GenerationParams(num_gpus=num_gpus, options=options)


def run_of(checked: GenerationParams) -> Run:
    return Run(
        id="rs_c3", prompt_id="ps_1", type=RunType.TRANSFER, profile="cosmos3",
        state=RunState.UPLOADING, params=checked, created_at=NOW, updated_at=NOW,
    )  # fmt: skip


def sample_for(checked: GenerationParams, prompt: Prompt) -> dict:
    layout = launch.RemoteLayout("/home/u", "/home/u/.cosmos-tui", "rs_c3")
    remote = {
        i.role: f"{layout.inputs_dir}/{i.sha256}{i.path.suffix}"
        for i in prompt.inputs
        if i.role in PROFILE.wanted_roles(checked)
    }
    return launch.build_run_spec(run_of(checked), prompt, remote)


def accept(prompt: Prompt, num_gpus: int = 1, **options: Any) -> dict:
    """Check, build the sample and hold it against upstream's models; return it."""
    checked = PROFILE.check(params(num_gpus, **options), prompt)
    sample = sample_for(checked, prompt)
    build_check(sample)
    return sample


def refuse(prompt: Prompt, num_gpus: int = 1, **options: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        PROFILE.check(params(num_gpus, **options), prompt)
    return caught.value.message


V2V = prompt_with("color")
TEXT = prompt_with()
IMAGE = prompt_with("image")


@pytest.mark.parametrize("tier", ["256", "480", "720", "768"])
@pytest.mark.parametrize("aspect", ["1,1", "4,3", "3,4", "16,9", "9,16"])
def test_every_tier_and_aspect_gives_upstreams_pixel_size(tier: str, aspect: str) -> None:
    # args.py:131, 136; data/generator/utils.py:8-67; infer.md:225-231
    table = {
        "256": ["256x256", "320x256", "256x320", "320x192", "192x320"],
        "480": ["640x640", "736x544", "544x736", "832x480", "480x832"],
        "720": ["960x960", "1104x832", "832x1104", "1280x720", "720x1280"],
        "768": ["1024x1024", "1184x880", "880x1184", "1360x768", "768x1360"],
    }
    column = ["1,1", "4,3", "3,4", "16,9", "9,16"].index(aspect)
    options = Cosmos3Options(resolution=tier, aspect_ratio=aspect)
    assert "x".join(map(str, options.pixel_size)) == table[tier][column]
    assert PIXEL_SIZES[tier][aspect] == options.pixel_size
    size = "Cosmos3-Super" if tier == "768" else "Cosmos3-Nano"
    sample = accept(TEXT, 4, mode="text2image", checkpoint=size, resolution=tier,
                    aspect_ratio=aspect)  # fmt: skip
    assert (sample["resolution"], sample["aspect_ratio"]) == (tier, aspect)


@pytest.mark.parametrize(("tier", "high"), [("256", 400), ("480", 300), ("720", 200)])
def test_frames_at_the_edges_of_each_tier(tier: str, high: int) -> None:
    # args.py:144-151 (MIN_NUM_FRAMES 24, MAX_NUM_FRAMES per tier), docs/faq.md:191-201
    assert accept(V2V, mode="video2video", resolution=tier, num_frames=24)["num_frames"] == 24
    assert accept(V2V, mode="video2video", resolution=tier, num_frames=high)["num_frames"] == high
    for frames in (23, high + 1):
        message = refuse(V2V, mode="video2video", resolution=tier, num_frames=frames)
        assert f"from 24 to {high}" in message and "args.py:144-151" in message


def test_text2image_makes_one_frame() -> None:
    # args.py:185-186, 529-532
    assert "num_frames" not in accept(TEXT, mode="text2image")
    assert accept(TEXT, mode="text2image", num_frames=1)["num_frames"] == 1
    assert "frames must be 1" in refuse(TEXT, mode="text2image", num_frames=2)


@pytest.mark.parametrize(
    ("field", "good", "bad", "cite"),
    [
        ("guidance", [0, 7, 3.5], [-0.01, 7.01, float("nan")], "args.py:80"),
        ("num_steps", [1, 1000], [0, -1, 1001, 2.5], "args.py:98"),
        ("fps", [1, 24, 240], [0, 241], "args.py:377"),
    ],
)
def test_sampling_overrides_at_their_bounds(field: str, good: list, bad: list, cite: str) -> None:
    for value in good:
        assert accept(TEXT, mode="text2video", **{field: value})[field] == value
    for value in bad:
        message = refuse(TEXT, mode="text2video", **{field: value})
        assert field.replace("num_", "") in message
        assert cite in message or "finite number" in message


def test_hints_with_weights_presets_and_precomputed_controls() -> None:
    prompt = prompt_with("color", "depth", "edge")
    sample = accept(
        prompt,
        mode="video2video",
        hints={"edge": {"weight": 1.5, "preset": "very_high"}, "depth": 0.5,
               "blur": {"weight": 0, "preset": "none"}},
    )  # fmt: skip
    # weights are normalised by their sum, so 1.5 is a weight like any other (transfer.py:189)
    assert sample["edge"] == {
        "weight": 1.5,
        "control_path": "/cosmos-tui/inputs/" + "ab" * 32 + ".mp4",
        "preset_edge_threshold": "very_high",
    }
    assert sample["depth"]["weight"] == 0.5 and "control_path" in sample["depth"]
    # no blur control in the prompt: upstream computes it from vision_path (transfer.py:135)
    assert sample["blur"] == {"weight": 0.0, "preset_blur_strength": "none"}
    assert sample["vision_path"].endswith(".mp4") and sample["model_mode"] == "video2video"


@pytest.mark.parametrize(
    ("hints", "says"),
    [
        ({"canny": 1.0}, "unknown hint 'canny'"),  # args.py:225-230
        ({"vis": 1.0}, "edge, blur, depth, seg, wsm"),
        ({"edge": -0.1}, "must not be negative"),  # transfer.py:186
        ({"edge": 0, "depth": 0}, "add up to 0"),  # transfer.py:187-188
        ({"edge": {"weight": 1, "preset": "extreme"}}, "edge threshold 'extreme'"),  # :233-238
        ({"blur": {"weight": 1, "preset": "max"}}, "blur strength 'max'"),  # args.py:241-247
        ({"depth": {"weight": 1, "preset": "low"}}, "only edge"),  # args.py:266-271
        ({"edge": "strong"}, "finite number"),
    ],
)
def test_bad_hints_are_refused(hints: dict, says: str) -> None:
    assert says in refuse(V2V, mode="video2video", hints=hints)


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"resolution": "1080"}, "resolution tier '1080'"),  # args.py:131 (image-only 1080)
        ({"resolution": 480}, "resolution tier 480"),  # a tier is a string
        ({"aspect_ratio": "2,3"}, "aspect ratio '2,3'"),  # args.py:136
        ({"aspect_ratio": "16:9"}, "16,9"),
        ({"mode": "reasoner"}, "mode 'reasoner'"),
        ({"parallelism": "fast"}, "latency, throughput"),  # common.py:721
        ({"guardrails": "no"}, "on, offload, off"),  # common.py:849-853
        ({"checkpoint": "Cosmos3-Mega"}, "neither a size"),  # common.py:584-587
        ({"sampler": "edm"}, "unknown cosmos3 option(s): sampler"),  # extra="forbid"
    ],
)
def test_values_upstream_does_not_offer(options: dict, says: str) -> None:
    assert says in refuse(TEXT, **{"mode": "text2video", **options})


def test_modes_fit_the_prompts_inputs() -> None:
    assert "takes only text" in refuse(V2V, mode="text2video")
    assert "takes only text" in refuse(V2V, mode="text2image")
    assert "needs the prompt's input video" in refuse(TEXT, mode="video2video")
    assert "needs an input image" in refuse(TEXT, mode="image2video")
    assert "drive video2video" in refuse(TEXT, mode="text2video", hints={"edge": 1})
    sample = accept(prompt_with("image"), mode="image2video")
    assert sample["vision_path"].endswith(".jpg") and sample["model_mode"] == "image2video"
    assert "vision_path" not in accept(TEXT, mode="text2video")


def test_sizes_their_tiers_and_gpu_counts() -> None:
    # model cards quoted at args.py:460-470
    assert "480" in refuse(TEXT, mode="text2video", checkpoint="Cosmos3-Edge", resolution="720")
    accept(TEXT, mode="text2video", checkpoint="Cosmos3-Edge", resolution="480")
    assert "720" in refuse(TEXT, 4, mode="text2video", checkpoint="Cosmos3-Super",
                           resolution="768")  # fmt: skip
    # infer.md:77, 122-137: Super needs 4+ 80 GB GPUs
    for gpus in (1, 3):
        message = refuse(TEXT, gpus, mode="text2video", checkpoint="Cosmos3-Super",
                         parallelism="throughput")  # fmt: skip
        assert "at least 4 GPUs of 80 GB" in message
    accept(TEXT, 4, mode="text2video", checkpoint="Cosmos3-Super")
    # infer.md:156-160: Super has no video2video
    message = refuse(V2V, 8, mode="video2video", checkpoint="Cosmos3-Super")
    assert "Cosmos3-Super supports" in message
    # a local checkpoint folder: no size rules apply
    accept(TEXT, mode="text2video", checkpoint="/data/ckpt/my-finetune", resolution="720")


def test_latency_needs_an_even_gpu_count() -> None:
    # args.py:1376-1392 (cfgp=min(2,N), cp=N//cfgp) and :1331-1339 (must divide WORLD_SIZE)
    assert "args.py:1331-1339" in refuse(TEXT, 3, mode="text2video", parallelism="latency")
    accept(TEXT, 3, mode="text2video", parallelism="throughput")
    accept(TEXT, 2, mode="text2video", parallelism="latency")
    accept(TEXT, 1, mode="text2video", parallelism="latency")


def test_argv_for_one_and_several_gpus() -> None:
    config = Config()
    one = PROFILE.check(params(mode="text2video", guardrails="offload"), TEXT)
    argv = launch.build_command(run_of(one), config)
    assert argv[:3] == ["python", "-m", "cosmos_framework.scripts.inference"]  # infer.md:68-75
    assert argv[3:7] == ["-i", "/cosmos-tui/run/spec.json", "-o", "/cosmos-tui/run/output"]
    assert "--checkpoint-path" in argv and argv[argv.index("--checkpoint-path") + 1] == (
        "Cosmos3-Nano"
    )
    assert "--parallelism-preset=latency" in argv and "--offload-guardrail-models" in argv
    assert "--dp-shard-size=1" not in argv
    four = PROFILE.check(params(4, mode="text2video", guardrails="off"), TEXT)
    argv = launch.build_command(run_of(four), config)
    entry = "cosmos_framework.scripts.inference"
    assert argv[:4] == ["torchrun", "--nproc-per-node=4", "-m", entry]
    assert "--dp-shard-size=1" in argv and "--no-guardrails" in argv  # infer.md:105, 183
    # Transfer1's offload flags never reach cosmos3 when [profiles.cosmos3] sets none
    assert "--offload_text_encoder_model" not in argv


def test_container_gets_cache_token_and_no_transfer1_mounts() -> None:
    host = HostConfig(name="gpu1", hostname="h", hf_cache_dir="hf-cache", env={"A": "1"})
    settings = ProfileConfig(extra_args=[], repo_dir="cosmos-framework", token_file=".hf/token")
    config = Config(hosts=[host], profiles={"transfer1": ProfileConfig(), "cosmos3": settings})
    assert settings_for(config, "cosmos3") is settings
    layout = launch.RemoteLayout("/home/u", "/home/u/.cosmos-tui", "rs_c3")
    spec = launch.container_spec("rs_c3", ["python"], "img", host, layout, profile="cosmos3",
                                 config=config, environ={"HF_TOKEN": "hf_secret"})  # fmt: skip
    mounts = {m.target: (m.source, m.read_only) for m in spec.mounts}
    assert mounts["/workspace"] == ("/home/u/cosmos-framework", False)
    assert mounts["/root/.cache/huggingface"] == ("/home/u/hf-cache", False)
    assert mounts["/cosmos-tui/secrets/hf_token"] == ("/home/u/.hf/token", True)
    assert "/workspace/checkpoints" not in mounts
    assert spec.env["HF_HOME"] == "/root/.cache/huggingface" and spec.env["A"] == "1"
    assert spec.env["HF_TOKEN"] == "hf_secret"
    assert spec.env["HF_TOKEN_PATH"] == "/cosmos-tui/secrets/hf_token"
    other = dataclasses.replace(settings, token_env="MY_HF", token_file=None)
    config = dataclasses.replace(config, profiles={"cosmos3": other})
    environ = {"MY_HF": "t2", "HF_TOKEN": "x"}
    spec = launch.container_spec("rs_c3", ["python"], "img", host, layout, profile="cosmos3",
                                 config=config, environ=environ)  # fmt: skip
    assert spec.env["HF_TOKEN"] == "t2" and "HF_TOKEN_PATH" not in spec.env


def test_transfer1_refuses_cosmos3_options_and_unknown_profiles() -> None:
    with pytest.raises(ValidationError, match="--profile cosmos3"):
        profile_for("transfer1").check(params(mode="text2video"), V2V)
    with pytest.raises(ValidationError, match="unknown profile 'cosmos4'"):
        profile_for("cosmos4")


def test_cosmos3_runs_batch_only_with_cosmos3_runs_of_their_setup() -> None:
    # the model comes from the setup alone (docs/cosmos.md, "Batches"): the mode and the
    # sampling are each sample's own; a Transfer1 run never shares the key
    import dataclasses

    from cosmos_tui.engine.batching import batch_key, differences

    video = run_of(PROFILE.check(params(mode="video2video", num_steps=5), V2V))
    text = run_of(PROFILE.check(params(mode="text2video", guidance=2.0), TEXT))
    key = batch_key(video, V2V)
    assert key is not None and key.profile == "cosmos3"
    assert batch_key(text, TEXT) == key and differences(video, text) == []
    edge = run_of(PROFILE.check(params(mode="video2video", checkpoint="Cosmos3-Edge"), V2V))
    two = run_of(PROFILE.check(params(num_gpus=2, mode="video2video"), V2V))
    assert differences(video, edge) == ["checkpoint"] and differences(video, two) == ["num_gpus"]
    assert batch_key(edge, V2V) != key and batch_key(two, V2V) != key
    transfer1 = dataclasses.replace(video, profile="transfer1", params=GenerationParams())
    assert batch_key(transfer1, V2V) != key
    # throughput on several GPUs deals samples out to replicas running at once: alone
    latency = run_of(PROFILE.check(params(num_gpus=4, mode="text2video"), TEXT))
    throughput = run_of(
        PROFILE.check(params(num_gpus=4, mode="text2video", parallelism="throughput"), TEXT)
    )
    one = run_of(PROFILE.check(params(mode="text2video", parallelism="throughput"), TEXT))
    assert batch_key(latency, TEXT) is not None and batch_key(one, TEXT) is not None
    assert batch_key(throughput, TEXT) is None


def test_reasoner_enhancements_batch_by_setup_and_by_what_they_see() -> None:
    # one sample per model batch (--max-num-seqs=1, common/args.py:919), but a batch of
    # several would refuse mixed conditionings (inference.py:1915-1928): one key per kind
    import dataclasses

    from cosmos_tui.engine.batching import batch_key

    def enhance(prompt: Prompt, num_gpus: int = 1, **options: Any) -> Run:
        checked = params(num_gpus, mode="reasoner", enhance="child", **options)
        return dataclasses.replace(run_of(checked), type=RunType.ENHANCE)

    video, image = batch_key(enhance(V2V), V2V), batch_key(enhance(IMAGE), IMAGE)
    assert video is not None and video.run_type == "enhance"
    overwrite = dataclasses.replace(
        enhance(V2V), params=params(mode="reasoner", enhance="overwrite")
    )
    assert batch_key(overwrite, V2V) == video  # keeping the answer is each run's own
    both = prompt_with("color", "image")  # the video is what the reasoner sees
    assert batch_key(enhance(both), both) == video
    assert len({video, image, batch_key(enhance(TEXT), TEXT)}) == 3
    assert batch_key(enhance(V2V, checkpoint="Cosmos3-Edge"), V2V) != video
    generation = run_of(PROFILE.check(params(mode="video2video"), V2V))
    assert batch_key(generation, V2V) != video
    assert batch_key(enhance(V2V, 4, parallelism="throughput"), V2V) is None


def test_transfer1s_built_in_negative_prompt_is_not_sent_to_cosmos3() -> None:
    # [defaults] carries upstream Transfer1's negative prompt; Cosmos 3 has its own
    # default (neg_prompts.json), so only a negative prompt the user chose is sent.
    import dataclasses

    from cosmos_tui.config import DEFAULT_NEGATIVE_PROMPT

    built_in = dataclasses.replace(params(), negative_prompt=DEFAULT_NEGATIVE_PROMPT)
    sample = sample_for(PROFILE.check(built_in, TEXT), TEXT)
    assert "negative_prompt" not in sample
    build_check(sample)
    chosen = dataclasses.replace(params(), negative_prompt="blurry, low detail")
    sample = sample_for(PROFILE.check(chosen, TEXT), TEXT)
    assert sample["negative_prompt"] == "blurry, low detail"
