"""Untrusted text printed by the CLI: control characters escaped, text kept verbatim."""

from __future__ import annotations

import json

from cosmos_tui.safe_text import mask_secrets, one_line, printable

TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J"
RTL = "\u202e"
C1 = "\x9b"


def clean(output: str) -> None:
    for raw in ("\x1b", "\x07", RTL, C1, "\r"):
        assert raw not in output, repr(output)


def test_escaping_helper_makes_every_control_visible() -> None:
    assert one_line(f"a{TITLE}b") == "a\\e]0;pwned\\x07b"
    assert one_line(f"x{RTL}gpj.exe") == "x\\u202egpj.exe"
    assert one_line("tab\tnew\nline\r") == "tab\\tnew\\nline\\r"
    assert one_line(f"{C1}\x7f\x00\u2066\ufeff\udcff") == "\\x9b\\x7f\\x00\\u2066\\ufeff\\udcff"
    assert printable("two\nlines\twith tab") == "two\nlines\twith tab"
    assert printable(f"keep\n{CLEAR}") == "keep\n\\e[2J"
    for text in ("[/]", "[bold", "plain ascii", "caf\u00e9", "\u4e2d\u6587"):
        assert one_line(text) == text  # markup-looking and non-ASCII text is not touched
    assert mask_secrets({"keymap": {"api_key": "ctrl+k"}, "x": {"API_KEY": "v"}}) == {
        "keymap": {"api_key": "ctrl+k"},
        "x": {"API_KEY": "***"},
    }


def test_show_list_and_search_escape_hostile_prompt_text(cosmos, make_video_dir) -> None:
    text = f"{TITLE}[bold]robot{CLEAR} arm {RTL}4pm.exe"
    name = f"[/]{C1}name"
    created = cosmos("create", "prompt", text, str(make_video_dir()), "--name", name)
    assert created.exit_code == 0, created.stderr
    prompt_id = created.stdout.strip()
    run = cosmos("create", "run", prompt_id, "--negative", f"no {TITLE}")
    assert run.exit_code == 0
    for args in (
        ("show", prompt_id),
        ("show", run.stdout.strip()),
        ("list", "prompts"),
        ("list", "runs"),
        ("search", "robot"),
        ("queue",),
    ):
        result = cosmos(*args)
        assert result.exit_code == 0, (args, result.stderr)
        clean(result.stdout)
    shown = cosmos("show", prompt_id).stdout
    assert "\\e]0;pwned\\x07[bold]robot\\e[2J arm \\u202e4pm.exe" in shown
    assert "([/]\\x9bname)" in shown
    # JSON keeps the exact text (escaped the JSON way), for scripts.
    data = json.loads(cosmos("show", prompt_id, "--json").stdout)
    assert data["text"] == text and data["name"] == name
    clean(cosmos("show", prompt_id, "--json").stdout)


def test_error_lines_escape_what_they_quote(cosmos) -> None:
    result = cosmos("show", f"rs_{TITLE}")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "\\e]0;pwned\\x07" in result.stderr
    clean(result.stderr)


def test_text_that_looks_like_an_option_is_kept_verbatim(cosmos, make_video_dir) -> None:
    prompt_id = cosmos("create", "prompt", "a lake", str(make_video_dir())).stdout.strip()
    result = cosmos("create", "run", prompt_id, "--negative=--blurry")
    assert result.exit_code == 0, result.stderr
    data = json.loads(cosmos("show", result.stdout.strip(), "--json").stdout)
    assert data["params"]["negative_prompt"] == "--blurry"
    assert cosmos("config", "set", "alerts.temperature_c", "-1").exit_code == 1  # a value
    assert cosmos("config", "set", "defaults.negative_prompt", "-x").exit_code == 0


def test_inference_without_hosts_names_the_config_file_and_records_nothing(
    cosmos, make_video_dir, workspace
) -> None:
    prompt_id = cosmos("create", "prompt", "a lake", str(make_video_dir())).stdout.strip()
    result = cosmos("inference", prompt_id, "--detach")
    assert result.exit_code == 1
    assert "[[hosts]]" in result.stderr and str(workspace / "config.toml") in result.stderr
    # The advice names a command that exists (cosmos host add) and nothing started.
    assert "cosmos host add NAME" in result.stderr and "started" not in result.stdout
    runs = json.loads(cosmos("list", "runs", "--json").stdout)
    assert runs["total"] == 0
