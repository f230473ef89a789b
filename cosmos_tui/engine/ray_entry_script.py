"""The entrypoint of a run's Ray Job: runs the run's container on the node Ray picked.

Standalone (standard library only): it is sent as ``python3 -c <this file> <job json>``
and runs on a cluster node, where cosmos-tui is not installed. The job JSON carries the
Docker Engine API create body built by :func:`cosmos_tui.remote.docker_types.container_body`
from :func:`cosmos_tui.engine.launch.container_spec` (one builder of containers), the
socket, the container name and the stop grace.

What it does, in order:

- GPUs: Ray sets ``CUDA_VISIBLE_DEVICES`` for an entrypoint with ``entrypoint_num_gpus``;
  those indices become the container's DeviceRequests (``--gpus '"device=..."'``), or,
  with ``gpu_request`` off (nodes without the NVIDIA toolkit, the tests), the container
  only gets the variable.
- Create ``cosmos-<run>-a<attempt>`` (Docker refuses a second container of that name, so
  a resubmitted attempt adopts the one that exists) and start it.
- Stream its log with Docker's timestamps to stdout (a CR redraw on its own line): the
  Ray job log then carries the same timestamped lines as ``docker logs``, and the
  tool's log follower resumes and de-duplicates them exactly as for SSH hosts. Lines
  of its own are timestamped too.
- SIGTERM (Ray's ``stop_job``) stops the container with the grace; exits with the
  container's exit code.
- A watchdog (a forked child in a session of its own, so the signal that kills the
  entrypoint's process group does not reach it) stops the container when the
  entrypoint dies first: a SIGKILL, a raylet gone while the machine stays up, or Ray's
  own SIGKILL after its stop wait, which can cut the stop short. The container would
  otherwise run on, holding its GPUs, out of the tool's reach.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse
from types import FrameType
from typing import Any


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None = None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not None:
            self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def _stamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int((now % 1) * 1e9):09d}Z"


def say(text: str) -> None:
    """Write one timestamped line of the entrypoint's own to the job log."""
    sys.stdout.write(f"{_stamp()} [cosmos-tui] {text}\n")
    sys.stdout.flush()


def api(
    sock: str,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    timeout: float | None = 60,
) -> tuple[int, Any]:
    """One Docker Engine API call; returns (status, parsed JSON or text)."""
    conn = _UnixConnection(sock, timeout=timeout)
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    conn.request(method, "/v1.41" + path, body=data, headers=headers)
    response = conn.getresponse()
    raw = response.read()
    conn.close()
    try:
        return response.status, json.loads(raw) if raw else None
    except ValueError:
        return response.status, raw.decode("utf-8", "replace")


def split_redraws(frame: bytes) -> bytes:
    """Give each carriage-return redraw of a frame (a tqdm bar) its own stamped line.

    Ray's log reader turns a bare CR into a line break, which would leave the bar's
    text without a timestamp; the tool's log cleaning splits redraws into lines anyway,
    so one stamped line per redraw reads the same.
    """
    if b"\r" not in frame:
        return frame
    stamp, _, text = frame.partition(b" ")
    pieces = [p for p in text.rstrip(b"\n").split(b"\r") if p.strip(b"\n")]
    return b"".join(stamp + b" " + p + b"\n" for p in pieces or [b""])


def stream_logs(sock: str, name: str) -> None:
    """Copy the container's multiplexed log stream (timestamps on) to stdout."""
    conn = _UnixConnection(sock)
    query = "follow=1&stdout=1&stderr=1&timestamps=1"
    conn.request("GET", f"/v1.41/containers/{name}/logs?{query}")
    response = conn.getresponse()
    out = sys.stdout.buffer
    while True:
        header = response.read(8)
        if len(header) < 8:
            break
        size = int.from_bytes(header[4:8], "big")
        out.write(split_redraws(response.read(size)))
        out.flush()
    conn.close()


def watchdog(sock: str, name: str, grace: int, parent: int) -> None:
    """Wait for the entrypoint (``parent``) to end; stop the container if it still runs."""
    while os.getppid() == parent:
        time.sleep(1.0)
    try:
        status, reply = api(sock, "GET", f"/containers/{name}/json", timeout=30)
        running = status == 200 and isinstance(reply, dict) and reply["State"]["Running"]
        if running:
            api(sock, "POST", f"/containers/{name}/stop?t={grace}", timeout=grace + 60)
    except (OSError, KeyError, TypeError):
        pass  # nothing to report to: the job log is gone with the entrypoint


def start_watchdog(sock: str, name: str, grace: int) -> None:
    """Fork the watchdog (before any thread starts: a fork copies only the caller)."""
    parent = os.getpid()
    if os.fork() != 0:
        return
    try:
        os.setsid()
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):  # the job log's pipe stays the entrypoint's alone
            os.dup2(devnull, fd)
        watchdog(sock, name, grace, parent)
    finally:
        os._exit(0)


def main() -> int:
    """Create or adopt the container, follow it, forward a stop, exit with its code."""
    job = json.loads(sys.argv[1])
    sock, name, body = job["socket"], job["name"], job["body"]
    # A stop can come before the container exists (Ray delivers a stop_job sent while
    # the job was PENDING once it is placed): then no container is started at all.
    stopping = threading.Event()
    created = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            if created.is_set():
                say(f"stop requested; stopping {name}")
                api(sock, "POST", f"/containers/{name}/stop?t={int(job['grace'])}")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    devices = [d for d in visible.split(",") if d.strip()]
    host_config = body.setdefault("HostConfig", {})
    host_config.pop("DeviceRequests", None)
    if job["gpu_request"] and devices:
        host_config["DeviceRequests"] = [
            {"Driver": "nvidia", "DeviceIDs": devices, "Capabilities": [["gpu"]]}
        ]
    body["Env"] = [*body.get("Env", []), "CUDA_VISIBLE_DEVICES=" + visible]
    body.setdefault("Labels", {})["cosmos.gpus"] = visible
    if stopping.is_set():
        say("stopped before the container was created")
        return 143
    status, reply = api(sock, "POST", "/containers/create?name=" + urllib.parse.quote(name), body)
    if status == 409:
        say(f"adopting container {name} of this attempt")
    elif status >= 300:
        say(f"could not create the container: {reply}")
        return 125
    # From here a container exists: if Ray kills this process (its stop wait is 3 s by
    # default, shorter than a stop with a long grace), the watchdog finishes the stop.
    start_watchdog(sock, name, int(job["grace"]))
    if stopping.is_set():
        say("stopped before the container was started")
        return 143
    created.set()
    status, reply = api(sock, "POST", f"/containers/{name}/start")
    if status not in (204, 304):
        say(f"could not start the container: {reply}")
        return 125
    if stopping.is_set():  # the stop came between create and start
        api(sock, "POST", f"/containers/{name}/stop?t={int(job['grace'])}")
    say(f"container {name} running on GPUs [{visible}]")
    logs = threading.Thread(target=stream_logs, args=(sock, name), daemon=True)
    logs.start()
    while logs.is_alive():
        logs.join(0.2)
    status, reply = api(sock, "POST", f"/containers/{name}/wait", timeout=None)
    code: int = reply.get("StatusCode", 1) if isinstance(reply, dict) else 1
    say(f"container exited {code}")
    return code


if __name__ == "__main__":
    sys.exit(main())
