"""The project's one error tree.

Every error carries a one-line ``message`` that says what is wrong and what to change,
and a short ``title`` for notifications. Subclasses carry the data a caller needs to act.
``transient`` errors (a dropped host, a command out of time) are shown as warnings and
may be retried; the others are errors. tests/core/test_error_tree.py holds this drawing
to the classes below::

    CosmosError
    +-- ValidationError
    |   +-- InputChanged
    |   +-- FrameUnreadable
    |   +-- OutsideFolder
    +-- ConfigError
    +-- NotFound
    +-- AmbiguousId
    +-- NotReady
    +-- StoreError
    +-- InvalidTransition
    |   +-- ClaimedElsewhere
    +-- RemoteError
    |   +-- HostUnreachable
    |   +-- AuthenticationFailed
    |   +-- HostKeyUnknown
    |   +-- RemoteCommandFailed
    |   |   +-- CommandTimedOut
    |   +-- TransferFailed
    |   +-- TransferCorrupted
    |   +-- DockerError
    |   |   +-- ContainerGone
    |   +-- ClusterUnreachable
    +-- RunError
        +-- ContainerFailed
        +-- RunBusy
        +-- NoFreeGpus
        +-- RunStalled
        +-- BatchError
"""

from __future__ import annotations

from pathlib import Path


class CosmosError(Exception):
    """Base of every error cosmos-tui raises on purpose.

    Args:
        message: What went wrong and what to do about it, in one line.
        title: A short heading for notifications and dialogs.
    """

    transient = False

    def __init__(self, message: str, title: str = "Error") -> None:
        super().__init__(message)
        self.message = message
        self.title = title

    def __str__(self) -> str:
        return self.message


class ValidationError(CosmosError):
    """A user-supplied value is invalid; ``field`` names it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message, title="Invalid input")
        self.field = field


class InputChanged(ValidationError):
    """A prompt's input file no longer holds the content recorded for the prompt."""

    def __init__(self, path: Path, recorded: str, found: str) -> None:
        super().__init__(
            f"{path} changed since it was recorded for its prompt ({recorded}, now {found}): "
            "put the original file back, or create a new prompt from the folder "
            "(cosmos create prompt)",
            field=str(path),
        )
        self.path = path


class ConfigError(CosmosError):
    """The configuration file is malformed or holds an unknown or invalid key."""

    def __init__(self, message: str, path: Path | None = None, line: int | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line else f"{path}: "
        super().__init__(f"{where}{message}", title="Configuration error")
        self.path = path
        self.line = line
        self.detail = message


class NotFound(CosmosError):
    """No prompt, run or batch matches the given id or prefix."""

    def __init__(self, message: str) -> None:
        super().__init__(message, title="Not found")


class AmbiguousId(CosmosError):
    """An id prefix matches more than one object."""

    def __init__(self, prefix: str, matches: list[str]) -> None:
        shown = ", ".join(matches[:5]) + (
            f" and {len(matches) - 5} more" if len(matches) > 5 else ""
        )
        super().__init__(
            f"id prefix '{prefix}' is ambiguous: it matches {shown}; type more characters",
            title="Ambiguous id",
        )
        self.prefix = prefix
        self.matches = matches


class NotReady(CosmosError):
    """The UI's services are still opening (the database, usually); try again shortly."""

    transient = True

    def __init__(self) -> None:
        super().__init__("still connecting to the database", title="Not ready")


class StoreError(CosmosError):
    """The database cannot be opened, migrated or written."""

    def __init__(self, message: str) -> None:
        super().__init__(message, title="Database error")


class InvalidTransition(CosmosError):
    """A run was asked to move to a state its current state does not allow."""

    def __init__(self, run_id: str, current: str, target: str) -> None:
        super().__init__(
            f"run {run_id} is {current}; it cannot become {target}",
            title="Invalid state change",
        )
        self.run_id = run_id
        self.current = current
        self.target = target


class ClaimedElsewhere(InvalidTransition):
    """A queued run is claimed by another scheduler or driver, so this one may not take it."""

    def __init__(self, run_id: str, claimed_by: str, target: str) -> None:
        super().__init__(run_id, f"queued and claimed by {claimed_by}", target)
        self.claimed_by = claimed_by


class RemoteError(CosmosError):
    """A GPU host, or something on it (SSH, SFTP, Docker, a cluster's head), failed us."""


class HostUnreachable(RemoteError):
    """The SSH host cannot be reached (network, DNS, refused, dropped)."""

    transient = True

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"host {host} is unreachable: {reason}", title="Host unreachable")
        self.host = host
        self.reason = reason


