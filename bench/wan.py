"""The remote layer over a shaped wide-area path, each figure beside OpenSSH in the same run.

A throwaway sshd (and dockerd) on loopback sits behind the shaping proxy
(cosmos_tui/sandbox/netshape.py: one-way delay per direction, a bandwidth cap). For each
round-trip time and bandwidth asked for it measures, interleaved with its anchors:

- upload and download of one file (``--mb``): ours (as a run uploads: the prompt's
  recorded sha256 known, host-verified; download with sha256) vs ``scp`` and ``rsync``;
- a prompt's 5 control videos (``--video-mb`` each): ours as a run uploads them vs one
  ``scp`` and one ``rsync`` command for all five, and the five back as a run's outputs
  come down (side by side, sha256 verified) vs one ``scp`` and one ``rsync``;
- re-upload of the 5 unchanged inputs: seconds, and the same in round trips;
- ``cosmos status`` (the CLI, a new process) for 4 hosts behind the link: total time,
  vs one ``ssh host true`` by hand;
- the proxy's own CPU time against the bytes it moved;
- a run's overhead (claim to container started, exit to outputs verified) vs a plain
  ``ssh host docker run --rm`` by hand, and log lag p50/p99 at 5,000 lines/s vs
  ``ssh host docker logs -f`` by hand (bench/_wan_run.py).

Usage: .venv/bin/python bench/wan.py [--rtt-ms 20,50,150] [--mbit 100,1000] [--mb 1024]
       [--video-mb 40] [--json] [--run-only | --status-only | --transfers-only]
Needs root (the sshd and dockerd of the tests), ``scp`` and ``rsync``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cpu import CpuMeter
from _ssh_host import host_config, load_average, openssh_options, ssh_server
from _wan_run import build_image, measure_run, print_run

from cosmos_tui.remote import RemoteHost
from cosmos_tui.sandbox.netshape import LinkShape, ShapedLink
from tests.fixtures.hosts import TEST_USER, SshServer, _make_root, start_docker_daemon

VIDEOS = ("color", "depth", "seg", "edge", "vis")


def make_file(path: Path, megabytes: int) -> None:
    """Write ``megabytes`` MiB of random bytes (incompressible, like video)."""
    with path.open("wb") as handle:
        for _ in range(megabytes):
            handle.write(os.urandom(1024 * 1024))


def sha256_of(path: Path) -> str:
    """The file's sha256, as a prompt records it when it is created."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()


def timed_command(argv: list[str]) -> float:
    """Run a command to completion; return its wall time."""
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


class Anchors:
    """OpenSSH's own tools over the same shaped port."""

    def __init__(self, server: SshServer, port: int) -> None:
        self.options = openssh_options(server, port)
        self.target = f"{server.user}@127.0.0.1"
        self.rsync_shell = shlex_join(["ssh", *self.options])

    def scp(self, sources: list[str], dest: str) -> float:
        return timed_command(["scp", "-q", *self.options, *sources, dest])

    def rsync(self, sources: list[str], dest: str) -> float:
        return timed_command(
            ["rsync", "-q", "--whole-file", "-e", self.rsync_shell, *sources, dest]
        )

    def ssh_true(self) -> float:
        return timed_command(["ssh", *self.options, self.target, "true"])

    def remote(self, path: str) -> str:
        return f"{self.target}:{path}"


def shlex_join(argv: list[str]) -> str:
    """``shlex.join`` (imported late to keep the header light)."""
    import shlex

    return shlex.join(argv)


