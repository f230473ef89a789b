"""A stalled run in the TUI: a notification that names the key, and that key cancels it.

The stall watchdog (engine/stall.py) marks a run stalled by its progress phase
(``stalled (...)``); the policy ``timeouts.stall_action = "alert"`` leaves it running, so
the TUI offers the cancel: a warning notification saying which key cancels it, and that
key in the footer while some run is stalled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from cosmos_tui.domain import Run, RunState
from cosmos_tui.ui.screens.confirm import ConfirmScreen
from tests.ui.conftest import Harness, populated, ready, settle

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def pilot(tmp_path: Path) -> AsyncIterator[tuple[Harness, Pilot, dict[str, Run]]]:
    h = Harness(tmp_path)
    async with h.app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(h, pilot)
        runs = await populated(h, pilot, tmp_path)
        yield h, pilot, runs


def shown_keys(h: Harness) -> dict[str, str]:
    """The keys the footer shows now, with their descriptions."""
    active = h.app.screen.active_bindings
    return {key: b.binding.description for key, b in active.items() if b.binding.show}


def stalled_notes(h: Harness) -> list:
    return [n for n in h.app._notifications if n.title == "Run stalled"]


async def test_a_stalled_run_is_announced_with_the_key_that_cancels_it(pilot) -> None:
    h, pilot, runs = pilot
    running = runs["running"]
    assert "C" not in shown_keys(h)  # nothing stalled: no cancel offered
    await h.services.advance_run(running.id, "stalled (diffusion)", 42.0, None)
    await settle(pilot)
    notes = stalled_notes(h)
    assert len(notes) == 1
    assert running.id in notes[0].message and "press C to cancel it" in notes[0].message
    assert notes[0].severity == "warning"
    assert shown_keys(h).get("C") == "Cancel stalled"

    # The same mark again (the next progress write) is not announced twice.
    await h.services.advance_run(running.id, "stalled (diffusion)", 42.0, None)
    await settle(pilot)
    assert len(stalled_notes(h)) == 1

    await pilot.press("C")
    await settle(pilot)
    assert isinstance(h.app.screen, ConfirmScreen)
    assert f"Cancel run {running.id}" in h.app.screen.question
    assert "stalled" in h.app.screen.question
    await pilot.press("y")
    await settle(pilot)
    assert ("cancel_run", running.id) in h.services.calls
    assert "C" not in shown_keys(h)  # cancelled: nothing left to offer


async def test_a_run_that_moves_again_is_no_longer_offered(pilot) -> None:
    h, pilot, runs = pilot
    running = runs["running"]
    await h.services.advance_run(running.id, "stalled (diffusion)", 42.0, None)
    await settle(pilot)
    assert shown_keys(h).get("C") == "Cancel stalled"
    await h.services.advance_run(running.id, "diffusion", 55.0, 100.0)
    await settle(pilot)
    assert "C" not in shown_keys(h)
    await pilot.press("C")
    await settle(pilot)
    assert not isinstance(h.app.screen, ConfirmScreen)
    assert not [c for c in h.services.calls if c[0] == "cancel_run"]


async def test_a_run_that_ends_while_stalled_is_no_longer_offered(pilot) -> None:
    h, pilot, runs = pilot
    running = runs["running"]
    await h.services.advance_run(running.id, "stalled (diffusion)", 42.0, None)
    await settle(pilot)
    await h.services.push_run(running.id, RunState.FAILED, failure_message="stalled")
    await settle(pilot)
    assert "C" not in shown_keys(h)
