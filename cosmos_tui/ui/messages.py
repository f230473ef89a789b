"""Typed messages that workers post to the main screen ("attributes down, messages up")."""

from __future__ import annotations

from textual.message import Message

from cosmos_tui.domain import GpuHostHealth, GpuSample, HostStatus, LogBatch, Page, Prompt, Run
from cosmos_tui.ui.protocol import GpuProcesses, UIServices


class ServicesReady(Message):
    """The services factory has been entered; the panes may load."""

    def __init__(self, services: UIServices) -> None:
        super().__init__()
        self.services = services


class ServicesFailed(Message):
    """The services could not be opened (the database, usually)."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error


class PromptsLoaded(Message):
    """A page of prompts arrived; ``append`` adds it below the rows already shown."""

    def __init__(self, page: Page[Prompt], append: bool, generation: int) -> None:
        super().__init__()
        self.page = page
        self.append = append
        self.generation = generation


class RunsLoaded(Message):
    """A page of runs arrived; ``append`` adds it below the rows already shown."""

    def __init__(self, page: Page[Run], append: bool, generation: int) -> None:
        super().__init__()
        self.page = page
        self.append = append
        self.generation = generation


class GlanceLoaded(Message):
    """The newest runs and prompts, read from the database before the services opened."""

    def __init__(self, runs: Page[Run], prompts: Page[Prompt]) -> None:
        super().__init__()
        self.runs = runs
        self.prompts = prompts


class FirstPageShown(Message):
    """A table pane shows its first page (``pane``: its id); startup work may follow."""

    def __init__(self, pane: str) -> None:
        super().__init__()
        self.pane = pane


class RunChanged(Message):
    """A run's state, progress or outputs changed (or it was created)."""

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run


class RunDeleted(Message):
    """Runs (and maybe a prompt) were deleted."""

    def __init__(self, run_ids: tuple[str, ...], prompt_id: str | None) -> None:
        super().__init__()
        self.run_ids = run_ids
        self.prompt_id = prompt_id


class PromptChanged(Message):
    """A prompt was created or changed."""

    def __init__(self, prompt: Prompt) -> None:
        super().__init__()
        self.prompt = prompt


class HostStateChanged(Message):
    """A host's connection state changed."""

    def __init__(self, status: HostStatus) -> None:
        super().__init__()
        self.status = status


class GpuSampled(Message):
    """A GPU reported a sample (latest value wins)."""

    def __init__(self, sample: GpuSample) -> None:
        super().__init__()
        self.sample = sample


class GpuHostChanged(Message):
    """A host's GPU telemetry state changed (no driver, version mismatch, ok again...)."""

    def __init__(self, health: GpuHostHealth) -> None:
        super().__init__()
        self.health = health


class GpuProcessesChanged(Message):
    """The compute processes of a host's GPUs changed."""

    def __init__(self, processes: GpuProcesses) -> None:
        super().__init__()
        self.processes = processes


class LogLinesReceived(Message):
    """A batch of log lines of the run the Logs pane follows."""

    def __init__(self, batch: LogBatch, generation: int) -> None:
        super().__init__()
        self.batch = batch
        self.generation = generation


class RunHighlighted(Message):
    """The cursor of the Runs pane moved to a run (the Logs pane follows it)."""

    def __init__(self, run: Run, by_user: bool) -> None:
        super().__init__()
        self.run = run
        self.by_user = by_user


class PromptHighlighted(Message):
    """The cursor of the Prompts pane moved to a prompt."""

    def __init__(self, prompt: Prompt) -> None:
        super().__init__()
        self.prompt = prompt
