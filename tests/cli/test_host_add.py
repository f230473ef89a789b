"""`cosmos host add|list|edit|remove` against the real sshd and dockerd on loopback, and the
simulated host; the config's comments survive every change."""

from __future__ import annotations

import os
import pwd
import tomllib
from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest
from click.testing import Result

from tests.fixtures.hosts import TEST_USER

pytestmark = pytest.mark.timeout(120)

COMMENTED = """\
# my cosmos config: keep this comment
[defaults]
num_steps = 20  # fewer steps for tests

[[hosts]]
# the old box
name = "old"
hostname = "old.example.org"
"""


def fingerprint(public_key_file: Path) -> str:
    return asyncssh.read_public_key(str(public_key_file)).get_fingerprint("sha256")


@pytest.fixture
def config_file(workspace: Path) -> Path:
    path = workspace / "config.toml"
    path.write_text(COMMENTED, encoding="utf-8")
    return path


@pytest.fixture
def fresh_known_hosts(tmp_path: Path) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text("")
    return path


@pytest.fixture
def model_checkout(remote_tool_dir: str) -> str:
    """A checkout folder the test user owns (no checkpoints: the doctor says so)."""
    user = pwd.getpwnam(TEST_USER)
    repo = Path(remote_tool_dir) / "cosmos-transfer1"
    script = repo / "cosmos_transfer1" / "diffusion" / "inference" / "transfer.py"
    script.parent.mkdir(parents=True)
    script.write_text("# checkout\n")
    for folder in (repo, *repo.rglob("*")):
        os.chown(folder, user.pw_uid, user.pw_gid)
    return str(repo)


def add_args(ssh_server, docker_daemon, busybox_image, known_hosts: Path, repo: str, tool: str):
    return [
        "host", "add", "gpu-box",
        "--hostname", "127.0.0.1", "--port", str(ssh_server.port), "--user", ssh_server.user,
        "--key", str(ssh_server.client_key), "--known-hosts", str(known_hosts),
        "--docker-socket", str(docker_daemon.socket_path), "--docker-image", busybox_image,
        "--remote-repo-dir", repo, "--remote-tool-dir", tool,
    ]  # fmt: skip


def test_host_add_with_flags_writes_a_working_entry_and_ends_with_the_doctor(
    cosmos: Callable[..., Result],
    config_file: Path,
    fresh_known_hosts: Path,
    ssh_server,
    docker_daemon,
    busybox_image,
    model_checkout,
    remote_tool_dir,
):
    args = add_args(
        ssh_server, docker_daemon, busybox_image, fresh_known_hosts, model_checkout,
        remote_tool_dir,
    )  # fmt: skip
    trusted = fingerprint(ssh_server.host_key_pub)
    result = cosmos(*args, "--yes", "--trust-fingerprint", trusted)
    out = result.stdout
    assert f"fingerprint: {trusted}" in out
    assert "trusted: recorded in" in out
    assert "docker: " in out and f"at {docker_daemon.socket_path} (via the socket)" in out
    assert "wrote host gpu-box" in out
    # the doctor ran at the end: SSH and Docker pass on the real servers, and the real
    # dockerd's missing NVIDIA runtime is a FAIL with its fix
    assert "[ok  ] SSH login and host key" in out
    assert "[ok  ] Docker reachable and permitted" in out
    assert "[FAIL] NVIDIA runtime: GPUs inside a container" in out
    assert "could not select device driver" in out and "nvidia-ctk" in out
    assert result.exit_code == 1  # the doctor found problems; the host is written anyway
    text = config_file.read_text()
    assert "# my cosmos config: keep this comment" in text
    assert "num_steps = 20  # fewer steps for tests" in text and "# the old box" in text
    assert "# added by 'cosmos host add'" in text
    entry = next(h for h in tomllib.loads(text)["hosts"] if h["name"] == "gpu-box")
    assert entry["port"] == ssh_server.port and entry["user"] == ssh_server.user
    assert entry["docker_socket"] == str(docker_daemon.socket_path)
    assert entry["remote_repo_dir"] == model_checkout
    assert entry["checkpoints_dir"] == f"{model_checkout}/checkpoints"
    assert "docker_sudo" not in entry
    assert trusted.split(":")[0] and fresh_known_hosts.read_text().count("\n") == 1
    # the entry works: the doctor of that host alone reaches it again
    again = cosmos("doctor", "gpu-box")
    assert "[ok  ] SSH login and host key" in again.stdout


