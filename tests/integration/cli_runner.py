"""Run the real ``copytrade`` command in a subprocess, against the test database and Redis."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

from tests.conftest import ROOT, TEST_DATABASE_URL, TEST_REDIS_URL
from tests.support import ADMIN_TOKEN

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def cli_env(api_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "COPYTRADE_DATABASE_URL": TEST_DATABASE_URL,
        "COPYTRADE_REDIS_URL": TEST_REDIS_URL,
        "COPYTRADE_ADMIN_TOKEN": ADMIN_TOKEN,
        "COLUMNS": "220",  # rich's width when piped: ids in tables stay whole
        "NO_COLOR": "1",
        **extra,
    }
    if api_url is not None:
        env["COPYTRADE_API_URL"] = api_url
    return env


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


async def start_cli(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def run_cli(*args: str, env: dict[str, str], timeout_s: float = 60.0) -> Result:
    """Run one command to its end (the live server keeps serving in this event loop)."""
    process = await start_cli(*args, env=env)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=timeout_s)
    assert process.returncode is not None
    return Result(process.returncode, stdout.decode(), stderr.decode())


async def read_until(stream: asyncio.StreamReader, needle: str, timeout_s: float = 30.0) -> str:
    """Read lines until one contains ``needle``; return everything read."""
    seen: list[str] = []

    async def _read() -> str:
        while True:
            line = await stream.readline()
            if not line:
                raise AssertionError(f"stream ended before {needle!r}: {''.join(seen)}")
            seen.append(line.decode())
            if needle in seen[-1]:
                return "".join(seen)

    return await asyncio.wait_for(_read(), timeout=timeout_s)
