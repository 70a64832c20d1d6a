"""Migrations go up, down and up again on an empty database, and match the table models."""

from __future__ import annotations

import os
import subprocess
import sys

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
