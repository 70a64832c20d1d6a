"""The real service process, started the way `make run` starts it, on a free loopback port."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, TEST_DATABASE_URL, TEST_REDIS_URL
from tests.support import ADMIN_TOKEN, eventually

OUTPUT = ROOT / "test-output"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServiceProcess:
    """One service process at a time on a fixed port; can be killed and started again."""

    def __init__(self, log_path: Path, **env: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {
            **os.environ,
            "COPYTRADE_DATABASE_URL": TEST_DATABASE_URL,
            "COPYTRADE_REDIS_URL": TEST_REDIS_URL,
            "COPYTRADE_ADMIN_TOKEN": ADMIN_TOKEN,
            "COPYTRADE_DEMO": "false",
            "COPYTRADE_INSTRUMENT_VENUES": "",
            "COPYTRADE_PORT": str(self.port),
            "COPYTRADE_RECONNECT_INITIAL_S": "0.05",
            "COPYTRADE_RECONNECT_MAX_S": "0.5",
            "COPYTRADE_RELAY_INTERVAL_S": "0.2",
            "COPYTRADE_RELAY_MIN_AGE_S": "0.5",
            # Every test client calls from 127.0.0.1 with keys the process has not seen yet.
            "COPYTRADE_UNAUTH_RATE_LIMIT": "100000/second",
            **env,
        }
        self.process: asyncio.subprocess.Process | None = None
        self.http = httpx.AsyncClient(base_url=self.base_url, timeout=10)
        self.starts = 0

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1)

    async def start(self, timeout_s: float = 90.0) -> None:
        """Start the process and wait until /healthz answers."""
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "app", cwd=ROOT, env=self.env, stdout=log, stderr=log
            )
        self.starts += 1
        process = self.process

        async def healthy() -> bool:
            if process.returncode is not None:
                raise RuntimeError(f"service exited: {self.log_path.read_text()[-3000:]}")
            return await self._answers("/healthz")

        try:
            await eventually(healthy, "the service's /healthz", timeout_s)
        except AssertionError:
            await self.kill()
            raise RuntimeError(
                f"service did not start: {self.log_path.read_text()[-3000:]}"
            ) from None

    async def wait_ready(self, timeout_s: float = 90.0) -> None:
        await eventually(lambda: self._answers("/readyz"), "the service's /readyz", timeout_s)

    async def _answers(self, path: str) -> bool:
        try:
            return (await self.http.get(path)).status_code == 200
        except httpx.TransportError:
            return False

    def logged(self, event: str) -> int:
        """How many times the process has logged ``event`` so far."""
        return self.log_path.read_text().count(f'"event": "{event}"')

    async def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no draining, like a power cut."""
        if self.process and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def stop(self) -> None:
        if self.process and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout=15)
            except TimeoutError:
                await self.kill()

    async def close(self) -> None:
        await self.stop()
        await self.http.aclose()


def log_path_for(request: pytest.FixtureRequest) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / f"{request.node.name}.log"
    path.unlink(missing_ok=True)
    return path


@pytest.fixture
async def service(clean: None, request: pytest.FixtureRequest) -> AsyncIterator[ServiceProcess]:
    proc = ServiceProcess(log_path_for(request))
    await proc.start()
    await proc.wait_ready()
    try:
        yield proc
    finally:
        await proc.close()
