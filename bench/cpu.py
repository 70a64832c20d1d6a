"""CPU time of the service, Postgres and Redis over a measurement, from /proc (Linux).

On two cores the three processes share the machine: what each spends per order says which
one a measurement is bound by, and is steadier from run to run than the wall-clock figures.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
# Process names (/proc/<pid>/comm) of the servers the service talks to.
_SERVERS = {"postgres": "postgres", "redis-server": "redis"}


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far; 0 for one that is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return 0.0
    # The command name, in parentheses, may hold spaces: the fields start after its ")".
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * _TICK_S


def _server_processes() -> dict[int, str]:
    found: dict[int, str] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        role = _SERVERS.get(comm)
        if role is not None:
            found[int(entry.name)] = role
    return found


@dataclass
class CpuMeter:
    """Counts CPU seconds per role (service, postgres, redis) between ``start`` and ``stop``.

    Postgres backends that exit during the measurement take their CPU with them: the
    benchmark's connections live through each measurement, so that is the rare case.
    """

    service_pids: list[int]

    def __post_init__(self) -> None:
        self._before: dict[int, float] = {}
        self._roles: dict[int, str] = {}
        self.seconds: dict[str, float] = {}

    def _read(self) -> dict[int, float]:
        self._roles.update(_server_processes())
        self._roles.update(dict.fromkeys(self.service_pids, "service"))
        return {pid: cpu_seconds(pid) for pid in self._roles}

    def start(self) -> None:
        self._roles = {}
        self._before = self._read()

    def stop(self) -> dict[str, float]:
        after = self._read()
        totals = dict.fromkeys(("service", "postgres", "redis"), 0.0)
        for pid, spent in after.items():
            totals[self._roles[pid]] += spent - self._before.get(pid, 0.0)
        self.seconds = totals
        return totals

    def per_order_us(self, orders: int) -> dict[str, float]:
        """Microseconds of CPU per order, per role, and their sum."""
        if orders <= 0:
            return {}
        out = {role: spent / orders * 1e6 for role, spent in self.seconds.items()}
        out["total"] = sum(self.seconds.values()) / orders * 1e6
        return out


async def wait_until_idle(
    pid: int, busy_share: float = 0.05, window_s: float = 0.5, limit_s: float = 120.0
) -> float:
    """Wait until process ``pid`` uses under ``busy_share`` of a core over ``window_s``: its
    start-up work (caches loaded, every follower's report stream tracked) done, so that it
    is not measured along with the first fills. Returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        before = cpu_seconds(pid)
        await asyncio.sleep(window_s)
        if cpu_seconds(pid) - before < busy_share * window_s:
            break
    return time.monotonic() - started
