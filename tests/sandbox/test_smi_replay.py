"""The stand-in nvidia-smi's replay of captured output: fields, units, ticks, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cosmos_tui.cli import cli
from cosmos_tui.sandbox.smi_replay import ReplayError, SmiReplay

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nvidia_smi"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def replay(name: str, tick_s: float = 1.0) -> tuple[SmiReplay, Clock]:
    loaded = SmiReplay.load(FIXTURES / name, tick_s)
    clock = Clock()
    loaded.clock = clock
    loaded.restart()
    return loaded, clock


def test_answers_any_subset_of_fields_with_or_without_units() -> None:
    loaded, _ = replay("replay__2gpu__gpu1_requires_reset.csv")
    fields = ("index", "memory.used", "clocks.sm", "not.a.field", "power.draw")
    assert loaded.render(fields, units=False, ids=None).splitlines() == [
        "0, 0, 345, [N/A], 69.85",
        "1, 0, 345, [N/A], [GPU requires reset]",
    ]
    assert loaded.render(("memory.total",), units=True, ids=(1,)) == "81559 MiB\n"
    assert [g[:2] for g in loaded.gpus()] == [
        (0, "GPU-00000000-0000-0000-0000-000000000000"),
        (1, "GPU-00000000-0000-0000-0000-000000000001"),
    ]


def test_one_block_per_tick_and_the_last_one_holds() -> None:
    loaded, clock = replay("replay__2gpu__gpu0_unknown_error.csv", tick_s=0.5)
    fields = ("index", "utilization.gpu", "temperature.gpu")
    assert loaded.render(fields, False, None).splitlines()[0] == "0, 100, 59"
    clock.now += 0.5
    assert loaded.render(fields, False, None).splitlines()[0] == (
        "0, [Unknown Error], [Unknown Error]"
    )
    clock.now += 3600
    assert loaded.tick() == 1


def test_lines_that_are_not_rows_are_printed_as_they_are() -> None:
    text = (
        "index, uuid, name, utilization.gpu [%]\n0, GPU-a, H100, 5 %\n\n"
        "Unable to determine the device handle for GPU 0000:0B:00.0: Unknown Error\n"
    )
    loaded = SmiReplay.parse(text, tick_s=1.0)
    loaded.started -= 1.0
    assert loaded.render(("index",), False, None) == text.splitlines()[-1] + "\n"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("name, temperature.gpu\nH100, 40\n", "must name the --query-gpu fields"),
        ("index, uuid, name\n", "has no row"),
    ],
)
def test_a_bad_replay_says_what_to_change(text: str, words: str) -> None:
    with pytest.raises(ReplayError, match=words):
        SmiReplay.parse(text)


def test_cosmos_demo_rejects_a_bad_replay_before_starting(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("hello\n")
    result = CliRunner().invoke(cli, ["demo", "--headless", "--smi-replay", str(bad)])
    assert result.exit_code == 1
    assert "--smi-replay: the first row of a replay must name" in result.output
    assert "--smi-replay" in CliRunner().invoke(cli, ["demo", "--help"]).output