async def measure_link(
    server: SshServer,
    link: ShapedLink,
    work: Path,
    tool_dir: str,
    big: Path,
    videos: list[Path],
    rounds: int,
) -> tuple[dict[str, list[float]], dict[str, dict[str, float]]]:
    """Interleave ours and the anchors for ``rounds`` rounds.

    Returns every sample's seconds, and for each 1 GiB transfer (ours and the anchors)
    where the CPU went in its fastest round (bench/_cpu.py).
    """
    anchors = Anchors(server, link.port)
    figures: dict[str, list[float]] = {}
    meter = CpuMeter(lambda: float(link.stats()["cpu_s"]))
    cpu: dict[str, list[dict[str, float]]] = {}

    def record(key: str, seconds: float) -> None:
        figures.setdefault(key, []).append(seconds)

    async def record_cpu(key: str, step: Callable[..., Awaitable[float]], *args: Any) -> None:
        """Record ``step(*args)``'s seconds and where the machine's CPU went during it."""
        before = meter.read()
        record(key, await step(*args))
        cpu.setdefault(key, []).append(meter.spent(before, meter.read()))

    recorded = {path: (sha256_of(path), path.stat().st_size) for path in [big, *videos]}
    host = RemoteHost(host_config(server, port=link.port, remote_tool_dir=tool_dir))

    async def clear(*names: str) -> None:
        await host.run(["rm", "-rf", *(f"{tool_dir}/{name}" for name in names)])
        await host.run(["mkdir", "-p", f"{tool_dir}/scp", f"{tool_dir}/rsync"])

    async def ours_upload(paths: list[Path]) -> float:
        started = time.perf_counter()
        # As engine/lifecycle.py uploads a run's inputs: all at once, sha256 recorded.
        await host.upload_inputs([(path, *recorded[path]) for path in paths])
        return time.perf_counter() - started

    async def ours_download(name: str, down_dir: Path) -> float:
        started = time.perf_counter()
        await host.download(f"{tool_dir}/inputs", name, down_dir, verify_hash=True)
        return time.perf_counter() - started

    async def ours_download_many(paths: list[Path], down_dir: Path) -> float:
        started = time.perf_counter()
        await asyncio.gather(
            *(
                host.download(
                    f"{tool_dir}/inputs",
                    f"{recorded[path][0]}{path.suffix}",
                    down_dir,
                    recorded[path][1],
                    verify_hash=True,
                )
                for path in paths
            )
        )
        return time.perf_counter() - started

    try:
        await host.connect()
        for _ in range(rounds):
            await clear("inputs", "scp", "rsync")
            to_thread: Callable[..., Any] = asyncio.to_thread
            scp_dir, rsync_dir = (anchors.remote(f"{tool_dir}/{d}/") for d in ("scp", "rsync"))
            await record_cpu("scp_up", to_thread, anchors.scp, [str(big)], scp_dir)
            await record_cpu("rsync_up", to_thread, anchors.rsync, [str(big)], rsync_dir)
            await record_cpu("up", ours_upload, [big])
            sha = recorded[big][0]
            down_dir = work / "down"
            for key, source in (("scp_down", "scp"), ("rsync_down", "rsync")):
                shutil.rmtree(down_dir, ignore_errors=True)
                down_dir.mkdir()
                tool = anchors.scp if key == "scp_down" else anchors.rsync
                remote_file = anchors.remote(f"{tool_dir}/{source}/{big.name}")
                await record_cpu(key, to_thread, tool, [remote_file], str(down_dir) + "/")
            shutil.rmtree(down_dir, ignore_errors=True)
            await record_cpu("down", ours_download, f"{sha}{big.suffix}", down_dir)
            shutil.rmtree(down_dir, ignore_errors=True)

            await clear("inputs", "scp", "rsync")
            names = [str(p) for p in videos]
            record(
                "scp_videos",
                await to_thread(anchors.scp, names, anchors.remote(f"{tool_dir}/scp/")),
            )
            record(
                "rsync_videos",
                await to_thread(anchors.rsync, names, anchors.remote(f"{tool_dir}/rsync/")),
            )
            record("videos", await ours_upload(videos))
            # The five back, as a run's outputs come down (engine/outputs.py): side by
            # side, size and sha256 verified; scp and rsync fetch them in one command.
            for key, source in (("scp_videos_down", "scp"), ("rsync_videos_down", "rsync")):
                shutil.rmtree(down_dir, ignore_errors=True)
                down_dir.mkdir()
                tool = anchors.scp if key == "scp_videos_down" else anchors.rsync
                # One remote glob: one connection (a source each would make one each).
                remote_files = [anchors.remote(f"{tool_dir}/{source}/*.mp4")]
                record(key, await to_thread(tool, remote_files, str(down_dir) + "/"))
            shutil.rmtree(down_dir, ignore_errors=True)
            record("videos_down", await ours_download_many(videos, down_dir))
            shutil.rmtree(down_dir, ignore_errors=True)
            host.files._hash_cache.clear()  # a new process, as a run: only the recorded sha
            record("reupload_videos", await ours_upload(videos))
            record("ssh_true", await to_thread(anchors.ssh_true))
    finally:
        await host.close()
    # The CPU of the fastest round of each transfer, beside its seconds.
    fastest = {key: samples[figures[key].index(min(figures[key]))] for key, samples in cpu.items()}
    return figures, fastest


