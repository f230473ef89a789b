"""The main screen: four panes, the live streams that feed them, and their actions."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from cosmos_tui.domain import HostState, Prompt, Run, RunState, RunType
from cosmos_tui.errors import CosmosError
from cosmos_tui.ui.format import plain
from cosmos_tui.ui.messages import (
    CancelRequested,
    ClusterChanged,
    DeleteRequested,
    DetailRequested,
    EnhanceRequested,
    FileOpenRequested,
    FirstPageShown,
    GlanceLoaded,
    GpuHostChanged,
    GpuProcessesChanged,
    GpuSampled,
    HostsRequested,
    HostStateChanged,
    InputsOfPromptRequested,
    NewPromptRequested,
    OutputOpenRequested,
    OutputPathCopyRequested,
    PromptChanged,
    PromptHighlighted,
    PromptShowRequested,
    RateRequested,
    RetryRequested,
    RunChanged,
    RunDeleted,
    RunFilterRequested,
    RunFormRequested,
    RunHighlighted,
    RunsOfPromptRequested,
    ServicesFailed,
    ServicesReady,
    UpscaleRequested,
)
from cosmos_tui.ui.report import report_error, reported
from cosmos_tui.ui.screens.actions import MainActions

# imported here so textual-image asks the terminal what it draws before Textual starts
from cosmos_tui.ui.screens.inputs import InputsScreen
from cosmos_tui.ui.screens.stats import StatsScreen
from cosmos_tui.ui.stalled import StalledRuns, stalled_text
from cosmos_tui.ui.widgets.gpus import GpusPane
from cosmos_tui.ui.widgets.logs import LogsPane
from cosmos_tui.ui.widgets.pane import Pane
from cosmos_tui.ui.widgets.prompts import PromptsPane
from cosmos_tui.ui.widgets.runs import RunsPane

if TYPE_CHECKING:
    from cosmos_tui.doctor.model import DoctorReport
    from cosmos_tui.ui.app import CosmosApp
    from cosmos_tui.ui.protocol import UIServices
    from cosmos_tui.ui.startup import StartUp

logger = logging.getLogger(__name__)

RECONCILE_DELAY_SECONDS = 2.0
# The live streams wait for the first pages of Prompts and Runs (the launch's full frame),
# or this long when a first page does not come.
STREAMS_FALLBACK_SECONDS = 1.0
LAUNCH_PANES = frozenset({"prompts", "runs"})
NOTIFY_STATES = {
    RunState.COMPLETED: ("information", "Run completed"),
    RunState.FAILED: ("error", "Run failed"),
    RunState.BLOCKED: ("warning", "Run blocked"),
}


class MainScreen(Screen[None]):
    """Prompts, Runs, GPUs and Logs; every I/O runs in a worker that posts a message."""

    AUTO_FOCUS = "#runs-table"
    BINDINGS = [
        Binding("tab", "app.focus_next", "Next pane", id="main.next"),
        Binding("shift+tab", "app.focus_previous", "Previous pane", show=False, id="main.prev"),
        Binding("z", "zoom", "Zoom", id="main.zoom"),
        Binding("N", "new_prompt", "New prompt", show=False, id="main.new_prompt"),
        Binding("i", "inputs", "Inputs", show=False, id="main.inputs"),
        Binding("t", "stats", "Stats", show=False, id="main.stats"),
        Binding("C", "cancel_stalled", "Cancel stalled", id="main.cancel_stalled"),
        Binding("H", "hosts", "Hosts", id="main.hosts"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.known_states: dict[str, RunState] = {}
        self.host_states: dict[str, HostState] = {}
        self.log_chosen_by_user = False
        self.current_prompt: Prompt | None = None
        self.stalled = StalledRuns()
        self.doctor_reports: dict[str, DoctorReport] = {}
        self.actions = MainActions(self)
        self._prompt_reads: dict[str, int] = {}

    @property
    def cosmos(self) -> CosmosApp:
        """The application, typed."""
        return cast("CosmosApp", self.app)

    @property
    def startup(self) -> StartUp:
        """The app's start-up state (ui/startup.py)."""
        return self.cosmos.startup

    @property
    def services(self) -> UIServices | None:
        """The services, once this screen handed them to its panes."""
        return self.startup.services if self.startup.ready else None

    def compose(self) -> ComposeResult:
        """The four panes in a grid, and the footer of keys that apply now."""
        yield Header(show_clock=False, icon="\u25c6")
        with Grid(id="panes"):
            yield PromptsPane(id="prompts")
            yield RunsPane(id="runs")
            yield GpusPane(id="gpus")
            yield LogsPane(id="logs")
        yield Static("", id="banner")
        yield Footer()

    @property
    def prompts(self) -> PromptsPane:
        """The Prompts pane."""
        return self.query_one(PromptsPane)

    @property
    def runs(self) -> RunsPane:
        """The Runs pane."""
        return self.query_one(RunsPane)

    @property
    def gpus(self) -> GpusPane:
        """The GPUs pane."""
        return self.query_one(GpusPane)

    @property
    def logs(self) -> LogsPane:
        """The Logs pane."""
        return self.query_one(LogsPane)

    def on_mount(self) -> None:
        """Redraw what was drawn in the old colours when the theme changes.

        (The banner stays hidden, by app.tcss, until it gets ``-shown``.)
        """
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)

    def _theme_changed(self, _theme: object) -> None:
        # Textual restyles widgets; text drawn from code with the old looks (table cells,
        # GPU cards, the log status and lines) is drawn again.
        self.prompts.restyle()
        self.runs.restyle()
        self.gpus.redraw_all()
        self.logs.restyle()

    # services -----------------------------------------------------------------------

    @on(GlanceLoaded)
    def _glance_loaded(self, message: GlanceLoaded) -> None:
        self.runs.show_glance(message.runs)
        self.prompts.show_glance(message.prompts)
        self._focus_first_useful()
        # The services' import blocks for a while: only once these rows are on screen.
        # The tables mark the screen dirty only at their next idle, which may come after
        # a callback waiting for the next refresh; a repaint of the screen is certain.
        self.refresh()
        self.call_after_refresh(self.cosmos.open_services)

    @on(ServicesReady)
    def _on_services_ready(self, message: ServicesReady) -> None:
        for pane in self.query(Pane):
            pane.attach(message.services)
        self.startup.attached()
        self.refresh_bindings()  # once: the actions that need the services are enabled
        self.set_timer(STREAMS_FALLBACK_SECONDS, self._start_streams)

    @on(FirstPageShown)
    def _first_page_shown(self, message: FirstPageShown) -> None:
        self._focus_first_useful()
        if self.startup.first_page_shown(message.pane):
            self.call_after_refresh(self._start_streams)

    def _focus_first_useful(self) -> None:
        """With no runs yet, hand the focus to Prompts, where Enter starts a run.

        Only once both tables are loaded (a loading table takes no focus), and while the
        focus is still where the launch put it (the empty Runs table): a user who already
        moved it keeps it where they put it.
        """
        runs, prompts = self.runs.table, self.prompts.table
        if runs.loading or prompts.loading or self.runs.runs:
            return
        if self.focused in (None, runs):
            prompts.focus()

    def _start_streams(self) -> None:
        """Start what the launch's first full frame does not need (once).

        The first pages of Prompts and Runs come first, alone on the database and the
        CPU; then the live streams, the rest of the first pages, and after a while the
        reconcile (which talks to every host).
        """
        if not self.startup.start_streams():
            return
        self._watch_hosts()
        self._watch_gpus()
        self._watch_gpu_hosts()
        self._watch_processes()
        if self.services is not None and self.services.cluster_names():
            self._watch_clusters()
        # The runs as shown (read before this): changes since then come first.
        self._watch_runs(tuple(self.runs.active_runs()))
        for pane in self.query(Pane):
            pane.fill_page()
        self.set_timer(RECONCILE_DELAY_SECONDS, self._keep_runs_moving)
        self.set_timer(RECONCILE_DELAY_SECONDS, self._quick_doctor)

    @on(ServicesFailed)
    def _failed(self, message: ServicesFailed) -> None:
        banner = self.query_one("#banner", Static)
        banner.update(plain(f"Cannot open the services: {message.error}"))
        banner.add_class("-shown")
        for pane in self.query(Pane):
            pane.border_subtitle = "unavailable"

    @work(group="stream-hosts", exit_on_error=False)
    @reported
    async def _watch_hosts(self) -> None:
        assert self.services is not None
        async for status in self.services.watch_hosts():
            self.post_message(HostStateChanged(status))

    @work(group="stream-gpus", exit_on_error=False)
    @reported
    async def _watch_gpus(self) -> None:
        assert self.services is not None
        async for sample in self.services.watch_gpus():
            self.post_message(GpuSampled(sample))

    @work(group="stream-gpu-hosts", exit_on_error=False)
    @reported
    async def _watch_gpu_hosts(self) -> None:
        assert self.services is not None
        async for health in self.services.watch_gpu_hosts():
            self.post_message(GpuHostChanged(health))

    @work(group="stream-processes", exit_on_error=False)
    @reported
    async def _watch_processes(self) -> None:
        assert self.services is not None
        async for processes in self.services.watch_gpu_processes():
            self.post_message(GpuProcessesChanged(processes))

    @work(group="stream-clusters", exit_on_error=False)
    @reported
    async def _watch_clusters(self) -> None:
        assert self.services is not None
        async for health in self.services.watch_clusters():
            self.post_message(ClusterChanged(health))

    @work(group="stream-runs", exit_on_error=False)
    @reported
    async def _watch_runs(self, shown: tuple[Run, ...]) -> None:
        assert self.services is not None
        async for run in self.services.watch_runs(shown):
            self.post_message(RunChanged(run))
            await asyncio.sleep(0)

    @work(group="stream-reconcile", exit_on_error=False)
    @reported
    async def _keep_runs_moving(self) -> None:
        assert self.services is not None
        async for news in self.services.keep_runs_moving():
            self.notify(news, title="Runs picked up")

    # live updates -------------------------------------------------------------------

    @on(HostStateChanged)
    def _host_changed(self, message: HostStateChanged) -> None:
        status = message.status
        before = self.host_states.get(status.host)
        self.host_states[status.host] = status.state
        self.gpus.set_host(status)
        if not self.cosmos.config.ui.notifications:
            return
        if status.state == HostState.DOWN and before != HostState.DOWN:
            reason = f": {status.reason}" if status.reason else ""
            self.notify(f"{status.host} is down{reason}", title="Host down", severity="error")
        elif status.state == HostState.CONNECTED and before in (
            HostState.DOWN,
            HostState.RECONNECTING,
        ):
            self.notify(f"{status.host} is connected again", title="Host up")

    @on(GpuSampled)
    def _gpu_sampled(self, message: GpuSampled) -> None:
        for alert in self.gpus.add_sample(message.sample):
            self.notify(alert, title="GPU alert", severity="warning")

    @on(ClusterChanged)
    def _cluster_changed(self, message: ClusterChanged) -> None:
        self.gpus.set_cluster(message.health)

    @on(GpuHostChanged)
    def _gpu_host_changed(self, message: GpuHostChanged) -> None:
        self.gpus.set_gpu_host(message.health)

    @on(GpuProcessesChanged)
    def _gpu_processes(self, message: GpuProcessesChanged) -> None:
        self.gpus.set_processes(message.processes.host, message.processes.processes)

    @on(RunChanged)
    def _run_changed(self, message: RunChanged) -> None:
        run = message.run
        # The first change seen of a run counts as new even when a page of the Runs pane
        # brought the run in first (a reload can win the race with this message): its
        # prompt's run count is read again either way (one read per run).
        is_new = run.id not in self.known_states
        before = self.known_states.get(run.id, self.runs.runs.get(run.id, run).state)
        self.known_states[run.id] = run.state
        self.runs.apply_run(run)
        self.logs.update_run(run)
        self._update_holders()
        # A new run changes its prompt's run count; a change of state its last-run state
        # (a few per run: one prompt query each).
        if run.prompt_id and (is_new or run.state != before):
            self._refresh_prompt(run.prompt_id)
        if run.state != before and run.state in NOTIFY_STATES:
            severity, title = NOTIFY_STATES[run.state]
            detail = f": {run.failure_message}" if run.failure_message else ""
            if self.cosmos.config.ui.notifications:
                self.notify(f"{run.id}{detail}", title=title, severity=severity)  # type: ignore[arg-type]
        started = run.state in (RunState.STARTING, RunState.RUNNING) and before != run.state
        if started and not self.log_chosen_by_user:
            self.logs.show_run(run)
        self._note_stall(run)

    def _note_stall(self, run: Run) -> None:
        """Announce a newly stalled run with the key that cancels it; show that key."""
        offered = self.stalled.newest is not None
        if self.stalled.update(run) and self.cosmos.config.ui.notifications:
            key = self.cosmos.config.keymap.get("main.cancel_stalled", "C")
            self.notify(stalled_text(run, key), title="Run stalled", severity="warning",
                        timeout=30)  # fmt: skip
        if offered != (self.stalled.newest is not None):
            self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer the stalled-run cancel only while some run is stalled."""
        if action == "cancel_stalled":
            return self.stalled.newest is not None
        return True

    def action_cancel_stalled(self) -> None:
        """Ask, then cancel the run that stalled last."""
        run = self.stalled.newest
        if run is not None:
            self.actions.cancel(run)

    def _refresh_prompt(self, prompt_id: str) -> None:
        """Read a prompt again (its run count, its last run's state) and redraw its row."""
        self._read_prompt(prompt_id, self._next_read(prompt_id))

    def _next_read(self, prompt_id: str) -> int:
        """Number a read of a prompt: only the latest one's result is shown."""
        self._prompt_reads[prompt_id] = self._prompt_reads.get(prompt_id, 0) + 1
        return self._prompt_reads[prompt_id]

    @work(group="prompt-refresh", exit_on_error=False)
    @reported
    async def _read_prompt(self, prompt_id: str, read: int) -> None:
        if self.services is None:
            return
        prompt = await self.services.get_prompt(prompt_id)
        # reads of one prompt may land out of order: only the latest is shown
        if self._prompt_reads.get(prompt_id) == read:
            self.prompts.update_prompt(prompt)

    def _run_started_last(self) -> Run | None:
        started = [r for r in self.runs.runs.values() if r.started_at and r.state.is_active]
        return max(started, key=lambda r: r.started_at or r.created_at, default=None)

    def _update_holders(self) -> None:
        holders = {
            (run.host, gpu): run.id
            for run in self.runs.runs.values()
            if run.state.is_active and run.host
            for gpu in run.gpus
        }
        self.gpus.set_holders(holders)

    @on(RunHighlighted)
    def _run_highlighted(self, message: RunHighlighted) -> None:
        if message.by_user:
            self.log_chosen_by_user = True
        if message.by_user:
            self.logs.show_run(message.run)
        elif self.logs.run is None:
            self.logs.show_run(self._run_started_last() or message.run)
        self._update_holders()

    @on(PromptHighlighted)
    def _prompt_highlighted(self, message: PromptHighlighted) -> None:
        self.current_prompt = message.prompt

    @on(RunDeleted)
    def _run_deleted(self, message: RunDeleted) -> None:
        self.runs.remove_runs(message.run_ids)
        self.stalled.remove(message.run_ids)
        if message.prompt_id:
            self.prompts.reload()

    # actions --------------------------------------------------------------------------

    def action_zoom(self) -> None:
        """Show the focused pane full screen, or go back to four panes."""
        if self.maximized is not None:
            self.minimize()
            return
        focused = self.focused
        pane = next(
            (a for a in (focused.ancestors_with_self if focused else []) if isinstance(a, Pane)),
            None,
        )
        if pane is not None:
            self.maximize(pane, container=False)

    def action_hosts(self, focus: str | None = None) -> None:
        """Open the Hosts screen (on host ``focus``): list, add, edit, remove, doctor."""
        # lazy: screens.hosts imports services.hosts (asyncssh, aiodocker, PyAV: ~0.5 s)
        from cosmos_tui.ui.screens.hosts import HostsScreen

        if self.services is None:
            self.notify("still connecting to the database", severity="warning")
            return
        hosts = HostsScreen(self.services.host_admin, self.doctor_reports, self.show_doctor, focus)
        self.app.push_screen(hosts)

    def show_doctor(self, report: DoctorReport) -> None:
        """Keep a host's latest doctor report (the Hosts screen and the GPUs pane show it)."""
        self.doctor_reports[report.host] = report
        self.gpus.set_doctor(report)

    @work(group="doctor-quick", exit_on_error=False)
    @reported
    async def _quick_doctor(self) -> None:
        """The doctor's cheap checks on every host, once, for the GPUs pane's cards.

        Each host is checked for the model of its newest run (Transfer1 when it has none),
        so a host kept for Cosmos 3 is not warned about Transfer1's checkpoints.
        """
        if self.services is None or not self.services.host_names():
            return
        # lazy: store.repositories imports SQLAlchemy (~0.3 s), kept out of the TUI's start-up
        from cosmos_tui.store.repositories import RunFilter

        by_profile: dict[str, list[str]] = {}
        for name in self.services.host_names():
            # transfer runs only: enhancements and upscales are recorded as Transfer1's
            where = RunFilter(host=name, type=RunType.TRANSFER)
            page = await self.services.list_runs(where, 0, 1, "created", True)
            profile = page.items[0].profile if page.items else "transfer1"
            by_profile.setdefault(profile, []).append(name)
        admin = self.services.host_admin
        for profile, names in by_profile.items():
            try:
                reports = await admin.doctor(names, profile, quick=True)
            except CosmosError as exc:  # a profile this config no longer knows
                logger.info("start-up doctor for %s skipped: %s", profile, exc)
                continue
            for report in reports:
                self.show_doctor(report)

    def action_new_prompt(self) -> None:
        """Open the new-prompt form from anywhere."""
        self.actions.open_prompt_form()

    def action_inputs(self) -> None:
        """Open the Inputs screen (kept between visits, with its cached frames)."""
        if not self.app.is_screen_installed("inputs"):
            self.app.install_screen(InputsScreen(), "inputs")
        self.app.push_screen("inputs")

    def action_stats(self) -> None:
        """Open the Stats screen: runs per day and duration per profile, as charts."""
        self.app.push_screen(StatsScreen())

    def show_prompt(self, prompt_id: str) -> None:
        """Back on the main screen with the Prompts pane's cursor on ``prompt_id``."""
        if self.app.screen is not self:
            self.app.pop_screen()
        if not self.prompts.show_prompt(prompt_id):
            self.notify(f"{prompt_id} is not in the Prompts pane; clear its filter (escape)")

    def show_inputs_of(self, prompt: Prompt) -> None:
        """Open the Inputs screen on the folder a prompt's videos came from."""
        color = prompt.input("color")
        folder = prompt.video_dir or (color.path.parent if color is not None else None)
        if folder is None:
            self.notify(f"{prompt.id} has no input folder")
            return
        self.action_inputs()
        self.app.get_screen("inputs").reveal(Path(folder))  # type: ignore[attr-defined]

    def show_runs_of(self, prompt: Prompt) -> None:
        """Filter the Runs pane to a prompt's runs and focus it."""
        # lazy: store.repositories imports SQLAlchemy (~0.3 s), kept out of the TUI's start-up
        from cosmos_tui.store.repositories import RunFilter

        self.runs.set_filter(RunFilter(prompt_id=prompt.id))
        self.runs.table.focus()

    def report(self, error: BaseException) -> None:
        """Show an error by the UI's policy."""
        report_error(self.app, error)

    def run_by_id(self, run_id: str) -> Run | None:
        """Return a run shown in the Runs pane."""
        return self.runs.runs.get(run_id)

    # intents from the panes ---------------------------------------------------------

    @on(NewPromptRequested)
    def _new_prompt_requested(self, _: NewPromptRequested) -> None:
        self.actions.open_prompt_form()

    @on(RunFormRequested)
    def _run_form_requested(self, message: RunFormRequested) -> None:
        self.actions.open_run_form(message.prompt, message.run)

    @on(EnhanceRequested)
    def _enhance_requested(self, message: EnhanceRequested) -> None:
        self.actions.enhance(message.prompt, message.profile)

    @on(DeleteRequested)
    def _delete_requested(self, message: DeleteRequested) -> None:
        self.actions.delete(message.object_id)

    @on(RunsOfPromptRequested)
    def _runs_of_prompt_requested(self, message: RunsOfPromptRequested) -> None:
        self.show_runs_of(message.prompt)

    @on(InputsOfPromptRequested)
    def _inputs_of_prompt_requested(self, message: InputsOfPromptRequested) -> None:
        self.show_inputs_of(message.prompt)

    @on(PromptShowRequested)
    def _prompt_show_requested(self, message: PromptShowRequested) -> None:
        self.show_prompt(message.prompt_id)

    @on(DetailRequested)
    def _detail_requested(self, message: DetailRequested) -> None:
        self.actions.open_detail(message.run_id)

    @on(CancelRequested)
    def _cancel_requested(self, message: CancelRequested) -> None:
        self.actions.cancel(message.run)

    @on(RetryRequested)
    def _retry_requested(self, message: RetryRequested) -> None:
        self.actions.retry(message.run_id)

    @on(UpscaleRequested)
    def _upscale_requested(self, message: UpscaleRequested) -> None:
        self.actions.upscale(message.run_id)

    @on(RateRequested)
    def _rate_requested(self, message: RateRequested) -> None:
        self.actions.rate(message.run_id, message.rating)

    @on(OutputOpenRequested)
    def _output_open_requested(self, message: OutputOpenRequested) -> None:
        self.actions.open_output(message.run)

    @on(FileOpenRequested)
    def _file_open_requested(self, message: FileOpenRequested) -> None:
        self.actions.open_file(message.path)

    @on(OutputPathCopyRequested)
    def _output_path_copy_requested(self, message: OutputPathCopyRequested) -> None:
        self.actions.copy_output_path(message.run)

    @on(RunFilterRequested)
    def _run_filter_requested(self, _: RunFilterRequested) -> None:
        self.actions.open_run_filter()

    @on(HostsRequested)
    def _hosts_requested(self, message: HostsRequested) -> None:
        self.action_hosts(message.focus)

    @on(PromptChanged)
    def _prompt_changed(self, message: PromptChanged) -> None:
        self._next_read(message.prompt.id)  # newer than any read of it still in flight
        self.prompts.update_prompt(message.prompt)
