"""The doctor against the real OpenSSH sshd and dockerd on loopback: each check that these
servers can show fails with its fix and passes once fixed."""

from __future__ import annotations

import dataclasses
import os
import pwd
import subprocess
import tempfile
from pathlib import Path

import pytest

from cosmos_tui.config import Config
from cosmos_tui.doctor.model import Outcome
from cosmos_tui.doctor.needs import all_checkpoint_files
from cosmos_tui.doctor.runner import run_doctor
from tests.fixtures.hosts import TEST_USER

pytestmark = pytest.mark.timeout(120)

REQUIREMENTS = "torch==2.7.1\nnumpy==1.26.4\n"
ONLY = frozenset({"ssh", "greeting", "docker", "image", "checkout", "checkpoints"})


def give_to_test_user(*paths: Path) -> None:
    user = pwd.getpwnam(TEST_USER)
    for path in paths:
        os.chown(path, user.pw_uid, user.pw_gid)


def ready_checkout(build_image, tool_dir: str) -> tuple[str, Path]:
    """A checkout under ``tool_dir`` with every checkpoint, and an image built from it."""
    image = build_image("cosmos-test/model:req", files={"/requirements.txt": REQUIREMENTS})
    repo = Path(tool_dir) / "cosmos-transfer1"
    script = repo / "cosmos_transfer1" / "diffusion" / "inference" / "transfer.py"
    script.parent.mkdir(parents=True)
    script.write_text("# checkout\n")
    (repo / "requirements_docker.txt").write_text(REQUIREMENTS)
    for relative in all_checkpoint_files():
        path = repo / "checkpoints" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"weights")
    give_to_test_user(repo, *repo.rglob("*"))
    return image, repo


@pytest.fixture
def model_host(host_config, build_image, remote_tool_dir):
    """The test host with a checkout, its checkpoints and an image built from the checkout."""
    image, repo = ready_checkout(build_image, remote_tool_dir)
    return dataclasses.replace(
        host_config,
        docker_image=image,
        remote_repo_dir=str(repo),
        checkpoints_dir=str(repo / "checkpoints"),
    )


async def doctor(config):
    from cosmos_tui.remote import RemoteHost

    host = RemoteHost(config)
    try:
        return await run_doctor(host, Config(hosts=[config]), only=ONLY, environ={})
    finally:
        await host.close()


async def test_a_ready_host_passes_and_each_piece_fails_alone(model_host):
    report = await doctor(model_host)
    assert {r.outcome for r in report.results} == {Outcome.PASS}, report.failures
    repo = Path(model_host.remote_repo_dir)

    # a checkout newer than the image
    (repo / "requirements_docker.txt").write_text(REQUIREMENTS + "new-dependency==1.0\n")
    report = await doctor(model_host)
    assert [r.check for r in report.failures] == ["checkout"]
    assert "new-dependency==1.0" in report.result("checkout").detail
    assert "docker build" in (report.result("checkout").fix or "")
    (repo / "requirements_docker.txt").write_text(REQUIREMENTS)

    # an interrupted download left an empty file
    base = repo / "checkpoints" / "nvidia/Cosmos-Transfer1-7B/base_model.pt"
    base.write_bytes(b"")
    report = await doctor(model_host)
    assert [r.check for r in report.failures] == ["checkpoints"]
    assert "download_checkpoints.py" in (report.result("checkpoints").fix or "")
    base.write_bytes(b"weights")

    # a checkpoint file that was never downloaded
    base.unlink()
    report = await doctor(model_host)
    assert [r.check for r in report.failures] == ["checkpoints"]
    assert "base_model.pt" in report.result("checkpoints").detail
    assert "download_checkpoints.py" in (report.result("checkpoints").fix or "")
    base.write_bytes(b"weights")

    # an image that is not on the host
    report = await doctor(dataclasses.replace(model_host, docker_image="cosmos-test/none:1"))
    assert [r.check for r in report.failures] == ["image"]
    assert "docker pull cosmos-test/none:1" in (report.result("image").fix or "")
    assert report.result("checkout").outcome is Outcome.SKIP

    assert (await doctor(model_host)).ok


