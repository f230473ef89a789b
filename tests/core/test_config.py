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
        (
            "[[hosts]]\nname = 'a'\nhostname = 'h'\n\n[[hosts]]\nname = 'b'\nhostnme = 'h'\n",
            7,
            "unknown key 'hostnme'",
        ),
        ("[[hosts]]\nname = 'a'\n", 1, "missing required key(s): hostname"),
        (
            "[[hosts]]\nname = 'a'\nhostname = 'x'\n[[hosts]]\nname = 'a'\nhostname = 'y'\n",
            5,
            "unique",
        ),
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


def test_data_paths_follow_config_then_environment(tmp_path: Path) -> None:
    file_only = write(
        tmp_path, f"[paths]\ndata_dir = '{tmp_path / 'd'}'\noutputs_dir = '{tmp_path / 'o'}'\n"
    )
    config = load_config(file_only, environ={})
    assert config.db_path == tmp_path / "d" / "cosmos.db"
    assert config.outputs_dir == tmp_path / "o"
    config = load_config(file_only, environ={"COSMOS_DATA_DIR": str(tmp_path / "envdata")})
    assert config.db_path == tmp_path / "envdata" / "cosmos.db"
    assert config.outputs_dir == tmp_path / "o"
    config = load_config(write(tmp_path, ""), environ={"COSMOS_DATA_DIR": str(tmp_path / "e")})
    assert config.outputs_dir == tmp_path / "e" / "outputs"


@pytest.mark.parametrize(
    ("environ", "fragment"),
    [
        (
            {"COSMOS_DEFAULTS__NUM_STEPS": "abc"},
            "COSMOS_DEFAULTS__NUM_STEPS: 'defaults.num_steps' must be int",
        ),
        ({"COSMOS_FOO__BAR": "1"}, "COSMOS_FOO__BAR: unknown section or key 'foo'"),
        ({"COSMOS_HOSTS__USER": "me"}, "COSMOS_HOSTS__USER cannot be used"),
        ({"COSMOS_TIMEOUTS__RUN": "-5"}, "COSMOS_TIMEOUTS__RUN: 'timeouts.run' is -5"),
    ],
)
def test_bad_environment_values_name_the_variable_not_a_line(
    tmp_path: Path, environ, fragment
) -> None:
    path = write(tmp_path, "[defaults]\nnum_steps = 35\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=environ)
    assert fragment in info.value.message
    assert info.value.line is None and str(path) not in info.value.message


def test_string_settings_take_environment_text_verbatim(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), environ={"COSMOS_UI__THEME": "1984"})
    assert config.ui.theme == "1984"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[[hosts]]\nname = 'a'\nhostname = 'h'\nport = -5\n", "'a.port' is -5"),
        ("[[hosts]]\nname = 'a'\nhostname = 'h'\ngpu_limit = 0\n", "'a.gpu_limit' is 0"),
        ("[[hosts]]\nname = 'a'\nhostname = 'h'\nmax_runs = -1\n", "'a.max_runs' is -1"),
        ("[[hosts]]\nname = 'a'\nhostname = 'h'\ngpu_exclude = ['x1']\n", "'a.gpu_exclude' has"),
        ("[[hosts]]\nname = 'a'\nhostname = 'h'\ngpu_exclude = [1]\n", "list of strings"),
        ("[[hosts]]\nname = ''\nhostname = 'h'\n", "'hosts[0].name' is empty"),
        ("[[hosts]]\nname = 'a'\nhostname = ' '\n", "'hosts[0].hostname' is empty"),
        ("[[hosts]]\nname = 'a'\nhostname = 'h'\nenv = {A = 1}\n", "must be a table of strings"),
        ("[timeouts]\nconnect = nan\n", "must be a finite number"),
        ("[retry]\nbackoff_base = -1\n", "'retry.backoff_base' is -1"),
        ("[retry]\nmax_attempts = 0\n", "'retry.max_attempts' is 0"),
        ("[alerts]\ntemperature_c = -400\n", "'alerts.temperature_c' is -400"),
    ],
)
def test_values_out_of_range_are_reported_with_line(
    tmp_path: Path, text: str, fragment: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert fragment in info.value.message
    assert info.value.line is not None and info.value.line > 1


def test_unreadable_config_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"[ui]\ntheme = '\xff'\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(bad, environ={})
    folder = tmp_path / "dir.toml"
    folder.mkdir()
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(folder, environ={})


def test_inputs_dir_defaults_under_the_data_dir_and_can_be_set(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), environ={"COSMOS_DATA_DIR": str(tmp_path / "e")})
    assert config.inputs_dir == tmp_path / "e" / "inputs"
    chosen = write(tmp_path, f"[paths]\ninputs_dir = '{tmp_path / 'renders'}'\n")
    assert load_config(chosen, environ={}).inputs_dir == tmp_path / "renders"
