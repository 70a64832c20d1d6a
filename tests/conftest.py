"""Shared fixtures: the test database and Redis db (never the ones `make run` uses)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import asyncpg
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from redis.asyncio import Redis

from app.settings import Settings
from tests.support import ADMIN_TOKEN, LiveServer, start_live_server

ROOT = Path(__file__).resolve().parent.parent

# CI (CI=true, as CI services set it) runs the properties for long enough to matter: a
# thousand examples each, no deadline (a shared runner's pauses are not failures), and the
# reproducing blob printed with any failure. HYPOTHESIS_PROFILE picks one by name elsewhere.
hypothesis_settings.register_profile(
    "ci",
    max_examples=1000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.register_profile("dev", max_examples=100)
hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE")
    or ("ci" if os.environ.get("CI", "").lower() == "true" else "dev")
)
TEST_DATABASE_URL = os.environ.get(
    "COPYTRADE_TEST_DATABASE_URL",
    "postgresql+asyncpg://postgres@127.0.0.1:5432/copytrade_test",
)
TEST_REDIS_URL = os.environ.get("COPYTRADE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Tables no foreign key reaches (so CASCADE would not) are named as well.
TABLES = (
    "position_copy",
    "leader_mark",
    "subscription_position",
    "follower_order",
    "leader_fill",
    "subscription",
    "equity_snapshot",
    "instrument",
    "venue_instrument",
    "follower",
    "feed_lease",
    "service_instance",
    "leader",
)


def _refuse_shared_targets() -> None:
    run_db = os.environ.get("COPYTRADE_DATABASE_URL", "")
    if urlparse(TEST_DATABASE_URL).path in ("/copytrade", urlparse(run_db).path or "/-"):
        raise pytest.UsageError("tests must not run against the service's own database")
    if urlparse(TEST_REDIS_URL).path in ("", "/", "/0"):
        raise pytest.UsageError("tests must use their own Redis db number, not 0")


def pg_dsn(url: str = TEST_DATABASE_URL) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": TEST_DATABASE_URL,
        "redis_url": TEST_REDIS_URL,
        "admin_token": ADMIN_TOKEN,
        "demo": False,
        "log_json": True,
        "relay_interval_s": 0.2,
        "relay_min_age_s": 0.5,
        "reconnect_initial_s": 0.05,
        "reconnect_max_s": 0.5,
        "report_claim_idle_ms": 300,
        # Tests make many requests without a credential from one address; the tests of the
        # abuse limits lower this again.
        "unauth_rate_limit": "100000/second",
        # No test reaches a venue's public host: instrument tests point at loopback fakes.
        "instrument_venues": [],
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def migrated_database() -> str:
    """Create and migrate the test database once per run."""
    _refuse_shared_targets()
    env = {**os.environ, "COPYTRADE_DATABASE_URL": TEST_DATABASE_URL}
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "createdb.py"), TEST_DATABASE_URL],
        check=True,
        env=env,
    )
    subprocess.run([sys.executable, "-m", "app.cli", "migrate"], check=True, env=env, cwd=ROOT)
    return TEST_DATABASE_URL


@pytest.fixture
async def clean(migrated_database: str) -> None:
    """Empty every table and the test Redis db before the test."""
    conn = await asyncpg.connect(pg_dsn(migrated_database))
    try:
        await conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
    redis = Redis.from_url(TEST_REDIS_URL)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


@pytest.fixture
async def redis(clean: None) -> AsyncIterator[Redis]:
    client = Redis.from_url(TEST_REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def db(clean: None) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_dsn())
    yield conn
    await conn.close()


@pytest.fixture
async def server(clean: None) -> AsyncIterator[LiveServer]:
    """The app served by uvicorn on a loopback port, in this event loop."""
    async with start_live_server(make_settings()) as live:
        yield live
