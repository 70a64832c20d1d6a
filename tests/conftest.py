"""Shared fixtures: the test database and Redis db (never the ones `make run` uses)."""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import asyncpg
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from app.settings import Settings
from tests.cluster import CLUSTER_SKIP_REASON
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
# Under pytest-xdist each worker ("gw0", "gw1", ...) gets its own database, cloned from the
# migrated template database named by COPYTRADE_TEST_DATABASE_URL, and its own Redis db on a
# private redis-server the controller starts for the run (see pytest_configure). A run
# without workers uses both URLs as given.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
TEMPLATE_DATABASE_URL = os.environ.get(
    "COPYTRADE_TEST_DATABASE_URL",
    "postgresql+asyncpg://postgres@127.0.0.1:5432/copytrade_test",
)
TEST_DATABASE_URL = f"{TEMPLATE_DATABASE_URL}_{WORKER}" if WORKER else TEMPLATE_DATABASE_URL
_PRIVATE_REDIS_ENV = "COPYTRADE_TEST_PRIVATE_REDIS_URL"


def _worker_redis_url() -> str:
    given = os.environ.get("COPYTRADE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    if not WORKER:
        return given
    index = int(WORKER.removeprefix("gw"))
    private = os.environ.get(_PRIVATE_REDIS_ENV)
    if private:
        # Db 0 stays unused, so the refusal below holds on the private server too.
        return f"{private}/{index + 1}"
    # No redis-server to start: one db per worker, counted up from the configured one and
    # wrapping past 15 to 1 (db 0 is the service's).
    parsed = urlparse(given)
    db = (int(parsed.path.lstrip("/") or 1) - 1 + index) % 15 + 1
    return parsed._replace(path=f"/{db}").geturl()


TEST_REDIS_URL = _worker_redis_url()

# Tables the tests write. The reset empties these and every other table of the schema
# (found once per run, so a table missing here is still reset).
TABLES = (
    "follower_drift",
    "venue_position",
    "follower_account",
    "position_copy",
    "leader_mark",
    "subscription_position_vector",
    "subscription_position_correction",
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
    for url in (TEMPLATE_DATABASE_URL, TEST_DATABASE_URL):
        if urlparse(url).path in ("/copytrade", urlparse(run_db).path or "/-"):
            raise pytest.UsageError("tests must not run against the service's own database")
    if urlparse(TEST_REDIS_URL).path in ("", "/", "/0"):
        raise pytest.UsageError("tests must use their own Redis db number, not 0")
    if os.environ.get("COPYTRADE_REDIS_URL") == TEST_REDIS_URL:
        raise pytest.UsageError("tests must not use the service's own Redis db")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_private_redis(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server on a free loopback port, for this run's workers only."""
    port = _free_port()
    root.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--databases", "256", "--dir", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}"
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise pytest.UsageError(f"the private redis-server on port {port} did not start")
        time.sleep(0.02)


_PRIVATE_REDIS = pytest.StashKey[subprocess.Popen[bytes]]()


def pytest_configure(config: pytest.Config) -> None:
    """In the xdist controller: start the workers' private redis-server before they spawn
    (they inherit its URL through the environment)."""
    parallel = getattr(config.option, "dist", "no") != "no"
    if WORKER or not parallel or shutil.which("redis-server") is None:
        return
    proc, url = _start_private_redis(Path(tempfile.mkdtemp(prefix="copytrade-test-redis-")))
    config.stash[_PRIVATE_REDIS] = proc
    os.environ[_PRIVATE_REDIS_ENV] = url


def pytest_unconfigure(config: pytest.Config) -> None:
    proc = config.stash.get(_PRIVATE_REDIS, None)
    if proc is not None:
        proc.terminate()
        proc.wait(timeout=10)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say loudly when the Redis Cluster tests could not run."""
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if CLUSTER_SKIP_REASON in str(report.longrepr)
    ]
    if skipped:
        terminalreporter.write_line(
            f"!!! {len(skipped)} Redis Cluster tests SKIPPED: {CLUSTER_SKIP_REASON} "
            "(apt-get install redis-server) !!!",
            red=True,
            bold=True,
        )


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


def _migrate(url: str) -> None:
    env = {**os.environ, "COPYTRADE_DATABASE_URL": url}
    script = ROOT / "scripts" / "createdb.py"
    subprocess.run([sys.executable, str(script), url], check=True, env=env)
    subprocess.run([sys.executable, "-m", "app.cli", "migrate"], check=True, env=env, cwd=ROOT)


async def _clone(template_url: str, url: str) -> None:
    """Replace the database at ``url`` with a copy of the one at ``template_url``."""
    admin = await asyncpg.connect(pg_dsn(template_url).rsplit("/", 1)[0] + "/postgres")
    try:
        name = urlparse(url).path.lstrip("/")
        template = urlparse(template_url).path.lstrip("/")
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Create and migrate the test database once per run; under xdist, migrate the template
    once (the first worker to get here does it) and give each worker a fresh copy of it."""
    _refuse_shared_targets()
    if not WORKER:
        _migrate(TEST_DATABASE_URL)
        return TEST_DATABASE_URL
    shared = tmp_path_factory.getbasetemp().parent
    with (shared / "template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        migrated = shared / "template.migrated"
        if not migrated.exists():
            _migrate(TEMPLATE_DATABASE_URL)
            migrated.touch()
        # Cloning needs the template to have no sessions: hold the lock while it copies.
        asyncio.run(_clone(TEMPLATE_DATABASE_URL, TEST_DATABASE_URL))
    return TEST_DATABASE_URL


_RESET_SQL: list[str] = []


async def _reset_sql(conn: asyncpg.Connection) -> str:
    """Empty every table and restart every sequence, as ``TRUNCATE ... RESTART IDENTITY
    CASCADE`` would, but with DELETE: on the few rows a test leaves, DELETE costs a few
    milliseconds where TRUNCATE (a new file per table, and its locks) costs hundreds on a
    busy machine. ``session_replication_role = replica`` turns the triggers off meanwhile,
    as TRUNCATE skips them: foreign keys (so the order does not matter), the append-only
    guards and the change notifications."""
    if not _RESET_SQL:
        found = await conn.fetch(
            "SELECT tablename FROM pg_tables"
            " WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )
        tables = sorted(set(TABLES) | {row["tablename"] for row in found})
        sequences = await conn.fetch(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"
        )
        _RESET_SQL.append(
            "SET session_replication_role = replica;"
            + "".join(f'DELETE FROM "{table}";' for table in tables)
            + "".join(f'ALTER SEQUENCE "{row["sequencename"]}" RESTART;' for row in sequences)
            + "RESET session_replication_role;"
        )
    return _RESET_SQL[0]


@pytest.fixture
async def clean(migrated_database: str) -> None:
    """Empty every table and the test Redis db before the test: for tests whose data must
    be committed (a server, a runtime's pools, another process, several connections)."""
    conn = await asyncpg.connect(pg_dsn(migrated_database))
    try:
        try:
            await conn.execute(await _reset_sql(conn))
        except asyncpg.InsufficientPrivilegeError:
            # Turning triggers off takes a superuser: without one, TRUNCATE for the whole run.
            tables = ", ".join(f'"{table}"' for table in TABLES)
            _RESET_SQL[:] = [f"TRUNCATE {tables} RESTART IDENTITY CASCADE"]
            await conn.execute(_RESET_SQL[0])
    finally:
        await conn.close()
    await _flush_redis()


async def _flush_redis() -> None:
    redis = Redis.from_url(TEST_REDIS_URL)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


@pytest.fixture
async def fresh_redis(migrated_database: str) -> None:
    """Empty the test Redis db before the test, and leave Postgres alone: for tests that
    write no table."""
    await _flush_redis()


@dataclass
class Rolled:
    """One connection inside a transaction that is rolled back after the test.

    ``db`` runs SQL on it; ``sessions`` makes SQLAlchemy sessions on the same connection,
    for repositories and units of work, whose commits only release a savepoint. Everything
    sees everything else's writes, and nothing outlives the test."""

    db: asyncpg.Connection
    sessions: async_sessionmaker[AsyncSession]


@pytest.fixture
async def tx(migrated_database: str) -> AsyncIterator[Rolled]:
    """The database for a test that needs nothing committed: no reset before it, a rollback
    after it. Not for a test whose code under test opens connections of its own, waits on
    other connections or processes, or compares ``now()`` stamps (constant in one
    transaction); those use ``clean``. Redis is not reset: add ``fresh_redis`` if it is used."""
    engine = create_async_engine(migrated_database, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            outer = await conn.begin()
            await conn.execute(text("SELECT 1"))  # the transaction starts on the server here
            raw = await conn.get_raw_connection()
            sessions = async_sessionmaker(
                bind=conn,
                expire_on_commit=False,
                autoflush=False,
                join_transaction_mode="create_savepoint",
            )
            try:
                yield Rolled(raw.driver_connection, sessions)
            finally:
                await outer.rollback()
    finally:
        await engine.dispose()


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
