"""Each member of a batch shows its own progress while the container runs.

The log is the doubles' own (run here under busybox, output as the container's log
interleaves it), fed line by line as the follower would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from cosmos_tui.engine.batch_progress import BatchProgress
from cosmos_tui.sandbox.standin import cosmos3_standin_path, transfer25_standin_path

BUSYBOX = shutil.which("busybox") or "/bin/busybox"


def log_of(argv: list[str], cwd: Path, **env: str) -> list[str]:
    environ = {"PATH": "/usr/bin:/bin", "COSMOS_STANDIN_SPEED": "0", "HF_TOKEN": "hf_x",
               "HF_HOME": str(cwd / "hf"), "TMPDIR": str(cwd), **env}  # fmt: skip
    done = subprocess.run([BUSYBOX, "sh", *argv], cwd=cwd, env=environ, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout
    return done.stdout.replace("\r", "\n").splitlines()


def follow(progress: BatchProgress, lines: list[str], run_ids: list[str]):
    """Feed the lines one by one; return every member's snapshot after each line."""
    seen = []
    for number, line in enumerate(lines):
        progress.feed([line], float(number))
        seen.append({r: progress.snapshot(r, float(number)) for r in run_ids})
    return seen


def check_one_after_another(seen, run_ids: list[str]) -> None:
    first, second = run_ids
    # while the first sample runs, the second waits at 0 and says so
    waiting = [i for i, s in enumerate(seen) if s[second].phase.startswith("waiting")]
    assert waiting and waiting == list(range(waiting[0], waiting[-1] + 1))
    running = [seen[i] for i in waiting]
    assert all(s[second].percent == 0.0 for s in running)
    assert running[-1][second].phase == "waiting: sample 2 of 2 (now 1)"
    assert running[0][first].percent < running[-1][first].percent  # the first moves
    # then the second runs from its own start while the first keeps its own end
    later = seen[waiting[-1] + 1 :]
    assert later and all(s[first].percent == running[-1][first].percent for s in later)
    assert later[0][second].percent < later[-1][second].percent
    assert seen[-1][first].percent > 90 and seen[-1][second].percent > 90
    assert not seen[-1][second].phase.startswith("waiting")


def test_cosmos3_members_each_follow_their_own_sample(tmp_path: Path) -> None:
    (tmp_path / "workspace").mkdir()
    (tmp_path / "workspace" / "pyproject.toml").write_text("[project]\nname='cf'\n")
    run_ids = ["rs_first", "rs_second"]
    files = []
    for number, run_id in enumerate(run_ids):
        path = tmp_path / f"sample-{number:03d}-{run_id}.json"
        path.write_text(json.dumps({"name": run_id, "model_mode": "text2video",
                                    "prompt": "a lake", "num_steps": 10}))  # fmt: skip
        files.append(str(path))
    argv = [str(cosmos3_standin_path()), "python", "-m", "cosmos_framework.scripts.inference",
            "-i", *files, "-o", str(tmp_path / "out"), "--keep-going"]  # fmt: skip
    lines = log_of(argv, tmp_path / "workspace")
    progress = BatchProgress("cosmos3", run_ids, 0.0)
    check_one_after_another(follow(progress, lines, run_ids), run_ids)


def test_transfer25_members_each_follow_their_own_section(tmp_path: Path) -> None:
    (tmp_path / "in.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"v" * 64)
    run_ids = ["rs_first", "rs_second"]
    samples = [{"name": r, "prompt": "a car", "video_path": "in.mp4",
                "edge": {"control_weight": 0.5}} for r in run_ids]  # fmt: skip
    (tmp_path / "b.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    argv = [str(transfer25_standin_path()), "python", "examples/inference.py",
            "-i", "b.jsonl", "-o", "out"]  # fmt: skip
    lines = log_of(argv, tmp_path, COSMOS_STANDIN_CHUNKS="2")
    progress = BatchProgress("transfer2.5", run_ids, 0.0)
    check_one_after_another(follow(progress, lines, run_ids), run_ids)


def test_transfer1_members_share_the_batchs_progress() -> None:
    lines = ["Starting diffusion sampling", "  50%|#####     | 18/35 [00:10<00:10,  1.7it/s]"]
    progress = BatchProgress("transfer1", ["a", "b"], 0.0)
    progress.feed(lines, 1.0)
    assert progress.snapshot("a", 1.0) == progress.snapshot("b", 1.0)
    assert not progress.snapshot("b", 1.0).phase.startswith("waiting")
