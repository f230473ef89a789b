"""Commands about GPU hosts: ``cosmos status`` and ``cosmos host trust``."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from typing import Any

import click

from cosmos_tui.cli.context import CliContext, echo, echo_json, fail, guard
from cosmos_tui.cli.host_add import register, show_untrusted_key
from cosmos_tui.cli.prune_cmd import prune
from cosmos_tui.config import no_hosts_message
from cosmos_tui.domain import GpuSample, RunAlert
from cosmos_tui.remote.ssh import trust_host_key
from cosmos_tui.remote.status import HostReport, collect_status
from cosmos_tui.safe_text import one_line
from cosmos_tui.services import Workbench

pass_cli = click.make_pass_decorator(CliContext)


def _fmt(value: float | None, unit: str = "", digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def report_json(report: HostReport) -> dict[str, Any]:
    """The stable JSON form of a host report."""
    return {
        "host": report.host,
        "state": report.status.state.value,
        "reason": report.status.reason,
        "latency_ms": report.status.latency_ms,
        "docker_version": report.docker_version,
        "image": report.image,
        "image_present": report.image_present,
        "gpu_state": report.gpu_state,
        "gpu_reason": report.gpu_reason,
        "gpus": [
            {
                "index": s.index,
                "uuid": s.uuid,
                "name": s.name,
                "utilization": s.utilization,
                "memory_utilization": s.memory_utilization,
                "memory_used_mib": s.memory_used_mib,
                "memory_total_mib": s.memory_total_mib,
                "temperature_c": s.temperature_c,
                "power_draw_w": s.power_draw_w,
                "power_limit_w": s.power_limit_w,
                "sm_clock_mhz": s.sm_clock_mhz,
                **gpu_health_json(s),
                "runs": list(report.gpu_runs.get(s.index, ())),
            }
            for s in report.gpus
        ],
        "containers": [
            {
                "id": c.id[:12],
                "name": c.name,
                "run_id": c.run_id,
                "status": c.status,
                "exit_code": c.exit_code,
            }
            for c in report.containers
        ],
        "problems": list(report.problems),
        "alerts": [
            {
                "run_id": a.run_id,
                "kind": a.kind.value,
                "message": a.message,
                "gpu_index": a.gpu_index,
                "value": a.value,
                "threshold": a.threshold,
                "raised_at": a.raised_at.isoformat(),
            }
            for a in report.alerts
        ],
    }


def gpu_health_json(sample: GpuSample) -> dict[str, Any]:
    """The health part of a GPU's JSON form (the same facts the GPUs pane shows)."""
    return {
        "health": sample.health.value,
        "health_reason": sample.health_reason,
        "bus_id": sample.bus_id,
        "throttle_reasons": list(sample.throttle_reasons),
        "ecc_uncorrected": sample.ecc_uncorrected,
        "retirement_pending": sample.retirement_pending,
        "remap_pending": sample.remap_pending,
        "pcie_gen": sample.pcie_gen,
        "pcie_width": sample.pcie_width,
        "fan_percent": sample.fan_percent,
        "mig_enabled": sample.mig_enabled,
        "mig_instances": [
            {"profile": m.profile, "device": m.device, "uuid": m.uuid, "memory_gib": m.memory_gib}
            for m in sample.mig_instances
        ],
    }


def report_text(report: HostReport) -> str:
    """A human-readable block for one host."""
    status = report.status
    head = f"{report.host}: {status.state.value}"
    if status.latency_ms is not None:
        head += f" ({status.latency_ms:.0f} ms)"
    lines = [head]
    if report.docker_version:
        present = {True: "present", False: "MISSING", None: "unknown"}[report.image_present]
        lines.append(f"  docker {report.docker_version}; image {report.image}: {present}")
    if report.gpu_state:
        lines.append(f"  gpus: {one_line(report.gpu_state)}")
    for s in report.gpus:
        runs = ", ".join(report.gpu_runs.get(s.index, ())) or "free"
        lines.append(
            f"    [{s.index}] {one_line(s.name)}: {s.health.value}; "
            f"{_fmt(s.utilization, '%')} util, "
            f"{_fmt(s.memory_used_mib)}/{_fmt(s.memory_total_mib)} MiB, "
            f"{_fmt(s.temperature_c, ' C')}, {_fmt(s.power_draw_w, ' W')} -> {runs}"
        )
        if s.health_reason:
            lines.append(f"        {one_line(s.health_reason)}")
        for m in s.mig_instances:
            memory = _fmt(m.memory_gib)
            lines.append(f"        MIG {one_line(m.profile)} device {m.device}: {memory} GiB")
    if report.containers:
        lines.append("  containers:")
        for c in report.containers:
            code = "" if c.exit_code is None else f" (exit {c.exit_code})"
            lines.append(f"    {one_line(c.id[:12])} {one_line(c.name)} {one_line(c.status)}{code}")
    for problem in report.problems:
        lines.append(f"  problem: {one_line(problem)}")
    for alert in report.alerts:
        gpu = "" if alert.gpu_index is None else f" GPU {alert.gpu_index}"
        lines.append(f"  alert: {alert.run_id} {alert.kind.value}{gpu}: {one_line(alert.message)}")
    return "\n".join(lines)


