"""What every CLI command shares: the config path, running services, error output."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from cosmos_tui.safe_text import one_line, printable

if TYPE_CHECKING:
    from cosmos_tui.config import Config
    from cosmos_tui.services import Workbench

T = TypeVar("T")


@dataclass
class CliContext:
    """State shared by the commands of one invocation."""

    config_path: Path | None = None

    def load_config(self) -> Config:
        """Load and validate the configuration (errors end the command with exit 1)."""
        # lazy: config and domain (~50 ms) are not needed for 'cosmos --help'
        from cosmos_tui.config import load_config

        return guard(lambda: load_config(self.config_path))

    def run(self, action: Callable[[Workbench], Awaitable[T]]) -> T:
        """Open the services, run ``action`` on them and close them; errors exit 1."""
        config = self.load_config()

        async def _main() -> T:
            # lazy: SQLAlchemy and the services (~600 ms) are not needed for 'cosmos --help'
            from cosmos_tui.services import Workbench

            async with Workbench.open(config) as bench:
                return await action(bench)

        return guard(lambda: asyncio.run(_main()))


def guard(call: Callable[[], T]) -> T:
    """Run ``call``; turn a CosmosError into ``error: ...`` on stderr and exit 1."""
    # lazy: errors (~4 ms) is not needed for 'cosmos --help', which imports this module
    from cosmos_tui.errors import CosmosError

    try:
        return call()
    except CosmosError as exc:
        fail(exc.message)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


def fail(message: str) -> NoReturn:
    """Print one ``error:`` line on stderr and exit with status 1.

    The message may quote user or host text: control characters are escaped.
    """
    click.echo(f"error: {one_line(' '.join(message.split()))}", err=True)
    sys.exit(1)


def echo(text: object = "", *, err: bool = False, nl: bool = True) -> None:
    """Print ``text`` with control characters escaped (newlines and tabs kept).

    Every human-readable line of the CLI goes through here: what it prints may quote
    prompt text, names, paths or host answers, which must never reach the terminal as
    escape sequences or direction overrides.
    """
    click.echo(printable(text), err=err, nl=nl)


def echo_json(data: Any) -> None:
    """Print ``data`` as indented, key-sorted JSON (the stable machine format)."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=True))
