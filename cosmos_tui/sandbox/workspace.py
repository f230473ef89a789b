"""The demo's workspace: a config that points at the sandbox, sample prompts and videos.

Layout of a workspace::

    config.toml          one [[hosts]] entry: the SIMULATED GPU HOST on 127.0.0.1
    ssh/id_ed25519       the client key the sandbox authorises (fresh each start)
    ssh/known_hosts      trusts the sandbox's fresh host key (nothing is auto-accepted)
    inputs/<name>/       sample video folders (color.mp4, sometimes depth.mp4)
    inputs/rolling-ball/ a rendered image sequence (PNG passes) for `cosmos prepare`
    data/                the database and every run's outputs
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from cosmos_tui.config import HostConfig

if TYPE_CHECKING:
    from cosmos_tui.domain import Prompt
    from cosmos_tui.services.workbench import Workbench

CONFIG_HEADER = (
    "# cosmos demo: every run goes to a SIMULATED GPU HOST on 127.0.0.1 (the cosmos-tui\n"
    "# sandbox). No GPU is used; the model is a stand-in that replays Cosmos-Transfer1's\n"
    "# logs and returns the input video. This file is rewritten at each `cosmos demo`.\n"
)


# The rendered image sequence (color, depth, seg, edge, vis PNG frames) that shows
# `cosmos prepare` end to end; made by cosmos_tui.sandbox.render, also in inputs/.
SAMPLE_SEQUENCE = "rolling-ball"


@dataclass(frozen=True)
class SamplePrompt:
    """A prompt the demo creates, with the sample videos it uses.

    Attributes:
        name: Short name (also the folder under ``inputs/``).
        text: The prompt.
        videos: File name in the folder -> asset shipped in ``cosmos_tui/sandbox/assets``.

    """

    name: str
    text: str
    videos: tuple[tuple[str, str], ...]


SAMPLE_PROMPTS: tuple[SamplePrompt, ...] = (
    SamplePrompt(
        "rainy-street",
        "A rainy city street at dusk, neon signs reflecting on the wet asphalt, cars "
        "passing slowly, cinematic lighting, photorealistic.",
        (("color.mp4", "street.mp4"),),
    ),
    SamplePrompt(
        "warehouse-robot",
        "A robot arm in a bright warehouse picks up a cardboard box and places it on a "
        "conveyor belt; realistic materials, steady camera.",
        (("color.mp4", "robot.mp4"),),
    ),
    SamplePrompt(
        "forest-road",
        "A dirt road through a dense pine forest in morning fog, sunlight breaking through "
        "the trees, a car drives towards the camera.",
        (("color.mp4", "forest.mp4"), ("depth.mp4", "forest_depth.mp4")),
    ),
)


@dataclass(frozen=True)
class DemoWorkspace:
    """Paths of a demo workspace."""

    root: Path

    @property
    def config_path(self) -> Path:
        """The demo's config file."""
        return self.root / "config.toml"

    @property
    def ssh_dir(self) -> Path:
        """Client key and known_hosts."""
        return self.root / "ssh"

    @property
    def inputs_dir(self) -> Path:
        """Sample video folders."""
        return self.root / "inputs"

    @property
    def data_dir(self) -> Path:
        """Database and outputs."""
        return self.root / "data"

    def video_dir(self, sample: SamplePrompt) -> Path:
        """The folder of one sample's videos."""
        return self.inputs_dir / sample.name

    def copy_samples(self) -> None:
        """Copy the sample videos shipped in the package into ``inputs/``."""
        assets = resources.files("cosmos_tui.sandbox") / "assets"
        for sample in SAMPLE_PROMPTS:
            folder = self.video_dir(sample)
            folder.mkdir(parents=True, exist_ok=True)
            for name, asset in sample.videos:
                target = folder / name
                if not target.exists():
                    with resources.as_file(assets / asset) as source:
                        shutil.copyfile(source, target)

    def render_sample_sequence(self) -> Path:
        """Render the sample image sequence into ``inputs/rolling-ball`` unless it is there.

        Rendered into a hidden sibling and renamed, so nobody sees half a sequence.
        """
        # lazy: numpy and PIL (~120 ms); 'cosmos demo' imports this module before the sandbox
        # starts, and renders the sequence in the background
        from cosmos_tui.sandbox.render import write_sequence

        target = self.inputs_dir / SAMPLE_SEQUENCE
        if target.exists():
            return target
        partial = Path(tempfile.mkdtemp(prefix=f".{SAMPLE_SEQUENCE}.", dir=self.inputs_dir))
        try:
            write_sequence(partial)
            partial.rename(target)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return target

    def write_config(self, host: HostConfig, gpus: int) -> Path:
        """Write ``config.toml`` with one host, the sandbox, and return its path."""
        # lazy: tomlkit (~8 ms); 'cosmos demo' imports this module before the sandbox starts
        import tomlkit

        document = tomlkit.document()
        document.add(tomlkit.comment("SIMULATED GPU HOST: see the note at the top."))
        entry = tomlkit.table()
        for key in (
            "name",
            "hostname",
            "port",
            "user",
            "identity_file",
            "known_hosts",
            "docker_image",
            "docker_socket",
            "gpu_request",
        ):
            entry[key] = getattr(host, key)
        entry["gpu_limit"] = gpus
        hosts = tomlkit.aot()
        hosts.append(entry)
        document["hosts"] = hosts
        paths = tomlkit.table()
        paths["data_dir"] = str(self.data_dir)
        paths["inputs_dir"] = str(self.inputs_dir)
        document["paths"] = paths
        timeouts = tomlkit.table()
        timeouts["connect"] = 5.0
        timeouts["cancel_grace"] = 3.0
        document["timeouts"] = timeouts
        retry = tomlkit.table()
        retry["max_attempts"] = 5
        retry["backoff_base"] = 0.5
        retry["backoff_max"] = 5.0
        document["retry"] = retry
        profiles = tomlkit.table()
        cosmos3 = tomlkit.table()
        cosmos3["repo_dir"] = "cosmos-framework"  # the simulated host's checkout
        profiles["cosmos3"] = cosmos3
        document["profiles"] = profiles
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(CONFIG_HEADER + tomlkit.dumps(document), encoding="utf-8")
        return self.config_path


async def add_sample_prompts(bench: Workbench, space: DemoWorkspace) -> list[Prompt]:
    """Create the sample prompts unless the workspace already has prompts."""
    existing = await bench.list_prompts(limit=1)
    if existing.total:
        return []
    created = []
    for sample in SAMPLE_PROMPTS:
        created.append(
            await bench.create_prompt(sample.text, space.video_dir(sample), name=sample.name)
        )
    return created
