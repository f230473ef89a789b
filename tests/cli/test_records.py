from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def ok(result) -> str:
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout.strip()


def failed(result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert fragment in lines[0], lines[0]


def count(cosmos, what: str) -> int:
    return json.loads(ok(cosmos("list", what, "--json")))["total"]


def test_create_prompt_picks_up_controls_and_prints_id(cosmos, make_video_dir) -> None:
    folder = make_video_dir("depth.mp4", "seg.mp4", "edge.mp4")
    prompt_id = ok(cosmos("create", "prompt", "A robot arm", str(folder), "--name", "arm"))
    assert prompt_id.startswith("ps_") and len(prompt_id) == 15
    shown = json.loads(ok(cosmos("show", prompt_id[:7], "--json")))
    assert shown["id"] == prompt_id
    assert shown["name"] == "arm"
    assert [i["role"] for i in shown["inputs"]] == ["color", "depth", "edge", "seg"]
    assert all(len(i["sha256"]) == 64 and i["size"] > 0 for i in shown["inputs"])


def test_segmentation_name_preferred_over_seg(cosmos, make_video_dir) -> None:
    folder = make_video_dir("segmentation.mp4", "seg.mp4", "vis.mp4")
    prompt_id = ok(cosmos("create", "prompt", "x", str(folder)))
    inputs = json.loads(ok(cosmos("show", prompt_id, "--json")))["inputs"]
    seg = next(i for i in inputs if i["role"] == "seg")
    assert seg["path"].endswith("segmentation.mp4")
    assert {i["role"] for i in inputs} == {"color", "seg", "vis"}


def test_bad_prompt_inputs_fail_cleanly_and_record_nothing(
    cosmos, make_video_dir, tmp_path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    not_video = make_video_dir()
    (not_video / "color.mp4").write_text("hello")
    zero = make_video_dir()
    (zero / "color.mp4").write_bytes(b"")
    good = make_video_dir()
    failed(cosmos("create", "prompt", "x", str(tmp_path / "missing")), "does not exist")
    failed(cosmos("create", "prompt", "x", str(empty)), "has no color.mp4")
    failed(cosmos("create", "prompt", "x", str(not_video)), "not an MP4")
    failed(cosmos("create", "prompt", "x", str(zero)), "not an MP4")
    failed(cosmos("create", "prompt", "   ", str(good)), "prompt text is empty")
    failed(cosmos("create", "prompt", "y" * 10_001, str(good)), "at most 10000")
    assert count(cosmos, "prompts") == 0
    ok(cosmos("create", "prompt", "y" * 10_000, str(good)))


def test_create_run_with_every_parameter(cosmos, make_video_dir) -> None:
    prompt_id = ok(cosmos("create", "prompt", "x", str(make_video_dir())))
    run_id = ok(
        cosmos(
            "create",
            "run",
            prompt_id,
            "--weights",
            "0.5",
            "0",
            "0.2",
            "1",
            "--steps",
            "20",
            "--guidance",
            "6",
            "--seed",
            "7",
            "--sigma-max",
            "75",
            "--fps",
            "12",
            "--blur",
            "low",
            "--canny",
            "high",
            "--gpus",
            "2",
            "--negative",
            "ugly",
        )
    )
    assert run_id.startswith("rs_")
    run = json.loads(ok(cosmos("show", run_id, "--json")))
    assert run["state"] == "queued"
    assert run["params"] == {
        "vis_weight": 0.5, "edge_weight": 0.0, "depth_weight": 0.2, "seg_weight": 1.0,
        "num_steps": 20, "guidance": 6.0, "seed": 7, "sigma_max": 75.0, "fps": 12,
        "blur_strength": "low", "canny_threshold": "high", "num_gpus": 2,
        "negative_prompt": "ugly", "upscale_weight": 0.5,
    }  # fmt: skip
    assert [e["to"] for e in run["events"]] == ["queued"]


def test_run_defaults_come_from_config(cosmos, make_video_dir, workspace) -> None:
    (workspace / "config.toml").write_text("[defaults]\nnum_steps = 11\nseed = 3\n")
    prompt_id = ok(cosmos("create", "prompt", "x", str(make_video_dir()), "--negative", "no cats"))
    run = json.loads(ok(cosmos("show", ok(cosmos("create", "run", prompt_id)), "--json")))
    assert run["params"]["num_steps"] == 11
    assert run["params"]["seed"] == 3
    assert run["params"]["negative_prompt"] == "no cats"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--weights", "1.7", "0", "0", "0"], "vis weight is 1.7"),
        (["--weights", "0", "0", "0", "0"], "all control weights are 0"),
        (["--weights", "0.5", "-0.2", "0", "0"], "edge weight is -0.2"),
        (["--steps", "0"], "num_steps is 0"),
        (["--gpus", "0"], "num_gpus is 0"),
    ],
)
def test_invalid_run_parameters_exit_1_and_record_nothing(
    cosmos, make_video_dir, args, fragment
) -> None:
    prompt_id = ok(cosmos("create", "prompt", "x", str(make_video_dir())))
    failed(cosmos("create", "run", prompt_id, *args), fragment)
    assert count(cosmos, "runs") == 0


