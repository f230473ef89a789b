"""The UI's one error policy.

- A transient error (connection dropped, timeout): a warning notification; the pane that
  owns the resource shows its own state.
- Any other project error: an error notification with its title and message (validation
  errors in forms are shown inline by the form instead).
- Anything else is a bug: logged with its traceback and shown with it.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from textual.app import App
from textual.notifications import SeverityLevel

from cosmos_tui.errors import CosmosError

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


def report_error(app: App[Any], error: BaseException) -> None:
    """Show ``error`` to the user according to the policy above."""
    if isinstance(error, CosmosError):
        severity: SeverityLevel = "warning" if error.transient else "error"
        app.notify(error.message, title=error.title, severity=severity, timeout=8)
        return
    logger.error("unexpected error in the UI", exc_info=error)
    text = "".join(traceback.format_exception(error)[-6:])
    app.notify(text, title=f"Bug: {type(error).__name__}", severity="error", timeout=30)


def reported(
    method: Callable[P, Awaitable[R]],
) -> Callable[P, Awaitable[R | None]]:
    """Wrap a worker body of a widget or screen so its errors follow the policy."""

    @wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
        node = args[0]
        try:
            return await method(*args, **kwargs)
        except CosmosError as exc:
            report_error(node.app, exc)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - the one place bugs are caught and shown
            report_error(node.app, exc)  # type: ignore[attr-defined]
        return None

    return wrapper