def status_config(server: SshServer, port: int, docker_socket: Path, path: Path) -> None:
    """A config with 4 hosts, all behind the shaped port."""
    fields = server.connection_fields(port)
    lines = []
    for index in range(4):
        lines += [
            "[[hosts]]",
            f'name = "gpu{index}"',
            *(f"{key} = {json.dumps(value)}" for key, value in fields.items()),
            f'docker_socket = "{docker_socket}"',
            'docker_image = "cosmos-bench/absent:1"',
            "",
        ]
    path.write_text("\n".join(lines))


def status_figures(
    server: SshServer, port: int, docker_socket: Path, work: Path, shape: LinkShape
) -> dict[str, Any]:
    """``cosmos status`` for 4 hosts beside ``ssh host true``, 5 rounds each, interleaved."""
    config = work / "status.toml"
    status_config(server, port, docker_socket, config)
    anchors = Anchors(server, port)
    status: list[float] = []
    ssh_true: list[float] = []
    for _ in range(5):
        status += measure_status(config, work / "data", 1)
        ssh_true.append(anchors.ssh_true())
    rtt_s = shape.rtt_ms / 1000 if shape.rtt_ms else None
    best = min(status)
    return {
        "rtt_ms": shape.rtt_ms,
        "mbit": shape.mbit,
        "status_4_hosts_s": round(best, 3),
        "status_4_hosts_median_s": round(statistics.median(status), 3),
        "ssh_true_s": round(min(ssh_true), 3),
        "status_round_trips": None if rtt_s is None else round(best / rtt_s, 1),
        "ssh_true_round_trips": None if rtt_s is None else round(min(ssh_true) / rtt_s, 1),
    }


def print_status(figures: dict[str, Any]) -> None:
    """One line per link of ``--status-only``."""
    print(
        f"RTT {figures['rtt_ms']:g} ms: cosmos status, 4 hosts: {figures['status_4_hosts_s']:.2f} s"
        f" best ({figures['status_round_trips']} RTT), "
        f"{figures['status_4_hosts_median_s']:.2f} s median; ssh host true: "
        f"{figures['ssh_true_s']:.2f} s ({figures['ssh_true_round_trips']} RTT)"
    )


def measure_status(config: Path, data_dir: Path, rounds: int) -> list[float]:
    """Wall time of ``cosmos status --json`` (a new process each time)."""
    env = {**os.environ, "COSMOS_CONFIG": str(config), "COSMOS_DATA_DIR": str(data_dir)}
    argv = [sys.executable, "-m", "cosmos_tui", "status", "--json"]
    subprocess.run(argv, env=env, check=False, stdout=subprocess.DEVNULL)  # warm caches
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        done = subprocess.run(argv, env=env, check=False, capture_output=True, text=True)
        seconds.append(time.perf_counter() - started)
        hosts = json.loads(done.stdout)
        reached = [h for h in hosts if h.get("state") == "connected"]
        if len(reached) != 4:
            raise SystemExit(f"cosmos status reached {len(reached)} of 4 hosts: {done.stdout}")
    return seconds