def test_unknown_and_ambiguous_ids(cosmos, make_video_dir) -> None:
    folder = make_video_dir()
    ids = {ok(cosmos("create", "prompt", f"p{i}", str(folder))) for i in range(40)}
    failed(cosmos("show", "ps_zz"), "is not an id")
    failed(cosmos("create", "run", "ps_ffffffffffff0"), "no prompt matches")
    failed(cosmos("rate", "rs_abc", "3"), "no run matches")
    # 40 random ids over 16 first hex digits: at least two share a first digit.
    first_digits = [i[3] for i in ids]
    shared = next(d for d in first_digits if first_digits.count(d) > 1)
    failed(cosmos("show", f"ps_{shared}"), "is ambiguous")


def test_list_filters_json_and_human_output(cosmos, make_video_dir) -> None:
    cat = ok(cosmos("create", "prompt", "a cat on a sofa", str(make_video_dir()), "--name", "cat"))
    dog = ok(cosmos("create", "prompt", "a dog in a park", str(make_video_dir())))
    r1 = ok(cosmos("create", "run", cat))
    r2 = ok(cosmos("create", "run", cat))
    r3 = ok(cosmos("create", "run", dog))
    ok(cosmos("rate", r2, "5"))
    data = json.loads(ok(cosmos("list", "runs", "--prompt", cat[:8], "--json")))
    assert {i["id"] for i in data["items"]} == {r1, r2}
    assert json.loads(ok(cosmos("list", "runs", "--rating", "4", "--json")))["items"][0]["id"] == r2
    assert (
        json.loads(ok(cosmos("list", "runs", "--text", "park", "--json")))["items"][0]["id"] == r3
    )
    assert json.loads(ok(cosmos("list", "runs", "--state", "completed", "--json")))["total"] == 0
    assert json.loads(ok(cosmos("list", "runs", "--since", "1h", "--json")))["total"] == 3
    assert json.loads(ok(cosmos("list", "runs", "--until", "2000-01-01", "--json")))["total"] == 0
    limited = json.loads(ok(cosmos("list", "runs", "--limit", "2", "--json")))
    assert limited["total"] == 3 and len(limited["items"]) == 2
    human = ok(cosmos("list", "runs", "--limit", "2"))
    assert "1-2 of 3 runs (use --offset 2 for more)" in human
    prompts = ok(cosmos("list", "prompts"))
    assert "cat" in prompts and "a dog in a park" in prompts
    assert cosmos("list", "runs", "--since", "yesterday").exit_code == 2
    failed(cosmos("list", "prompts", "--state", "queued"), "filter runs")


def test_search_show_and_rate(cosmos, make_video_dir) -> None:
    cat = ok(cosmos("create", "prompt", "a cat on a sofa", str(make_video_dir())))
    run_id = ok(cosmos("create", "run", cat))
    found = json.loads(ok(cosmos("search", "sofa", "--json")))
    assert [p["id"] for p in found["prompts"]] == [cat]
    assert [r["id"] for r in found["runs"]] == [run_id]
    assert "no prompts" in ok(cosmos("search", "giraffe"))
    assert ok(cosmos("rate", run_id, "3")) == f"{run_id} rated 3/5"
    detail = ok(cosmos("show", run_id))
    assert "rating   3/5" in detail and "timeline:" in detail and "queued" in detail
    assert cosmos("rate", run_id, "6").exit_code == 2
    ok(cosmos("rate", run_id, "0"))
    assert json.loads(ok(cosmos("show", run_id, "--json")))["rating"] is None


def test_delete_previews_confirms_and_keeps_outputs(cosmos, make_video_dir, workspace) -> None:
    prompt_id = ok(cosmos("create", "prompt", "x", str(make_video_dir())))
    runs = [ok(cosmos("create", "run", prompt_id)) for _ in range(2)]
    outputs = workspace / "data" / "outputs"
    for run_id in runs:
        (outputs / run_id).mkdir(parents=True)
        (outputs / run_id / "output.mp4").write_bytes(b"v")
    refused = cosmos("delete", prompt_id, input="n\n")
    assert refused.exit_code == 1
    assert f"This deletes prompt {prompt_id}" in refused.stdout
    assert all(r in refused.stdout for r in runs)
    assert count(cosmos, "runs") == 2
    ok(cosmos("delete", runs[0], "--yes", "--keep-outputs"))
    assert (outputs / runs[0] / "output.mp4").exists()
    ok(cosmos("delete", prompt_id, input="y\n"))
    assert not (outputs / runs[1]).exists()
    assert count(cosmos, "prompts") == 0 and count(cosmos, "runs") == 0


def test_database_from_newer_version_is_refused(cosmos, workspace) -> None:
    import sqlite3

    ok(cosmos("list", "runs"))
    with sqlite3.connect(workspace / "data" / "cosmos.db") as raw:
        raw.execute("UPDATE alembic_version SET version_num = 'ffff'")
    failed(cosmos("list", "runs"), "newer cosmos-tui")


