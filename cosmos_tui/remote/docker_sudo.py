"""The check behind Docker's sudo mode: which docker CLI ``sudo -n`` runs, and whether it may.

The check runs one ``sh -c`` on the host. Its output can carry lines that are not its own:
sshd runs ``~/.ssh/rc`` (or ``/etc/ssh/sshrc``) before the command, with the command's
stdout, and bash, when it is the login shell, sources ``~/.bashrc`` for ssh commands; any
of them may print a greeting. So every value the check prints has a fixed prefix and is
read by that prefix, never by its line number, and the docker CLI it reports is used only
when it is an absolute path: it becomes the program that ``sudo -n`` runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from cosmos_tui.errors import DockerError
from cosmos_tui.remote.ssh import CommandResult

# Prints the login user and the docker CLI it finds, then asks the daemon for its version
# through sudo. The CLI is called by its full path so that sudo runs the file that the
# sudoers hint names, whatever sudo's secure_path finds first. $1: -H value, $2: format.
SUDO_CHECK = (
    'docker=$(command -v docker) || docker=""; '
    "printf 'cosmos-user=%s\\n' \"$(id -un)\"; "
    "printf 'cosmos-docker=%s\\n' \"$docker\"; "
    'case "$docker" in /*) ;; *) exit 5 ;; esac; '
    'exec sudo -n "$docker" -H "$1" version --format "$2"'
)
# The client's version is printed even when the daemon does not answer: its presence tells
# "sudo ran docker" from "sudo refused".
SUDO_VERSION_FORMAT = "cosmos-version={{.Client.Version}}{{if .Server}} {{.Server.Version}}{{end}}"
_USER, _DOCKER, _VERSION = "cosmos-user", "cosmos-docker", "cosmos-version"


@dataclass(frozen=True)
class SudoCheck:
    """What the check printed; None for a value it did not print.

    Attributes:
        user: The login user (``id -un``).
        docker: What ``command -v docker`` found ("" when nothing).
        version: The docker client's version (and the daemon's), printed once sudo ran it.
    """

    user: str | None
    docker: str | None
    version: str | None


def parse_sudo_check(stdout: str) -> SudoCheck:
    """Read the check's values from its ``stdout``, by prefix; other lines are ignored.

    A value printed more than once counts by its last line: greetings come before the
    command's own output.
    """
    values: dict[str, str] = {}
    for line in stdout.splitlines():
        key, equals, value = line.partition("=")
        if equals and key in (_USER, _DOCKER, _VERSION):
            values[key] = value
    return SudoCheck(values.get(_USER), values.get(_DOCKER), values.get(_VERSION))


def sudo_docker_cli(
    result: CommandResult, *, host: str, socket_path: str, login_user: str | None
) -> str:
    """The docker CLI to run as ``sudo -n DOCKER`` on ``host``, from the check's result.

    Args:
        result: The check's result (greetings from the host's startup files included).
        host: The host's name (for the messages).
        socket_path: The docker socket the check asked.
        login_user: The configured login user, named when the check could not say it.

    Returns:
        The absolute path of the docker CLI on the login user's PATH.

    Raises:
        DockerError: The check's output lacks its values; the user's PATH has no docker
            CLI (or it is not a file's absolute path); sudo refuses to run it without a
            password; the daemon does not answer (transient).
    """
    check = parse_sudo_check(result.stdout)
    detail = result.stderr.strip()[-200:]
    if check.user is None or check.docker is None:
        shown = (result.stdout.strip()[-200:] or detail or "nothing").replace("\n", " | ")
        raise DockerError(
            f"docker_sudo is set for {host} but its check printed no {_USER}=/{_DOCKER}= "
            f"lines (exit status {result.exit_status}; output: {shown}): does the login "
            "shell there run commands given over ssh (no ForceCommand or restricted shell)?"
        )
    user = check.user or login_user or "USER"
    if not check.docker.startswith("/"):
        found = f"'command -v docker' gives {check.docker!r}" if check.docker else "none"
        raise DockerError(
            f"docker_sudo is set for {host} but the PATH of {user} there has no docker CLI "
            f"({found}; a file's absolute path is needed, as 'sudo -n' runs it): install "
            "the Docker CLI there or put its directory on the PATH of ssh commands"
        )
    if result.exit_status == 0:
        return check.docker
    if check.version:
        raise DockerError(
            f"the Docker daemon on {host} does not answer at {socket_path} "
            f"(sudo -n docker: {detail}); is it running ('systemctl start docker')? If "
            "it listens elsewhere, set docker_socket for this host",
            transient=True,
        )
    raise DockerError(
        f"docker_sudo is set for {host} but 'sudo -n {check.docker}' fails "
        f"there ({detail}): allow it without a password, e.g. "
        f"'{user} ALL=(root) NOPASSWD: {check.docker}' in /etc/sudoers.d/cosmos, or "
        f"add {user} to the docker group and unset docker_sudo"
    )
