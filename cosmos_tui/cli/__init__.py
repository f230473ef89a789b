"""The ``cosmos`` command: a thin shell over :mod:`cosmos_tui.services`.

Subcommands live in their own modules and are imported only when used, so that
``cosmos --help`` and quick commands start fast.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import click

from cosmos_tui import __version__
from cosmos_tui.cli.context import CliContext

# command name -> "module:attribute"; modules are imported on first use.
LAZY_COMMANDS: dict[str, str] = {
    "create": "cosmos_tui.cli.records:create",
    "list": "cosmos_tui.cli.records:list_cmd",
    "show": "cosmos_tui.cli.records:show",
    "search": "cosmos_tui.cli.records:search",
    "rate": "cosmos_tui.cli.records:rate",
    "delete": "cosmos_tui.cli.records:delete",
    "config": "cosmos_tui.cli.config_cmd:config",
    "queue": "cosmos_tui.cli.queue_cmd:queue",
    "stats": "cosmos_tui.cli.queue_cmd:stats",
    "upscale": "cosmos_tui.cli.extra:upscale",
    "enhance": "cosmos_tui.cli.extra:enhance",
    "verify": "cosmos_tui.cli.verify_cmd:verify_cmd",
    "status": "cosmos_tui.cli.hosts:status",
    "host": "cosmos_tui.cli.hosts:host_group",
    "doctor": "cosmos_tui.cli.doctor_cmd:doctor",
    "demo": "cosmos_tui.cli.demo:demo",
    "tui": "cosmos_tui.cli.tui_cmd:tui",
    "inference": "cosmos_tui.cli.runs:inference",
    "logs": "cosmos_tui.cli.runs:logs",
    "cancel": "cosmos_tui.cli.runs:cancel",
    "reconcile": "cosmos_tui.cli.runs:reconcile",
    "worker": "cosmos_tui.cli.runs:worker",
    "diagnose": "cosmos_tui.cli.diagnose_cmd:diagnose_cmd",
    "inspect": "cosmos_tui.cli.inputs_cmd:inspect_cmd",
    "prepare": "cosmos_tui.cli.inputs_cmd:prepare",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported when they are first needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Return every command name, eager and lazy."""
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Return the command, importing its module if it is lazy."""
        if cmd_name in LAZY_COMMANDS:
            module_name, attribute = LAZY_COMMANDS[cmd_name].split(":")
            command: click.Command = getattr(importlib.import_module(module_name), attribute)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List commands with their one-line help without importing their modules."""
        rows = [(name, COMMAND_HELP.get(name, "")) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


COMMAND_HELP: dict[str, str] = {
    "create": "Create a prompt (from a video folder) or a queued run.",
    "list": "List prompts or runs, newest first, with filters.",
    "show": "Show a prompt or a run in detail.",
    "search": "Find prompts and runs by prompt text or name.",
    "rate": "Rate a run from 1 to 5 (0 clears).",
    "delete": "Delete a prompt or run, after a preview and confirmation.",
    "config": "Create, show, locate or change the configuration file.",
    "queue": "Show the queue's plan (batches, placement); pause, resume, up, down, cancel, run.",
    "stats": "Runs per state, mean duration per profile, GPU-hours, failure kinds.",
    "upscale": "Queue a 4K upscale of a completed run (or a video file).",
    "enhance": "Queue prompt enhancement: an upsampled child prompt (or --overwrite).",
    "verify": "Find missing outputs, moved inputs, orphan folders and containers (--fix).",
    "status": "Show hosts: connection, Docker, image, GPUs and who holds them, problems.",
    "host": "Manage GPU hosts ('cosmos host trust NAME' records a host key).",
    "doctor": "Check hosts for everything a real run needs; print each failure's fix.",
    "demo": "Try it all on a SIMULATED GPU HOST on 127.0.0.1 (no server, no GPU).",
    "tui": "Open the terminal UI: prompts, runs, GPUs and logs.",
    "inference": "Run prompts (new runs) or runs again; show progress and wait (Ctrl+C detaches).",
    "logs": "Print a run's log; -f follows it until the run ends, --tail N starts at the end.",
    "cancel": "Cancel a run: SIGTERM to its container, SIGKILL after the grace period.",
    "reconcile": "Reattach, finish or fail active runs; list orphan containers (never killed).",
    "worker": "Internal: drive one run to its end (started by 'cosmos inference').",
    "diagnose": "Diagnose any Cosmos log file: cause, fix, deciding line, rank, phase.",
    "inspect": "Probe a folder's videos: frames, fps, resolution, codec, mismatches.",
    "prepare": "Turn a folder of image sequences (color, depth, seg...) into checked videos.",
}


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="COSMOS_CONFIG",
    help="Config file (default: the platform's user config dir, or $COSMOS_CONFIG).",
)
@click.version_option(__version__, prog_name="cosmos")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """cosmos: run NVIDIA Cosmos models on remote GPU hosts.

    Exit codes: 0 success, 1 failure (one 'error:' line on stderr), 2 usage error.
    """
    ctx.obj = CliContext(config_path=config_path)


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``cosmos`` console script."""
    try:
        return cli.main(args=argv, prog_name="cosmos")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


def tui_main(argv: list[str] | None = None) -> Any:
    """Entry point of ``cosmos-tui``: the same as ``cosmos tui``."""
    args = list(sys.argv[1:] if argv is None else argv)
    return cli.main(args=["tui", *args], prog_name="cosmos-tui")