def test_yes_alone_never_trusts_a_host_key(
    cosmos, config_file, fresh_known_hosts, ssh_server, docker_daemon, busybox_image,
    model_checkout, remote_tool_dir,
):  # fmt: skip
    args = add_args(
        ssh_server, docker_daemon, busybox_image, fresh_known_hosts, model_checkout,
        remote_tool_dir,
    )  # fmt: skip
    result = cosmos(*args, "--yes")
    assert result.exit_code == 1
    assert "--trust-fingerprint SHA256:" in result.stderr
    assert "--accept-new-host-key" in result.stderr
    assert config_file.read_text() == COMMENTED
    assert fresh_known_hosts.read_text() == ""


def test_a_wrong_fingerprint_writes_nothing(
    cosmos, config_file, fresh_known_hosts, ssh_server, docker_daemon, busybox_image,
    model_checkout, remote_tool_dir,
):  # fmt: skip
    args = add_args(
        ssh_server, docker_daemon, busybox_image, fresh_known_hosts, model_checkout,
        remote_tool_dir,
    )  # fmt: skip
    result = cosmos(*args, "--yes", "--trust-fingerprint", "SHA256:not-the-key")
    assert result.exit_code == 1
    assert "not SHA256:not-the-key" in result.stderr
    assert config_file.read_text() == COMMENTED
    assert fresh_known_hosts.read_text() == ""


def test_the_fingerprint_is_asked_and_a_no_writes_nothing(
    cosmos, config_file, fresh_known_hosts, ssh_server, docker_daemon, busybox_image,
    model_checkout, remote_tool_dir,
):  # fmt: skip
    args = add_args(
        ssh_server, docker_daemon, busybox_image, fresh_known_hosts, model_checkout,
        remote_tool_dir,
    )  # fmt: skip
    result = cosmos(*args, "--no-doctor", input="n\n")
    assert "Trust this key?" in result.stdout
    assert result.exit_code == 1 and "not trusted" in result.stderr
    assert config_file.read_text() == COMMENTED
    result = cosmos(*args, "--no-doctor", input="y\n")
    assert result.exit_code == 0, result.stderr
    assert "wrote host gpu-box" in result.stdout


def test_a_user_without_the_docker_socket_is_told_how_to_get_it(
    cosmos, config_file, fresh_known_hosts, ssh_server, busybox_image, model_checkout,
    remote_tool_dir, tmp_path,
):  # fmt: skip
    from tests.fixtures.hosts import _make_root, start_docker_daemon

    root = _make_root("cosmos-dockerd-root-")
    daemon = start_docker_daemon(root, group="root")
    try:
        args = add_args(
            ssh_server, daemon, busybox_image, fresh_known_hosts, model_checkout,
            remote_tool_dir,
        )  # fmt: skip
        trusted = fingerprint(ssh_server.host_key_pub)
        result = cosmos(*args, "--yes", "--trust-fingerprint", trusted)
    finally:
        daemon.stop()
    out = result.stdout
    assert "docker: not usable yet" in out
    assert f"sudo usermod -aG docker {TEST_USER}" in out
    assert "[FAIL] Docker reachable and permitted" in out
    assert result.exit_code == 1


def test_host_add_on_the_simulated_host_ends_with_a_passing_doctor(
    cosmos, config_file, tmp_path: Path
):
    from cosmos_tui.sandbox import SandboxOptions
    from cosmos_tui.sandbox.thread import SandboxThread

    known_hosts = tmp_path / "kh"
    known_hosts.write_text("")
    with SandboxThread(SandboxOptions(gpus=2, time_scale=0.05), tmp_path / "client") as box:
        host = box.host_config()
        result = cosmos(
            "host", "add", "sim", "--hostname", "127.0.0.1", "--port", str(host.port),
            "--user", host.user, "--key", host.identity_file, "--known-hosts", str(known_hosts),
            "--docker-socket", host.docker_socket, "--docker-image", host.docker_image,
            "--accept-new-host-key", "--yes",
        )  # fmt: skip
    out = result.stdout
    assert result.exit_code == 0, out + result.stderr
    assert "gpus: 2 (0: NVIDIA H100" in out
    assert "=> sim: ready" in out
    entry = next(h for h in tomllib.loads(config_file.read_text())["hosts"] if h["name"] == "sim")
    assert entry["remote_repo_dir"].endswith("cosmos-transfer1")


