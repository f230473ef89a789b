"""The GPUs pane: per host its connection and nvidia-smi state, per GPU health, bars, figures.

Each GPU shows a compact health (a glyph and a word: ok, busy, requires reset, lost, error,
stale with its age, throttled, MIG, excluded), judged as the scheduler judges it
(:mod:`cosmos_tui.remote.gpu_policy`); ``d`` shows the detail (why, throttle reasons,
ECC, pending retirement/remapping, PCIe link, fan, MIG instances). A host whose
nvidia-smi gives no figures says why, in the words ``cosmos status`` uses.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from cosmos_tui.config import AlertsConfig, HostConfig
from cosmos_tui.domain import GpuHealth, GpuHostHealth, GpuProcess, GpuSample, HostState, HostStatus
from cosmos_tui.remote.gpu_policy import with_policy
from cosmos_tui.remote.smi import stale_after_s, with_staleness
from cosmos_tui.safe_text import one_line
from cosmos_tui.ui.format import LOOK_CLASSES, Look, Looks, bar, plain, sparkline
from cosmos_tui.ui.messages import HostsRequested
from cosmos_tui.ui.widgets.cluster_card import ClusterCard
from cosmos_tui.ui.widgets.pane import Pane

if TYPE_CHECKING:
    from cosmos_tui.doctor.model import DoctorReport
    from cosmos_tui.engine.cluster_health import ClusterHealth

HISTORY = 300
# health -> (glyph, look)
HEALTH_LOOK: dict[GpuHealth, tuple[str, str]] = {
    GpuHealth.OK: ("\u25cf", "ok"),
    GpuHealth.BUSY: ("\u25d0", "warn"),
    GpuHealth.REQUIRES_RESET: ("\u2716", "bad"),
    GpuHealth.LOST: ("\u2716", "bad"),
    GpuHealth.ERROR: ("\u2716", "bad"),
    GpuHealth.STALE: ("\u25cc", "faint"),
    GpuHealth.THROTTLED: ("\u25bc", "warn"),
    GpuHealth.MIG: ("\u25a6", "accent"),
    GpuHealth.EXCLUDED: ("-", "faint"),
}
QUIET_HOST_STATES = ("ok", "starting", "stopped")
# A card's state classes ("-down" ...): the host's connection state, or "stalled".
CARD_STATES = (*(state.value for state in HostState), "stalled")


def health_text(sample: GpuSample, now: datetime, look: Look) -> Text:
    """The compact health of a GPU: a glyph and a word (a stale one with its age)."""
    glyph, name = HEALTH_LOOK[sample.health]
    word = sample.health.value
    if sample.health is GpuHealth.STALE:
        word += f" {max(0, round((now - sample.at).total_seconds()))}s"
    return Text(f"{glyph} {word}", style=look(name))


def detail_lines(sample: GpuSample, look: Look) -> list[Text]:
    """The detail of a GPU's health, one fact a line (shown with ``d``)."""
    facts = []
    if sample.health_reason:
        facts.append(one_line(sample.health_reason))
    if sample.throttle_reasons:
        facts.append(f"clock limits: {', '.join(sample.throttle_reasons)}")
    if sample.ecc_uncorrected is not None:
        facts.append(f"uncorrected ECC errors: {sample.ecc_uncorrected:.0f}")
    pending = [
        word
        for word, flag in (
            ("page retirement", sample.retirement_pending),
            ("row remapping", sample.remap_pending),
        )
        if flag
    ]
    if pending:
        facts.append(f"pending: {', '.join(pending)}")
    link = []
    if sample.pcie_gen is not None or sample.pcie_width is not None:
        link.append(f"PCIe gen {sample.pcie_gen or '?'} x{sample.pcie_width or '?'}")
    if sample.fan_percent is not None:
        link.append(f"fan {sample.fan_percent:.0f}%")
    if sample.bus_id:
        link.append(f"bus {sample.bus_id}")
    if link:
        facts.append(", ".join(link))
    for mig in sample.mig_instances:
        memory = f" {mig.memory_gib:.0f}G" if mig.memory_gib is not None else ""
        facts.append(f"MIG {mig.device}: {one_line(mig.profile)}{memory}")
    return [Text(f"     {fact}", style=look("muted")) for fact in facts]