async def open_alerts_by_host(bench: Workbench) -> dict[str, list[RunAlert]]:
    """Open alerts of every run, grouped by host (the alert's, else its run's)."""
    grouped: dict[str, list[RunAlert]] = {}
    for alert in await bench.queue.alerts(open_only=True):
        host = alert.host or (await bench.get_run(alert.run_id)).host
        if host:
            grouped.setdefault(host, []).append(alert)
    return grouped


@click.command("status")
@click.argument("host", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per host).")
@click.option("--check", is_flag=True, help="Exit 1 when a host has a problem or open alert.")
@pass_cli
def status(cli: CliContext, host: str | None, as_json: bool, check: bool) -> None:
    """Show each host's connection, Docker, image, GPUs, problems and open alerts.

    Exits 0 whatever the hosts' health (a report, not a test); with --check it exits 1
    when any host has a problem or an open alert, for scripts and monitoring.
    """
    config = cli.load_config()
    names = [host] if host else [h.name for h in config.hosts]
    clusters = cluster_section(config, host)
    if clusters is not None and not names:
        texts, objects, healthy = clusters
        if as_json:
            echo_json(objects)
        else:
            echo("\n".join(texts))
        if check and not healthy:
            sys.exit(1)
        return
    if not names:
        fail(no_hosts_message(config.source))

    async def action(bench: Workbench) -> list[HostReport]:
        hosts = [bench.hosts.get(name) for name in names]
        reports = await asyncio.gather(*(collect_status(h) for h in hosts))
        alerts = await open_alerts_by_host(bench)
        return [dataclasses.replace(r, alerts=tuple(alerts.get(r.host, ()))) for r in reports]

    reports = cli.run(action)
    texts, objects, healthy = clusters or ([], [], True)
    if as_json:
        echo_json([report_json(r) for r in reports] + objects)
    else:
        echo("\n".join([report_text(r) for r in reports] + texts))
    if check and not (all(r.ok for r in reports) and healthy):
        sys.exit(1)


def cluster_section(config: Any, host: str | None) -> tuple[list[str], list[Any], bool] | None:
    """Text, JSON and health of the configured clusters (None when there are none)."""
    if host is not None or not config.clusters:
        return None
    # lazy: the cluster status code (~15 ms) is only for configured clusters
    from cosmos_tui.cli.cluster_status import cluster_health, health_json, health_text

    health = guard(lambda: asyncio.run(cluster_health(config)))
    return (
        [health_text(h) for h in health],
        [health_json(h) for h in health],
        all(h.reachable for h in health),
    )


@click.group("host")
def host_group() -> None:
    """Manage GPU hosts."""


@host_group.command("trust")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Trust without asking.")
@pass_cli
def trust(cli: CliContext, name: str, yes: bool) -> None:
    """Show a host's key fingerprint, ask, and record it in known_hosts."""

    async def fetch(bench: Workbench) -> Any:
        return await bench.hosts.get(name).host_key()

    info = cli.run(fetch)
    if info.trusted:
        echo(f"the key of {name} is already trusted")
        return
    show_untrusted_key(info, name)
    try:
        agreed = yes or click.confirm("Trust this key?", default=False)
    except click.Abort:  # no answer: end of input or Ctrl-C
        echo(err=True)
        agreed = False
    if not agreed:
        fail("not trusted; nothing was recorded ('--yes' trusts without asking)")
    guard(lambda: trust_host_key(info))
    echo(f"recorded in {info.known_hosts_path}")


register(host_group)
host_group.add_command(prune)
