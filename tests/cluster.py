"""A real Redis Cluster for tests: three redis-server nodes on loopback, no replicas."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CLUSTER_SKIP_REASON = "redis-server and redis-cli are needed to start a cluster"
# tests/conftest.py names these skips in the run's summary, so a missing binary is not missed.
needs_redis_binaries = pytest.mark.skipif(
    shutil.which("redis-server") is None or shutil.which("redis-cli") is None,
    reason=CLUSTER_SKIP_REASON,
)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        ports = [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    # Cluster nodes also listen on port + 10000: keep both under 65536.
    return ports if all(p < 55000 for p in ports) else _free_ports(count)


def _cli(*args: str) -> str:
    return subprocess.run(["redis-cli", *args], capture_output=True, text=True).stdout


@contextlib.contextmanager
def redis_cluster(root: Path) -> Iterator[list[int]]:
    """Start three cluster nodes under ``root``, join them, yield their ports, stop them."""
    ports = _free_ports(3)
    procs = []
    for port in ports:
        node_dir = root / str(port)
        node_dir.mkdir()
        procs.append(
            subprocess.Popen(
                [
                    "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                    "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                    "--save", "", "--appendonly", "no", "--dir", str(node_dir),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
    try:
        for port in ports:
            deadline = time.monotonic() + 10
            while _cli("-p", str(port), "ping").strip() != "PONG":
                assert time.monotonic() < deadline, f"redis node {port} did not start"
                time.sleep(0.05)
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while not all("cluster_state:ok" in _cli("-p", str(p), "cluster", "info") for p in ports):
            assert time.monotonic() < deadline, "the cluster did not become ready"
            time.sleep(0.05)
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)
