"""The benchmark's CPU meter reads real processes' CPU time from /proc."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.cpu import CpuMeter, cpu_seconds

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

# A child that burns exactly this much CPU of its own, then waits to be told to exit.
BURN_S = 0.3
_BURNER = f"""
import sys, time
while time.process_time() < {BURN_S}:
    pass
print("done", flush=True)
sys.stdin.readline()
"""


def test_the_meter_counts_a_busy_process_cpu_as_the_service_role() -> None:
    # Arrange
    child = subprocess.Popen(
        [sys.executable, "-c", _BURNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    assert child.stdin is not None
    meter = CpuMeter([child.pid])
    try:
        # Act
        before = cpu_seconds(child.pid)
        meter.start()
        assert child.stdout.readline() == b"done\n"
        spent = meter.stop()
    finally:
        child.stdin.close()
        child.wait()

    # Assert: what it burned after start (its start-up may fall before), to a clock tick,
    # and nothing of it counted as Postgres or Redis.
    tick = 0.011
    assert BURN_S - before - tick <= spent["service"] <= BURN_S + 0.5
    assert set(spent) == {"service", "postgres", "redis"}
    per_order = meter.per_order_us(1000)
    assert per_order["service"] == pytest.approx(spent["service"] / 1000 * 1e6)
    assert per_order["total"] == pytest.approx(sum(spent.values()) / 1000 * 1e6)


def test_a_process_that_is_gone_has_no_cpu() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()

    assert cpu_seconds(child.pid) == 0.0
    assert CpuMeter([child.pid]).per_order_us(0) == {}
