"""The Hosts screen (``H``): list, add, edit, remove and doctor, as ``cosmos host ...`` and
``cosmos doctor`` do, over a real config file (comments kept) and a fake host probe.

The probe stands in only for the host's answers (its key, what discovery finds, the
doctor's report); the config file, known_hosts and the screen are real.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from cosmos_tui.config import Config, HostConfig
from cosmos_tui.doctor.model import CheckResult, DoctorReport, Outcome
from cosmos_tui.remote.discover import DockerAccess, HostFacts
from cosmos_tui.remote.hostkeys import HostKeyInfo
from cosmos_tui.services.hosts import HostAdmin
from cosmos_tui.ui.screens.confirm import ConfirmScreen
from tests.ui.conftest import Harness, plain, ready, settle

pytestmark = pytest.mark.timeout(60)

CONFIG_TEXT = """\
# my cosmos config: keep this comment
[[hosts]]
name = "gpu-a"  # the lab box
hostname = "gpu-a.example"
"""
FINGERPRINT = "SHA256:q2dZ4nT0bX0vPj0aW8N3tbmZx0Jk9y3o1u3b3x1a2c4"


class FakeProbe:
    """The host's answers: an untrusted (or changed) key, discovery facts, doctor reports."""

    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts
        self.changed = False
        self.asked: list[tuple[str, object]] = []
        self.broken: dict[str, str] = {"gpu-a": "image"}
        self.profiles: list[tuple[tuple[str, ...], str]] = []

    async def host_key(self, config: Config, host: HostConfig) -> HostKeyInfo:
        self.asked.append(("host_key", host.hostname))
        name = host.hostname if host.port in (None, 22) else f"[{host.hostname}]:{host.port}"
        return HostKeyInfo(
            host.hostname, host.port, FINGERPRINT, f"{name} ssh-ed25519 AAAAC3NzaFAKE",
            self.known_hosts, trusted=False, changed=self.changed,
        )  # fmt: skip

    async def discover(self, config: Config, host: HostConfig) -> HostFacts:
        self.asked.append(("discover", host.name))
        return HostFacts(
            "me", "/home/me", DockerAccess("/run/docker.sock", sudo=True, version="27.1"),
            ("0: NVIDIA H100 80GB HBM3",), None, ("/opt/cosmos-transfer1",),
            ("/opt/cosmos-transfer1/checkpoints",),
        )  # fmt: skip

    async def doctor(
        self, config: Config, names: Sequence[str], profile: str, only: frozenset[str] | None
    ) -> list[DoctorReport]:
        self.asked.append(("doctor", tuple(names), only))
        self.profiles.append((tuple(names), profile))
        reports = []
        for name in names:
            config.host(name)  # the host must be in the file as written
            results = [CheckResult("ssh", "SSH login and host key", Outcome.PASS, "ok")]
            if name in self.broken:
                results.append(
                    CheckResult(
                        "image", "Model image present", Outcome.FAIL, "not pulled",
                        f"docker pull nvcr.io/nvidia/cosmos/cosmos-transfer1:latest on {name}",
                    )
                )  # fmt: skip
            reports.append(DoctorReport(name, profile, tuple(results)))
        return reports


@pytest.fixture
async def hosts(tmp_path: Path) -> AsyncIterator[tuple[Harness, Pilot, FakeProbe, Path]]:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG_TEXT)
    h = Harness(tmp_path)
    h.config = dataclasses.replace(h.config, source=path)
    h.app.config = h.config
    probe = FakeProbe(tmp_path / "known_hosts")
    async with h.app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(h, pilot)
        h.services.host_admin = HostAdmin(h.config, probe)
        await pilot.press("H")
        await settle(pilot)
        yield h, pilot, probe, path


def table(h: Harness) -> DataTable:
    return h.app.screen.query_one("#hosts-table", DataTable)


def rows(h: Harness) -> dict[str, list[str]]:
    t = table(h)
    return {str(key.value): [str(c) for c in t.get_row(key)] for key in t.rows}


def hosts_in(path: Path) -> dict[str, dict]:
    return {e["name"]: e for e in tomllib.loads(path.read_text()).get("hosts", [])}


async def fill(pilot: Pilot, values: dict[str, str]) -> None:
    screen = pilot.app.screen
    for field, value in values.items():
        screen.query_one(f"#host-{field}", Input).value = value
    await pilot.press("ctrl+s")
    await settle(pilot)


def notes(h: Harness, title: str) -> list[str]:
    return [n.message for n in h.app._notifications if n.title == title]


async def test_h_lists_the_configured_hosts(hosts) -> None:
    h, pilot, _probe, _path = hosts
    assert type(h.app.screen).__name__ == "HostsScreen"
    listed = rows(h)
    assert list(listed) == ["gpu-a"]
    assert "gpu-a.example" in listed["gpu-a"][1]
    assert "not checked" in listed["gpu-a"][-1]
    await pilot.press("escape")
    await settle(pilot)
    assert h.app.screen is h.app.main_screen


