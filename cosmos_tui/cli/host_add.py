"""``cosmos host add|list|edit|remove``: hosts in the config, set up from what the host says.

``add`` asks the host before anything is written: its key (shown, and trusted only when
the user says so, or a flag names the fingerprint), the Docker socket and whether the
login user may use it (directly or through ``sudo -n``), the GPUs, the model checkout and
checkpoints; it writes the entry with the config's comments kept and ends with the doctor.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cosmos_tui.cli.context import CliContext, echo, echo_json, fail, guard
from cosmos_tui.config import HostConfig, RetryConfig, default_config_path
from cosmos_tui.config_hosts import (
    NAME_PATTERN,
    add_host,
    edit_host,
    remove_host,
    ssh_config_aliases,
)
from cosmos_tui.remote.discover import discover
from cosmos_tui.remote.host import RemoteHost
from cosmos_tui.remote.hostkeys import trust_host_key
from cosmos_tui.safe_text import one_line

if TYPE_CHECKING:
    from cosmos_tui.config import Config
    from cosmos_tui.remote.discover import HostFacts
    from cosmos_tui.remote.hostkeys import HostKeyInfo

pass_cli = click.make_pass_decorator(CliContext)

# (flags, field, type, help); a None default means "not given".
HOST_OPTIONS: tuple[tuple[tuple[str, ...], str, Any, str], ...] = (
    (("--hostname",), "hostname", str, "Host name, address or ~/.ssh/config alias."),
    (("--port",), "port", click.IntRange(1, 65535), "SSH port."),
    (("--user",), "user", str, "Login user."),
    (("--identity-file", "--key"), "identity_file", str, "Private key (else agent/config)."),
    (("--known-hosts",), "known_hosts", str, "known_hosts file (else ~/.ssh/known_hosts)."),
    (("--docker-socket",), "docker_socket", str, "Docker socket on the host."),
    (("--docker-sudo/--no-docker-sudo",), "docker_sudo", bool, "Reach Docker via sudo -n."),
    (("--remote-repo-dir",), "remote_repo_dir", str, "cosmos-transfer1 checkout on the host."),
    (("--checkpoints-dir",), "checkpoints_dir", str, "Checkpoints folder on the host."),
    (("--remote-tool-dir",), "remote_tool_dir", str, "The tool's folder on the host."),
    (("--docker-image",), "docker_image", str, "Image that runs the model."),
    (("--gpu-request/--no-gpu-request",), "gpu_request", bool, "Ask Docker for GPUs."),
    (("--gpu-limit",), "gpu_limit", click.IntRange(1), "Use at most this many GPUs."),
    (("--max-runs",), "max_runs", click.IntRange(1), "At most this many runs at once."),
    (("--shm-size",), "shm_size", str, "Shared memory of a container, e.g. 8g."),
    (("--hf-cache-dir",), "hf_cache_dir", str, "Hugging Face cache on the host."),
)


def host_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add one option per host field (the option's value is None when not given)."""
    for flags, field, kind, text in reversed(HOST_OPTIONS):
        if kind is bool:
            command = click.option(*flags, field, default=None, help=text)(command)
        else:
            command = click.option(*flags, field, type=kind, default=None, help=text)(command)
    return command


def _config_path(cli: CliContext) -> Path:
    return cli.config_path or default_config_path()


def _check_name(name: str) -> None:
    if not NAME_PATTERN.match(name):
        fail(
            f"'{name}' cannot be a host name: use letters, digits, '.', '_' or '-' "
            "(at most 63, starting with a letter or digit)"
        )


def _connect_host(config: Config, host: HostConfig) -> RemoteHost:
    return RemoteHost(host, config.timeouts, RetryConfig(max_attempts=1))


def _ask(text: str, default: str | None, interactive: bool) -> str | None:
    if not interactive:
        return default
    answer = click.prompt(text, default=default or "", show_default=bool(default))
    return str(answer).strip() or None


def _ask_port() -> int | None:
    """Ask for the SSH port until the answer is empty or a port number."""
    while True:
        answer = _ask("Port (empty: from ~/.ssh/config or 22)", None, True)
        if answer is None:
            return None
        if answer.isdecimal() and 1 <= int(answer) <= 65535:
            return int(answer)
        click.echo(f"'{one_line(answer)}' is not a port: give a number from 1 to 65535")


