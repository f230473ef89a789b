"""Which process drives a run: an exclusive ``flock`` on a file in the run's folder.

Every process that may drive a run (the TUI, a detached ``cosmos worker``, a reconcile)
shares the machine and the outputs folder, so a non-blocking ``flock`` is the lease: it
is held while a process follows, finishes or downloads a run, and the kernel drops it
when that process exits or crashes, so a restarted app can take over at once. Two
processes (or two tasks of one process: flock locks belong to open files) can therefore
never follow one container or finish one run twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import IO

from cosmos_tui.private_files import open_private, private_dir

LOCK_NAME = ".driver.lock"


class RunLock:
    """The driving lease of one run.

    Args:
        run_dir: The run's local folder (``<outputs>/<run id>``); created if missing.

    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_NAME
        self._handle: IO[str] | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lease."""
        return self._handle is not None

    def try_acquire(self, record: bool = True) -> bool:
        """Take the lease if nobody holds it; return whether it is now held here.

        Args:
            record: Write this process's pid as the holder (drivers do; a look that
                releases at once does not, so the last driver's pid stays readable).

        """
        if self._handle is not None:
            return True
        private_dir(self.path.parent)
        handle = open_private(self.path, "a+", encoding="ascii")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        if record:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
        self._handle = handle
        return True

    def release(self) -> None:
        """Give the lease back (closing the file releases the lock)."""
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def holder_pid(self) -> int | None:
        """Return the pid that last took the lease (it may have ended since)."""
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def holder_alive(self) -> bool:
        """True when the process that last took the lease still exists (no locking).

        Unlike :meth:`is_free` this never takes the lock, so it cannot make a driver
        that starts at that moment find the run busy. The holder may have released
        the lease without exiting (a TUI whose run ended); callers check the state.
        """
        pid = self.holder_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return not _is_zombie(pid)

    def is_free(self) -> bool:
        """Return True when nobody holds the lease right now (a snapshot)."""
        if self._handle is not None:
            return False
        if not self.try_acquire(record=False):
            return False
        self.release()
        return True


def _is_zombie(pid: int) -> bool:
    """True for a process that has ended but was not reaped (reaped here if ours)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if state != "Z":
        return False
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # a worker this process started: reap it
    return True
