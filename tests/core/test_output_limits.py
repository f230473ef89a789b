"""``max_output_size``, ``ipc_host`` and ``container_user`` in the config."""

from __future__ import annotations

from pathlib import Path

import pytest

from cosmos_tui.config import load_config
from cosmos_tui.config_parse import max_output_bytes
from cosmos_tui.errors import ConfigError


@pytest.mark.parametrize("value", ['"lots"', '"0"', '"-5g"', '""'])
def test_a_bad_output_limit_is_a_config_error_with_its_line(tmp_path: Path, value: str):
    path = tmp_path / "config.toml"
    path.write_text(f'[[hosts]]\nname = "a"\nhostname = "h"\nmax_output_size = {value}\n')
    if value == '""':  # empty means the default
        assert max_output_bytes(load_config(path, environ={}).hosts[0]) == 16 * 1024**3
        return
    with pytest.raises(ConfigError, match=r"config.toml:4: max_output_size of host a is"):
        load_config(path, environ={})


def test_limits_and_least_privilege_options_load(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text('[[hosts]]\nname = "a"\nhostname = "h"\nmax_output_size = "512m"\n'
                    'ipc_host = true\ncontainer_user = "1000:1000"\n')  # fmt: skip
    host = load_config(path, environ={}).hosts[0]
    assert max_output_bytes(host) == 512 * 1024**2
    assert host.ipc_host and host.container_user == "1000:1000"