def test_list_edit_and_remove_keep_comments(cosmos, config_file):
    listed = cosmos("host", "list")
    assert "old  old.example.org" in listed.stdout
    edited = cosmos("host", "edit", "old", "--user", "me", "--port", "2222", "--docker-sudo")
    assert edited.exit_code == 0, edited.stderr
    text = config_file.read_text()
    assert "# the old box" in text and "num_steps = 20  # fewer steps for tests" in text
    entry = tomllib.loads(text)["hosts"][0]
    assert (entry["user"], entry["port"], entry["docker_sudo"]) == ("me", 2222, True)
    bad = cosmos("host", "edit", "old", "--hostname", " ")
    assert bad.exit_code == 1 and "hostname" in bad.stderr
    assert config_file.read_text() == text
    unset = cosmos("host", "edit", "old", "--unset", "port")
    assert unset.exit_code == 0 and "port" not in tomllib.loads(config_file.read_text())["hosts"][0]
    missing = cosmos("host", "edit", "nope", "--user", "x")
    assert missing.exit_code == 1 and "no host named 'nope'" in missing.stderr
    declined = cosmos("host", "remove", "old", input="n\n")
    assert declined.exit_code == 1 and "old.example.org" in config_file.read_text()
    removed = cosmos("host", "remove", "old", "--yes")
    assert removed.exit_code == 0
    text = config_file.read_text()
    assert "old.example.org" not in text and "# my cosmos config: keep this comment" in text
    assert "no hosts yet" in cosmos("host", "list").stdout


def test_bad_names_and_duplicates_are_refused(cosmos, config_file):
    bad = cosmos("host", "add", "../evil", "--hostname", "x", "--yes")
    assert bad.exit_code == 1 and "cannot be a host name" in bad.stderr
    dup = cosmos("host", "add", "old", "--yes")
    assert dup.exit_code == 1 and "exists already" in dup.stderr
    assert config_file.read_text() == COMMENTED


def test_an_ssh_config_alias_is_enough(
    cosmos, config_file, ssh_server, docker_daemon, busybox_image, model_checkout, tmp_path,
    monkeypatch,
):  # fmt: skip
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    known_hosts = home / ".ssh" / "known_hosts_gpu"
    (home / ".ssh" / "config").write_text(
        "Host gpu-alias\n"
        "  HostName 127.0.0.1\n"
        f"  Port {ssh_server.port}\n"
        f"  User {ssh_server.user}\n"
        f"  IdentityFile {ssh_server.client_key}\n"
        f"  UserKnownHostsFile {known_hosts}\n"
    )
    monkeypatch.setenv("HOME", str(home))
    result = cosmos(
        "host", "add", "gpu-alias", "--docker-socket", str(docker_daemon.socket_path),
        "--docker-image", busybox_image, "--remote-repo-dir", model_checkout,
        "--yes", "--accept-new-host-key", "--no-doctor",
    )  # fmt: skip
    assert result.exit_code == 0, result.stdout + result.stderr
    assert f"recorded in {known_hosts}" in result.stdout
    assert "docker: " in result.stdout and "(via the socket)" in result.stdout
    entry = next(
        h for h in tomllib.loads(config_file.read_text())["hosts"] if h["name"] == "gpu-alias"
    )
    # the alias is the hostname; port, user and key come from ~/.ssh/config
    assert entry["hostname"] == "gpu-alias"
    assert "port" not in entry and "user" not in entry and "identity_file" not in entry


def test_host_add_on_a_ready_real_host_ends_with_a_passing_doctor(
    cosmos, config_file, fresh_known_hosts, ssh_server, docker_daemon, build_image, fake_gpu,
    remote_tool_dir,
):  # fmt: skip
    # The real OpenSSH sshd and dockerd, set up as a ready host: an image built from
    # the checkout, every checkpoint file, an H100 with room. The real dockerd has no
    # NVIDIA runtime, so GPU requests are off (the doctor then skips that check alone).
    from tests.doctor.test_doctor_real import ready_checkout

    image, repo = ready_checkout(build_image, remote_tool_dir)
    fake_gpu.set_variant("1gpu")
    args = add_args(ssh_server, docker_daemon, image, fresh_known_hosts, str(repo), remote_tool_dir)
    result = cosmos(
        *args, "--no-gpu-request", "--yes", "--trust-fingerprint",
        fingerprint(ssh_server.host_key_pub),
    )  # fmt: skip
    out = result.stdout
    assert "wrote host gpu-box" in out
    assert "[FAIL]" not in out, out
    assert "[skip] NVIDIA runtime" in out and "gpu_request = false" in out
    assert "[ok  ] Checkpoints" in out and "[ok  ] Model checkout" in out, out
    assert result.exit_code == 0, out
    text = config_file.read_text()
    assert "# my cosmos config: keep this comment" in text and "# the old box" in text
    entry = next(h for h in tomllib.loads(text)["hosts"] if h["name"] == "gpu-box")
    assert entry["gpu_request"] is False and entry["docker_image"] == image
    again = cosmos("doctor", "gpu-box")
    assert again.exit_code == 0 and "[FAIL]" not in again.stdout


