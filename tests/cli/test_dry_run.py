"""``--dry-run`` on ``cosmos inference`` and ``cosmos create run``: shown, never sent.

The configured host is on TEST-NET-1 (192.0.2.1, never routed): any attempt to reach it
would hang until the connect timeout, so a quick exit shows that no host was contacted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import encode_video
from tests.fixtures.mp4 import write_mp4

SECRET = "hf_abcdefghijklmnopqrstuvwxyz"


@pytest.fixture
def hosted(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = workspace / "config.toml"
    config.write_text(
        config.read_text()
        + "[timeouts]\nconnect = 30\n"
        + '[[hosts]]\nname = "gpu1"\nhostname = "192.0.2.1"\nuser = "me"\nshm_size = "16g"\n'
        + '[hosts.env]\nHF_TOKEN = "$MY_HF"\nNCCL_DEBUG = "INFO"\nPYTHONPATH = "/opt/extra"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("MY_HF", SECRET)
    return workspace


def ok(result) -> str:
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout


def prompt_id(cosmos, folder: Path, text: str = "a robot arm") -> str:
    return ok(cosmos("create", "prompt", text, str(folder))).strip()


def runs_recorded(cosmos) -> int:
    return json.loads(ok(cosmos("list", "runs", "--json")))["total"]


def test_create_run_dry_run_shows_the_container_and_records_nothing(
    cosmos, hosted, make_video_dir
) -> None:
    pid = prompt_id(cosmos, make_video_dir("depth.mp4"))
    started = time.monotonic()
    out = ok(cosmos("create", "run", pid, "--dry-run", "--json", "--negative", "-blurry",
                    "--seed", "9", "--gpus", "2"))  # fmt: skip
    assert time.monotonic() - started < 10  # the unroutable host was never contacted
    assert SECRET not in out
    data = json.loads(out)
    assert data["dry_run"] is True
    [box] = data["containers"]
    argv = box["argv"]
    assert argv[:2] == ["torchrun", "--nproc_per_node=2"]
    assert "--negative_prompt=-blurry" in argv and "-blurry" not in argv
    assert argv[argv.index("--seed") + 1] == "9"
    assert argv[argv.index("--controlnet_specs") + 1] == "/cosmos-tui/run/spec.json"
    assert box["env"] == {"HF_TOKEN": "********", "NCCL_DEBUG": "INFO",
                          "PYTHONPATH": "/workspace:/opt/extra"}  # fmt: skip
    assert box["workdir"] == "/workspace"
    targets = {m["target"]: m for m in box["mounts"]}
    assert targets["/workspace"]["source"] == "~/cosmos-transfer1"
    assert targets["/cosmos-tui/inputs"]["read_only"] is True
    assert box["gpus"] is None  # chosen at launch
    spec = box["spec"]
    assert spec["negative_prompt"] == "-blurry" and spec["seed"] == 9
    assert spec["input_video_path"].startswith("/cosmos-tui/inputs/")
    assert spec["depth"]["input_control"].startswith("/cosmos-tui/inputs/")
    assert json.loads(box["files"]["/cosmos-tui/run/spec.json"]) == spec
    assert box["jsonl"] is None
    body = box["create_body"]
    assert body["Cmd"] == argv and body["WorkingDir"] == "/workspace"
    assert "HF_TOKEN=********" in body["Env"] and "PYTHONPATH=/workspace:/opt/extra" in body["Env"]
    assert body["HostConfig"]["ShmSize"] == 16 * 1024**3
    assert body["Labels"]["cosmos.profile"] == "transfer1"
    assert runs_recorded(cosmos) == 0


def test_inference_dry_run_text_and_an_existing_run(cosmos, hosted, make_video_dir) -> None:
    pid = prompt_id(cosmos, make_video_dir())
    text = ok(cosmos("inference", pid, "--dry-run"))
    assert "container cosmos-rs_000000000001 on gpu1" in text
    assert "PYTHONPATH=/workspace:/opt/extra" in text and "HF_TOKEN=********" in text
    assert "nothing was sent to any host and no run was recorded" in text
    assert SECRET not in text
    assert runs_recorded(cosmos) == 0
    run_id = ok(cosmos("create", "run", pid, "--steps", "12")).strip()
    data = json.loads(ok(cosmos("inference", run_id, "--dry-run", "--json")))
    [box] = data["containers"]
    assert box["name"] == f"cosmos-{run_id}" and box["run_ids"] == [run_id]
    assert box["argv"][box["argv"].index("--num_steps") + 1] == "12"
    assert box["create_body"]["Labels"]["cosmos.attempt"] == "1"
    shown = json.loads(ok(cosmos("show", run_id, "--json")))
    assert shown["state"] == "queued" and shown["attempt"] == 0  # untouched


def test_batch_dry_run_shows_the_jsonl(cosmos, hosted, make_video_dir) -> None:
    first = prompt_id(cosmos, make_video_dir("depth.mp4"), "a quay at dawn")
    second = prompt_id(cosmos, make_video_dir(), "a mill in fog")
    data = json.loads(ok(cosmos("inference", first, second, "--dry-run", "--batch", "--json")))
    [box] = data["containers"]
    assert box["name"] == "cosmos-bs_000000000000"
    assert box["run_ids"] == ["rs_000000000001", "rs_000000000002"]
    argv = box["argv"]
    assert argv[argv.index("--batch_input_path") + 1] == "/cosmos-tui/run/batch.jsonl"
    lines = [json.loads(line) for line in box["jsonl"].splitlines()]
    assert [line["prompt"] for line in lines] == ["a quay at dawn", "a mill in fog"]
    assert lines[0]["control_overrides"]["depth"]["input_control"].startswith("/cosmos-tui/")
    assert lines[1]["control_overrides"]["depth"]["input_control"] is None
    assert box["files"]["/cosmos-tui/run/batch.jsonl"] == box["jsonl"]
    assert runs_recorded(cosmos) == 0


def test_dry_run_errors_are_clear(cosmos, hosted, make_video_dir, tmp_path) -> None:
    pid = prompt_id(cosmos, make_video_dir())
    result = cosmos("inference", pid, "--batch")
    assert result.exit_code == 2 and "--batch goes with --dry-run" in result.stderr
    result = cosmos("inference", pid, "--dry-run", "--batch")
    assert result.exit_code == 1 and "two or more" in result.stderr
    folder = tmp_path / "long"
    encode_video(folder / "color.mp4", frames=241)  # two clips; a prompt's inputs are decoded
    long_id = prompt_id(cosmos, folder)
    result = cosmos("create", "run", long_id, "--dry-run", "--seed", str(2**32 - 1))
    assert result.exit_code == 1
    assert "2 clips" in result.stderr and "at most 4294967294" in result.stderr
    assert "Traceback" not in result.output + result.stderr
    result = cosmos("create", "run", long_id, "--seed", str(2**32 - 1))
    assert result.exit_code == 1 and "2 clips" in result.stderr
    assert runs_recorded(cosmos) == 0


def test_dry_run_without_hosts_says_what_to_do(cosmos, workspace, make_video_dir) -> None:
    pid = prompt_id(cosmos, make_video_dir())
    result = cosmos("inference", pid, "--dry-run")
    assert result.exit_code == 1 and "cosmos host add" in result.stderr


def test_dry_run_of_an_upscale_shows_its_steps_fps_and_spec(cosmos, hosted, tmp_path) -> None:
    video = write_mp4(tmp_path / "clip.mp4", frames=90, fps=30)
    run_id = ok(cosmos("upscale", str(video), "--prompt-text", "sharper")).strip()
    [box] = json.loads(ok(cosmos("inference", run_id, "--dry-run", "--json")))["containers"]
    argv = box["argv"]
    assert argv[argv.index("--num_steps") + 1] == "10"
    assert argv[argv.index("--fps") + 1] == "30"
    assert box["spec"]["upscale"] == {"control_weight": 0.5}
    assert box["spec"]["prompt"] == "sharper"
    assert box["spec"]["input_video_path"].startswith("/cosmos-tui/inputs/")
    assert box["env"]["PYTHONPATH"].startswith("/workspace")
