"""The NVML stand-in: GPUs Ray's dashboard agent reads on a machine without one.

Ray's agents read each node's GPUs through NVML (``libnvidia-ml.so.1``). On a machine
without a GPU, :func:`build_fake_nvml` compiles ``assets/fake_nvml.c`` (the C compiler
``./dev`` installs) into a folder, and :func:`nvml_env` is what a node's processes need
to load it in place of the real library: the GPUs are the lines of a file that a test
or the demo rewrites (utilization %, memory used MiB, memory total MiB, name).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from cosmos_tui.errors import ConfigError

LIBRARY = "libnvidia-ml.so.1"


def build_fake_nvml(folder: Path) -> Path:
    """Compile the stand-in into ``folder``; return the folder (for ``LD_LIBRARY_PATH``).

    Raises:
        ConfigError: No C compiler here, or it failed (its message is kept).

    """
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise ConfigError("the NVML stand-in needs a C compiler: install gcc (./dev does)")
    folder.mkdir(parents=True, exist_ok=True)
    source = resources.files("cosmos_tui.sandbox") / "assets" / "fake_nvml.c"
    with resources.as_file(source) as path:
        built = subprocess.run(
            [compiler, "-shared", "-fPIC", "-O2", "-o", str(folder / LIBRARY), str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
    if built.returncode != 0:
        raise ConfigError(f"could not build the NVML stand-in: {built.stderr.strip()[-500:]}")
    return folder


def write_gpus(path: Path, gpus: Sequence[tuple[int, int, int, str]]) -> None:
    """Set the GPUs the stand-in reports: (utilization %, used MiB, total MiB, name)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text("".join(f"{u} {used} {total} {name}\n" for u, used, total, name in gpus))
    temporary.replace(path)


def nvml_env(folder: Path, gpus_file: Path) -> dict[str, str]:
    """The environment a Ray node's processes need to read GPUs from the stand-in."""
    return {"LD_LIBRARY_PATH": str(folder), "COSMOS_FAKE_NVML": str(gpus_file)}


__all__ = ["LIBRARY", "build_fake_nvml", "nvml_env", "write_gpus"]