def summarise(
    runs: dict[str, list[float]],
    status: list[float],
    shape: LinkShape,
    mb: int,
    video_mb: int,
    proxy: dict[str, float],
    cpu: dict[str, dict[str, float]],
) -> dict[str, Any]:
    """The figures of one link: best and median, ratios to the anchors."""
    best = {key: min(values) for key, values in runs.items()}
    rate = shape.rate_bytes_per_s

    def share(key: str, megabytes: float) -> float | None:
        return None if rate is None else round(megabytes * 1048576 / best[key] / rate, 3)

    videos_mb = video_mb * len(VIDEOS)
    rtt_s = shape.rtt_ms / 1000 if shape.rtt_ms else None
    return {
        "rtt_ms": shape.rtt_ms,
        "mbit": shape.mbit,
        "file_mb": mb,
        "seconds": {k: round(v, 3) for k, v in best.items()},
        "status_4_hosts_s": round(min(status), 3),
        "status_4_hosts_median_s": round(statistics.median(status), 3),
        "upload_vs_scp": round(best["scp_up"] / best["up"], 3),
        "upload_vs_rsync": round(best["rsync_up"] / best["up"], 3),
        "download_vs_scp": round(best["scp_down"] / best["down"], 3),
        "download_vs_rsync": round(best["rsync_down"] / best["down"], 3),
        "videos_vs_scp": round(best["scp_videos"] / best["videos"], 3),
        "videos_download_vs_scp": round(best["scp_videos_down"] / best["videos_down"], 3),
        "upload_link_share": share("up", mb),
        "download_link_share": share("down", mb),
        "scp_upload_link_share": share("scp_up", mb),
        "videos_link_share": share("videos", videos_mb),
        "videos_download_link_share": share("videos_down", videos_mb),
        "reupload_round_trips": None
        if rtt_s is None
        else round(best["reupload_videos"] / rtt_s, 1),
        "ssh_true_s": round(best["ssh_true"], 3),
        "proxy_cpu_s": round(proxy["cpu_s"], 2),
        "proxy_mb_moved": round(proxy["bytes"] / 1048576),
        "cpu": cpu,
    }


def print_link(figures: dict[str, Any]) -> None:
    """One readable block per link."""
    s = figures["seconds"]
    mbit = figures["mbit"]
    print(f"\n== RTT {figures['rtt_ms']:g} ms, {mbit if mbit else 'uncapped'} Mbit/s ==")
    print(
        f"upload {figures['file_mb']} MiB:   ours {s['up']:.2f} s | scp {s['scp_up']:.2f} s | "
        f"rsync {s['rsync_up']:.2f} s  -> vs scp {figures['upload_vs_scp']:.2f}x, "
        f"link share {figures['upload_link_share']}"
    )
    print(
        f"download {figures['file_mb']} MiB: ours {s['down']:.2f} s (sha256) | scp "
        f"{s['scp_down']:.2f} s | rsync {s['rsync_down']:.2f} s  -> vs scp "
        f"{figures['download_vs_scp']:.2f}x, link share {figures['download_link_share']}"
    )
    print(
        f"5 control videos: ours {s['videos']:.2f} s | scp {s['scp_videos']:.2f} s | rsync "
        f"{s['rsync_videos']:.2f} s  -> vs scp {figures['videos_vs_scp']:.2f}x"
    )
    print(
        f"5 videos back: ours {s['videos_down']:.2f} s (sha256) | scp "
        f"{s['scp_videos_down']:.2f} s | rsync {s['rsync_videos_down']:.2f} s  -> vs scp "
        f"{figures['videos_download_vs_scp']:.2f}x"
    )
    print(
        f"re-upload 5 unchanged: {s['reupload_videos']:.3f} s = "
        f"{figures['reupload_round_trips']} round trips (ssh host true by hand: "
        f"{figures['ssh_true_s']:.3f} s)"
    )
    print(
        f"cosmos status, 4 hosts: {figures['status_4_hosts_s']:.2f} s best, "
        f"{figures['status_4_hosts_median_s']:.2f} s median"
    )
    print(f"proxy: {figures['proxy_cpu_s']} CPU s for {figures['proxy_mb_moved']} MiB moved")
    for key, spent in figures["cpu"].items():
        print(
            f"  CPU during {key}: client {spent['client_cpu_s']} s, proxy "
            f"{spent['proxy_cpu_s']} s, sshd and the rest {spent['sshd_and_rest_cpu_s']} s "
            f"over {spent['wall_s']} s ({spent['cores_busy']} cores busy)"
        )


