"""Set-up faults of the simulated host, for the doctor's checks (``cosmos doctor``).

Each one breaks a single thing a real host can get wrong before its first run, and
:meth:`SetupFaults.repair` puts everything back: a test sees the check fail with its fix,
then pass once fixed.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from cosmos_tui.doctor.needs import CHECKOUT_REQUIREMENTS, all_checkpoint_files
from cosmos_tui.remote.discover import CHECKOUT_SCRIPT
from cosmos_tui.sandbox.gpus import GPU_NAME, MEMORY_TOTAL_MIB

if TYPE_CHECKING:
    from cosmos_tui.sandbox.host import Sandbox

# What the simulated image was built with; the simulated checkout says the same.
REQUIREMENTS = b"# SIMULATED GPU HOST: cosmos-transfer1 requirements_docker.txt\ntorch==2.7.1\n"
CHECKPOINT_BYTES = b"SIMULATED checkpoint\n"
SMALL_GPU = ("NVIDIA GeForce RTX 3060 (SIMULATED)", 12288.0, "8.6")
OLD_GPU = ("Tesla V100-SXM2-32GB (SIMULATED)", 32768.0, "7.0")
DF_SHIM = """#!/bin/sh
# df of the cosmos-tui sandbox (SIMULATED GPU HOST): a full disk (not /dev/shm, a
# filesystem of its own) when {flag} exists; a 64 MiB /dev/shm when {shm_flag} exists.
case "$*" in *"/dev/shm"*)
  if [ -f {shm_flag} ]; then
    echo "Filesystem     1024-blocks  Used Available Capacity Mounted on"
    echo "shm                  65536     0     65536       0% /dev/shm"
    exit 0
  fi
  exec {real_df} "$@" ;;
esac
if [ -f {flag} ]; then
  echo "Filesystem     1024-blocks      Used Available Capacity Mounted on"
  echo "/dev/simulated   104857600 104857600         0     100% /"
  exit 0
fi
exec {real_df} "$@"
"""


def lay_out_model(sandbox: Sandbox) -> None:
    """Write the checkout, the checkpoints, the image's files and the df shim."""
    repo = sandbox.home / "cosmos-transfer1"
    script = repo / CHECKOUT_SCRIPT
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(
        "# SIMULATED GPU HOST: the sandbox runs cosmos_standin.sh in place of this.\n",
        encoding="utf-8",
    )
    (repo / CHECKOUT_REQUIREMENTS).write_bytes(REQUIREMENTS)
    for relative in all_checkpoint_files():
        path = repo / "checkpoints" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(CHECKPOINT_BYTES)
    sandbox.runtime.image_files[sandbox.options.docker_image] = {"/requirements.txt": REQUIREMENTS}
    real_df = shutil.which("df") or "/bin/df"
    shim = sandbox.bin_dir / "df"
    shim.write_text(
        DF_SHIM.format(flag=_disk_flag(sandbox), shm_flag=_shm_flag(sandbox), real_df=real_df),
        encoding="utf-8",
    )
    shim.chmod(0o755)
    sandbox.runtime.smi_path = sandbox.bin_dir / "nvidia-smi"


def _disk_flag(sandbox: Sandbox) -> Path:
    return sandbox.root / "run" / "disk-full"


def _shm_flag(sandbox: Sandbox) -> Path:
    return sandbox.root / "run" / "small-shm"


def _switch(flag: Path, on: bool) -> None:
    """Create the flag file the df shim reads (``on``), or remove it."""
    if on:
        flag.parent.mkdir(parents=True, exist_ok=True)
        flag.write_text("on\n", encoding="utf-8")
    else:
        flag.unlink(missing_ok=True)


class SetupFaults:
    """The set-up faults of one sandbox (``sandbox.setup``)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    @property
    def checkpoints_dir(self) -> Path:
        """The simulated checkout's checkpoints folder."""
        return self._sandbox.home / "cosmos-transfer1" / "checkpoints"

    def no_nvidia_runtime(self, broken: bool = True) -> None:
        """Docker without the NVIDIA Container Toolkit: GPU requests fail."""
        self._sandbox.faults.no_nvidia_runtime = broken

    def remove_image(self) -> None:
        """The model image is not pulled (the simulated registry still has it)."""
        image = self._sandbox.options.docker_image
        images = self._sandbox.runtime.images
        while image in images:
            images.remove(image)

    def checkpoint(self, relative: str, state: str) -> None:
        """Make one checkpoint file ``missing``, ``empty`` or ``ok`` again."""
        path = self.checkpoints_dir / relative
        if state == "missing":
            path.unlink(missing_ok=True)
        elif state == "empty":
            path.write_bytes(b"")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(CHECKPOINT_BYTES)

    def checkout_mismatch(self, broken: bool = True) -> None:
        """A checkout newer than the image: its requirements differ from the image's."""
        path = self._sandbox.home / "cosmos-transfer1" / CHECKOUT_REQUIREMENTS
        path.write_bytes(REQUIREMENTS + (b"new-dependency==1.0\n" if broken else b""))

    def gpu(self, kind: str) -> None:
        """Swap the simulated cards: ``small`` (12 GB), ``old`` (Volta) or ``h100``."""
        gpus = self._sandbox.gpus
        name, memory, cap = {"small": SMALL_GPU, "old": OLD_GPU}.get(
            kind, (GPU_NAME, MEMORY_TOTAL_MIB, "9.0")
        )
        gpus.name, gpus.memory_total_mib, gpus.compute_cap = name, memory, cap

    def greeting(self, text: str = "Welcome to gpu-box! Last login: today\n") -> None:
        """The login shell prints ``text`` before every command ("" for quiet)."""
        self._sandbox.faults.greeting = text

    def small_shm(self, small: bool = True) -> None:
        """/dev/shm has only 64 MiB (a container host's default), as ``df`` says."""
        _switch(_shm_flag(self._sandbox), small)

    def slow_link(self, seconds: float = 0.8) -> None:
        """Every command starts ``seconds`` late (0: a near host again)."""
        self._sandbox.faults.command_delay_s = seconds

    def disk_full(self, full: bool = True) -> None:
        """The disk of the tool dir has no free space (``df`` says so)."""
        _switch(_disk_flag(self._sandbox), full)
