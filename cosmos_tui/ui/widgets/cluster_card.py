"""A Ray cluster's card in the GPUs pane: reachable or why not, then one line per node.

Each node line shows its GPUs, how many our runs hold (and which runs) and how many
other jobs hold, from Ray's state and Jobs APIs (``cosmos status`` reads the same).
Per-GPU figures: a node reached over SSH (a configured host) has its own host card with
nvidia-smi's; any other node shows, under its line, each GPU as Ray's dashboard agent
reads it (NVML: busy and memory, every few seconds).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.text import Text
from textual.widgets import Static

from cosmos_tui.engine.cluster_health import NODE_ID_CHARS, ClusterHealth, node_target

if TYPE_CHECKING:
    from cosmos_tui.remote.ray_jobs import ReportedGpu
from cosmos_tui.safe_text import one_line
from cosmos_tui.ui.format import LOOK_CLASSES, Looks, bar, plain


class ClusterCard(Static):
    """One cluster: a state line, then a line per node with its GPUs and holders."""

    COMPONENT_CLASSES = set(LOOK_CLASSES)

    def __init__(self, cluster: str) -> None:
        super().__init__(id=None, markup=False, classes="cluster-card")
        self.cluster = cluster
        self.health: ClusterHealth | None = None
        self.holders: dict[str, tuple[str, ...]] = {}  # node target -> our run ids
        self.look = Looks(self)

    def on_mount(self) -> None:
        """Draw the initial state."""
        self.redraw()

    def set_health(self, health: ClusterHealth) -> None:
        """Show a new reading."""
        self.health = health
        self.redraw()

    def set_holders(self, holders: dict[str, tuple[str, ...]]) -> None:
        """Record our runs per node (placement names ``<cluster>/<node>``)."""
        if holders != self.holders:
            self.holders = holders
            self.redraw()

    def redraw(self) -> None:
        """Re-render the card."""
        self.set_class(self.health is not None and not self.health.reachable, "-down")
        self.update(self._render_card())

    def _render_card(self) -> Group:
        title = plain(f"{self.cluster} (Ray cluster)", style=self.look("name"))
        title.append("  ")
        health = self.health
        if health is None:
            title.append("\u25cc reading the cluster...", style=self.look("muted"))
            return Group(title)
        if not health.reachable:
            title.append("\u2716 unreachable", style=self.look("alarm"))
            why = Text(f"  {one_line(health.reason)}", style=self.look("bad"))
            return Group(title, why, Text("  its runs wait in the queue", style=self.look("muted")))
        alive = [n for n in health.nodes if n.alive]
        title.append("\u25cf reachable", style=self.look("ok"))
        title.append(
            f"  {len(alive)}/{len(health.nodes)} node(s), {health.gpus_total} GPU(s): "
            f"{health.gpus_ours:g} ours, {health.gpus_others:g} others",
            style=self.look("faint"),
        )
        lines = [title]
        width = max(24, (self.content_size.width or 44) - 1)
        for node in health.nodes:
            name = node.node_id[:NODE_ID_CHARS]
            line = Text(f"  {name} ", style=self.look("accent"))
            line.append(one_line(node.ip), style=self.look("faint"))
            if not node.alive:
                line.append("  \u2716 dead", style=self.look("bad"))
                lines.append(line)
                continue
            ours, others = health.held.get(node.node_id, (0.0, 0.0))
            used = min(node.gpus, ours + others)
            fill = used / node.gpus if node.gpus else 0.0
            line.append(f"  {node.gpus} GPU  ", style=self.look("faint"))
            cells = max(6, min(16, width // 5))
            line.append(bar(fill, cells, self.look("accent"), self.look("faint")))
            line.append(f"  ours {ours:g}", style=self.look("accent" if ours else "faint"))
            line.append(f"  others {others:g}", style=self.look("warn" if others else "faint"))
            runs = self.holders.get(node_target(self.cluster, node.node_id), ())
            if runs:
                line.append("  " + ", ".join(one_line(r) for r in runs), style=self.look("accent"))
            lines.append(line)
            host = health.ssh_hosts.get(node.node_id)
            if host is not None:
                lines.append(Text(f"    GPUs: see host {one_line(host)}", style=self.look("muted")))
                continue
            lines.extend(
                self._reported(gpu, cells) for gpu in health.reported.get(node.node_id, ())
            )
        return Group(*lines)

    def _reported(self, gpu: ReportedGpu, cells: int) -> Text:
        """One GPU as Ray reports it: index, busy bar and percent, memory."""
        line = Text(f"    GPU{gpu.index} ", style=self.look("faint"))
        busy = (gpu.utilization or 0.0) / 100
        line.append(bar(busy, cells, self.look("accent"), self.look("faint")))
        text = "  ?" if gpu.utilization is None else f" {gpu.utilization:3.0f}%"
        line.append(text, style=self.look("accent"))
        line.append(
            f"  {gpu.memory_used_mib / 1024:.1f}/{gpu.memory_total_mib / 1024:.1f} GiB"
            f"  {one_line(gpu.name)[:24]}",
            style=self.look("faint"),
        )
        return line


__all__ = ["ClusterCard"]
