"""The doctor's quick checks before ``cosmos inference`` starts a session's first run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cosmos_tui.cli.context import fail
from cosmos_tui.cli.doctor_cmd import doctor_reports
from cosmos_tui.config import no_hosts_message
from cosmos_tui.doctor.needs import HUB_FAMILIES
from cosmos_tui.doctor.runner import CHEAP_CHECKS, HUB_LAUNCH_CHECKS

if TYPE_CHECKING:
    from cosmos_tui.config import Config


def refuse_unless_ready(config: Config, host: str | None, profile: str = "transfer1") -> None:
    """Run the cheap checks on the host(s) a run may go to; exit 1 with the fixes if any fails.

    Args:
        config: The configuration.
        host: The host asked for (None: every configured host, as placement may pick any).
        profile: The profile of the runs.
    """
    clusters = {c.name for c in config.clusters}
    if host in clusters or (host is None and clusters and not config.hosts):
        return  # cluster runs: 'cosmos status' checks the cluster; nodes have no SSH here
    names = [host] if host else [h.name for h in config.hosts]
    if not names:
        fail(no_hosts_message(config.source))
    # Cosmos 3 and Transfer2.5 get the host checks (SSH, Docker, the image, disk) and their
    # checkout; their cache and token are checked by their own launch before the upload,
    # for the run's own model (the doctor's are for the family's default one).
    only = CHEAP_CHECKS - HUB_LAUNCH_CHECKS if profile in HUB_FAMILIES else CHEAP_CHECKS
    reports = doctor_reports(config, names, profile, only=only, progress=False)
    broken = [r for r in reports if not r.ok]
    if not broken:
        return
    for report in broken:
        for result in report.failures:
            click.echo(f"{report.host}: {result.title}: {result.detail}", err=True)
            click.echo(f"  fix: {result.fix}", err=True)
    names_text = ", ".join(r.host for r in broken)
    fail(
        f"{names_text} not ready for a run (nothing was started): fix the above and check "
        f"with 'cosmos doctor {broken[0].host}', or start anyway with --skip-checks"
    )