async def test_a_greeting_from_ssh_rc_fails_the_quiet_shell_check(model_host):
    home = Path(pwd.getpwnam(TEST_USER).pw_dir)
    ssh_dir = home / ".ssh"
    created = not ssh_dir.exists()
    ssh_dir.mkdir(exist_ok=True)
    rc = ssh_dir / "rc"
    rc.write_text("echo 'Welcome to the GPU box'\n")
    give_to_test_user(ssh_dir, rc)
    try:
        report = await doctor(model_host)
    finally:
        rc.unlink()
        if created:
            ssh_dir.rmdir()
    assert [r.check for r in report.failures] == ["greeting"]
    assert "Welcome to the GPU box" in report.result("greeting").detail
    assert (await doctor(model_host)).ok


async def test_a_small_and_an_old_gpu_fail_their_checks_alone(model_host, fake_gpu):
    gpu_checks = ONLY | {"gpu_memory", "gpu_arch"}

    async def gpu_doctor():
        from cosmos_tui.remote import RemoteHost

        host = RemoteHost(model_host)
        try:
            return await run_doctor(host, Config(hosts=[model_host]), only=gpu_checks, environ={})
        finally:
            await host.close()

    fake_gpu.set_variant("1gpu")
    assert (await gpu_doctor()).ok
    fake_gpu.set_variant("small")
    report = await gpu_doctor()
    assert [r.check for r in report.failures] == ["gpu_memory"]
    assert "12 GiB free" in report.result("gpu_memory").detail
    assert "at least 28 GB" in (report.result("gpu_memory").fix or "")
    fake_gpu.set_variant("old")
    report = await gpu_doctor()
    assert [r.check for r in report.failures] == ["gpu_arch"]
    assert "Tesla V100-SXM2-32GB is compute capability 7.0" in report.result("gpu_arch").detail
    assert "Ampere" in (report.result("gpu_arch").fix or "")
    fake_gpu.set_variant("1gpu")
    assert (await gpu_doctor()).ok


async def test_a_full_disk_under_the_tool_dir_fails_the_disk_check(model_host):
    tool_dir = Path(tempfile.mkdtemp(prefix="cosmos-small-disk-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(tool_dir)], check=True)
    try:
        give_to_test_user(tool_dir)
        config = dataclasses.replace(model_host, remote_tool_dir=str(tool_dir))
        from cosmos_tui.remote import RemoteHost

        async def disk_doctor():
            host = RemoteHost(config)
            try:
                return await run_doctor(
                    host, Config(hosts=[config]), only=frozenset({"ssh", "disk"}), environ={}
                )
            finally:
                await host.close()

        report = await disk_doctor()
        assert [r.check for r in report.failures] == ["disk"]
        assert "16 MiB free" in report.result("disk").detail
        assert "cosmos host edit testhost --remote-tool-dir" in (report.result("disk").fix or "")
        subprocess.run(["mount", "-o", "remount,size=6g", str(tool_dir)], check=True)
        assert (await disk_doctor()).ok
    finally:
        subprocess.run(["umount", str(tool_dir)], check=False)
        tool_dir.rmdir()


async def test_docker_permission_fails_until_the_user_may_use_the_socket(model_host, docker_daemon):
    socket = Path(docker_daemon.socket_path)
    group = socket.stat().st_gid
    os.chown(socket, -1, 0)  # the socket's group is root's: the test user is kept off
    try:
        report = await doctor(model_host)
        assert [r.check for r in report.failures] == ["docker"]
        assert "sudo usermod -aG docker" in (report.result("docker").fix or "")
        assert report.result("image").outcome is Outcome.SKIP
    finally:
        os.chown(socket, -1, group)
    assert (await doctor(model_host)).ok
