"""What the main screen does when a pane asks: forms, dialogs and service commands.

The panes post intents (``ui.messages``: ``CancelRequested``, ``DeleteRequested`` ...); the
main screen routes each to a method of its :class:`MainActions`. Service calls run in the
screen's workers (group ``actions``) and their errors follow the UI's one policy
(``ui.report``).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cosmos_tui.domain import Prompt, Run
from cosmos_tui.errors import CosmosError, NotReady
from cosmos_tui.ui.messages import RunChanged, RunDeleted
from cosmos_tui.ui.report import report_error
from cosmos_tui.ui.screens.confirm import ConfirmScreen
from cosmos_tui.ui.screens.detail import RunDetailScreen
from cosmos_tui.ui.stalled import is_stalled

if TYPE_CHECKING:
    from cosmos_tui.services import DeletePlan
    from cosmos_tui.store.repositories import RunFilter
    from cosmos_tui.ui.protocol import UIServices
    from cosmos_tui.ui.screens.main import MainScreen

ENHANCE_VERBS = {
    "transfer1": "enhance queued",
    "cosmos3": "enhance by Cosmos 3's reasoner queued",
}


def delete_preview(plan: DeletePlan) -> str:
    """Describe a delete plan the way ``cosmos delete`` does."""
    lines = [f"This deletes {plan.kind} {plan.id}"]
    if plan.kind == "prompt":
        lines.append(f"  and its {len(plan.run_ids)} run(s): {', '.join(plan.run_ids) or '-'}")
    lines.extend(f"  removes outputs in {folder}" for folder in plan.output_dirs)
    return "\n".join(lines)


def default_opener(path: str) -> list[str]:
    """Return the argv that opens a file in the system's default application."""
    if sys.platform == "darwin":
        return ["open", path]
    if sys.platform.startswith("win"):
        return ["explorer", path]
    return ["xdg-open", path]