# A connected host whose readings stopped for three intervals (at least this) is stalled.
STALL_MIN_SECONDS = 3.0
STALL_INTERVALS = 3


@dataclass
class GpuTrack:
    """What the pane remembers of one GPU: the latest sample and recent history."""

    latest: GpuSample
    history: deque[tuple[datetime, GpuSample]] = field(
        default_factory=lambda: deque(maxlen=HISTORY)
    )
    last_busy: datetime | None = None


def gpu_alerts(track: GpuTrack, limits: AlertsConfig, held: bool, now: datetime) -> list[str]:
    """Return the alert texts that apply to a GPU now."""
    sample = track.latest
    alerts = []
    if sample.temperature_c is not None and sample.temperature_c >= limits.temperature_c:
        alerts.append(f"GPU {sample.index} at {sample.temperature_c:.0f}C")
    if sample.memory_used_mib is not None and sample.memory_total_mib:
        headroom = sample.memory_total_mib - sample.memory_used_mib
        if held and headroom < limits.memory_headroom_mib:
            alerts.append(f"GPU {sample.index} memory nearly full ({headroom:.0f} MiB free)")
    if held and track.last_busy is not None:
        idle = (now - track.last_busy).total_seconds() / 60.0
        if idle >= limits.idle_minutes:
            alerts.append(f"GPU {sample.index} idle for {idle:.0f} min while a run holds it")
    if sample.health.fault or sample.health in (GpuHealth.STALE, GpuHealth.THROTTLED):
        reason = f": {one_line(sample.health_reason)}" if sample.health_reason else ""
        alerts.append(f"GPU {sample.index} {sample.health.value}{reason}")
    return alerts


