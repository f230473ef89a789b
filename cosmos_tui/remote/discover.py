"""What ``cosmos host add`` finds out about a new host before it is written to the config.

Docker socket and access, GPUs, the model checkout and checkpoints. One shell script
per question; every value it prints carries a prefix and is read by it (a login shell
may print a greeting first). Paths come back from the host and are
treated as untrusted text: they are only shown, or written to the config after the user
(or a flag) chose them.
"""

from __future__ import annotations

from dataclasses import dataclass

from cosmos_tui.errors import CosmosError
from cosmos_tui.remote.docker import DockerClient
from cosmos_tui.remote.gpu import GpuState, query_gpus
from cosmos_tui.remote.host import RemoteHost

CHECKOUT_SCRIPT = "cosmos_transfer1/diffusion/inference/transfer.py"
"""A Transfer1 checkout's entry point (what marks a folder as one; the doctor checks it)."""

PREFIX = "cosmos-host:"
SOCKET_CANDIDATES = ("/var/run/docker.sock", "/run/docker.sock")
REPO_CANDIDATES = ("cosmos-transfer1", "src/cosmos-transfer1", "code/cosmos-transfer1",
                   "/opt/cosmos-transfer1", "/workspace/cosmos-transfer1")  # fmt: skip

# $1: an explicit socket ("" for none); then the candidates. Prints user=, home=, and
# per socket found: socket=<rw|ro> <path>; the first existing one is the answer.
_SOCKETS = (
    f'printf "{PREFIX}user=%s\\n" "$(id -un)"; '
    f'printf "{PREFIX}home=%s\\n" "$HOME"; '
    'first=$1; shift; rootless="${XDG_RUNTIME_DIR:-/run/user/$(id -u)}/docker.sock"; '
    'fromenv=""; case "${DOCKER_HOST:-}" in unix://*) fromenv="${DOCKER_HOST#unix://}" ;; esac; '
    'for s in "$first" "$fromenv" "$@" "$rootless"; do '
    '[ -n "$s" ] && [ -S "$s" ] || continue; '
    f'if [ -r "$s" ] && [ -w "$s" ]; then echo "{PREFIX}socket=rw $s"; '
    f'else echo "{PREFIX}socket=ro $s"; fi; done'
)
_FOLDERS = (
    'script=$1; shift; for d in "$@"; do '
    f'[ -f "$d/$script" ] && echo "{PREFIX}repo=$d"; '
    f'[ -d "$d/checkpoints" ] && echo "{PREFIX}checkpoints=$d/checkpoints"; done; exit 0'
)


@dataclass(frozen=True)
class DockerAccess:
    """Where the Docker socket is and how the login user reaches it.

    Attributes:
        socket: The socket's path on the host (None when none was found).
        sudo: Reach it through ``sudo -n docker`` (the user may not open it).
        version: The daemon's version when it answered.
        problem: Why Docker cannot be used yet, with what to do.
    """

    socket: str | None
    sudo: bool = False
    version: str | None = None
    problem: str | None = None


@dataclass(frozen=True)
class HostFacts:
    """What discovery found (for the user to confirm, then for the config)."""

    user: str
    home: str
    docker: DockerAccess
    gpus: tuple[str, ...]
    gpu_problem: str | None
    repo_dirs: tuple[str, ...]
    checkpoints_dirs: tuple[str, ...]


def _values(stdout: str, key: str) -> list[str]:
    head = f"{PREFIX}{key}="
    return [line[len(head) :] for line in stdout.splitlines() if line.startswith(head)]


async def _docker_access(host: RemoteHost, stdout: str, explicit: str | None) -> DockerAccess:
    sockets = _values(stdout, "socket")
    if not sockets:
        where = explicit or ", ".join(SOCKET_CANDIDATES)
        return DockerAccess(
            None,
            problem=f"no Docker socket at {where}: is Docker installed and running "
            "('sudo systemctl start docker')? Pass --docker-socket PATH if it is elsewhere",
        )
    mode, _, path = sockets[0].partition(" ")
    for sudo in (False, True) if mode == "rw" else (True,):
        client = DockerClient(host.ssh, path, sudo=sudo)
        try:
            version = await client.version()
        except CosmosError as exc:
            problem = exc.message
            continue
        finally:
            await client.close()
        return DockerAccess(path, sudo=sudo, version=version.version)
    user = _values(stdout, "user")[-1:] or ["USER"]
    return DockerAccess(
        path,
        sudo=False,
        problem=f"{problem} (add {user[0]} to the docker group: 'sudo usermod -aG docker "
        f"{user[0]}', or allow 'sudo -n docker')",
    )


async def discover(
    host: RemoteHost, docker_socket: str | None = None, repo_dir: str | None = None
) -> HostFacts:
    """Ask the (connected, trusted) host what ``cosmos host add`` needs to know.

    Raises:
        HostUnreachable: The connection failed.
    """
    result = await host.run(
        ["sh", "-c", _SOCKETS, "sh", docker_socket or "", *SOCKET_CANDIDATES], check=False
    )
    user = (_values(result.stdout, "user") or [""])[-1]
    home = (_values(result.stdout, "home") or [""])[-1]
    docker = await _docker_access(host, result.stdout, docker_socket)
    reading = await query_gpus(host.ssh)
    gpus = tuple(f"{s.index}: {s.name}" for s in reading.samples)
    gpu_problem = None if reading.state is GpuState.OK else (reading.reason or "no GPU")
    candidates = [repo_dir] if repo_dir else list(REPO_CANDIDATES)
    folders = await host.run(
        ["sh", "-c", _FOLDERS, "sh", CHECKOUT_SCRIPT, *candidates], check=False
    )
    return HostFacts(
        user=user,
        home=home,
        docker=docker,
        gpus=gpus,
        gpu_problem=gpu_problem,
        repo_dirs=tuple(_values(folders.stdout, "repo")),
        checkpoints_dirs=tuple(_values(folders.stdout, "checkpoints")),
    )
