"""What every check of one host shares: the host, its config, the profile's needs."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from cosmos_tui.config import HostConfig, ProfileConfig
from cosmos_tui.doctor.needs import ProfileNeeds
from cosmos_tui.remote.docker_probe import PullProgress
from cosmos_tui.remote.host import RemoteHost
from cosmos_tui.remote.ssh import CommandResult

# Every value a check's script prints carries this prefix, and is read by it: a login
# shell's greeting (~/.bashrc, ~/.ssh/rc) may print lines of its own first.
PREFIX = "cosmos-doctor:"


@dataclass
class DoctorContext:
    """One host's doctor run.

    Attributes:
        host: The connected host.
        config: Its config entry.
        needs: What the profile needs.
        image: The profile's image on this host.
        environ: The local environment (``HF_TOKEN``).
        fix: Repair what can be repaired (pull a missing image).
        on_pull: Receives pull progress with ``fix``.
        home: The login user's home (read by the first check).
        facts: Results shared between checks (``docker``, ``image``).
        settings: The profile's ``[profiles.<name>]`` settings (checkout, cache, token).
    """

    host: RemoteHost
    config: HostConfig
    needs: ProfileNeeds
    image: str
    environ: Mapping[str, str]
    fix: bool = False
    on_pull: Callable[[PullProgress], None] | None = None
    home: str = ""
    facts: dict[str, object] = field(default_factory=dict)
    settings: ProfileConfig = field(default_factory=ProfileConfig)

    @property
    def name(self) -> str:
        """The host's configured name."""
        return self.config.name

    def resolve(self, path: str) -> str:
        """``path`` made absolute against the login user's home."""
        return path if path.startswith("/") else str(PurePosixPath(self.home) / path)

    @property
    def repo_dir(self) -> str:
        """The model checkout on the host."""
        return self.resolve(self.config.remote_repo_dir)

    @property
    def checkpoints_dir(self) -> str:
        """The checkpoints folder on the host."""
        return self.resolve(self.config.checkpoints_dir)

    @property
    def tool_dir(self) -> str:
        """The tool's own folder on the host."""
        return self.resolve(self.config.remote_tool_dir)

    async def script(self, script: str, *args: str) -> CommandResult:
        """Run a POSIX sh ``script`` with ``args`` as $1... (never interpolated)."""
        return await self.host.run(["sh", "-c", script, "sh", *args], check=False)


def prefixed(stdout: str) -> list[str]:
    """The values a check's script printed (lines after :data:`PREFIX`), in order."""
    return [line[len(PREFIX) :] for line in stdout.splitlines() if line.startswith(PREFIX)]


def quoted(path: str) -> str:
    """A path quoted for a fix command the user pastes into a shell."""
    return shlex.quote(path)