async def test_add_asks_before_trusting_the_key_then_writes_and_runs_the_doctor(hosts) -> None:
    h, pilot, probe, path = hosts
    await pilot.press("a")
    await settle(pilot)
    await fill(pilot, {"name": "gpu-b", "hostname": "10.0.0.7", "port": "2222", "user": "me"})
    assert isinstance(h.app.screen, ConfirmScreen)
    assert FINGERPRINT in h.app.screen.question and "[10.0.0.7]:2222" in h.app.screen.question
    assert "gpu-b" not in hosts_in(path)  # nothing written before the answer
    await pilot.press("y")
    await settle(pilot)
    written = hosts_in(path)["gpu-b"]
    assert written["hostname"] == "10.0.0.7" and written["port"] == 2222
    assert written["user"] == "me"
    # What discovery found fills what the form left out.
    assert written["docker_socket"] == "/run/docker.sock" and written["docker_sudo"] is True
    assert written["remote_repo_dir"] == "/opt/cosmos-transfer1"
    assert written["checkpoints_dir"] == "/opt/cosmos-transfer1/checkpoints"
    text = path.read_text()
    assert "# my cosmos config: keep this comment" in text and "# the lab box" in text
    assert "[10.0.0.7]:2222 ssh-ed25519 AAAAC3NzaFAKE" in (probe.known_hosts).read_text()
    # The doctor ran on the new host at the end, and its verdict is listed.
    assert ("doctor", ("gpu-b",), None) in probe.asked
    assert "ready" in rows(h)["gpu-b"][-1]
    report = plain(h.app.screen.query_one("#host-report"))
    assert "gpu-b" in report and "ready" in report


async def test_add_with_the_key_refused_writes_nothing(hosts) -> None:
    h, pilot, probe, path = hosts
    await pilot.press("a")
    await settle(pilot)
    await fill(pilot, {"name": "gpu-b", "hostname": "10.0.0.7"})
    await pilot.press("n")
    await settle(pilot)
    assert "gpu-b" not in hosts_in(path)
    assert not probe.known_hosts.exists()
    assert ("discover", "gpu-b") not in probe.asked
    assert any("not trusted" in m for m in notes(h, "Host not added"))


async def test_add_of_a_host_whose_key_changed_is_refused_with_the_fix(hosts) -> None:
    h, pilot, probe, path = hosts
    probe.changed = True
    await pilot.press("a")
    await settle(pilot)
    await fill(pilot, {"name": "gpu-b", "hostname": "10.0.0.7"})
    assert not isinstance(h.app.screen, ConfirmScreen)
    assert "gpu-b" not in hosts_in(path)
    messages = notes(h, "Host not added")
    assert messages and "CHANGED" in messages[0] and "ssh-keygen -R 10.0.0.7" in messages[0]


async def test_bad_values_are_refused_in_the_form(hosts) -> None:
    h, pilot, probe, path = hosts
    await pilot.press("a")
    await settle(pilot)
    await fill(pilot, {"name": "gpu b!", "hostname": "x"})
    assert type(h.app.screen).__name__ == "HostForm"
    assert "cannot be a host name" in plain(h.app.screen.query_one("#host-error"))
    await fill(pilot, {"name": "gpu-a", "hostname": "x"})
    assert "exists already" in plain(h.app.screen.query_one("#host-error"))
    await fill(pilot, {"name": "gpu-c", "hostname": "x", "port": "99999"})
    assert "port must be a number" in plain(h.app.screen.query_one("#host-error"))
    assert not [a for a in probe.asked if a[0] != "doctor"]  # the host was never asked
    await pilot.press("escape")
    await settle(pilot)
    assert type(h.app.screen).__name__ == "HostsScreen"
    assert list(hosts_in(path)) == ["gpu-a"]


async def test_edit_changes_the_entry_and_keeps_the_comments(hosts) -> None:
    h, pilot, _probe, path = hosts
    await pilot.press("e")
    await settle(pilot)
    form = h.app.screen
    assert form.query_one("#host-name", Input).disabled
    assert form.query_one("#host-hostname", Input).value == "gpu-a.example"
    await fill(pilot, {"user": "lab", "port": "2200"})
    entry = hosts_in(path)["gpu-a"]
    assert entry["user"] == "lab" and entry["port"] == 2200
    assert "# the lab box" in path.read_text()
    assert "lab@gpu-a.example:2200" in rows(h)["gpu-a"][1]


