"""The benchmark's CPU meter reads real processes' CPU time from /proc."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.cpu import CpuMeter, cpu_seconds

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

# A child that waits for a go line, burns exactly this much CPU past what its start-up took,
# then waits to be told to exit. Burning only after "go" keeps the burn inside the meter's
# window however slowly a loaded machine schedules the child.
BURN_S = 0.3
_BURNER = f"""
import sys, time
print("ready", flush=True)
sys.stdin.readline()
start = time.process_time()
while time.process_time() - start < {BURN_S}:
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
        assert child.stdout.readline() == b"ready\n"
        # Act
        meter.start()
        child.stdin.write(b"go\n")
        child.stdin.flush()
        assert child.stdout.readline() == b"done\n"
        spent = meter.stop()
    finally:
        child.stdin.close()
        child.wait()

    # Assert: what it burned after start, to a clock tick, and nothing of it counted as
    # Postgres or Redis.
    tick = 0.011
    assert BURN_S - tick <= spent["service"] <= BURN_S + 0.5
    assert set(spent) == {"service", "postgres", "redis"}
    per_order = meter.per_order_us(1000)
    assert per_order["service"] == pytest.approx(spent["service"] / 1000 * 1e6)
    assert per_order["total"] == pytest.approx(sum(spent.values()) / 1000 * 1e6)


def test_a_process_that_is_gone_has_no_cpu() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()

    assert cpu_seconds(child.pid) == 0.0
    assert CpuMeter([child.pid]).per_order_us(0) == {}