def _pick_alias(interactive: bool) -> str | None:
    """Offer the ``~/.ssh/config`` aliases by number; the answer may also be any name."""
    aliases = ssh_config_aliases(Path.home() / ".ssh" / "config")
    if not interactive or not aliases:
        return None
    click.echo("Hosts in ~/.ssh/config:")
    for number, alias in enumerate(aliases, 1):
        click.echo(f"  {number}) {one_line(alias)}")
    while True:
        answer = _ask("Pick a number, or type a name", None, True)
        if not (answer and answer.isdecimal()):
            return answer
        if 1 <= int(answer) <= len(aliases):
            return aliases[int(answer) - 1]
        click.echo(f"{answer} is not on the list: pick 1 to {len(aliases)}, or type a name")


def show_untrusted_key(info: Any, name: str) -> None:
    """Refuse a changed host key (with the command that clears it) or show the new one.

    Shared by ``cosmos host trust`` and ``cosmos host add``; host-supplied text goes
    through the escaping ``echo``.
    """
    if info.changed:
        fail(
            f"the host key of {name} CHANGED (now {info.fingerprint}); if the host was "
            f"reinstalled, remove the old entry ('ssh-keygen -R {info.pattern} -f "
            f"{info.known_hosts_path}') and run this again"
        )
    echo(f"host {name} ({info.pattern}) presents a {info.key_type} key")
    echo(f"fingerprint: {info.fingerprint}")


def _decide_trust(
    info: HostKeyInfo, name: str, fingerprint: str | None, accept: bool, yes: bool
) -> None:
    """Record the host key only when the user (or a flag naming it) says so."""
    if info.trusted:
        click.echo(f"host key of {name}: already trusted")
        return
    show_untrusted_key(info, name)
    if fingerprint is not None:
        if fingerprint.strip() != info.fingerprint:
            fail(
                f"the host presents {info.fingerprint}, not {fingerprint.strip()}: nothing "
                "was trusted or written (check the fingerprint with the host's admin)"
            )
        agreed = True
    elif accept:
        agreed = True
    elif yes:
        fail(
            "--yes trusts no host key by itself: add --trust-fingerprint "
            f"{info.fingerprint} (after checking it) or --accept-new-host-key"
        )
    else:
        try:
            agreed = click.confirm("Trust this key?", default=False)
        except click.Abort:
            click.echo(err=True)
            agreed = False
    if not agreed:
        fail("the host key was not trusted; nothing was written")
    guard(lambda: trust_host_key(info))
    click.echo(f"trusted: recorded in {info.known_hosts_path}")


def _show_facts(facts: HostFacts) -> None:
    docker = facts.docker
    if docker.version:
        via = "sudo -n docker" if docker.sudo else "the socket"
        click.echo(f"docker: {docker.version} at {docker.socket} (via {via})")
    else:
        click.echo(f"docker: not usable yet: {docker.problem}")
    if facts.gpus:
        click.echo(f"gpus: {len(facts.gpus)} ({'; '.join(facts.gpus)})")
    else:
        click.echo(f"gpus: none found ({facts.gpu_problem})")


