"""Several processes opening a fresh database at once: each one succeeds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cosmos_tui.store.migrate import current_revision, known_revisions

_OPEN = """
import asyncio, sys, time
from pathlib import Path
import alembic.command, alembic.config, sqlalchemy  # warm: all reach the upgrade together
from cosmos_tui.store.repositories import Store

async def main() -> None:
    async with Store.open(Path(sys.argv[1])) as store:
        async with store.session():
            pass

deadline = float(sys.argv[2])
while time.time() < deadline:  # start together
    pass
asyncio.run(main())
print("ok")
"""


def test_four_processes_migrate_a_fresh_database_together(tmp_path: Path) -> None:
    import time

    for attempt in range(3):  # three fresh databases: the race is not a lucky one-off
        db = tmp_path / f"race{attempt}" / "cosmos.db"
        start_at = str(time.time() + 1.5)
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", _OPEN, str(db), start_at],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=Path(__file__).parents[2],
            )
            for _ in range(4)
        ]
        results = [p.communicate(timeout=60) for p in processes]
        for process, (out, err) in zip(processes, results, strict=True):
            assert process.returncode == 0 and out.strip() == "ok", err
        assert current_revision(db) == known_revisions()[-1]