def test_interactive_add_offers_the_ssh_config_aliases_in_a_real_terminal(
    config_file, ssh_server, docker_daemon, busybox_image, model_checkout, remote_tool_dir,
    tmp_path, monkeypatch,
):  # fmt: skip
    # `cosmos host add` with no name, in a pseudo-terminal as a person runs it: the
    # aliases of ~/.ssh/config are offered by number, every question is asked, the key
    # is shown and trusted on "y", and the alias's HostName, Port, User and key apply.
    from tests.cli.test_tui_signals import COSMOS, Terminal

    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(
        "Host *\n  ServerAliveInterval 30\n"
        "Host bastion\n  HostName 192.0.2.1\n"
        f"Host gpu-box other-box\n  HostName 127.0.0.1\n  Port {ssh_server.port}\n"
        f"  User {ssh_server.user}\n  IdentityFile {ssh_server.client_key}\n"
    )
    monkeypatch.setenv("HOME", str(home))
    terminal = Terminal([
        str(COSMOS), "host", "add", "--docker-socket", str(docker_daemon.socket_path),
        "--docker-image", busybox_image, "--remote-repo-dir", model_checkout,
        "--remote-tool-dir", remote_tool_dir, "--no-doctor",
    ])  # fmt: skip

    def answer(question: str, text: str) -> None:
        seen = terminal.read_until(lambda: question.encode() in terminal.output, 30)
        assert seen, terminal.output.decode("utf-8", "replace")[-1500:]
        terminal.output = terminal.output.split(question.encode(), 1)[1]
        os.write(terminal.leader, text.encode() + b"\r")

    try:
        answer("Pick a number, or type a name", "9")  # not on the list: asked again
        answer("9 is not on the list: pick 1 to 3, or type a name", "2")
        answer("Hostname or address", "")
        answer("User (empty: from ~/.ssh/config)", "")
        answer("Port (empty: from ~/.ssh/config or 22)", "22x")  # asked again, not a crash
        answer("is not a port: give a number from 1 to 65535", "")
        answer("Key file (empty: agent/config)", "")
        answer("Trust this key?", "y")
        answer("cosmos-transfer1 checkout on the host", "")
        answer("Checkpoints folder on the host", "")
        assert terminal.wait(30) == 0, terminal.output.decode("utf-8", "replace")
    finally:
        terminal.close()
    assert b"wrote host gpu-box" in terminal.output
    entry = next(h for h in tomllib.loads(config_file.read_text())["hosts"]
                 if h["name"] == "gpu-box")  # fmt: skip
    assert entry["hostname"] == "gpu-box" and "port" not in entry  # from the alias
    assert "127.0.0.1" in (home / ".ssh" / "known_hosts").read_text()


async def test_the_hosts_screens_add_keeps_the_checkout_it_was_given(
    config_file, fresh_known_hosts, ssh_server, docker_daemon, busybox_image, model_checkout,
    remote_tool_dir,
):  # fmt: skip
    # The Hosts screen's real probe over the real sshd: a checkout given in the form
    # (without a checkpoints folder yet) gets <checkout>/checkpoints, never the
    # checkpoints of another checkout found in the user's home.
    from cosmos_tui.config import load_config
    from cosmos_tui.services.hosts import HostAdmin, SshProbe

    admin = HostAdmin(load_config(config_file), SshProbe())
    values = {
        "name": "gpu-box", "hostname": "127.0.0.1", "port": ssh_server.port,
        "user": ssh_server.user, "identity_file": str(ssh_server.client_key),
        "known_hosts": str(fresh_known_hosts), "docker_image": busybox_image,
        "docker_socket": str(docker_daemon.socket_path), "remote_repo_dir": model_checkout,
        "remote_tool_dir": remote_tool_dir,
    }  # fmt: skip
    info = await admin.host_key(values)
    assert info.fingerprint == fingerprint(ssh_server.host_key_pub) and not info.trusted
    await admin.trust(info)
    host, facts = await admin.add(values)
    assert facts.repo_dirs == (model_checkout,)
    assert host.remote_repo_dir == model_checkout
    assert host.checkpoints_dir == f"{model_checkout}/checkpoints"
    text = config_file.read_text()
    assert "# my cosmos config: keep this comment" in text
    assert f'checkpoints_dir = "{model_checkout}/checkpoints"' in text