def test_database_that_is_not_sqlite_is_refused(cosmos, workspace) -> None:
    (workspace / "data").mkdir()
    (workspace / "data" / "cosmos.db").write_bytes(b"garbage" * 1000)
    failed(cosmos("list", "prompts"), "not an SQLite database")


def test_real_console_script_exit_codes(workspace, make_video_dir) -> None:
    script = Path(sys.executable).parent / "cosmos"
    env = dict(os.environ)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *args], capture_output=True, text=True, env=env, timeout=60
        )

    assert run("--help").returncode == 0
    assert run("frobnicate").returncode == 2
    bad = run("create", "prompt", "x", str(workspace / "nope"))
    assert bad.returncode == 1 and bad.stderr.startswith("error: ")
    good = run("create", "prompt", "x", str(make_video_dir()))
    assert good.returncode == 0 and good.stdout.startswith("ps_")


@pytest.mark.parametrize(
    "args",
    [
        ("list", "runs", "--until", "99999999d"),
        ("list", "runs", "--since", "9999999999999999999999s"),
        ("list", "runs", "--since", "0001-01-01"),
        ("list", "runs", "--since", "yesterday"),
    ],
)
def test_unusable_dates_are_usage_errors_without_traceback(cosmos, args) -> None:
    result = cosmos(*args)
    assert result.exit_code == 2
    assert "is not a usable date" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_video_folder_mistakes_get_specific_messages(cosmos, make_video_dir, tmp_path) -> None:
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    failed(cosmos("create", "prompt", "x", str(a_file)), "is a file, not a folder")
    folder_named_color = tmp_path / "dircolor"
    (folder_named_color / "color.mp4").mkdir(parents=True)
    failed(cosmos("create", "prompt", "x", str(folder_named_color)), "color.mp4 is a folder")
    dangling = tmp_path / "dangling"
    dangling.mkdir()
    (dangling / "color.mp4").symlink_to(tmp_path / "nowhere.mp4")
    failed(cosmos("create", "prompt", "x", str(dangling)), "broken link")
    assert count(cosmos, "prompts") == 0


def test_names_and_negative_prompts_are_checked(cosmos, make_video_dir) -> None:
    folder = make_video_dir()
    failed(cosmos("create", "prompt", "x", str(folder), "--negative", "n" * 10_001), "negative")
    prompt_id = ok(cosmos("create", "prompt", "x", str(folder), "--name", "   "))
    assert json.loads(ok(cosmos("show", prompt_id, "--json")))["name"] is None
    failed(cosmos("create", "run", prompt_id, "--negative", "n" * 10_001), "negative prompt")
    assert count(cosmos, "runs") == 0


def test_batch_ids_and_upper_case_ids(cosmos, make_video_dir) -> None:
    prompt_id = ok(cosmos("create", "prompt", "x", str(make_video_dir())))
    failed(cosmos("show", "bs_12"), "is a batch id")
    failed(cosmos("delete", "bs_12", "--yes"), "is a batch id")
    assert json.loads(ok(cosmos("show", prompt_id.upper(), "--json")))["id"] == prompt_id
    assert json.loads(ok(cosmos("show", prompt_id[3:9], "--json")))["id"] == prompt_id


def test_delete_without_an_answer_is_an_error_and_keeps_everything(cosmos, make_video_dir) -> None:
    prompt_id = ok(cosmos("create", "prompt", "x", str(make_video_dir())))
    failed(cosmos("delete", prompt_id, input=""), "not confirmed; pass --yes")
    assert count(cosmos, "prompts") == 1


def test_delete_of_an_active_run_is_refused(cosmos, make_video_dir, workspace) -> None:
    import asyncio

    from cosmos_tui.config import load_config
    from cosmos_tui.domain import RunState
    from cosmos_tui.store.repositories import Store

    prompt_id = ok(cosmos("create", "prompt", "x", str(make_video_dir())))
    run_id = ok(cosmos("create", "run", prompt_id))

    async def start() -> None:
        async with Store.open(load_config().db_path) as store:
            await store.transition(run_id, RunState.UPLOADING, "test")

    asyncio.run(start())
    failed(cosmos("delete", prompt_id, "--yes"), "still active; cancel them first")
    failed(cosmos("delete", run_id, "--yes"), "still active")
    assert count(cosmos, "runs") == 1


def test_data_dir_with_url_characters_is_used_as_is(cosmos, make_video_dir, monkeypatch, tmp_path):
    for name in ("q?x", "h#y", "p%20z"):
        data = tmp_path / name
        monkeypatch.setenv("COSMOS_DATA_DIR", str(data))
        ok(cosmos("create", "prompt", "x", str(make_video_dir())))
        assert (data / "cosmos.db").is_file()
        assert count(cosmos, "prompts") == 1
    assert not (tmp_path / "q").exists() and not (tmp_path / "h").exists()
