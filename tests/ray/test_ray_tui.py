"""The TUI with a Ray cluster: its card in the GPUs pane, and a run started from the TUI.

The services are the real Workbench behind the FacadeAdapter, as ``cosmos tui`` builds
them; the cluster is the session's real local Ray cluster with fake GPUs.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from cosmos_tui.config import Config
from cosmos_tui.domain import GenerationParams, InputFile, RunState
from cosmos_tui.engine.cluster_health import NODE_ID_CHARS
from cosmos_tui.services.workbench import Workbench
from cosmos_tui.ui.app import CosmosApp
from cosmos_tui.ui.facade import FacadeAdapter
from cosmos_tui.ui.widgets.cluster_card import ClusterCard
from tests.conftest import write_video
from tests.ray.conftest import IDLE_GPUS
from tests.ui.conftest import settle

pytestmark = [pytest.mark.ray, pytest.mark.timeout(240)]


def card_text(card: ClusterCard) -> str:
    return "\n".join(line.plain for line in card._render_card().renderables)  # type: ignore[union-attr]


def node_line(text: str, node_id: str) -> str:
    return next(line for line in text.splitlines() if node_id[:NODE_ID_CHARS] in line)


async def test_the_gpus_pane_shows_the_cluster_and_a_run_started_from_the_tui(
    make_cluster_config: Callable[..., Config], local_ray: Any, tmp_path: Path
) -> None:
    config = make_cluster_config(speed="0.3")
    opened: dict[str, Workbench] = {}

    @asynccontextmanager
    async def services() -> Any:
        async with Workbench.open(config) as bench:
            opened["bench"] = bench
            yield FacadeAdapter(bench, poll_seconds=0.2)

    app = CosmosApp(services, config)
    async with app.run_test(size=(140, 44)) as pilot:
        while app.services is None:
            await pilot.pause()
        await settle(pilot)
        card = app.main_screen.gpus.query_one(ClusterCard)
        for _ in range(200):
            if card.health is not None:
                break
            await pilot.pause(0.1)
        text = card_text(card)
        assert "ray (Ray cluster)" in text and "reachable" in text, text
        assert "4 GPU" in node_line(text, local_ray.big_node)
        assert "2 GPU" in node_line(text, local_ray.small_node)
        # under each worker: its GPUs as Ray's agent reads them (the NVML stand-in)
        local_ray.set_gpus([(12, 1024, 81559, "H100"), (0, 0, 81559, "H100")])
        try:
            for _ in range(600):
                lines = card_text(card).splitlines()
                line = node_line("\n".join(lines), local_ray.small_node)
                below = lines[lines.index(line) + 1 :]
                if below and below[0].strip().startswith("GPU0") and "12%" in below[0]:
                    break
                await pilot.pause(0.1)
            else:
                pytest.fail(f"no reported GPUs under the node: {card_text(card)}")
        finally:
            local_ray.set_gpus(IDLE_GPUS)
        assert "1.0/79.6 GiB  H100" in below[0], below
        assert below[1].strip().startswith("GPU1") and "0%" in below[1], below
        bench = opened["bench"]
        video = write_video(tmp_path / "videos" / "tui" / "color.mp4", b"tui")
        data = video.read_bytes()
        item = InputFile("color", video, hashlib.sha256(data).hexdigest(), len(data))
        prompt = await bench.store.add_prompt("a robot arm, from the TUI", [item])
        params = GenerationParams(negative_prompt="ugly", num_gpus=2, num_steps=4)
        run = await bench.store.add_run(prompt.id, params)
        await app.services.start_run(run.id, None)
        shown = ""
        for _ in range(600):
            current = await bench.store.get_run(run.id, with_events=False)
            shown = card_text(card)
            if current.state == RunState.RUNNING and current.host is not None:
                # the node Ray ran it on (the pane learns it with the next poll); our
                # own job's entrypoint actor is not counted as someone else's
                line = node_line(shown, current.host.split("/", 1)[1])
                if run.id in line and "ours 2" in line and "others 0" in line:
                    break
            await pilot.pause(0.1)
        else:
            pytest.fail(f"the card never showed the run on its node: {shown}")
        for _ in range(600):
            if (await bench.store.get_run(run.id, with_events=False)).state.is_terminal:
                break
            await asyncio.sleep(0.1)
        final = await bench.store.get_run(run.id)
        assert final.state == RunState.COMPLETED, final.failure_message