@click.command("add")
@click.argument("name", required=False)
@host_options
@click.option("--trust-fingerprint", metavar="SHA256:...", help="Trust the host key if it is this.")
@click.option(
    "--accept-new-host-key", is_flag=True, help="Trust a host key seen for the first time."
)
@click.option("--yes", "-y", is_flag=True, help="Ask nothing (host key flags still needed).")
@click.option("--no-doctor", is_flag=True, help="Do not run the doctor at the end.")
@click.option(
    "--profile", default="transfer1", show_default=True, help="Profile the doctor checks."
)
@pass_cli
def add(
    cli: CliContext,
    /,
    name: str | None,
    trust_fingerprint: str | None,
    accept_new_host_key: bool,
    yes: bool,
    no_doctor: bool,
    profile: str,
    **fields: Any,
) -> None:
    """Add a GPU host: check its key, find Docker, GPUs and the model, write it, run the doctor.

    NAME is what the CLI and UI call the host; it is also the hostname (or ~/.ssh/config
    alias, whose HostName, User, Port, IdentityFile and ProxyJump apply) unless
    --hostname is given. In a terminal without --yes, missing values are asked for.
    Exit status: 0 when the host is written and the doctor passes, 1 otherwise.
    """
    interactive = not yes and sys.stdin.isatty()
    if not name:
        name = _pick_alias(interactive) or _ask(
            "Name of the host (an ~/.ssh/config alias works)", None, interactive
        )
        if not name:
            fail("give the host a NAME: cosmos host add NAME [--hostname HOST ...]")
    _check_name(name)
    config = cli.load_config()
    if any(h.name == name for h in config.hosts):
        fail(f"a host named '{name}' exists already: 'cosmos host edit {name} ...' changes it")
    fields["hostname"] = fields["hostname"] or _ask("Hostname or address", name, interactive)
    if interactive:
        fields["user"] = fields["user"] or _ask("User (empty: from ~/.ssh/config)", None, True)
        fields["port"] = fields["port"] or _ask_port()
        key = fields["identity_file"] or _ask("Key file (empty: agent/config)", None, True)
        fields["identity_file"] = key
    host = HostConfig(name=name, **{k: v for k, v in fields.items() if v is not None})

    async def key_of() -> HostKeyInfo:
        remote = _connect_host(config, host)
        try:
            return await remote.host_key()
        finally:
            await remote.close()

    info = guard(lambda: asyncio.run(key_of()))
    _decide_trust(info, name, trust_fingerprint, accept_new_host_key, yes)

    async def ask_host() -> HostFacts:
        remote = _connect_host(config, host)
        try:
            return await discover(remote, fields["docker_socket"], fields["remote_repo_dir"])
        finally:
            await remote.close()

    facts = guard(lambda: asyncio.run(ask_host()))
    _show_facts(facts)
    values = dict(fields)
    values["name"] = name
    if facts.docker.socket and not fields["docker_socket"]:
        values["docker_socket"] = facts.docker.socket
    if fields["docker_sudo"] is None and facts.docker.sudo:
        values["docker_sudo"] = True
    values["remote_repo_dir"] = _ask(
        "cosmos-transfer1 checkout on the host",
        fields["remote_repo_dir"] or next(iter(facts.repo_dirs), host.remote_repo_dir),
        interactive,
    )
    values["checkpoints_dir"] = _ask(
        "Checkpoints folder on the host",
        fields["checkpoints_dir"]
        or next(iter(facts.checkpoints_dirs), f"{values['remote_repo_dir']}/checkpoints"),
        interactive,
    )
    click.echo(
        f"model checkout: {values['remote_repo_dir']}; checkpoints: {values['checkpoints_dir']}"
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    path = _config_path(cli)
    written = guard(lambda: add_host(path, values, comment=f"added by 'cosmos host add' {stamp}"))
    click.echo(f"wrote host {name} to {path}")
    if no_doctor:
        return
    # lazy: the doctor's checks (~30 ms) are for 'host add'; 'cosmos status' imports this
    from cosmos_tui.cli.doctor_cmd import doctor_reports, report_text

    (report,) = doctor_reports(written, [name], profile)
    click.echo(report_text(report))
    if not report.ok:
        click.echo(f"the host is added; fix the above, then: cosmos doctor {name}", err=True)
        sys.exit(1)


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_cli
def list_hosts(cli: CliContext, as_json: bool) -> None:
    """List the configured hosts."""
    config = cli.load_config()
    if as_json:
        echo_json([dataclasses.asdict(h) for h in config.hosts])
        return
    if not config.hosts:
        click.echo("no hosts yet: cosmos host add NAME --hostname HOST")
        return
    for h in config.hosts:
        target = (
            f"{h.user + '@' if h.user else ''}{h.hostname}{':' + str(h.port) if h.port else ''}"
        )
        sudo = " (docker via sudo)" if h.docker_sudo else ""
        click.echo(f"{h.name}  {target}  {h.docker_image}{sudo}")


@click.command("remove")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Remove without asking.")
@pass_cli
def remove(cli: CliContext, name: str, yes: bool) -> None:
    """Remove a host from the config (its runs and the host's files stay)."""
    config = cli.load_config()
    guard(lambda: config.host(name))
    if not yes:
        try:
            agreed = click.confirm(f"Remove host {name} from {_config_path(cli)}?", default=False)
        except click.Abort:
            agreed = False
        if not agreed:
            fail("not removed")
    guard(lambda: remove_host(_config_path(cli), name))
    click.echo(f"removed host {name}")


@click.command("edit")
@click.argument("name")
@host_options
@click.option("--unset", multiple=True, metavar="KEY", help="Remove KEY (back to its default).")
@pass_cli
def edit(cli: CliContext, /, name: str, unset: tuple[str, ...], **fields: Any) -> None:
    """Change a host's settings, e.g. 'cosmos host edit gpu1 --user me --docker-sudo'.

    The result is validated before it is written; comments in the file are kept.
    """
    changes: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    for key in unset:
        changes[key.replace("-", "_")] = None
    if not changes:
        fail("nothing to change: give options such as --user NAME or --port N (see --help)")
    cli.load_config()
    guard(lambda: edit_host(_config_path(cli), name, changes))
    click.echo(f"updated host {name}: {', '.join(sorted(changes))}")


def register(group: click.Group) -> None:
    """Add these commands to the ``cosmos host`` group."""
    for command in (add, list_hosts, remove, edit):
        group.add_command(command)
