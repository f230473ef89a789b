"""Secrets kept: config writes keep mode and links, tokens masked, private data files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

TOKEN = "hf_SuperSecretValue123"
CONFIG_WITH_TOKEN = f"""# mine
[[hosts]]
name = "gpu1"
hostname = "h1"
[hosts.env]
HF_TOKEN = "{TOKEN}"
WANDB_API_KEY = "wandb-abcdef"
PLAIN = "visible?"
HOME_REF = "$HOME"
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_zero():
    """The most permissive umask: nothing the tool creates may become world-readable."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_config_set_keeps_a_private_mode(cosmos, workspace) -> None:
    path = workspace / "config.toml"
    path.write_text(CONFIG_WITH_TOKEN)
    path.chmod(0o600)
    result = cosmos("config", "set", "defaults.num_steps", "20")
    assert result.exit_code == 0, result.stderr
    assert mode(path) == 0o600
    assert "num_steps = 20" in path.read_text() and TOKEN in path.read_text()
    path.chmod(0o640)
    assert cosmos("config", "set", "defaults.num_steps", "21").exit_code == 0
    assert mode(path) == 0o640
    assert [p.name for p in workspace.iterdir() if p.name.startswith(".")] == []


def test_config_set_follows_a_symlink(cosmos, workspace, monkeypatch) -> None:
    real = workspace / "dotfiles" / "cosmos.toml"
    real.parent.mkdir()
    real.write_text(CONFIG_WITH_TOKEN)
    real.chmod(0o600)
    link = workspace / "linked.toml"
    link.symlink_to(Path("dotfiles") / "cosmos.toml")
    monkeypatch.setenv("COSMOS_CONFIG", str(link))
    assert cosmos("config", "set", "hosts.gpu1.user", "alice").exit_code == 0
    assert link.is_symlink() and os.readlink(link) == str(Path("dotfiles") / "cosmos.toml")
    assert 'user = "alice"' in real.read_text() and "# mine" in real.read_text()
    assert mode(real) == 0o600


def test_config_init_and_new_file_are_private(cosmos, workspace, umask_zero) -> None:
    path = workspace / "config.toml"
    path.unlink()
    assert cosmos("config", "init").exit_code == 0
    assert mode(path) == 0o600
    path.unlink()
    assert cosmos("config", "set", "defaults.num_steps", "20").exit_code == 0
    assert mode(path) == 0o600


def test_config_show_masks_env_values_and_tokens(cosmos, workspace) -> None:
    (workspace / "config.toml").write_text(CONFIG_WITH_TOKEN)
    text = cosmos("config", "show")
    assert text.exit_code == 0, text.stderr
    as_json = cosmos("config", "show", "--json")
    for output in (text.stdout, as_json.stdout):
        assert TOKEN not in output and "wandb-abcdef" not in output
        assert "visible?" not in output  # every env value may be a secret
        assert "***" in output
    env = json.loads(as_json.stdout)["hosts"][0]["env"]
    assert env == {"HF_TOKEN": "***", "WANDB_API_KEY": "***", "PLAIN": "***", "HOME_REF": "$HOME"}
    shown = cosmos("config", "show", "--json", "--show-secrets")
    assert json.loads(shown.stdout)["hosts"][0]["env"]["HF_TOKEN"] == TOKEN
    assert TOKEN in cosmos("config", "show", "--show-secrets").stdout


def test_config_set_and_errors_do_not_echo_secrets(cosmos, workspace) -> None:
    path = workspace / "config.toml"
    path.write_text(CONFIG_WITH_TOKEN)
    result = cosmos("config", "set", "hosts.gpu1.env", f'{{ HF_TOKEN = "{TOKEN}x" }}')
    assert result.exit_code == 0, result.stderr
    assert TOKEN not in result.output and "***" in result.stdout
    path.write_text(
        f'[[hosts]]\nname = "g"\nhostname = "h"\nenv = {{ HF_TOKEN = 5, X = "{TOKEN}" }}\n'
    )
    result = cosmos("list", "runs")
    assert result.exit_code == 1 and "env" in result.stderr
    assert TOKEN not in result.stderr, result.stderr


def test_database_logs_and_outputs_are_private_under_umask_zero(
    cosmos, workspace, make_video_dir, umask_zero
) -> None:
    prompt_id = cosmos("create", "prompt", "x", str(make_video_dir())).stdout.strip()
    data = workspace / "data"
    assert mode(data) == 0o700
    assert mode(data / "cosmos.db") == 0o600
    for extra in ("cosmos.db-wal", "cosmos.db-shm", "cosmos.db.lock"):
        if (data / extra).exists():
            assert mode(data / extra) == 0o600, extra
    from cosmos_tui.engine.logs import LocalLog
    from cosmos_tui.engine.runner import spawn_worker

    run_dir = data / "outputs" / "rn_example"
    log = LocalLog(run_dir / "run.log")
    log.open()
    log.close()
    assert mode(data / "outputs") == 0o700 and mode(run_dir) == 0o700
    assert mode(run_dir / "run.log") == 0o600
    other = data / "outputs" / "rn_other"
    pid = spawn_worker(None, other, "rn_doesnotexist")
    os.waitpid(pid, 0)
    assert mode(other) == 0o700 and mode(other / "worker.log") == 0o600
    assert prompt_id.startswith("ps_")
