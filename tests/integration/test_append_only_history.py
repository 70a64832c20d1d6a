"""What an order refers to (fill, subscription, equity snapshots) can never be deleted.

follower_order keeps no foreign keys (migration 0012: each was a row lock per order); the
tables it refers to refuse DELETE instead, so an order stays traceable to its inputs.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from tests.integration.desk import push_fill, seed_desk
from tests.support import Api


@pytest.mark.parametrize("table", ["leader_fill", "subscription", "equity_snapshot"])
async def test_referenced_history_refuses_delete(table: str, db: Any, server: Any) -> None:
    # Arrange: a fill sized for one follower, so every table holds rows an order refers to.
    desk = await seed_desk(Api(server.http), followers=1)
    await push_fill(server, desk, "f-1")
    assert await db.fetchval("SELECT count(*) FROM follower_order") == 1
    before = await db.fetchval(f"SELECT count(*) FROM {table}")
    assert before > 0

    # Act / Assert
    with pytest.raises(asyncpg.RestrictViolationError, match=f"{table} is append-only"):
        await db.execute(f"DELETE FROM {table}")
    assert await db.fetchval(f"SELECT count(*) FROM {table}") == before
