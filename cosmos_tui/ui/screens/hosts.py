"""The Hosts screen (``H``): ``cosmos host add|edit|remove|list`` and ``cosmos doctor``.

Adding a host asks the host for its key first and trusts it only when the user says so
(a changed key is refused with the command that clears it); then what the form left
empty is discovered on the host, the entry is written (comments in the file kept) and
the doctor checks it. Every change is written to the config file and applies to runs
from the next start; doctor reports also show on the host's card in the GPUs pane.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from cosmos_tui.config import HostConfig
from cosmos_tui.doctor.model import DoctorReport, report_text
from cosmos_tui.safe_text import one_line, printable
from cosmos_tui.services.hosts import target_text
from cosmos_tui.ui.report import reported
from cosmos_tui.ui.screens.confirm import ConfirmScreen
from cosmos_tui.ui.screens.host_form import FIELD_NAMES, HostForm, field_text

if TYPE_CHECKING:
    from cosmos_tui.remote.hostkeys import HostKeyInfo
    from cosmos_tui.services.hosts import HostAdmin

# (label, width): fixed, so the table looks the same however its rows arrived.
COLUMNS = (("Name", 16), ("Target", 30), ("Docker", 8), ("Doctor", 36))


def doctor_cell(report: DoctorReport | None) -> str:
    """The Doctor column: not checked, ready, or the failed checks."""
    if report is None:
        return "not checked (D)"
    if report.ok:
        return "ready"
    failed = ", ".join(r.check for r in report.failures)
    return f"{len(report.failures)} problem(s): {failed}"


def trust_question(name: str, info: HostKeyInfo) -> str:
    """The question before a new host key is trusted (as ``cosmos host add`` asks it)."""
    return (
        f"Host {name} ({info.pattern}) presents a {info.key_type or 'host'} key\n"
        f"fingerprint: {info.fingerprint}\n\n"
        "Trust this key? Check the fingerprint with the host's admin first."
    )


class HostsScreen(Screen[None]):
    """Lists the hosts of the config file; add, edit, remove, doctor.

    Args:
        admin: Reads and writes the config file's hosts and runs the doctor.
        reports: The session's latest doctor report of each host (kept by the main screen).
        on_report: Called with each new doctor report (the main screen keeps and shows it).
        focus: The host to put the cursor on first.

    """

    BINDINGS = [
        Binding("escape,q", "close", "Back", id="hosts.close"),
        Binding("a", "add", "Add", id="hosts.add"),
        Binding("e", "edit", "Edit", id="hosts.edit"),
        Binding("d", "remove", "Remove", id="hosts.remove"),
        Binding("D", "doctor", "Doctor", id="hosts.doctor"),
    ]

    def __init__(
        self,
        admin: HostAdmin,
        reports: Mapping[str, DoctorReport],
        on_report: Callable[[DoctorReport], None],
        focus: str | None = None,
    ) -> None:
        super().__init__()
        self.admin = admin
        self.reports = reports
        self.on_report = on_report
        self.focus_host = focus
        self.hosts: dict[str, HostConfig] = {}

    def compose(self) -> ComposeResult:
        """The hosts table, the selected host's doctor report, the footer."""
        yield Header(show_clock=False, icon="\u25c6")
        with Vertical(id="hosts-body"):
            yield DataTable(id="hosts-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="host-report", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        """Columns, then the hosts as the file says."""
        self.sub_title = f"Hosts in {self.admin.path.name}"
        table = self.query_one("#hosts-table", DataTable)
        for label, width in COLUMNS:
            table.add_column(label, width=width)
        table.focus()
        self.load(self.focus_host)

    @property
    def selected(self) -> HostConfig | None:
        """The host under the cursor."""
        table = self.query_one("#hosts-table", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return self.hosts.get(str(key.value))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Show the highlighted host's last doctor report."""
        self._show_report(self.reports.get(str(event.row_key.value)))

    def _show_report(self, report: DoctorReport | None) -> None:
        text = report_text(report) if report else "No doctor report yet: press D to check."
        self.query_one("#host-report", Static).update(Text(printable(text)))

    @work(group="hosts", exclusive=True, exit_on_error=False)
    @reported
    async def load(self, cursor: str | None = None) -> None:
        """Read the hosts from the file and list them (the cursor on ``cursor``)."""
        self.hosts = {h.name: h for h in await self.admin.hosts()}
        self._fill(cursor)

    def _fill(self, cursor: str | None = None) -> None:
        table = self.query_one("#hosts-table", DataTable)
        table.clear()
        for host in self.hosts.values():
            docker = "sudo -n" if host.docker_sudo else "socket"
            cells = (host.name, target_text(host), docker,
                     doctor_cell(self.reports.get(host.name)))  # fmt: skip
            table.add_row(*(Text(one_line(c)) for c in cells), key=host.name)
        if cursor in self.hosts:
            table.move_cursor(row=table.get_row_index(cursor))
        selected = self.selected
        self._show_report(self.reports.get(selected.name) if selected else None)

    # actions ----------------------------------------------------------------------

    def action_close(self) -> None:
        """Back to the main screen."""
        self.dismiss(None)

    def action_add(self) -> None:
        """Form, host key (asked), discovery, write, doctor."""
        self.app.push_screen(HostForm(self.hosts), self._added)

    def _added(self, values: dict[str, Any] | None) -> None:
        if values is not None:
            self._check_key(values)

    @work(group="hosts-action", exclusive=True, exit_on_error=False)
    @reported
    async def _check_key(self, values: dict[str, Any]) -> None:
        name = values["name"]
        info = await self.admin.host_key(values)
        if info.changed:
            self.notify(
                f"the host key of {name} CHANGED (now {info.fingerprint}); if the host was "
                f"reinstalled, remove the old entry ('ssh-keygen -R {info.pattern} -f "
                f"{info.known_hosts_path}') and add it again; nothing was written",
                title="Host not added", severity="error", timeout=30,
            )  # fmt: skip
            return
        if info.trusted:
            self._write_new(values, info)
            return

        def _answer(yes: bool | None) -> None:
            if yes:
                self._write_new(values, info)
            else:
                self.notify("the host key was not trusted; nothing was written",
                            title="Host not added", severity="warning")  # fmt: skip

        self.app.push_screen(ConfirmScreen(trust_question(name, info), "Trust key"), _answer)

    @work(group="hosts-action", exclusive=True, exit_on_error=False)
    @reported
    async def _write_new(self, values: dict[str, Any], info: HostKeyInfo) -> None:
        name = values["name"]
        if not info.trusted:
            await self.admin.trust(info)
        host, facts = await self.admin.add(values)
        found = facts.docker.version or f"Docker not usable yet: {facts.docker.problem}"
        self.notify(f"wrote {name} to {self.admin.path} (Docker {found}); runs use it from "
                    "the next start", title="Host added")  # fmt: skip
        self.hosts[host.name] = host
        self._fill(host.name)
        await self._doctor([host.name])

    def action_edit(self) -> None:
        """Change the selected host's settings (empty fields: back to the default)."""
        host = self.selected
        if host is None:
            self.notify("no host to edit: press a to add one", severity="warning")
            return

        def _edited(values: dict[str, Any] | None) -> None:
            if values is not None:
                self._edit(host, values)

        self.app.push_screen(HostForm(self.hosts, host), _edited)

    @work(group="hosts-action", exclusive=True, exit_on_error=False)
    @reported
    async def _edit(self, host: HostConfig, values: dict[str, Any]) -> None:
        changes = _changes(host, values)
        if not changes:
            self.notify(f"{host.name}: nothing changed")
            return
        self.hosts[host.name] = await self.admin.edit(host.name, changes)
        self._fill(host.name)
        self.notify(f"updated {host.name}: {', '.join(sorted(changes))}; runs use it from "
                    "the next start", title="Host updated")  # fmt: skip

    def action_remove(self) -> None:
        """Ask, then remove the selected host from the config file."""
        host = self.selected
        if host is None:
            return
        question = (f"Remove host {host.name} from {self.admin.path}?\n"
                    "Its runs and the files on the host stay.")  # fmt: skip

        def _answer(yes: bool | None) -> None:
            if yes:
                self._remove(host.name)

        self.app.push_screen(ConfirmScreen(question, "Remove"), _answer)

    @work(group="hosts-action", exclusive=True, exit_on_error=False)
    @reported
    async def _remove(self, name: str) -> None:
        await self.admin.remove(name)
        self.hosts.pop(name, None)
        self._fill()
        self.notify(f"removed {name} from {self.admin.path}", title="Host removed")

    @work(group="hosts-action", exclusive=True, exit_on_error=False)
    @reported
    async def action_doctor(self) -> None:
        """Run every check of the doctor on the selected host."""
        host = self.selected
        if host is not None:
            await self._doctor([host.name])

    async def _doctor(self, names: list[str]) -> None:
        self.query_one("#host-report", Static).update(
            Text(f"checking {', '.join(names)}... (the doctor starts a small test container)")
        )
        for report in await self.admin.doctor(names):
            self.on_report(report)
        self._fill(names[0])


def _changes(host: HostConfig, values: dict[str, Any]) -> dict[str, Any]:
    """The fields the form changed (an emptied field: None, back to the default)."""
    changes: dict[str, Any] = {}
    for field in FIELD_NAMES:
        if field == "name":
            continue
        before = field_text(host, field)
        after = values.get(field)
        if str(after or "") != before:
            changes[field] = after
    return changes