class HostCard(Static):
    """One host: a state line, then two lines per GPU (coloured by the theme: ui.format.LOOKS)."""

    COMPONENT_CLASSES = set(LOOK_CLASSES)

    def __init__(self, host: str, now: datetime) -> None:
        super().__init__(id=None, markup=False)
        self.host = host
        self.status = HostStatus(host, HostState.CONNECTING)
        self.gpus: dict[int, GpuTrack] = {}
        self.processes: tuple[GpuProcess, ...] = ()
        self.holders: dict[int, str] = {}
        self.alerts: list[str] = []
        self.doctor: DoctorReport | None = None
        # When the last reading arrived (the app's clock), and after how long without
        # one a connected host shows "stalled" instead of frozen figures.
        self.last_reading: datetime | None = None
        self.stall_after = STALL_MIN_SECONDS
        self.shown_stalled = False
        self.now = now
        self.dirty = True
        self.hot_c = 85.0
        self.gpu_host: GpuHostHealth | None = None
        self.host_config: HostConfig | None = None
        self.stale_s = stale_after_s(1000)
        self.detail = False
        self.look = Looks(self)

    def judged(self, track: GpuTrack, now: datetime) -> GpuSample:
        """The GPU's latest sample with its health as the scheduler judges it now."""
        sample = with_staleness(track.latest, now, self.stale_s)
        if self.host_config is None:
            return sample
        ours = set(self.holders.values())
        return with_policy(self.host_config, [sample], self.processes, ours)[0]

    def on_mount(self) -> None:
        """Draw the initial state."""
        self.redraw(self.now)

    def redraw(self, now: datetime) -> None:
        """Re-render the card for ``now``."""
        self.now = now
        self.dirty = False
        self.shown_stalled = self.stalled_for(now) is not None
        # state classes: app.tcss tints a card that is down, stalled or reconnecting
        state = "stalled" if self.shown_stalled else self.status.state.value
        for name in CARD_STATES:
            self.set_class(name == state, f"-{name}")
        self.update(self._render_card())

    def stalled_for(self, now: datetime) -> float | None:
        """Seconds without a reading while connected, once past ``stall_after`` (else None)."""
        if self.status.state != HostState.CONNECTED or self.last_reading is None:
            return None
        quiet = (now - self.last_reading).total_seconds()
        return quiet if quiet >= self.stall_after else None

    def _render_card(self) -> Group:
        width = max(24, (self.content_size.width or 44) - 1)
        lines = [self._state_line()]
        if self.doctor is not None and not self.doctor.ok:
            failed = ", ".join(r.check for r in self.doctor.failures)
            note = f"  \u271a doctor: {len(self.doctor.failures)} problem(s): {failed}  (D: report)"
            lines.append(Text(one_line(note), style=self.look("warn")))
        if self.status.state in (HostState.DOWN, HostState.UNKNOWN) and not self.gpus:
            return Group(*lines)
        troubled = self.gpu_host is not None and self.gpu_host.state not in QUIET_HOST_STATES
        if not self.gpus:
            if troubled and self.gpu_host is not None:
                why = one_line(self.gpu_host.reason or self.gpu_host.state)
                lines.append(Text(f"  \u2716 {why}", style=self.look("alarm")))
            else:
                lines.append(Text("  waiting for nvidia-smi...", style=self.look("faint")))
        elif troubled and self.gpu_host is not None:
            why = one_line(self.gpu_host.reason or self.gpu_host.state)
            warning = f"  \u26a0 nvidia-smi {self.gpu_host.state}: {why}"
            lines.append(Text(warning, style=self.look("warn")))
        elif self.gpu_host is not None and self.gpu_host.reason:
            # figures come, but nvidia-smi cannot open a GPU (one lost among eight)
            lines.append(
                Text(f"  \u26a0 {one_line(self.gpu_host.reason)}", style=self.look("warn"))
            )
        for index in sorted(self.gpus):
            lines.extend(self._gpu_lines(self.gpus[index], width))
        for alert in self.alerts:
            lines.append(Text(f"  \u26a0 {alert}", style=self.look("alert")))
        return Group(*lines)

    def _state_line(self) -> Text:
        status = self.status
        text = plain(status.host, style=self.look("name"))
        text.append("  ")
        quiet = self.stalled_for(self.now)
        if quiet is not None:
            text.append(f"\u25cc stalled: no reading for {quiet:.0f}s", style=self.look("alert"))
            text.append(
                "  the link delivers nothing; figures below are old", style=self.look("muted")
            )
        elif status.state == HostState.CONNECTED:
            text.append("\u25cf connected", style=self.look("ok"))
            if status.latency_ms is not None:
                text.append(f"  {status.latency_ms:.0f} ms", style=self.look("faint"))
        elif status.state == HostState.RECONNECTING:
            wait = ""
            if status.next_attempt_at is not None:
                seconds = max(0, round((status.next_attempt_at - self.now).total_seconds()))
                wait = f" in {seconds}s"
            text.append(f"\u25cc reconnecting{wait}", style=self.look("warn"))
            if status.reason:
                text.append(f"  {one_line(status.reason)}", style=self.look("muted"))
        elif status.state == HostState.DOWN:
            text.append("\u2716 down", style=self.look("alarm"))
            if status.reason:
                text.append(f"  {one_line(status.reason)}", style=self.look("bad"))
        elif status.state == HostState.CONNECTING:
            text.append("\u25cc connecting...", style=self.look("muted"))
        else:
            text.append("? unknown", style=self.look("faint"))
            if status.reason:
                text.append(f"  {one_line(status.reason)}", style=self.look("faint"))
        return text

    def _gpu_lines(self, track: GpuTrack, width: int) -> list[Text]:
        sample = self.judged(track, self.now)
        health = health_text(sample, self.now, self.look)
        util = sample.utilization
        used, total = sample.memory_used_mib, sample.memory_total_mib
        fraction = used / total if used is not None and total else None
        head = Text(f" {sample.index} ", style=self.look("name"))
        head.append(f"{one_line(sample.name)[:10]:<10} ", style=self.look("muted"))
        util_text = Text("util ")
        bar_width = max(4, min(16, width - 38 if width >= 90 else width - 20))
        fill, empty = self.look("accent"), self.look("empty")
        util_text.append_text(bar(None if util is None else util / 100.0, bar_width, fill, empty))
        util_text.append(f" {util:3.0f}%" if util is not None else "  n/a")
        mem_text = Text("mem  ")
        mem_text.append_text(bar(fraction, bar_width, self.look("memory"), empty))
        mem_text.append(
            f" {used / 1024:.0f}/{total / 1024:.0f}G" if used is not None and total else " n/a"
        )
        temp = sample.temperature_c
        figures = Text()
        hot = temp is not None and temp >= self.hot_c
        figures.append(
            f"{temp:.0f}C" if temp is not None else "n/a",
            style=self.look("alarm") if hot else "",
        )
        power = sample.power_draw_w
        figures.append(f" {power:.0f}W" if power is not None else " n/a")
        holder = self._holder(sample)
        history = [s.utilization for _, s in track.history]
        if width >= 90:
            first = head + util_text + Text("  ") + mem_text + Text("  ") + figures
            spark_width = max(8, width - 8 - holder.cell_len - health.cell_len)
            second = Text("   ") + health + Text("  ") + sparkline(history, spark_width, fill)
            second += Text("  ") + holder
            lines = [first, second]
        else:
            first = (
                Text(f" {sample.index} ", style=self.look("name")) + health + Text(" ") + figures
            )
            first += Text("  ")
            holder.truncate(max(4, width - first.cell_len), overflow="ellipsis")
            first += holder
            spark_width = max(0, width - 4 - mem_text.cell_len)
            lines = [
                first,
                Text("   ") + util_text,
                Text("   ") + mem_text + Text(" ") + sparkline(history, spark_width, fill),
            ]
        if (
            self.status.state != HostState.CONNECTED
            or self.shown_stalled
            or sample.health is GpuHealth.STALE
        ):
            for line in lines:
                line.stylize(self.look("stale"))
        if self.detail:
            lines.extend(detail_lines(sample, self.look))
        return lines

    def _holder(self, sample: GpuSample) -> Text:
        run_id = self.holders.get(sample.index)
        if run_id:
            return Text(run_id, style=self.look("accent"))
        for process in self.processes:
            if process.gpu_uuid == sample.uuid:
                if process.run_id:
                    return Text(one_line(process.run_id), style=self.look("accent"))
                return Text(
                    f"foreign: {one_line(process.process_name)[:16]}", style=self.look("warn")
                )
        return Text("free", style=self.look("faint"))


