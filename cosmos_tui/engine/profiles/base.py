"""The profile seam: what each model family decides, and the registry that finds it.

A run names its family in ``run.profile``; everything that differs between families goes
through a :class:`ModelProfile`, found with :func:`profile_for`. The queue, the lifecycle
(upload, start, follow, diagnose, download), the dry run and the CLI call these methods
and never branch on the family themselves:

- ``preflight``: checks on the host before the upload (a token or a filled cache);
- ``check``: local validation when a run is created (upstream's rules and ranges), so a
  bad value is a clear error before anything is uploaded;
- ``wanted_roles``: which of the prompt's inputs are uploaded;
- ``build_spec``: the spec or sample JSON written into the run's folder;
- ``build_command``, ``mounts``, ``env``: the container's argv, binds and environment;
- ``progress_parser``: reads the family's log lines into phases and percent;
- ``has_output``: whether the files the model wrote are a result (a video or image).

Failure signatures are shared by every family in :mod:`cosmos_tui.engine.failures` (each
names its upstream source in docs/cosmos.md); a family adds its own remedies there.
Per-family options that the shared :class:`~cosmos_tui.domain.GenerationParams` fields do
not cover are stored in ``GenerationParams.options`` (the run's params JSON), so a new
family needs no schema change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from cosmos_tui.errors import ValidationError

if TYPE_CHECKING:
    from pathlib import Path

    from cosmos_tui.config import Config, HostConfig, ProfileConfig
    from cosmos_tui.domain import GenerationParams, Prompt, Run
    from cosmos_tui.engine.launch import RemoteLayout
    from cosmos_tui.engine.progress import ProgressParser
    from cosmos_tui.remote import RemoteHost


@dataclass(frozen=True)
class MountSpec:
    """A bind mount (host path -> container path).

    Attributes:
        source: The host path.
        target: Where it appears in the container.
        read_only: Mounted read-only.
        key: The host config key it comes from (named when the source is missing).

    """

    source: str
    target: str
    read_only: bool = False
    key: str | None = None


class ModelProfile(Protocol):
    """One model family (see the module docstring for when each method is called)."""

    name: str
    # The GenerationParams fields this family reads (a run form shows only these).
    shared_params: frozenset[str]

    def check(self, params: GenerationParams, prompt: Prompt | None) -> GenerationParams:
        """Return ``params`` normalised; raise ValidationError for what upstream refuses."""
        ...

    def wanted_roles(self, params: GenerationParams) -> set[str]:
        """Return the roles of the prompt's inputs this run sends."""
        ...

    def local_files(self, params: GenerationParams) -> list[Path]:
        """Return the files of this machine that checked ``params`` name (sent with the run).

        The run records their content when it is made (``GenerationParams.run_files``).
        """
        ...

    def build_spec(
        self, run: Run, prompt: Prompt | None, container_inputs: Mapping[str, str]
    ) -> dict[str, Any]:
        """Return the spec JSON; inputs are given by role as the container sees them."""
        ...

    def build_command(self, run: Run, settings: ProfileConfig) -> list[str]:
        """Return the container's argv."""
        ...

    def mounts(
        self, host: HostConfig, layout: RemoteLayout, settings: ProfileConfig
    ) -> list[MountSpec]:
        """Return the container's bind mounts (the run's own folders included)."""
        ...

    def env(
        self, host: HostConfig, settings: ProfileConfig, environ: Mapping[str, str]
    ) -> dict[str, str]:
        """Return the container's environment (secrets from ``environ``, never stored)."""
        ...

    async def preflight(
        self,
        run: Run,
        host: RemoteHost,
        layout: RemoteLayout,
        settings: ProfileConfig,
        environ: Mapping[str, str],
    ) -> None:
        """Refuse, before anything is uploaded, a run the host cannot serve."""
        ...

    def run_env(self, run: Run) -> dict[str, str]:
        """Return the variables one run adds to the container (none are secrets)."""
        ...

    def run_mounts(self, run: Run) -> list[MountSpec]:
        """Return the host folders one run adds to the container (checked, never made)."""
        ...

    def progress_parser(self) -> ProgressParser:
        """Return a fresh parser of this family's log lines."""
        ...

    def has_output(self, names: Iterable[str]) -> bool:
        """Return True when the downloaded file names include a result."""
        ...


def profile_names() -> tuple[str, ...]:
    """Return the families cosmos-tui can run."""
    return ("transfer1", "cosmos3", "transfer2.5")


def profile_for(name: str) -> ModelProfile:
    """Return the profile of a family by name.

    Raises:
        ValidationError: When no family has that name.
    """
    if name == "transfer1":
        # cycle: transfer1 imports engine.launch, which imports this module at its top
        from cosmos_tui.engine.profiles.transfer1 import Transfer1Profile

        return Transfer1Profile()
    if name == "cosmos3":
        # cycle: profiles.cosmos3 imports MountSpec from this module at its top
        from cosmos_tui.engine.profiles.cosmos3 import Cosmos3Profile

        return Cosmos3Profile()
    if name == "transfer2.5":
        # cycle: transfer25_profile imports MountSpec from this module at its top
        from cosmos_tui.engine.profiles.transfer25_profile import Transfer25Profile

        return Transfer25Profile()
    raise ValidationError(
        f"unknown profile {name!r}; use one of {', '.join(profile_names())}", field="profile"
    )


def settings_for(config: Config, name: str) -> ProfileConfig:
    """Return the ``[profiles.<name>]`` settings, or the family's defaults when unset."""
    # lazy: config (~10 ms) stays out of 'cosmos diagnose', which loads profiles.cosmos3
    # (and so this module) for its log parser; a caller holding a Config has loaded it
    from cosmos_tui.config import ProfileConfig

    # TOML table names cannot hold a bare dot: ``[profiles.transfer2_5]`` is Transfer2.5's.
    configured = config.profiles.get(name) or config.profiles.get(name.replace(".", "_"))
    if configured is not None:
        return configured
    if name == "cosmos3":
        # cycle: profiles.cosmos3 imports MountSpec from this module at its top
        from cosmos_tui.engine.profiles.cosmos3 import default_settings

        return default_settings()
    if name == "transfer2.5":
        # cycle: transfer25_profile imports MountSpec from this module at its top
        from cosmos_tui.engine.profiles.transfer25_profile import default_settings

        return default_settings()
    return config.profiles.get("transfer1") or ProfileConfig()
