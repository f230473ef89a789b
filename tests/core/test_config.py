from __future__ import annotations

from pathlib import Path

import pytest

from cosmos_tui.config import DEFAULT_NEGATIVE_PROMPT, load_config
from cosmos_tui.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_default_file_gives_builtin_defaults(tmp_path: Path) -> None:
    config = load_config(None, environ={"COSMOS_CONFIG": str(tmp_path / "none.toml")})
    assert config.hosts == []
    assert config.defaults.num_steps == 35
    assert config.defaults.guidance == 5.0
    assert config.defaults.negative_prompt == DEFAULT_NEGATIVE_PROMPT


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cosmos config init"):
        load_config(tmp_path / "nope.toml", environ={})


def test_values_hosts_and_profiles_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[defaults]
num_steps = 20
guidance = 7
blur_strength = "high"

[[hosts]]
name = "gpu1"
hostname = "gpu1.lan"
port = 2222
gpu_limit = 4

[[hosts]]
name = "gpu2"
hostname = "alias2"

[profiles.fast]
script = "other.py"
extra_args = []
""",
    )
    config = load_config(path, environ={})
    assert config.defaults.num_steps == 20
    assert config.defaults.guidance == 7.0
    assert config.defaults.blur_strength == "high"
    assert config.defaults.negative_prompt == DEFAULT_NEGATIVE_PROMPT
    assert [h.name for h in config.hosts] == ["gpu1", "gpu2"]
    assert config.host("gpu1").port == 2222
    assert config.host("gpu2").port is None
    assert set(config.profiles) == {"transfer1", "fast"}
    assert config.profiles["fast"].extra_args == []
    with pytest.raises(ConfigError, match="no host named 'gpu3'"):
        config.host("gpu3")


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("[defaults]\nnum_steps = 20\nnum_step = 3\n", 3, "unknown key 'num_step'"),
        ("[ui]\ntheme = 'x'\n\n[colours]\na = 1\n", 4, "unknown section or key 'colours'"),
        ("[defaults]\nnum_steps = 'many'\n", 2, "must be int"),
        ("[defaults]\nvis_weight = 1.7\n", 2, "between 0 and 1"),
        ("[defaults]\nblur_strength = 'extreme'\n", 2, "must be one of"),
        ("[timeouts]\nrun = 0\n", 2, "greater than 0"),
        ("[defaults]\nnum_steps = = 3\n", 2, "not valid TOML"),
        ("[[hosts]]\nname = 'a'\nhostname = 'h'\n\n[[hosts]]\nname = 'b'\nhostnme = 'h'\n", 7,
         "unknown key 'hostnme'"),
        ("[[hosts]]\nname = 'a'\n", 1, "missing required key(s): hostname"),
        ("[[hosts]]\nname = 'a'\nhostname = 'x'\n[[hosts]]\nname = 'a'\nhostname = 'y'\n", 5,
         "unique"),
        ("[keymap]\nquit = 3\n", 2, "must be a string"),
    ],
)
def test_bad_files_name_file_line_and_problem(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.path == path
    assert info.value.line == line
    assert fragment in info.value.message
    assert info.value.message.startswith(f"{path}:{line}: ")


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[defaults]\nnum_steps = 20\n")
    config = load_config(
        path,
        environ={
            "COSMOS_DEFAULTS__NUM_STEPS": "12",
            "COSMOS_TIMEOUTS__RUN": "600",
            "COSMOS_UI__THEME": "nord",
            "COSMOS_UNRELATED": "x",
        },
    )
    assert config.defaults.num_steps == 12
    assert config.timeouts.run == 600.0
    assert config.ui.theme == "nord"


def test_environment_override_with_unknown_key_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    with pytest.raises(ConfigError, match="unknown key 'nmu_steps'"):
        load_config(path, environ={"COSMOS_DEFAULTS__NMU_STEPS": "3"})


def test_data_paths_follow_config_then_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COSMOS_DATA_DIR", str(tmp_path / "envdata"))
    config = load_config(write(tmp_path, ""), environ={})
    assert config.db_path == tmp_path / "envdata" / "cosmos.db"
    assert config.outputs_dir == tmp_path / "envdata" / "outputs"
    config = load_config(
        write(tmp_path, f"[paths]\ndata_dir = '{tmp_path / 'd'}'\noutputs_dir = '{tmp_path / 'o'}'\n"),
        environ={},
    )
    assert config.db_path == tmp_path / "d" / "cosmos.db"
    assert config.outputs_dir == tmp_path / "o"
