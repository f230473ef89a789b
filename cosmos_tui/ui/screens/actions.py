"""The main screen's actions on prompts and runs: forms, dialogs and service commands."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any

from textual import work

from cosmos_tui.domain import Prompt, Run
from cosmos_tui.errors import CosmosError
from cosmos_tui.ui.messages import PromptChanged, RunChanged, RunDeleted
from cosmos_tui.ui.report import reported

if TYPE_CHECKING:
    from cosmos_tui.services import DeletePlan
    from cosmos_tui.ui.screens.main import MainScreen

COMMAND_VERBS = {
    "retry": "queued again",
    "upscale": "upscale queued",
    "enhance": "enhance queued",
    "enhance_reasoner": "enhance by Cosmos 3's reasoner queued",
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


class ActionsMixin:
    """Actions of the main screen; each service call runs in an async worker."""

    def open_prompt_form(self: MainScreen) -> None:
        """Open the new-prompt form; the new prompt is selected when it is saved."""
        from cosmos_tui.ui.screens.prompt_form import PromptForm

        if self.services is None:
            self.notify("still connecting to the database", severity="warning")
            return
        self.app.push_screen(PromptForm(self.services), self._prompt_created)

    def _prompt_created(self: MainScreen, prompt: Prompt | None) -> None:
        if prompt is not None:
            self.prompts.reload()
            self.notify(f"{prompt.id} created", title="Prompt created")

    def open_run_form(self: MainScreen, prompt: Prompt) -> None:
        """Open the new-run form for ``prompt``."""
        from cosmos_tui.ui.screens.run_form import RunForm

        if self.services is None:
            return
        self.app.push_screen(RunForm(self.services, prompt, self.cosmos.config), self._run_created)

    def new_run_from(self: MainScreen, run: Run | None) -> None:
        """Open the new-run form for the prompt of ``run`` (or the selected prompt)."""
        if run is not None and run.prompt_id:
            self._open_run_form_for(run.prompt_id)
        elif self.prompts.selected is not None:
            self.open_run_form(self.prompts.selected)
        else:
            self.notify("create a prompt first (n in the Prompts pane)", severity="warning")

    @work(group="actions", exit_on_error=False)
    @reported
    async def _open_run_form_for(self: MainScreen, prompt_id: str) -> None:
        assert self.services is not None
        self.open_run_form(await self.services.get_prompt(prompt_id))

    def _run_created(self: MainScreen, run: Run | None) -> None:
        if run is not None:
            self.post_message(RunChanged(run))
            self.notify(f"{run.id} queued", title="Run created")

    def enhance(self: MainScreen, prompt: Prompt, profile: str = "transfer1") -> None:
        """Queue a prompt-enhancement run (``cosmos3``: by Cosmos 3's reasoner)."""
        if profile == "transfer1":
            self.run_command("enhance", prompt.id)
        else:
            self.run_command("enhance_reasoner", prompt.id)

    @work(group="actions", exit_on_error=False)
    @reported
    async def run_command(self: MainScreen, kind: str, object_id: str) -> None:
        """Call retry, upscale or enhance on the services and show the new state."""
        assert self.services is not None
        services = self.services
        calls: dict[str, Any] = {
            "retry": services.retry_run,
            "upscale": services.upscale_run,
            "enhance": services.enhance_prompt,
            "enhance_reasoner": lambda prompt_id: services.enhance_prompt(prompt_id, "cosmos3"),
        }
        run = await calls[kind](object_id)
        self.post_message(RunChanged(run))
        self.notify(f"{run.id} {COMMAND_VERBS[kind]}", title=kind.split("_")[0].capitalize())

    def cancel(self: MainScreen, run: Run) -> None:
        """Ask, then cancel ``run`` (queued or active)."""
        from cosmos_tui.ui.screens.confirm import ConfirmScreen

        if run.state.is_terminal:
            self.notify(f"{run.id} is already {run.state.value}", severity="warning")
            return
        from cosmos_tui.ui.stalled import is_stalled

        state = run.progress.phase if is_stalled(run) and run.progress else run.state.value
        text = f"Cancel run {run.id} ({state})?\nIts container is stopped on the host."

        def _answer(yes: bool | None) -> None:
            if yes:
                self._cancel(run.id)

        self.app.push_screen(ConfirmScreen(text, "Cancel run"), _answer)

    @work(group="actions", exit_on_error=False)
    @reported
    async def _cancel(self: MainScreen, run_id: str) -> None:
        assert self.services is not None
        run = await self.services.cancel_run(run_id)
        self.post_message(RunChanged(run))

    @work(group="actions", exit_on_error=False)
    @reported
    async def rate(self: MainScreen, run_id: str, rating: int | None) -> None:
        """Rate a run and show the new rating."""
        assert self.services is not None
        run = await self.services.rate(run_id, rating)
        self.post_message(RunChanged(run))

    @work(group="actions", exit_on_error=False)
    @reported
    async def delete_object(self: MainScreen, object_id: str) -> None:
        """Show what deleting a prompt or run removes; delete after confirmation."""
        from cosmos_tui.ui.screens.confirm import ConfirmScreen

        assert self.services is not None
        plan = await self.services.plan_delete(object_id)

        def _answer(yes: bool | None) -> None:
            if yes:
                self._delete(plan)

        self.app.push_screen(ConfirmScreen(delete_preview(plan), "Delete"), _answer)

    @work(group="actions", exit_on_error=False)
    @reported
    async def _delete(self: MainScreen, plan: DeletePlan) -> None:
        assert self.services is not None
        await self.services.delete(plan)
        prompt_id = plan.id if plan.kind == "prompt" else None
        self.post_message(RunDeleted(plan.run_ids, prompt_id))
        if plan.kind == "run":
            self.prompts.reload()
        self.notify(f"{plan.kind} {plan.id} deleted", title="Deleted")

    def open_detail(self: MainScreen, run_id: str) -> None:
        """Open the run detail screen."""
        from cosmos_tui.ui.screens.detail import RunDetailScreen

        if self.services is not None:
            self.app.push_screen(RunDetailScreen(self.services, run_id, self.gpus.history))

    def open_run_filter(self: MainScreen) -> None:
        """Open the run filter dialog."""
        from cosmos_tui.ui.screens.run_filter import RunFilterScreen

        self.app.push_screen(RunFilterScreen(self.runs.where), self._filter_chosen)

    def _filter_chosen(self: MainScreen, where: Any) -> None:
        if where is not None:
            self.runs.set_filter(where)

    def output_or_warn(self: MainScreen, run: Run) -> str | None:
        """Return the run's output path, or say why there is none."""
        assert self.services is not None
        path = self.services.output_path(run)
        if path is None:
            self.notify(f"{run.id} has no output video yet", severity="warning")
            return None
        return str(path)

    def copy_output_path(self: MainScreen, run: Run) -> None:
        """Copy the run's output path to the clipboard (OSC 52) and show it."""
        path = self.output_or_warn(run)
        if path is not None:
            self.app.copy_to_clipboard(path)
            self.notify(path, title="Copied output path")

    def open_output(self: MainScreen, run: Run) -> None:
        """Open the run's output video in the system's player."""
        path = self.output_or_warn(run)
        if path is not None:
            self.open_file(path)

    @work(group="actions", exit_on_error=False)
    @reported
    async def open_file(self: MainScreen, path: str) -> None:
        """Open a video in the system's player (a worker: the player may run for long)."""
        argv = self.cosmos.opener(path)
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
        self.cosmos.opened.append(path)
        await process.wait()

    def on_prompt_changed(self: MainScreen, message: PromptChanged) -> None:
        """Show a created or changed prompt."""
        self.prompts.update_prompt(message.prompt)