class AuthenticationFailed(RemoteError):
    """The SSH server refused every key offered."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(
            f"host {host} refused our key: {reason}; check 'user' and 'identity_file' "
            "for this host in the config, or load the key into ssh-agent",
            title="Authentication failed",
        )
        self.host = host
        self.reason = reason


class HostKeyUnknown(RemoteError):
    """The host's key is not in known_hosts, or differs from the recorded one."""

    def __init__(self, host: str, fingerprint: str, changed: bool = False) -> None:
        if changed:
            text = (
                f"host key of {host} CHANGED (now {fingerprint}); if the host was "
                f"reinstalled, remove the old entry from known_hosts and run "
                f"'cosmos host trust {host}'"
            )
        else:
            text = (
                f"host key of {host} is not trusted yet (fingerprint {fingerprint}); "
                f"verify it and run 'cosmos host trust {host}'"
            )
        super().__init__(text, title="Unknown host key")
        self.host = host
        self.fingerprint = fingerprint
        self.changed = changed


class RemoteCommandFailed(RemoteError):
    """A remote command exited non-zero or timed out."""

    def __init__(
        self,
        host: str,
        argv: list[str],
        exit_status: int | None,
        stderr_tail: str = "",
        timed_out: bool = False,
    ) -> None:
        what = "timed out" if timed_out else f"exited with status {exit_status}"
        tail = f": {stderr_tail.strip()}" if stderr_tail.strip() else ""
        super().__init__(
            f"on {host}, '{argv[0] if argv else ''}' {what}{tail}", title="Remote command failed"
        )
        self.host = host
        self.argv = argv
        self.exit_status = exit_status
        self.stderr_tail = stderr_tail
        self.timed_out = timed_out
        self.transient = timed_out


class CommandTimedOut(RemoteCommandFailed):
    """A remote command did not finish in its time (``timed_out`` is True); worth a retry."""

    def __init__(self, host: str, argv: list[str], stderr_tail: str = "") -> None:
        super().__init__(host, argv, None, stderr_tail, timed_out=True)


class TransferFailed(RemoteError):
    """An SFTP upload or download failed or was refused."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message, title="Transfer failed")
        self.transient = transient


class TransferCorrupted(RemoteError):
    """A transferred file's size or hash does not match what was expected."""

    def __init__(self, message: str) -> None:
        super().__init__(message, title="Integrity check failed")


class DockerError(RemoteError):
    """The Docker Engine on a host refused or failed a request."""

    def __init__(self, message: str, status: int | None = None, transient: bool = False) -> None:
        super().__init__(message, title="Docker error")
        self.status = status
        self.transient = transient


class RunError(CosmosError):
    """A run cannot go on as asked.

    Its container failed, another process drives it, no GPU is free, nobody drives it any
    more, or its batch cannot express it.
    """


class ContainerFailed(RunError):
    """A run's container ended unsuccessfully; ``kind`` is the classified cause."""

    def __init__(self, message: str, kind: str, exit_code: int | None = None) -> None:
        super().__init__(message, title="Run failed")
        self.kind = kind
        self.exit_code = exit_code


class ClusterUnreachable(RemoteError):
    """A cluster's head (the Ray dashboard) did not answer; runs wait, nothing is lost."""

    transient = True

    def __init__(self, cluster: str, reason: str) -> None:
        super().__init__(
            f"cluster {cluster} is not reachable: {reason}; its runs wait in the queue "
            "('cosmos status' shows the cluster)",
            title="Cluster unreachable",
        )
        self.cluster = cluster


class ContainerGone(DockerError):
    """The run's container no longer exists on its host (removed behind our back)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=404)


class RunBusy(RunError):
    """Another process (or task) is driving this run right now."""

    def __init__(self, run_id: str, pid: int | None) -> None:
        holder = f" (pid {pid})" if pid else ""
        super().__init__(
            f"run {run_id} is being driven by another process{holder}; follow it with "
            f"'cosmos logs -f {run_id}'",
            title="Run busy",
        )
        self.run_id = run_id


class NoFreeGpus(RunError):
    """The host has too few free GPUs right now; the run stays queued and waits."""

    def __init__(self, message: str) -> None:
        super().__init__(message, title="Waiting for GPUs")


class RunStalled(RunError):
    """No process drives an unfinished run any more."""

    def __init__(self, run_id: str, state: str) -> None:
        super().__init__(
            f"run {run_id} is {state} but no process drives it now (its worker ended: see "
            f"{run_id}/worker.log; the host may be unreachable); resume it with "
            "'cosmos reconcile'",
            title="Run stalled",
        )
        self.run_id = run_id


class BatchError(RunError):
    """Runs were put into one batch that the batch cannot express faithfully."""

    def __init__(self, message: str) -> None:
        super().__init__(message, title="Batching error")


class FrameUnreadable(ValidationError):
    """A frame file cannot be read as an image."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"cannot read {path.name} ({reason}); re-render or replace it", field=str(path)
        )
        self.path = path


class OutsideFolder(ValidationError):
    """A path built from host-supplied names would leave its folder (or pass a symlink)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="name")
