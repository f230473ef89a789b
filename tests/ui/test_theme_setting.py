"""``[ui] theme``: a name Textual does not know keeps the app up and says what to change."""

from __future__ import annotations

from tests.ui.conftest import ready


async def test_a_known_theme_is_used(harness) -> None:
    h = harness(theme="nord")
    async with h.app.run_test() as pilot:
        await ready(h, pilot)
        assert h.app.theme == "nord"


async def test_an_unknown_theme_warns_and_keeps_the_default(harness) -> None:
    h = harness(theme="no-such-theme")
    async with h.app.run_test() as pilot:
        await ready(h, pilot)
        assert h.app.theme == "textual-dark"
        messages = [n.message for n in h.app._notifications]
        assert any(
            "ui.theme 'no-such-theme' is not a theme; using textual-dark" in m and "nord" in m
            for m in messages
        ), messages
