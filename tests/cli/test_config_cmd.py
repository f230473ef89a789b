from __future__ import annotations

import json


def test_init_path_show_and_set_keep_comments(cosmos, workspace) -> None:
    path = workspace / "config.toml"
    path.unlink()
    assert cosmos("config", "path").stdout.strip() == str(path)
    assert cosmos("config", "init").exit_code == 0
    assert cosmos("config", "init").exit_code == 1
    text = path.read_text()
    assert "# Generation defaults" in text
    assert cosmos("config", "set", "defaults.num_steps", "21").exit_code == 0
    assert cosmos("config", "set", "ui.theme", "nord").exit_code == 0
    after = path.read_text()
    assert "# Generation defaults" in after and "num_steps = 21" in after
    shown = json.loads(cosmos("config", "show", "--json").stdout)
    assert shown["defaults"]["num_steps"] == 21
    assert shown["ui"]["theme"] == "nord"
    assert "num_steps = 21" in cosmos("config", "show").stdout


def test_set_rejects_bad_keys_and_values_without_writing(cosmos, workspace) -> None:
    path = workspace / "config.toml"
    before = path.read_text()
    for args, fragment in [
        (("defaults.num_stepz", "3"), "unknown key 'num_stepz'"),
        (("defaults.vis_weight", "1.7"), "between 0 and 1"),
        (("defaults.blur_strength", "extreme"), "must be one of"),
        (("nothing", "3"), "dotted key"),
        (("hosts.gpu9.user", "me"), "no host named 'gpu9'"),
    ]:
        result = cosmos("config", "set", *args)
        assert result.exit_code == 1, args
        assert fragment in result.stderr, result.stderr
    assert path.read_text() == before


def test_set_host_key(cosmos, workspace) -> None:
    path = workspace / "config.toml"
    path.write_text('[[hosts]]\nname = "gpu1"  # main box\nhostname = "h1"\n')
    assert cosmos("config", "set", "hosts.gpu1.user", "alice").exit_code == 0
    text = path.read_text()
    assert 'user = "alice"' in text and "# main box" in text


def test_malformed_config_fails_every_command_with_line(cosmos, workspace) -> None:
    (workspace / "config.toml").write_text("[defaults]\nnum_steps = 3\nbogus = 1\n")
    result = cosmos("list", "runs")
    assert result.exit_code == 1
    assert f"{workspace / 'config.toml'}:3: unknown key 'bogus'" in result.stderr


def test_set_on_broken_files_and_values_gives_one_error_line(cosmos, workspace) -> None:
    path = workspace / "config.toml"
    result = cosmos("config", "set", "defaults.num_steps.x", "3")
    assert result.exit_code == 1 and "is a value, not a table" in result.stderr
    path.write_bytes(b"[ui]\ntheme = '\xff'\n")
    result = cosmos("config", "set", "defaults.num_steps", "3")
    assert result.exit_code == 1 and "not UTF-8" in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert path.read_bytes() == b"[ui]\ntheme = '\xff'\n"
    assert not list(workspace.glob(".config.toml.tmp"))