class GpusPane(Pane):
    """Every configured host's card; each card changes only with its own host's news."""

    TITLE = "GPUs"
    BINDINGS = [
        Binding("d", "toggle_detail", "GPU detail", id="gpus.detail"),
        Binding("D", "doctor_report", "Doctor report", id="gpus.doctor"),
    ]

    def compose(self) -> ComposeResult:
        """A scrolling column of host cards."""
        with VerticalScroll(id="gpu-cards"):
            yield Static("connecting...", id="gpu-placeholder")

    def on_mount(self) -> None:
        """Redraw changed cards twice a second (latest value wins in between)."""
        self.set_interval(0.5, self.redraw_dirty, name="gpu-redraw")

    def attach(self, services: object) -> None:
        """Create a card per configured host."""
        super().attach(services)  # type: ignore[arg-type]
        names = self.services.host_names() if self.services else ()
        clusters = self.services.cluster_names() if self.services else ()
        placeholder = self.query_one("#gpu-placeholder", Static)
        if not names and not clusters:
            placeholder.update(
                "No GPU hosts configured: press H to add one (or run `cosmos host add`, "
                "then `cosmos doctor`)."
            )
            return
        placeholder.add_class("-hidden")
        cards = self.query_one("#gpu-cards", VerticalScroll)
        config = self.cosmos.config
        interval = config.ui.gpu_interval_ms / 1000.0
        stall_after = max(STALL_MIN_SECONDS, STALL_INTERVALS * interval)
        made = []
        for name in names:
            card = HostCard(name, self.now())
            card.host_config = next((h for h in config.hosts if h.name == name), None)
            card.stale_s = stale_after_s(config.ui.gpu_interval_ms)
            card.stall_after = stall_after
            made.append(card)
        cards.mount_all([*made, *(ClusterCard(name) for name in clusters)])

    def action_toggle_detail(self) -> None:
        """Show or hide each GPU's health detail."""
        for card in self.query(HostCard):
            card.detail = not card.detail
            card.redraw(self.now())

    def set_gpu_host(self, health: GpuHostHealth) -> None:
        """Show a host's nvidia-smi state (why no figures come) at once."""
        card = self.card(health.host)
        if card is not None:
            card.gpu_host = health
            card.redraw(self.now())

    def card(self, host: str) -> HostCard | None:
        """Return the card of ``host``, if it is configured."""
        for card in self.query(HostCard):
            if card.host == host:
                return card
        return None

    def set_doctor(self, report: DoctorReport) -> None:
        """Show a host's latest doctor verdict on its card (a problem shows; ready does not)."""
        card = self.card(report.host)
        if card is not None:
            card.doctor = report
            card.dirty = True

    def action_doctor_report(self) -> None:
        """Open the Hosts screen on the first host whose doctor found a problem."""
        broken = [c.host for c in self.query(HostCard) if c.doctor and not c.doctor.ok]
        self.post_message(HostsRequested(broken[0] if broken else None))

    def redraw_all(self) -> None:
        """Draw every card again now (the theme changed)."""
        now = self.now()
        for card in self.query(HostCard):
            card.redraw(now)

    def set_host(self, status: HostStatus) -> None:
        """Show a host's new connection state at once."""
        card = self.card(status.host)
        if card is not None:
            card.status = status
            card.redraw(self.now())

    def add_sample(self, sample: GpuSample) -> list[str]:
        """Record a sample; return alerts that have just started."""
        card = self.card(sample.host)
        if card is None:
            return []
        now = self.now()
        track = card.gpus.get(sample.index)
        if track is None:
            track = card.gpus[sample.index] = GpuTrack(latest=sample)
        track.latest = sample
        card.last_reading = now
        if sample.health is not GpuHealth.STALE:
            track.history.append((sample.at, sample))
        # A utilisation nvidia-smi does not report ([N/A] on MIG GPUs) is never idle.
        busy = sample.utilization is None or sample.utilization > 5
        if busy or track.last_busy is None:
            track.last_busy = sample.at
        limits = self.cosmos.config.alerts
        alerts = [
            alert
            for index in sorted(card.gpus)
            for alert in gpu_alerts(
                GpuTrack(card.judged(card.gpus[index], now), last_busy=card.gpus[index].last_busy),
                limits,
                index in card.holders,
                now,
            )
        ]
        fresh = [a for a in alerts if a not in card.alerts]
        card.alerts = alerts
        card.dirty = True
        return [f"{card.host}: {a}" for a in fresh]

    def set_processes(self, host: str, processes: tuple[GpuProcess, ...]) -> None:
        """Record which processes use a host's GPUs."""
        card = self.card(host)
        if card is not None:
            card.processes = processes
            card.dirty = True

    def set_cluster(self, health: ClusterHealth) -> None:
        """Show a new reading of a cluster."""
        for card in self.query(ClusterCard):
            if card.cluster == health.name:
                card.set_health(health)

    def set_holders(self, holders: dict[tuple[str, int], str]) -> None:
        """Record which run holds which GPU (cluster nodes: which runs hold GPUs there)."""
        per_node: dict[str, set[str]] = {}
        for (host, _gpu), run in holders.items():
            per_node.setdefault(host, set()).add(run)
        for cluster_card in self.query(ClusterCard):
            cluster_card.set_holders({h: tuple(sorted(r)) for h, r in per_node.items()})
        for card in self.query(HostCard):
            mine = {gpu: run for (host, gpu), run in holders.items() if host == card.host}
            if mine != card.holders:
                card.holders = mine
                card.dirty = True

    def history(self, host: str, gpu: int) -> list[GpuSample]:
        """Return the remembered samples of one GPU, oldest first."""
        card = self.card(host)
        if card is None or gpu not in card.gpus:
            return []
        return [sample for _, sample in card.gpus[gpu].history]

    def redraw_dirty(self) -> None:
        """Redraw cards whose data changed; reconnect countdowns and stalls tick every time."""
        now = self.now()
        for card in self.query(HostCard):
            ageing = any(
                now - t.latest.at > timedelta(seconds=card.stale_s) for t in card.gpus.values()
            )
            stalled = card.shown_stalled or card.stalled_for(now) is not None
            busy = card.status.state == HostState.RECONNECTING
            if card.dirty or busy or ageing or stalled:
                card.redraw(now)
