"""Transfer2.5 launch: argv and env, batch input files and the outputs a run leaves.

Upstream: nvidia-cosmos/cosmos-transfer2.5 at commit 2ff49d07 (docs/cosmos.md,
"Transfer2.5 contract").
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from cosmos_tui.engine.profiles.transfer25 import (
    BatchItem,
    LaunchPaths,
    build_argv,
    build_batch,
    build_env,
    collect_outputs,
    mixed_hints,
)
from cosmos_tui.engine.profiles.transfer25_args import HintOptions, Transfer25Options
from cosmos_tui.errors import ValidationError

from .upstream_transfer25 import SETUP_FLAGS, upstream_validates

OPTS = Transfer25Options(hints=(HintOptions("edge", 0.5),))
PATHS = LaunchPaths(input_files=("/work/run/spec.json",), output_dir="/work/run/out")


def test_single_gpu_runs_python_on_the_example_script() -> None:
    # docs/inference.md:51-54: one GPU is a plain python run with -i and -o.
    argv = build_argv(OPTS, PATHS)
    assert argv == ["python", "examples/inference.py", "-i", "/work/run/spec.json",
                    "-o", "/work/run/out"]  # fmt: skip


def test_multi_gpu_goes_through_torchrun() -> None:
    # docs/inference.md:56-58; context parallel size = WORLD_SIZE (config.py:283-284).
    argv = build_argv(dataclasses.replace(OPTS, num_gpus=4), PATHS)
    assert argv[:3] == ["torchrun", "--nproc_per_node=4", "--master_port=12341"]
    assert argv[3:] == ["examples/inference.py", "-i", "/work/run/spec.json",
                        "-o", "/work/run/out"]  # fmt: skip


def test_setup_flags_are_upstream_kebab_case() -> None:
    options = dataclasses.replace(
        OPTS, distilled=True, num_steps=4, disable_guardrails=True, offload_guardrail_models=True
    )
    argv = build_argv(options, PATHS, extra_args=("--keep-going",))
    assert argv[argv.index("--model") + 1] == "edge/distilled"  # docs/inference.md:159-171
    assert "--disable-guardrails" in argv and "--offload-guardrail-models" in argv
    assert argv[-1] == "--keep-going"
    for item in argv[2:]:
        if item.startswith("--"):
            assert item[2:] in SETUP_FLAGS, item


def test_several_input_files_after_one_dash_i() -> None:
    paths = LaunchPaths(input_files=("/a.json", "/b.json"), output_dir="/o")
    argv = build_argv(OPTS, paths)
    assert argv[argv.index("-i") : argv.index("-o")] == ["-i", "/a.json", "/b.json"]


def test_env_enables_the_distilled_checkpoint_and_the_cache() -> None:
    assert build_env(OPTS) == {}
    env = build_env(dataclasses.replace(OPTS, distilled=True, num_steps=4), hf_home="/hf")
    # config.py:165-169 registers edge/distilled only under this flag (flags.py:50).
    assert env == {"COSMOS_EXPERIMENTAL_CHECKPOINTS": "1", "HF_HOME": "/hf"}


def test_argv_validates_the_options_first() -> None:
    with pytest.raises(ValidationError):
        build_argv(dataclasses.replace(OPTS, guidance=9), PATHS)


def item(name: str, hints: tuple[HintOptions, ...] = OPTS.hints, **kw: object) -> BatchItem:
    return BatchItem(name, f"prompt of {name}", "/in.mp4", dataclasses.replace(OPTS, hints=hints,
                     **kw))  # fmt: skip


def test_batch_is_one_json_line_per_sample(tmp_path, monkeypatch) -> None:
    (tmp_path / "in.mp4").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    text = build_batch([item("a", seed=1), item("b", seed=2)])
    lines = text.splitlines()
    assert len(lines) == 2 and text.endswith("\n")
    samples = [json.loads(line) for line in lines]
    assert [s["name"] for s in samples] == ["a", "b"]
    assert [s["seed"] for s in samples] == [1, 2]  # each run keeps its own settings
    for sample in samples:
        sample["video_path"] = "in.mp4"
        assert upstream_validates(sample) is None


def test_batch_names_must_be_unique() -> None:
    # config.py:408-414: "Inference samplename X is not unique" exits 1.
    with pytest.raises(ValidationError, match="twice"):
        build_batch([item("a"), item("a")])


def test_batch_refuses_mixed_setup_options() -> None:
    with pytest.raises(ValidationError, match="num_gpus"):
        build_batch([item("a"), item("b", num_gpus=2)])


def test_batch_refuses_empty() -> None:
    with pytest.raises(ValidationError, match="no samples"):
        build_batch([])


def test_mixed_hints_means_the_multicontrol_model() -> None:
    # examples/inference.py:51-54, inference.py:64-72.
    assert not mixed_hints([item("a"), item("b")])
    assert mixed_hints([item("a"), item("b", hints=(HintOptions("depth", 1.0),))])


LOG = [
    "[06-07 10:00:00|INFO|cosmos_transfer2/inference.py:163:generate] Generating 3 samples: "
    "['a', 'b', 'c']",
    "[06-07 10:00:00|INFO|cosmos_transfer2/inference.py:167:generate] [1/3] Processing sample a",
    "[06-07 10:00:05|SUCCESS|cosmos_transfer2/inference.py:343:_generate_sample] Generated "
    "video saved to /o/a.mp4",
    "[06-07 10:00:06|INFO|cosmos_transfer2/inference.py:167:generate] [2/3] Processing sample b",
    "[06-07 10:00:06|CRITICAL|cosmos_transfer2/inference.py:217:_generate_sample] Guardrail "
    "blocked generation. Prompt: b",
    "[06-07 10:00:07|INFO|cosmos_transfer2/inference.py:167:generate] [3/3] Processing sample c",
]


def test_outputs_per_sample_blocked_never_sinks_others() -> None:
    files = ["config.yaml", "console.log", "a.json", "a.mp4", "a.txt", "a_control_edge.mp4",
             "b.json", "c.json", "c.mp4", "c.txt", "c_mask_edge.mp4", "../escape.mp4"]  # fmt: skip
    outcomes = collect_outputs(["a", "b", "c"], files, [*LOG, "c saved"], exit_code=0)
    by = {o.name: o for o in outcomes}
    assert by["a"].state == "done" and by["a"].video == "a.mp4"
    assert by["a"].controls == {"edge": "a_control_edge.mp4"}
    assert by["b"].state == "blocked" and by["b"].video is None
    assert "Guardrail" in by["b"].reason
    assert by["c"].state == "done" and by["c"].masks == {"edge": "c_mask_edge.mp4"}


def test_outputs_after_a_crash_are_failed_then_not_run() -> None:
    log = LOG[:4]  # died inside sample b
    outcomes = collect_outputs(["a", "b", "c"], ["a.mp4", "a.json"], log, exit_code=1)
    assert [o.state for o in outcomes] == ["done", "failed", "not_run"]


def test_video_guardrail_block_is_silent_but_recognised() -> None:
    # With keep_going (config.py:238) a blocked video returns None (inference.py:323-325)
    # and the console shows no line for it: a sample left without a video before the
    # next one starts was blocked.
    log = [LOG[1], LOG[3]]
    outcomes = collect_outputs(["a", "b"], ["b.mp4"], log, exit_code=0)
    assert [o.state for o in outcomes] == ["blocked", "done"]


def test_a_video_without_its_prompt_file_in_the_sample_it_died_in_is_not_a_result() -> None:
    # upstream writes <name>.mp4, then <name>.txt (inference.py:336-342): a process killed
    # in between may have left a video cut short
    log = LOG[:4]
    files = ["a.mp4", "a.txt", "b.mp4"]
    outcomes = collect_outputs(["a", "b", "c"], files, log, exit_code=137)
    assert [o.state for o in outcomes] == ["done", "failed", "not_run"]
    # once the process went on past it (or exited 0), the video is whole
    assert collect_outputs(["b"], ["b.mp4"], [LOG[3]], exit_code=0)[0].state == "done"


def test_the_guardrails_own_verdict_names_a_blocked_video() -> None:
    verdict = (
        "[06-07 10:00:06|CRITICAL|cosmos_transfer2/_src/imaginaire/auxiliary/guardrail/"
        "common/presets.py:74:run_video_guardrail] GUARDRAIL BLOCKED: Face blur failed"
    )
    outcomes = collect_outputs(["a", "b"], ["b.mp4", "b.txt"], [LOG[1], verdict, LOG[3]], 0)
    assert outcomes[0].state == "blocked" and "GUARDRAIL BLOCKED: Face blur" in outcomes[0].reason


def test_with_the_guardrails_off_a_missing_video_is_a_failure_not_a_block() -> None:
    outcomes = collect_outputs(["a", "b"], ["b.mp4"], [LOG[1], LOG[3]], 0, guardrails=False)
    assert [o.state for o in outcomes] == ["failed", "done"]


def test_a_prompt_that_quotes_a_section_line_does_not_open_a_section() -> None:
    echo = (
        "[06-07 10:00:06|CRITICAL|cosmos_transfer2/inference.py:217:_generate_sample] Guardrail "
        "blocked generation. Prompt: see [2/3] Processing sample c"
    )
    outcomes = collect_outputs(["a", "b", "c"], [], [LOG[1], echo], 1)
    assert [o.state for o in outcomes] == ["blocked", "not_run", "not_run"]


def test_image_output_counts_as_video() -> None:
    outcomes = collect_outputs(["a"], ["a.jpg"], [], exit_code=0)  # inference.py:293-296
    assert outcomes[0].state == "done" and outcomes[0].video == "a.jpg"


def test_options_round_trip_through_a_params_dict() -> None:
    # Stored as GenerationParams.options (the run's params JSON) by the profile seam.
    from cosmos_tui.engine.profiles.transfer25 import options_from_dict, options_to_dict

    options = dataclasses.replace(
        OPTS,
        hints=(HintOptions("edge", 0.3, control_path="/c.mp4", mask_prompt="road"),
               HintOptions("seg", 0.7, control_prompt="car")),
        sigma_max=80.0, distilled=False, num_gpus=2, negative_prompt="-blurry",
    )  # fmt: skip
    data = options_to_dict(options)
    assert json.loads(json.dumps(data)) == data
    assert options_from_dict(data) == options
    assert options_from_dict({}) == Transfer25Options(hints=())


def test_options_from_dict_refuses_bad_stored_values() -> None:
    from cosmos_tui.engine.profiles.transfer25 import options_from_dict

    with pytest.raises(ValidationError, match="colour"):
        options_from_dict({"colour": 1})
    with pytest.raises(ValidationError, match="between 0 and 1"):
        options_from_dict({"hints": [{"hint": "edge", "weight": 1.5}]})


def test_runs_left_after_a_crash_are_resubmitted_without_the_others() -> None:
    from cosmos_tui.engine.profiles.transfer25 import remaining_items

    items = [item("a"), item("b"), item("c")]
    outcomes = collect_outputs(["a", "b", "c"], ["a.mp4"], LOG[:4], exit_code=1)
    left = remaining_items(items, outcomes)
    assert [i.name for i in left] == ["c"]  # b failed in the model: shown, not retried blindly
    assert remaining_items(items, collect_outputs(["a", "b", "c"], ["a.mp4", "c.mp4"],
                                                  LOG, exit_code=0)) == []  # fmt: skip
