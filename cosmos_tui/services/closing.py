"""Closing the services step by step, none of them able to hang a quit for good.

A step that waits for good (a task that ignores its cancel, a future nobody resolves)
must not freeze a quit: :func:`bounded_close` gives it :data:`CLOSE_STEP_S`, then
cancels it (with a short grace to end), logs where every task still running waits, and
lets the steps after it run (the hosts' connections and the database close).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

logger = logging.getLogger(__name__)

CLOSE_STEP_S = 20.0
"""The longest one step of closing the services may take before the next one runs."""
CANCEL_GRACE_S = 2.0
"""How long a step cut short gets to end after its cancel."""


async def bounded_close(step: Awaitable[object], what: str) -> None:
    """Await one close step for at most CLOSE_STEP_S; past that, say so and go on.

    A cut step gets CANCEL_GRACE_S to end after its cancel; an error it ends with later
    is logged. A cancel of the caller (Ctrl+C) cancels the step too. What the step
    raised within its time is raised here.
    """
    task = asyncio.ensure_future(step)
    try:
        done, _ = await asyncio.wait({task}, timeout=CLOSE_STEP_S)
    except BaseException:
        task.cancel()
        task.add_done_callback(_retrieve)
        raise
    if done:
        if task.cancelled():  # the step ended by a cancel of its own, not of this close
            logger.warning("closing %s: the step was cancelled", what)
            return
        task.result()
        return
    current = asyncio.current_task()
    running = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    logger.warning(
        "closing %s took over %g s; going on. Still running: %s",
        what,
        CLOSE_STEP_S,
        "; ".join(where(t) for t in running)[:4000],
    )
    task.cancel()
    task.add_done_callback(_retrieve)  # however and whenever it ends, its error is logged
    await asyncio.wait({task}, timeout=CANCEL_GRACE_S)


def where(task: asyncio.Task[Any]) -> str:
    """A task's coroutine and the innermost line it waits at (following its awaits)."""
    coro: Any = task.get_coro()
    name = getattr(coro, "__qualname__", repr(coro))
    inner = coro
    while (awaited := getattr(inner, "cr_await", None)) is not None:
        if getattr(awaited, "cr_frame", None) is None:
            break  # a future or a finished coroutine: the innermost frame is this one
        inner = awaited
    frame = getattr(inner, "cr_frame", None)
    if frame is None:
        return name
    return f"{name} at {frame.f_code.co_filename}:{frame.f_lineno}"


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Read a late step's outcome so asyncio does not report it as never retrieved."""
    if not task.cancelled() and task.exception() is not None:
        logger.warning("closing step ended late with: %r", task.exception())
