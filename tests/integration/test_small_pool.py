"""The fill statement's small pool: a connection is reused, and replaced when one is lost."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from app.db.small_pool import SmallPool
from tests.conftest import pg_dsn
from tests.support import eventually


@pytest.fixture
async def pool(migrated_database: str) -> AsyncIterator[SmallPool]:
    connects = 0

    async def connect() -> asyncpg.Connection:
        nonlocal connects
        connects += 1
        return await asyncpg.connect(pg_dsn())

    made = SmallPool(connect, size=2)
    made.connects = lambda: connects  # type: ignore[attr-defined]
    yield made
    await made.close()


async def backend(pool: SmallPool) -> int:
    async with pool.connection() as conn:
        pid: int = await conn.fetchval("SELECT pg_backend_pid()")
        return pid


async def test_a_connection_is_reused(pool: Any) -> None:
    # Act
    first = await backend(pool)
    second = await backend(pool)

    # Assert
    assert first == second
    assert pool.connects() == 1


async def test_a_server_error_keeps_the_connection(pool: Any) -> None:
    # Arrange
    before = await backend(pool)

    # Act
    with pytest.raises(asyncpg.DivisionByZeroError):
        async with pool.connection() as conn:
            await conn.fetchval("SELECT 1 / 0")

    # Assert
    assert await backend(pool) == before


async def test_a_connection_killed_by_the_server_is_replaced(pool: Any, db: Any) -> None:
    # Arrange
    killed = await backend(pool)
    # With a timeout, pg_terminate_backend returns once the backend has exited: otherwise the
    # next statement can race the signal and still be answered by the doomed backend.
    assert await db.fetchval("SELECT pg_terminate_backend($1, 10000)", killed)

    # Act: the next use fails on the dead connection (as a fill would) if the client has not
    # noticed the close yet, else the pool already hands out a new one; either way the use
    # after it works. A failure shows as the server's FATAL message, a closed socket, or
    # asyncpg caught mid-operation.
    lost = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)
    with contextlib.suppress(*lost):
        async with pool.connection() as conn:
            await conn.fetchval("SELECT 1")
    replaced = await backend(pool)

    # Assert
    assert replaced != killed


async def test_a_statement_cancelled_midway_does_not_poison_the_pool(pool: Any, db: Any) -> None:
    # Arrange
    before = await backend(pool)

    async def slow() -> None:
        async with pool.connection() as conn:
            await conn.execute("SELECT pg_sleep(5)")

    # Act
    task = asyncio.create_task(slow())
    running = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND state = 'active' AND query = 'SELECT pg_sleep(5)'"
    )
    await eventually(lambda: db.fetchval(running), "the statement running on the server")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    # Assert: a fresh connection, ready at once.
    after = await asyncio.wait_for(backend(pool), timeout=2)
    assert after != before
