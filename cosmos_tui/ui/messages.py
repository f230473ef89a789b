"""Typed messages to the main screen ("attributes down, messages up").

Two kinds: news (workers post what arrived: pages, samples, changed runs) and intents (a
pane or another screen says what the user asked for; the main screen carries it out).
"""

from __future__ import annotations

from pathlib import Path

from textual.message import Message

from cosmos_tui.domain import GpuHostHealth, GpuSample, HostStatus, LogBatch, Page, Prompt, Run
from cosmos_tui.engine.cluster_health import ClusterHealth
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


class ClusterChanged(Message):
    """A new reading of a Ray cluster's nodes and jobs."""

    def __init__(self, health: ClusterHealth) -> None:
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


# Intents: a pane (or a dialog) says what the user asked for; the main screen decides how
# (forms, confirmations, service calls). Panes never call into the screen.


class NewPromptRequested(Message):
    """Open the new-prompt form."""


class RunFormRequested(Message):
    """Open the new-run form for ``prompt``, or for the prompt of ``run`` when given."""

    def __init__(self, prompt: Prompt | None = None, run: Run | None = None) -> None:
        super().__init__()
        self.prompt = prompt
        self.run = run


class EnhanceRequested(Message):
    """Queue a prompt enhancement (``profile`` cosmos3: by Cosmos 3's reasoner)."""

    def __init__(self, prompt: Prompt, profile: str) -> None:
        super().__init__()
        self.prompt = prompt
        self.profile = profile


class DeleteRequested(Message):
    """Preview and, after confirmation, delete a prompt or a run."""

    def __init__(self, object_id: str) -> None:
        super().__init__()
        self.object_id = object_id


class RunsOfPromptRequested(Message):
    """Show only a prompt's runs in the Runs pane."""

    def __init__(self, prompt: Prompt) -> None:
        super().__init__()
        self.prompt = prompt


class InputsOfPromptRequested(Message):
    """Open the Inputs screen on the folder a prompt's videos came from."""

    def __init__(self, prompt: Prompt) -> None:
        super().__init__()
        self.prompt = prompt


class PromptShowRequested(Message):
    """Put the Prompts pane's cursor on a prompt."""

    def __init__(self, prompt_id: str) -> None:
        super().__init__()
        self.prompt_id = prompt_id


class DetailRequested(Message):
    """Open a run's detail screen."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id


class CancelRequested(Message):
    """Ask, then cancel a run."""

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run


class RetryRequested(Message):
    """Queue a run again."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id


class UpscaleRequested(Message):
    """Queue a 4K upscale of a run."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id


class RateRequested(Message):
    """Rate a run 1-5, or clear its rating (``rating`` None)."""

    def __init__(self, run_id: str, rating: int | None) -> None:
        super().__init__()
        self.run_id = run_id
        self.rating = rating


class OutputOpenRequested(Message):
    """Open a run's output video in the system's player."""

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run


class OutputPathCopyRequested(Message):
    """Copy a run's output path to the clipboard."""

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run


class RunFilterRequested(Message):
    """Open the run filter dialog."""


class HostsRequested(Message):
    """Open the Hosts screen, on host ``focus`` when given."""

    def __init__(self, focus: str | None) -> None:
        super().__init__()
        self.focus = focus


class FileOpenRequested(Message):
    """Open a video file in the system's player."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
