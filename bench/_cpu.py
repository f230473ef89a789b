"""Where the CPU went during one measured step: the client, the shaping proxy, the rest.

A figure on a shared 2-core machine is only readable next to what the machine spent on
it. Around each transfer :class:`CpuMeter` reads

- the client: this process (``time.process_time``: every thread, so our hashing too) plus
  the children it waited for (``RUSAGE_CHILDREN``: ``scp`` and its ``ssh``);
- the shaping proxy: its own CPU seconds, which it reports (``ShapedLink.stats``);
- the machine: busy time from ``/proc/stat`` (every core, everything but idle and
  iowait). What is left once the client and the proxy are taken off is the sshd and its
  ``sftp-server`` (and anything else running, which the load average shows).

``cores_busy`` is the machine's busy time over the wall time: near the core count, the
step was bound by the CPU, not by the shaped link. Not a test module.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PROC_STAT = Path("/proc/stat")
_IDLE_FIELDS = (3, 4)  # idle, iowait (man 5 proc)


def machine_busy_s(stat: Path = PROC_STAT) -> float:
    """Seconds every core together spent busy since boot (all fields but idle, iowait).

    guest and guest_nice (fields 8 and 9) are already counted in user and nice.
    """
    fields = [int(value) for value in stat.read_text().splitlines()[0].split()[1:9]]
    busy = sum(value for index, value in enumerate(fields) if index not in _IDLE_FIELDS)
    return busy / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSnapshot:
    """One reading of every clock."""

    wall: float
    client: float
    proxy: float
    machine: float


class CpuMeter:
    """Readings around a step; ``proxy_cpu`` reads the proxy's CPU seconds so far."""

    def __init__(self, proxy_cpu: Callable[[], float]) -> None:
        """Keep the proxy's reader."""
        self._proxy_cpu = proxy_cpu

    def read(self) -> CpuSnapshot:
        """Every clock now."""
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return CpuSnapshot(
            wall=time.perf_counter(),
            client=time.process_time() + children.ru_utime + children.ru_stime,
            proxy=self._proxy_cpu(),
            machine=machine_busy_s(),
        )

    @staticmethod
    def spent(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
        """What the step between two readings cost, in seconds (and cores busy)."""
        wall = after.wall - before.wall
        client = after.client - before.client
        proxy = after.proxy - before.proxy
        machine = after.machine - before.machine
        return {
            "wall_s": round(wall, 3),
            "client_cpu_s": round(client, 2),
            "proxy_cpu_s": round(proxy, 2),
            "sshd_and_rest_cpu_s": round(max(machine - client - proxy, 0.0), 2),
            "machine_cpu_s": round(machine, 2),
            "cores_busy": round(machine / wall, 2) if wall > 0 else 0.0,
        }
