"""Migrations go up, down and up again on an empty database, and match the table models."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from decimal import Decimal

import asyncpg

from tests.conftest import ROOT, TEST_DATABASE_URL, pg_dsn

SCRATCH_URL = (
    TEST_DATABASE_URL.rsplit("/", 1)[0] + "/" + TEST_DATABASE_URL.rsplit("/", 1)[1] + "_migrations"
)


def alembic(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COPYTRADE_DATABASE_URL": SCRATCH_URL}
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


async def test_migrations_round_trip_and_match_the_models() -> None:
    # Arrange: a scratch database of our own
    name = SCRATCH_URL.rsplit("/", 1)[1]
    admin = await asyncpg.connect(pg_dsn(TEST_DATABASE_URL).rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()

    # Act
    steps = [alembic("upgrade", "head"), alembic("downgrade", "base"), alembic("upgrade", "head")]
    check = alembic("check")

    # Assert
    for step in steps:
        assert step.returncode == 0, step.stderr[-2000:]
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-2000:]
    assert "No new upgrade operations detected" in check.stdout + check.stderr


async def test_positions_move_into_vectors_and_back() -> None:
    # Arrange: a database before the position vectors (0023), with positions in the table.
    name = SCRATCH_URL.rsplit("/", 1)[1]
    admin = await asyncpg.connect(pg_dsn(TEST_DATABASE_URL).rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    assert alembic("upgrade", "0021").returncode == 0
    leaders, subs = [uuid.uuid4(), uuid.uuid4()], [uuid.uuid4() for _ in range(3)]
    positions = {
        (subs[0], "BTCUSDT"): Decimal("1.5"),
        (subs[1], "BTCUSDT"): Decimal(-2),
        (subs[1], "ETHUSDT"): Decimal("0.001"),
        (subs[2], "BTCUSDT"): Decimal(0),
    }
    db = await asyncpg.connect(pg_dsn(SCRATCH_URL))
    try:
        for n, leader in enumerate(leaders):
            await db.execute(
                "INSERT INTO leader (id, name, feed_kind) VALUES ($1, $2, 'push')", leader, f"L{n}"
            )
        for n, sub in enumerate(subs):
            follower = uuid.uuid4()
            await db.execute("INSERT INTO follower (id, name) VALUES ($1, $2)", follower, f"F{n}")
            await db.execute(
                "INSERT INTO subscription (id, follower_id, leader_id, multiplier, status, sizing)"
                " VALUES ($1, $2, $3, 1, 'active', '{}')",
                sub, follower, leaders[min(n, 1)],
            )  # fmt: skip
        await db.executemany(
            "INSERT INTO subscription_position (subscription_id, symbol, qty) VALUES ($1, $2, $3)",
            [(sub, symbol, qty) for (sub, symbol), qty in positions.items()],
        )

        async def read() -> dict[tuple[uuid.UUID, str], Decimal]:
            rows = await db.fetch("SELECT subscription_id, symbol, qty FROM subscription_position")
            return {(r["subscription_id"], r["symbol"]): r["qty"] for r in rows}

        # Act
        up = alembic("upgrade", "head")
        after_up = await read()
        vectors = await db.fetchval("SELECT count(*) FROM subscription_position_vector")
        down = alembic("downgrade", "0021")
        after_down = await read()
        kind = await db.fetchval(
            "SELECT relkind FROM pg_class WHERE relname = 'subscription_position'"
        )
    finally:
        await db.close()

    # Assert
    assert up.returncode == 0, up.stderr[-2000:]
    assert down.returncode == 0, down.stderr[-2000:]
    assert after_up == positions
    assert vectors == 3  # (leader 0, BTC), (leader 1, BTC), (leader 1, ETH)
    assert after_down == positions
    assert kind == b"r"
