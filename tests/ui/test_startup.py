"""The start-up state (ui/startup.py): each step once, none after quitting began."""

from __future__ import annotations

from typing import Any, cast

from cosmos_tui.ui.protocol import UIServices
from cosmos_tui.ui.startup import StartUp, Step

SERVICES = cast(UIServices, object())


def test_the_services_open_once_and_never_once_quitting_began() -> None:
    startup = StartUp({"prompts", "runs"})
    assert startup.begin_opening() and startup.step == Step.OPENING
    assert not startup.begin_opening()  # the glance's timer and the screen both ask
    late = StartUp({"runs"})
    late.close_requested.set()
    assert late.closing and not late.begin_opening() and late.step == Step.DRAWING


def test_the_streams_start_once_the_screen_has_the_services_and_only_once() -> None:
    startup = StartUp({"prompts", "runs"})
    startup.begin_opening()
    assert not startup.start_streams()  # nothing open yet
    startup.opened(SERVICES)
    assert not startup.ready and not startup.start_streams()  # not handed to the panes
    startup.attached()
    assert startup.ready and startup.services is SERVICES
    assert not startup.first_page_shown("runs")
    assert not startup.first_page_shown("runs")  # the same pane twice counts once
    assert startup.first_page_shown("prompts")
    assert startup.start_streams() and startup.streams_started
    assert not startup.start_streams()  # the fallback timer fires later: nothing again
    startup.closed()
    assert startup.services is None and not startup.ready


def test_a_failure_to_open_is_kept_and_nothing_streams() -> None:
    startup = StartUp({"runs"})
    startup.begin_opening()
    error: Any = RuntimeError("database is locked")
    startup.failed(error)
    startup.closed()
    assert startup.step == Step.FAILED and startup.error is error
    assert not startup.start_streams()
