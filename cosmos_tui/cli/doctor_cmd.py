"""``cosmos doctor``: check hosts for everything a real run needs, with the fix of each miss."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from cosmos_tui.cli.context import CliContext, echo_json, fail, guard
from cosmos_tui.doctor.model import report_text
from cosmos_tui.doctor.runner import check_profile, run_doctor
from cosmos_tui.remote.host import RemoteHost

__all__ = ["doctor", "doctor_reports", "report_text"]

if TYPE_CHECKING:
    from cosmos_tui.config import Config
    from cosmos_tui.doctor.model import DoctorReport
    from cosmos_tui.remote.docker_probe import PullProgress

pass_cli = click.make_pass_decorator(CliContext)


class PullBar:
    """A one-line progress bar of an image pull, on stderr (layers summed)."""

    def __init__(self, host: str, echo: Callable[[str], None]) -> None:
        self.host = host
        self.echo = echo
        self.layers: dict[str, tuple[int, int]] = {}
        self.last = -1

    def __call__(self, event: PullProgress) -> None:
        """Take one progress event."""
        if event.total and event.current is not None and event.layer:
            self.layers[event.layer] = (event.current, event.total)
        elif event.status in ("Pull complete", "Already exists") and event.layer:
            done = self.layers.get(event.layer, (1, 1))[1]
            self.layers[event.layer] = (done, done)
        current = sum(c for c, _ in self.layers.values())
        total = sum(t for _, t in self.layers.values()) or 1
        percent = int(100 * current / total)
        if percent != self.last:
            self.last = percent
            filled = percent * 30 // 100
            bar = "#" * filled + "." * (30 - filled)
            self.echo(
                f"pulling on {self.host}: [{bar}] {percent:3d}% "
                f"({current / 1024**2:.0f}/{total / 1024**2:.0f} MiB, {len(self.layers)} layers)"
            )


def doctor_reports(
    config: Config,
    names: list[str],
    profile: str,
    *,
    fix: bool = False,
    only: frozenset[str] | None = None,
    progress: bool = True,
) -> list[DoctorReport]:
    """Run the doctor on the hosts ``names`` at once and return their reports."""
    guard(lambda: check_profile(config, profile))
    hosts = [guard(functools.partial(config.host, name)) for name in names]

    async def main() -> list[DoctorReport]:
        remotes = [RemoteHost(h, config.timeouts, config.retry) for h in hosts]
        try:
            return list(
                await asyncio.gather(
                    *(
                        run_doctor(
                            remote,
                            config,
                            profile,
                            fix=fix,
                            only=only,
                            on_pull=PullBar(remote.name, lambda s: click.echo(s, err=True))
                            if progress
                            else None,
                        )
                        for remote in remotes
                    )
                )
            )
        finally:
            await asyncio.gather(*(r.close() for r in remotes), return_exceptions=True)

    return guard(lambda: asyncio.run(main()))


@click.command("doctor")
@click.argument("host", required=False)
@click.option("--profile", default="transfer1", show_default=True, help="Model profile to check.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: one object per host.")
@click.option("--fix", is_flag=True, help="Repair what can be repaired (pull a missing image).")
@pass_cli
def doctor(cli: CliContext, host: str | None, profile: str, as_json: bool, fix: bool) -> None:
    """Check each host for everything a real run needs; print the fix of each failure.

    SSH and host key, latency, a quiet login shell, Docker (reachable, permitted), the
    model image, GPUs inside a container (NVIDIA runtime), the model checkout against the
    image, every checkpoint the profile's controls need, a Hugging Face token for gated
    models, GPU memory and architecture, free disk, shared memory. Hosts are checked at
    once. Exit 0 when every check passes, 1 when any fails.
    """
    config = cli.load_config()
    names = [host] if host else [h.name for h in config.hosts]
    if not names:
        fail("no hosts are configured: add one with 'cosmos host add NAME --hostname HOST'")
    reports = doctor_reports(config, names, profile, fix=fix, progress=not as_json or fix)
    if as_json:
        echo_json([r.to_json() for r in reports])
    else:
        click.echo("\n\n".join(report_text(r) for r in reports))
    if not all(r.ok for r in reports):
        sys.exit(1)
