"""CPU a service process spends starting: ``python -m app`` from exec until /readyz says 200.

The test suite starts the service dozens of times (the e2e crash tests restart it again and
again), so its start-up cost is a large part of the suite's CPU. Each run starts one process
against the COPYTRADE_DATABASE_URL / COPYTRADE_REDIS_URL of the environment (migrated), reads
its CPU from /proc once it is ready, and stops it. ``--source`` runs another checkout's app/
with this virtualenv (a ``git archive`` of main, for a before/after in turn).

    python -m bench.startup --runs 5
    python -m bench.startup --runs 5 --source /tmp/main-copy --source .
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.cpu import cpu_seconds

ROOT = Path(__file__).resolve().parent.parent


def start_once(source: Path, port: int) -> tuple[float, float]:
    """CPU and wall seconds of one service process until it is ready."""
    env = dict(
        os.environ,
        COPYTRADE_ADMIN_TOKEN=os.environ.get(
            "COPYTRADE_ADMIN_TOKEN", "startup-bench-token-0123456"
        ),
        COPYTRADE_DEMO="false",
        COPYTRADE_INSTRUMENT_VENUES="",
        COPYTRADE_PORT=str(port),
        COPYTRADE_LOG_LEVEL="warning",
        # As make pytest runs: with the bytecode cache.
        PYTHONDONTWRITEBYTECODE="",
    )
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "app"],
        cwd=source,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the service in {source} exited with {process.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.05)
        return cpu_seconds(process.pid), time.monotonic() - started
    finally:
        process.terminate()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--port", type=int, default=18771)
    parser.add_argument(
        "--source", type=Path, action="append", help="checkout to run (repeatable; default .)"
    )
    args = parser.parse_args()
    sources: list[Path] = args.source or [ROOT]
    for _ in range(args.runs):
        for source in sources:  # in turn, so that each sees the same load
            cpu, wall = start_once(source.resolve(), args.port)
            print(f"{source}: CPU {cpu:.2f} s, wall {wall:.2f} s, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
