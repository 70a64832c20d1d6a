"""The real service process, started the way `make run` starts it, on a free loopback port."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, TEST_DATABASE_URL, TEST_REDIS_URL
from tests.support import ADMIN_TOKEN

OUTPUT = ROOT / "test-output"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServiceProcess:
    base_url: str
    http: httpx.AsyncClient
    log_path: Path
    process: asyncio.subprocess.Process

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1)


@pytest.fixture
async def service(clean: None, request: pytest.FixtureRequest) -> AsyncIterator[ServiceProcess]:
    port = free_port()
    OUTPUT.mkdir(exist_ok=True)
    log_path = OUTPUT / f"{request.node.name}.log"
    env = {
        **os.environ,
        "COPYTRADE_DATABASE_URL": TEST_DATABASE_URL,
        "COPYTRADE_REDIS_URL": TEST_REDIS_URL,
        "COPYTRADE_ADMIN_TOKEN": ADMIN_TOKEN,
        "COPYTRADE_DEMO": "false",
        "COPYTRADE_PORT": str(port),
        "COPYTRADE_RECONNECT_INITIAL_S": "0.05",
        "COPYTRADE_RECONNECT_MAX_S": "0.5",
    }
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app", cwd=ROOT, env=env, stdout=log, stderr=log
        )
    base_url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        for _ in range(300):
            if process.returncode is not None:
                raise RuntimeError(f"service exited: {log_path.read_text()[-2000:]}")
            try:
                if (await http.get("/readyz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
        else:
            process.kill()
            await process.wait()
            raise RuntimeError(f"service never became ready: {log_path.read_text()[-2000:]}")
        try:
            yield ServiceProcess(base_url, http, log_path, process)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=15)
            except TimeoutError:
                process.kill()
                await process.wait()