def numbers(text: str) -> list[float]:
    """``20,50,150`` -> [20.0, 50.0, 150.0]."""
    return [float(part) for part in text.split(",") if part]


def main() -> None:
    """Parse the arguments, run every link, print (or emit JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt-ms", type=numbers, default=[20.0, 50.0, 150.0])
    parser.add_argument("--mbit", type=numbers, default=[100.0, 1000.0])
    parser.add_argument("--mb", type=int, default=1024, help="MiB of the single file")
    parser.add_argument("--video-mb", type=int, default=40, help="MiB of each control video")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--run-only", action="store_true", help="only run overhead and log lag")
    parser.add_argument(
        "--status-only", action="store_true", help="only `cosmos status` and `ssh host true`"
    )
    parser.add_argument(
        "--transfers-only", action="store_true", help="only the transfers and their anchors"
    )
    args = parser.parse_args()
    for tool in ("scp", "rsync", "ssh"):
        if shutil.which(tool) is None:
            raise SystemExit(
                f"{tool} is needed for the anchors: apt-get install openssh-client rsync"
            )
    work = Path(tempfile.mkdtemp(prefix="cosmos-bench-wan-"))
    results = []
    try:
        big = work / "payload.bin"
        make_file(big, 1 if args.run_only or args.status_only else args.mb)
        videos = []
        for name in VIDEOS:
            make_file(
                work / f"{name}.mp4", 1 if args.run_only or args.status_only else args.video_mb
            )
            videos.append(work / f"{name}.mp4")
        with ssh_server("wan") as (server, root):
            user = pwd.getpwnam(TEST_USER)
            tool_dir = root / "tool"
            tool_dir.mkdir()
            os.chown(tool_dir, user.pw_uid, user.pw_gid)
            docker = start_docker_daemon(_make_root("cosmos-bench-wan-docker-"), group=TEST_USER)
            try:
                image = build_image(docker)
                for rtt in args.rtt_ms:
                    for mbit in args.mbit:
                        shape = LinkShape(rtt_ms=rtt, mbit=mbit or None)
                        with ShapedLink(server.port, shape) as link:
                            if args.status_only:
                                figures = status_figures(
                                    server, link.port, docker.socket_path, work, shape
                                )
                                results.append(figures)
                                if not args.json:
                                    print_status(figures)
                                continue
                            run = (
                                {}
                                if args.transfers_only
                                else asyncio.run(
                                    measure_run(server, link.port, docker, image, root, rtt)
                                )
                            )
                            if args.run_only:
                                results.append({"rtt_ms": rtt, "mbit": mbit, **run})
                                if not args.json:
                                    print(f"\n== RTT {rtt:g} ms, {mbit:g} Mbit/s ==")
                                    print_run(run)
                                continue
                            runs, cpu = asyncio.run(
                                measure_link(
                                    server, link, work, str(tool_dir), big, videos, args.rounds
                                )
                            )
                            status = [float("nan")]
                            if not args.transfers_only:
                                config = work / "status.toml"
                                status_config(server, link.port, docker.socket_path, config)
                                status = measure_status(config, work / "data", 3)
                            figures = summarise(
                                runs, status, shape, args.mb, args.video_mb, link.stats(), cpu
                            )
                        figures.update(run)
                        results.append(figures)
                        if not args.json:
                            print_link(figures)
                            if run:
                                print_run(run)
            finally:
                docker.stop()
                shutil.rmtree(docker.root, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps({"links": results, "load": load_average("at the end")}, indent=2))
    else:
        print("\n" + load_average("at the end"))


if __name__ == "__main__":
    main()
