"""``[ui] theme``: a name Textual does not know keeps the app up and says what to change."""

from __future__ import annotations

from tests.ui.conftest import ready, settle


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


def _near(a, b) -> bool:
    """The same colour, give or take Textual's rounding through its own colour space."""
    return all(abs(x - y) <= 2 for x, y in zip(a.rgb, b.rgb, strict=True))


async def _card_looks(harness, theme: str) -> tuple[object, object, set[str]]:
    """The colour of a connected host's state word and of a down one's, and its classes."""
    from textual.color import Color

    from cosmos_tui.domain import HostState, HostStatus

    h = harness(theme=theme, hosts=("gpu-a", "gpu-b"))
    async with h.app.run_test() as pilot:
        await ready(h, pilot)
        h.services.host_stream.put(HostStatus("gpu-a", HostState.CONNECTED, latency_ms=9.0))
        h.services.host_stream.put(HostStatus("gpu-b", HostState.DOWN, reason="refused"))
        await settle(pilot)
        gpus = h.app.main_screen.gpus
        up, down = gpus.card("gpu-a"), gpus.card("gpu-b")
        connected = next(s.style for s in up._state_line().spans if s.style)
        theme_colors = h.app.current_theme
        assert _near(Color.from_rich_color(connected.color), Color.parse(theme_colors.success))
        down_word = down._state_line()
        bad = next(s.style for s in down_word.spans if s.style and s.style.bold)
        assert _near(Color.from_rich_color(bad.color), Color.parse(theme_colors.error))
        return connected.color, bad.color, set(down.classes)


async def test_the_gpu_cards_take_their_colours_from_the_theme(harness) -> None:
    dark_ok, dark_bad, down_classes = await _card_looks(harness, "textual-dark")
    nord_ok, nord_bad, _ = await _card_looks(harness, "nord")
    assert dark_ok != nord_ok and dark_bad != nord_bad
    assert "-down" in down_classes and "-connected" not in down_classes


async def test_a_theme_chosen_while_running_recolours_what_is_drawn(harness) -> None:
    from textual.color import Color

    from cosmos_tui.domain import HostState, HostStatus

    h = harness(theme="textual-dark", hosts=("gpu-a",))
    async with h.app.run_test() as pilot:
        await ready(h, pilot)
        h.services.host_stream.put(HostStatus("gpu-a", HostState.CONNECTED, latency_ms=9.0))
        await settle(pilot)
        card = h.app.main_screen.gpus.card("gpu-a")

        def drawn_ok() -> Color:
            # the card as drawn (its last render), not drawn again for the test
            text = card.content.renderables[0]
            style = next(s.style for s in text.spans if "connected" in text.plain[s.start : s.end])
            return Color.from_rich_color(style.color)

        assert _near(drawn_ok(), Color.parse(h.app.current_theme.success))
        h.app.theme = "nord"
        await settle(pilot)
        await pilot.pause(0.1)
        assert _near(drawn_ok(), Color.parse(h.app.current_theme.success))
        assert not _near(drawn_ok(), Color.parse("#4EBF71"))  # textual-dark's


async def test_a_theme_chosen_while_running_recolours_the_tables(harness, tmp_path) -> None:
    from textual.color import Color

    from tests.ui.fakes import populate

    h = harness(theme="textual-dark")
    async with h.app.run_test(size=(120, 40)) as pilot:
        await ready(h, pilot)
        (prompt_id,) = await populate(h.services, tmp_path / "videos", prompts=1)
        prompts = h.app.main_screen.prompts
        prompts.reload()
        await settle(pilot)

        def inputs_colour() -> Color:
            cell = prompts.table.get_cell(prompt_id, "inputs")  # "C" present: the ok look
            return Color.from_rich_color(cell.spans[0].style.color)

        assert _near(inputs_colour(), Color.parse(h.app.current_theme.success))
        h.app.theme = "nord"
        await settle(pilot)
        await pilot.pause(0.1)
        assert _near(inputs_colour(), Color.parse(h.app.current_theme.success))
