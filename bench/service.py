"""Run the real service process for the benchmark, on its own database and Redis db."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Service:
    def __init__(self, database_url: str, redis_url: str, log_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {
            **os.environ,
            "COPYTRADE_DATABASE_URL": database_url,
            "COPYTRADE_REDIS_URL": redis_url,
            "COPYTRADE_ADMIN_TOKEN": "bench-admin-token-0123456789",
            "COPYTRADE_DEMO": "false",
            "COPYTRADE_INSTRUMENT_VENUES": "",
            "COPYTRADE_PORT": str(self.port),
            # info shows each fill's sizing and enqueue times in the service log
            "COPYTRADE_LOG_LEVEL": os.environ.get("COPYTRADE_BENCH_LOG_LEVEL", "warning"),
            "COPYTRADE_DB_POOL_SIZE": "10",
            # The load comes from one address with keys the service has not seen yet.
            "COPYTRADE_UNAUTH_RATE_LIMIT": "100000/second",
        }
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "app", cwd=ROOT, env=self.env, stdout=log, stderr=log
            )
        async with httpx.AsyncClient(base_url=self.base_url) as http:
            for _ in range(600):
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(f"service did not become ready, see {self.log_path}")

    async def stop(self) -> None:
        if self.process and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout=20)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


class NaiveService:
    """The naive baseline's websocket server, in its own process like the service."""

    def __init__(self, dsn: str, redis_url: str, log_path: Path) -> None:
        self.port = free_port()
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.args = ["--port", str(self.port), "--dsn", dsn, "--redis-url", redis_url]
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.naive_server", *self.args, cwd=ROOT,
                stdout=asyncio.subprocess.PIPE, stderr=log,
            )  # fmt: skip
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout=30)
        if line.strip() != b"ready":
            raise RuntimeError(f"naive server did not start, see {self.log_path}")

    async def stop(self) -> None:
        if self.process and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
