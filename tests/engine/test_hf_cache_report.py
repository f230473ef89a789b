"""The token check's cache report (engine/profiles/hf_token.py, read_cache_report).

One remote command prints ``missing <model>`` or ``cut <model>`` per model, then
``checked``; what else the host prints (a login banner, a logout message, CRLF line ends)
must not turn the check off or on.
"""

from __future__ import annotations

from cosmos_tui.engine.profiles.hf_token import read_cache_report

MODELS = ["Cosmos3-Nano", "Cosmos-Guardrail1"]


def test_the_cache_report_reads_its_own_lines_and_wants_its_end() -> None:
    models = MODELS
    banner = "Welcome to gpu-1!\nmissing Cosmos-Guardrail1\ncut Cosmos3-Nano\nchecked\n"
    assert read_cache_report(banner, models) == {
        "Cosmos-Guardrail1": "missing",
        "Cosmos3-Nano": "cut",
    }
    assert read_cache_report("checked\n", models) == {}
    assert read_cache_report("missing Cosmos3-Nano\n", models) is None  # cut short
    assert read_cache_report("", models) is None
    assert read_cache_report("missing Other\nchecked\n", models) == {}


def test_line_ends_and_lines_after_the_report_change_nothing() -> None:
    crlf = "missing Cosmos-Guardrail1 \r\nchecked\r\n"
    assert read_cache_report(crlf, MODELS) == {"Cosmos-Guardrail1": "missing"}
    after = "cut Cosmos3-Nano\nchecked\nlogout\nmissing Cosmos-Guardrail1\n"
    assert read_cache_report(after, MODELS) == {"Cosmos3-Nano": "cut"}
