from __future__ import annotations

import itertools

import pytest

from cosmos_tui.domain import ALLOWED_TRANSITIONS, RunState, check_transition
from cosmos_tui.errors import InvalidTransition, ValidationError
from cosmos_tui.ids import IdSource, check_id_text, kind_of


def test_lifecycle_path_is_allowed_in_order() -> None:
    path = [
        RunState.QUEUED,
        RunState.UPLOADING,
        RunState.STARTING,
        RunState.RUNNING,
        RunState.DOWNLOADING,
        RunState.COMPLETED,
    ]
    for current, target in itertools.pairwise(path):
        check_transition("rs_1", current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (RunState.QUEUED, RunState.RUNNING),
        (RunState.QUEUED, RunState.COMPLETED),
        (RunState.COMPLETED, RunState.QUEUED),
        (RunState.COMPLETED, RunState.FAILED),
        (RunState.FAILED, RunState.RUNNING),
        (RunState.CANCELLED, RunState.COMPLETED),
        (RunState.UPLOADING, RunState.COMPLETED),
        (RunState.DOWNLOADING, RunState.QUEUED),
    ],
)
def test_forbidden_transitions_raise_with_both_states(current: RunState, target: RunState) -> None:
    with pytest.raises(InvalidTransition) as info:
        check_transition("rs_abc", current, target)
    assert current.value in info.value.message
    assert target.value in info.value.message


def test_every_state_has_rules_and_completed_is_final() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(RunState)
    assert ALLOWED_TRANSITIONS[RunState.COMPLETED] == frozenset()
    for state in (RunState.FAILED, RunState.CANCELLED, RunState.BLOCKED):
        assert RunState.QUEUED in ALLOWED_TRANSITIONS[state]
    for state in RunState:
        assert state.is_active != (state.is_terminal or state == RunState.QUEUED)


def test_id_source_uses_prefix_and_injected_randomness() -> None:
    ids = IdSource(lambda n: "ab" * n)
    assert ids.new("rs_") == "rs_" + "ab" * 6
    assert IdSource().new("ps_") != IdSource().new("ps_")
    assert len(IdSource().new("ps_")) == 3 + 12


@pytest.mark.parametrize("text", ["", "rs_", "xyz", "rs_3fa2!", "ps-12", "rs_ 12"])
def test_garbage_id_text_is_rejected(text: str) -> None:
    with pytest.raises(ValidationError):
        check_id_text(text)


def test_id_text_is_normalised_and_classified() -> None:
    assert check_id_text("  RS_3FA2 ") == "rs_3fa2"
    assert kind_of("rs_3fa2") == "run"
    assert kind_of("ps_3fa2") == "prompt"
    assert kind_of("bs_3fa2") == "batch"
    assert kind_of("3fa2") is None
