"""Layering: only cosmos_tui.ui imports Textual; and the facade adapter over real parts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cosmos_tui.domain import RunState
from cosmos_tui.engine.logtext import first_error_window, log_level
from cosmos_tui.services import Workbench
from cosmos_tui.ui.facade import FacadeAdapter
from tests.conftest import write_video
from tests.ui.fakes import FAIL_LINES, LOG_LINES, make_config


def test_services_cli_engine_store_do_not_import_textual() -> None:
    code = (
        "import sys\n"
        "import cosmos_tui.services, cosmos_tui.cli, cosmos_tui.engine, cosmos_tui.store\n"
        "import cosmos_tui.cli.records, cosmos_tui.cli.tui_cmd\n"
        "import cosmos_tui.services.workbench\n"
        "assert 'textual' not in sys.modules, sorted(m for m in sys.modules if 'textual' in m)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_tui_draws_its_first_frame_without_the_store_or_ray() -> None:
    # docs/architecture.md: SQLAlchemy is loaded behind the first frame, not before it
    code = (
        "import sys\n"
        "import cosmos_tui.ui.app\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'ray')\n"
        "          or m in ('cosmos_tui.store.repositories', 'cosmos_tui.engine.ray_cluster')]\n"
        "assert not loaded, sorted(loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_only_the_ui_package_imports_textual() -> None:
    package = Path(__file__).resolve().parents[2] / "cosmos_tui"
    offenders = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "ui" not in path.relative_to(package).parts[:1]
        and any(
            line.lstrip().startswith(("import textual", "from textual"))
            for line in path.read_text(encoding="utf-8").splitlines()
        )
    ]
    assert offenders == []


def test_log_levels_treat_torchrun_critical_notice_as_info() -> None:
    assert log_level(LOG_LINES[2]) == "INFO"
    assert log_level(LOG_LINES[4]) == "WARNING"
    assert log_level("[11-21 09:30:03|CRITICAL|x.py:1:f] boom") == "ERROR"
    assert log_level(FAIL_LINES[2]) == "ERROR"
    assert log_level("plain text") == "INFO"


def test_first_error_window(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text("\n".join([*(f"l{i}" for i in range(10)), *FAIL_LINES, "after"]) + "\n")
    window = first_error_window(log, 2)
    assert window == ("l8", "l9", FAIL_LINES[0], FAIL_LINES[1], FAIL_LINES[2])


async def test_adapter_over_real_workbench(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data")
    folder = tmp_path / "clip"
    write_video(folder / "color.mp4")
    async with Workbench.open(config) as bench:
        adapter = FacadeAdapter(bench, poll_seconds=0.05)
        assert adapter.host_names() == ("gpu-a",)
        assert set(await adapter.find_inputs(folder)) == {"color"}
        prompt = await adapter.create_prompt("a crane at dusk", folder, None, None)
        run = await adapter.create_run(prompt.id, {"num_steps": 9}, 0)
        assert run.params.num_steps == 9
        log = bench.output_dir(run.id) / "run.log"
        log.parent.mkdir(parents=True)
        log.write_text("\n".join([*LOG_LINES, *FAIL_LINES]) + "\n")
        (bench.output_dir(run.id) / "output.mp4").write_bytes(b"x" * 10)
        await bench.store.transition(run.id, RunState.FAILED, "test", failure_kind="gpu_oom")
        batches = [batch async for batch in adapter.follow_log(run.id, 1000)]
        lines = [line for batch in batches for line in batch.lines]
        assert lines == [*LOG_LINES, *FAIL_LINES]
        files = {item.name: item.size for item in await adapter.output_files(run.id)}
        assert files["output.mp4"] == 10
        context = await adapter.log_context(run.id, 3)
        assert any("OutOfMemoryError" in line for line in context)


async def test_enhance_goes_through_the_queue_not_the_single_run_lifecycle(tmp_path: Path) -> None:
    import pytest

    from cosmos_tui.domain import RunType
    from cosmos_tui.errors import ValidationError

    config = make_config(tmp_path / "data")
    folder = tmp_path / "clip"
    write_video(folder / "color.mp4")
    async with Workbench.open(config) as bench:
        adapter = FacadeAdapter(bench, poll_seconds=0.05)
        prompt = await adapter.create_prompt("a crane at dusk", folder, None, None)
        run = await adapter.enhance_prompt(prompt.id)
        # enhancements are the queue's to start: a drive here, asked before anything else
        # awaits (with no GPU host it may look, find nothing to place and end at once)
        assert bench.runs.drives_queue
        assert run.type == RunType.ENHANCE
        assert (await bench.get_run(run.id)).state == RunState.QUEUED
        with pytest.raises(ValidationError, match="cosmos queue run"):
            await bench.runs.start(run.id)
        reasoner = await adapter.enhance_prompt(prompt.id, profile="cosmos3")
        assert reasoner.profile == "cosmos3" and reasoner.params.options["mode"] == "reasoner"
        await bench.runs.close()
        assert not bench.runs.drives_queue