class MainActions:
    """The main screen's actions on prompts and runs; each service call runs in a worker.

    Args:
        screen: The main screen (its panes, services, notifications and workers).

    """

    def __init__(self, screen: MainScreen) -> None:
        self.screen = screen

    def _in_worker(self, work: Coroutine[Any, Any, object]) -> None:
        """Run ``work`` in a screen worker (named after it); errors follow the UI's policy."""

        async def body() -> None:
            try:
                await work
            except Exception as exc:  # noqa: BLE001 - shown by report_error (bugs included)
                report_error(self.screen.app, exc)

        name = getattr(work, "__qualname__", "action")
        self.screen.run_worker(body(), name=name, group="actions", exit_on_error=False)

    def _services(self) -> UIServices:
        services = self.screen.services
        if services is None:
            raise NotReady
        return services

    def _ready(self) -> UIServices | None:
        """The services, or None after saying they are still opening."""
        services = self.screen.services
        if services is None:
            self.screen.notify("still connecting to the database", severity="warning")
        return services

    # prompts ------------------------------------------------------------------------

    def open_prompt_form(self) -> None:
        """Open the new-prompt form; the new prompt is selected when it is saved."""
        # lazy: the forms and Textual's TextArea (~20 ms) load when a form first opens
        from cosmos_tui.ui.screens.prompt_form import PromptForm

        services = self._ready()
        if services is not None:
            self.screen.app.push_screen(PromptForm(services), self._prompt_created)

    def _prompt_created(self, prompt: Prompt | None) -> None:
        if prompt is not None:
            self.screen.prompts.reload()
            self.screen.notify(f"{prompt.id} created", title="Prompt created")

    def open_run_form(self, prompt: Prompt | None, run: Run | None = None) -> None:
        """Open the new-run form for ``prompt``, or for the prompt of ``run`` when given.

        With neither, the Prompts pane's selected prompt; with none selected, a hint.
        """
        # lazy: the forms and Textual's TextArea (~20 ms) load when a form first opens
        from cosmos_tui.ui.screens.run_form import RunForm

        services = self._ready()
        if services is None:
            return
        if run is not None and run.prompt_id:
            prompt_id = run.prompt_id
            self._in_worker(self._open_run_form_for(prompt_id))
            return
        prompt = prompt or self.screen.prompts.selected
        if prompt is None:
            self.screen.notify("create a prompt first (n in the Prompts pane)", severity="warning")
            return
        form = RunForm(services, prompt, self.screen.cosmos.config)
        self.screen.app.push_screen(form, self._run_created)

    async def _open_run_form_for(self, prompt_id: str) -> None:
        self.open_run_form(await self._services().get_prompt(prompt_id))

    def _run_created(self, run: Run | None) -> None:
        if run is not None:
            self.screen.post_message(RunChanged(run))
            self.screen.notify(f"{run.id} queued", title="Run created")

    def enhance(self, prompt: Prompt, profile: str) -> None:
        """Queue a prompt-enhancement run (``cosmos3``: by Cosmos 3's reasoner)."""

        async def call() -> Run:
            return await self._services().enhance_prompt(prompt.id, profile)

        verb = ENHANCE_VERBS.get(profile, f"enhance by {profile} queued")
        self._in_worker(self._queued(call, verb, "Enhance"))

    # runs ---------------------------------------------------------------------------

    def retry(self, run_id: str) -> None:
        """Queue a run again."""

        async def call() -> Run:
            return await self._services().retry_run(run_id)

        self._in_worker(self._queued(call, "queued again", "Retry"))

    def upscale(self, run_id: str) -> None:
        """Queue a 4K upscale of a run."""

        async def call() -> Run:
            return await self._services().upscale_run(run_id)

        self._in_worker(self._queued(call, "upscale queued", "Upscale"))

    async def _queued(self, call: Callable[[], Awaitable[Run]], verb: str, title: str) -> None:
        run = await call()
        self.screen.post_message(RunChanged(run))
        self.screen.notify(f"{run.id} {verb}", title=title)

    def cancel(self, run: Run) -> None:
        """Ask, then cancel ``run`` (queued or active)."""
        if run.state.is_terminal:
            self.screen.notify(f"{run.id} is already {run.state.value}", severity="warning")
            return
        state = run.progress.phase if is_stalled(run) and run.progress else run.state.value
        text = f"Cancel run {run.id} ({state})?\nIts container is stopped on the host."

        def _answer(yes: bool | None) -> None:
            if yes:
                self._in_worker(self._cancel(run.id))

        self.screen.app.push_screen(ConfirmScreen(text, "Cancel run"), _answer)

    async def _cancel(self, run_id: str) -> None:
        run = await self._services().cancel_run(run_id)
        self.screen.post_message(RunChanged(run))

    def rate(self, run_id: str, rating: int | None) -> None:
        """Rate a run and show the new rating."""

        async def call() -> None:
            run = await self._services().rate(run_id, rating)
            self.screen.post_message(RunChanged(run))

        self._in_worker(call())

    def delete(self, object_id: str) -> None:
        """Show what deleting a prompt or run removes; delete after confirmation."""
        self._in_worker(self._plan_delete(object_id))

    async def _plan_delete(self, object_id: str) -> None:
        plan = await self._services().plan_delete(object_id)

        def _answer(yes: bool | None) -> None:
            if yes:
                self._in_worker(self._delete(plan))

        self.screen.app.push_screen(ConfirmScreen(delete_preview(plan), "Delete"), _answer)

    async def _delete(self, plan: DeletePlan) -> None:
        await self._services().delete(plan)
        prompt_id = plan.id if plan.kind == "prompt" else None
        self.screen.post_message(RunDeleted(plan.run_ids, prompt_id))
        if plan.kind == "run":
            self.screen.prompts.reload()
        self.screen.notify(f"{plan.kind} {plan.id} deleted", title="Deleted")

    def open_detail(self, run_id: str) -> None:
        """Open the run detail screen."""
        services = self._ready()
        if services is not None:
            history = self.screen.gpus.history
            self.screen.app.push_screen(RunDetailScreen(services, run_id, history))

    def open_run_filter(self) -> None:
        """Open the run filter dialog."""
        # lazy: screens.run_filter imports SQLAlchemy (store.repositories, ~0.3 s), kept out of
        # the TUI's start-up
        from cosmos_tui.ui.screens.run_filter import RunFilterScreen

        self.screen.app.push_screen(RunFilterScreen(self.screen.runs.where), self._filter_chosen)

    def _filter_chosen(self, where: RunFilter | None) -> None:
        if where is not None:
            self.screen.runs.set_filter(where)

    def _output_or_warn(self, run: Run) -> Path | None:
        """Return the run's output path, or say why there is none."""
        services = self._ready()
        if services is None:
            return None
        path = services.output_path(run)
        if path is None:
            self.screen.notify(f"{run.id} has no output video yet", severity="warning")
        return path

    def copy_output_path(self, run: Run) -> None:
        """Copy the run's output path to the clipboard (OSC 52) and show it."""
        path = self._output_or_warn(run)
        if path is not None:
            self.screen.app.copy_to_clipboard(str(path))
            self.screen.notify(str(path), title="Copied output path")

    def open_output(self, run: Run) -> None:
        """Open the run's output video in the system's player."""
        path = self._output_or_warn(run)
        if path is not None:
            self.open_file(path)

    def open_file(self, path: Path) -> None:
        """Open a video in the system's player."""
        self._in_worker(self._open_file(str(path)))

    async def _open_file(self, path: str) -> None:
        """Open a video in the system's player (in a worker: the player may run for long)."""
        cosmos = self.screen.cosmos
        argv = cosmos.opener(path)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        except OSError as exc:
            raise CosmosError(
                f"cannot run {argv[0]}: {exc.strerror}; open {path} yourself"
            ) from exc
        cosmos.opened.append(path)
        await process.wait()