async def test_remove_asks_then_takes_the_host_out(hosts) -> None:
    h, pilot, _probe, path = hosts
    await pilot.press("d")
    await settle(pilot)
    assert isinstance(h.app.screen, ConfirmScreen) and "gpu-a" in h.app.screen.question
    await pilot.press("n")
    await settle(pilot)
    assert "gpu-a" in hosts_in(path)
    await pilot.press("d")
    await settle(pilot)
    await pilot.press("y")
    await settle(pilot)
    assert hosts_in(path) == {}
    assert "# my cosmos config: keep this comment" in path.read_text()
    assert rows(h) == {}


async def test_doctor_shows_each_failure_with_its_fix(hosts) -> None:
    h, pilot, probe, _path = hosts
    await pilot.press("D")
    await settle(pilot)
    assert ("doctor", ("gpu-a",), None) in probe.asked
    report = plain(h.app.screen.query_one("#host-report"))
    assert "[FAIL] Model image present: not pulled" in report
    assert "fix: docker pull nvcr.io/nvidia/cosmos/cosmos-transfer1:latest on gpu-a" in report
    assert "1 problem" in rows(h)["gpu-a"][-1]


async def test_a_host_whose_doctor_found_a_problem_shows_it_in_the_gpus_pane(hosts) -> None:
    h, pilot, _probe, _path = hosts
    await pilot.press("D")
    await settle(pilot)
    await pilot.press("escape")
    await settle(pilot)
    main = h.app.main_screen
    card = main.gpus.card("gpu-a")
    assert card is not None
    card.redraw(h.clock.now)
    text = plain(card)
    assert "doctor: 1 problem(s): image" in text and "D: report" in text
    # D in the GPUs pane opens the report of the host with the problem.
    main.gpus.query_one("#gpu-cards").focus()  # where tab puts the focus in the pane
    await pilot.press("D")
    await settle(pilot)
    assert type(h.app.screen).__name__ == "HostsScreen"
    report = plain(h.app.screen.query_one("#host-report"))
    assert "[FAIL] Model image present" in report and "fix: docker pull" in report


async def test_the_quick_checks_run_on_every_host_once_the_app_is_up(tmp_path: Path) -> None:
    from cosmos_tui.doctor.runner import CHEAP_CHECKS

    path = tmp_path / "config.toml"
    path.write_text(CONFIG_TEXT + '\n[[hosts]]\nname = "gpu-b"\nhostname = "gpu-b.example"\n')
    h = Harness(tmp_path, hosts=("gpu-a", "gpu-b"))
    h.config = dataclasses.replace(h.config, source=path)
    h.app.config = h.config
    probe = FakeProbe(tmp_path / "known_hosts")
    async with h.app.run_test(size=(120, 40), notifications=True) as pilot:
        while "services" not in h.holder:
            await pilot.pause()
        h.services.host_admin = HostAdmin(h.config, probe)
        await ready(h, pilot)
        for _ in range(100):
            if h.app.main_screen.doctor_reports:
                break
            await pilot.pause(0.05)
        await settle(pilot)
        assert probe.asked == [("doctor", ("gpu-a", "gpu-b"), CHEAP_CHECKS)]
        main = h.app.main_screen
        for name in ("gpu-a", "gpu-b"):
            card = main.gpus.card(name)
            assert card is not None
            card.redraw(h.clock.now)
            shown = "doctor: 1 problem(s)" in plain(card)
            assert shown == (name == "gpu-a")  # a host that passed shows nothing extra


async def test_the_quick_checks_use_the_model_of_each_hosts_newest_run(tmp_path: Path) -> None:
    from cosmos_tui.domain import GenerationParams, RunState, RunType
    from cosmos_tui.store.repositories import Store

    path = tmp_path / "config.toml"
    path.write_text(CONFIG_TEXT + '\n[[hosts]]\nname = "gpu-b"\nhostname = "gpu-b.example"\n')
    h = Harness(tmp_path, hosts=("gpu-a", "gpu-b"))
    h.config = dataclasses.replace(h.config, source=path)
    h.app.config = h.config
    async with Store.open(h.config.db_path, clock=h.clock) as store:
        for profile in ("transfer1", "cosmos3"):  # gpu-a's newest run is a Cosmos 3 one
            h.clock.advance(5)
            run = await store.add_run(None, GenerationParams(), RunType.TRANSFER, profile=profile)
            await store.transition(run.id, RunState.UPLOADING, "test", host="gpu-a", gpus=(0,))
            await store.transition(run.id, RunState.FAILED, "test")
    probe = FakeProbe(tmp_path / "known_hosts")
    async with h.app.run_test(size=(120, 40), notifications=True) as pilot:
        while "services" not in h.holder:
            await pilot.pause()
        h.services.host_admin = HostAdmin(h.config, probe)
        await ready(h, pilot)
        for _ in range(100):
            if len(h.app.main_screen.doctor_reports) == 2:
                break
            await pilot.pause(0.05)
        await settle(pilot)
    assert sorted(probe.profiles) == [(("gpu-a",), "cosmos3"), (("gpu-b",), "transfer1")]
