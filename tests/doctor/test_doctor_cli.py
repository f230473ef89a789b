"""`cosmos doctor` on the demo's simulated host: JSON, exit codes, fixes, --fix with progress."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cosmos_tui.cli import cli
from cosmos_tui.cli.demo import prepare_workspace
from cosmos_tui.sandbox import SandboxOptions
from cosmos_tui.sandbox.thread import SandboxThread
from cosmos_tui.sandbox.workspace import DemoWorkspace

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[SandboxThread, Path]]:
    space = DemoWorkspace(tmp_path / "ws")
    with SandboxThread(SandboxOptions(gpus=2, time_scale=0.05), space.ssh_dir) as sandbox:
        config = prepare_workspace(space, sandbox)
        assert config.source is not None
        yield sandbox, config.source


def doctor(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), "doctor", *args], env={})
    return result.exit_code, result.stdout, result.stderr


def test_doctor_json_on_the_demo_host_passes_every_check(demo):
    _sandbox, config = demo
    code, out, _err = doctor(config, "--json")
    assert code == 0, out
    (report,) = json.loads(out)
    assert report["host"] == "simulated-gpu-host" and report["ok"] is True
    assert {c["outcome"] for c in report["checks"]} == {"pass"}
    assert len(report["checks"]) == 13


def test_doctor_names_the_fix_and_exits_1(demo):
    sandbox, config = demo

    async def no_runtime(box):
        box.setup.no_nvidia_runtime(True)

    sandbox.call(no_runtime)
    code, out, _err = doctor(config)
    assert code == 1
    assert "[FAIL] NVIDIA runtime: GPUs inside a container" in out
    assert "fix: install the NVIDIA Container Toolkit" in out
    assert "1 problem(s)" in out
    code, out, _err = doctor(config, "--json")
    (report,) = json.loads(out)
    failed = [c for c in report["checks"] if c["outcome"] == "fail"]
    assert [c["check"] for c in failed] == ["gpu_container"]
    assert "nvidia-ctk" in failed[0]["fix"]


def test_doctor_fix_pulls_a_missing_image_with_a_progress_bar(demo):
    sandbox, config = demo

    async def remove(box):
        box.setup.remove_image()

    sandbox.call(remove)
    code, out, _err = doctor(config)
    assert code == 1 and "cosmos doctor simulated-gpu-host --fix" in out
    code, out, err = doctor(config, "--fix")
    assert code == 0, out
    assert "(pulled now)" in out
    assert "pulling on simulated-gpu-host: [" in err and "100%" in err


def test_doctor_unknown_host_and_profile_are_clear_errors(demo):
    _sandbox, config = demo
    code, _out, err = doctor(config, "nope")
    assert code == 1 and "no host named 'nope'" in err
    code, _out, err = doctor(config, "--profile", "cosmos9")
    assert code == 1 and "no profile named 'cosmos9'" in err


@pytest.mark.parametrize(
    ("profile", "model", "memory"),
    [
        ("cosmos3", "Cosmos3-Nano", "no documented floor per GPU for cosmos3"),
        ("transfer2.5", "Cosmos-Transfer2.5-2B", None),
    ],
)
def test_doctor_for_a_hub_family_checks_its_checkout_cache_and_token(
    demo, profile, model, memory, monkeypatch
):
    # The demo host has no Transfer1 base model here: a hub family never needs it. Its
    # own needs are a checkout for the container's install step (Cosmos 3's image holds
    # only the virtualenv), the host's Hugging Face cache and a token for the first
    # download (the demo's cache already holds the weights).
    monkeypatch.delenv("HF_TOKEN", raising=False)  # the cache is what lets it pass
    sandbox, config = demo

    async def no_checkpoint(box):
        box.setup.checkpoint("nvidia/Cosmos-Transfer1-7B/base_model.pt", "missing")

    sandbox.call(no_checkpoint)
    code, out, _err = doctor(config, "--json", "--profile", profile, "--fix")
    (report,) = json.loads(out)
    checks = {c["check"]: c for c in report["checks"]}
    for check in ("checkout", "checkpoints", "hf_token"):
        assert checks[check]["outcome"] == "pass", checks[check]
    if profile == "cosmos3":
        assert "cosmos-framework checkout" in checks["checkout"]["detail"]
    else:
        assert "the image's own" in checks["checkout"]["detail"]
    assert f"holds nvidia/{model}" in checks["checkpoints"]["detail"]
    assert f"holds nvidia/{model}" in checks["hf_token"]["detail"]
    assert checks["gpu_arch"]["outcome"] == "skip"
    if memory:
        assert checks["gpu_memory"]["outcome"] == "pass"
        assert memory in checks["gpu_memory"]["detail"]
    else:  # Transfer2.5 needs about 65 GB on one GPU; the demo's GPUs have 80 free
        assert checks["gpu_memory"]["outcome"] == "pass", checks["gpu_memory"]
        assert "2 of 2 GPUs fit" in checks["gpu_memory"]["detail"]
    assert code == 0 and report["ok"] is True, out
    if profile == "transfer2.5":  # a 48 GB card is below its floor

        async def smaller(box):
            box.setup.gpu("small")

        sandbox.call(smaller)
        small = json.loads(doctor(config, "--json", "--profile", profile)[1])[0]
        memory = {c["check"]: c for c in small["checks"]}["gpu_memory"]
        assert memory["outcome"] == "fail" and "65 GiB transfer2.5 needs" in memory["detail"]

        async def back(box):
            box.setup.gpu("h100")

        sandbox.call(back)
    code, out, _err = doctor(config, "--json")  # Transfer1 still sees the missing file
    (report,) = json.loads(out)
    assert code == 1
    assert [c["check"] for c in report["checks"] if c["outcome"] == "fail"] == ["checkpoints"]


def test_doctor_checks_every_host_at_once_and_a_down_one_fails_alone(demo):
    import socket

    _sandbox, config = demo
    with socket.socket() as probe:  # a port nothing listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config.write_text(
        config.read_text()
        + f'\n[[hosts]]\nname = "down-box"\nhostname = "127.0.0.1"\nport = {port}\n'
    )
    code, out, _err = doctor(config, "--json")
    assert code == 1
    reports = {report["host"]: report for report in json.loads(out)}
    assert set(reports) == {"simulated-gpu-host", "down-box"}
    assert reports["simulated-gpu-host"]["ok"] is True
    down = {c["check"]: c for c in reports["down-box"]["checks"]}
    assert down["ssh"]["outcome"] == "fail" and "refused" in down["ssh"]["detail"]
    assert {c["outcome"] for name, c in down.items() if name != "ssh"} == {"skip"}


def test_doctor_says_what_a_cosmos3_host_lacks(demo, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    sandbox, config = demo

    async def other_checkout_and_empty_cache(box):
        (box.home / "cosmos-framework" / "pyproject.toml").write_text(
            '[project]\nname = "something-else"\n'
        )
        hub = box.home / ".cache" / "huggingface" / "hub"
        shutil.rmtree(hub / "models--nvidia--Cosmos3-Nano")

    sandbox.call(other_checkout_and_empty_cache)
    code, out, _err = doctor(config, "--json", "--profile", "cosmos3")
    (report,) = json.loads(out)
    checks = {c["check"]: c for c in report["checks"]}
    assert code == 1 and report["ok"] is False
    checkout = checks["checkout"]
    assert checkout["outcome"] == "fail" and "not a cosmos-framework checkout" in checkout["detail"]
    assert "git clone https://github.com/NVIDIA/cosmos-framework" in checkout["fix"]
    cache = checks["checkpoints"]
    assert (
        cache["outcome"] == "pass" and "first run downloads nvidia/Cosmos3-Nano" in cache["detail"]
    )
    token = checks["hf_token"]
    assert token["outcome"] == "fail" and "no Hugging Face token" in token["detail"]
    assert "HF_TOKEN" in token["fix"] and "[profiles.cosmos3]" in token["fix"]

    async def no_checkout(box):
        shutil.rmtree(box.home / "cosmos-framework")

    async def single_quoted_name(box):
        (box.home / "cosmos-framework" / "pyproject.toml").write_text(
            "[tool.x]\nname = 'not-this-one'\n[project]\n  name = 'cosmos_framework'\n"
        )

    sandbox.call(single_quoted_name)
    (report,) = json.loads(doctor(config, "--json", "--profile", "cosmos3")[1])
    checkout = {c["check"]: c for c in report["checks"]}["checkout"]
    assert checkout["outcome"] == "pass", checkout  # the [project] table's, normalised

    sandbox.call(no_checkout)
    (report,) = json.loads(doctor(config, "--json", "--profile", "cosmos3")[1])
    checkout = {c["check"]: c for c in report["checks"]}["checkout"]
    assert checkout["outcome"] == "fail" and "no cosmos-framework checkout at" in checkout["detail"]


def test_the_quick_checks_before_a_hub_run_leave_the_cache_and_token_to_the_run(demo, monkeypatch):
    # A Cosmos 3 run of a local checkpoint folder, or of a cached size other than the
    # default, needs no token: the run's own check knows its model, the doctor's default
    # does not. So `cosmos inference` does not ask the cache or token of a hub family.
    from cosmos_tui.cli.preflight import refuse_unless_ready
    from cosmos_tui.config import load_config

    monkeypatch.delenv("HF_TOKEN", raising=False)
    sandbox, config = demo

    async def empty_cache(box):
        shutil.rmtree(box.home / ".cache" / "huggingface" / "hub" / "models--nvidia--Cosmos3-Nano")

    sandbox.call(empty_cache)
    refuse_unless_ready(load_config(config), None, "cosmos3")  # no SystemExit
    code, out, _err = doctor(config, "--json", "--profile", "cosmos3")
    token = {c["check"]: c for c in json.loads(out)[0]["checks"]}["hf_token"]
    assert code == 1 and token["outcome"] == "fail"  # the doctor itself still says so
