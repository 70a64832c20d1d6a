"""copy_open_positions as a durable job: its report, venue marks, and the relay running it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from tests.support import Api, LiveServer, eventually, read_stream

WAIT_S = 20.0


async def leader_holding(api: Api, db: asyncpg.Connection, **positions: str) -> dict[str, Any]:
    """A leader with open positions and no fill yet (as a venue leader is once seeded)."""
    leader = await api.leader()
    await api.leader_equity(leader["id"], "100000")
    for symbol, qty in positions.items():
        await db.execute(
            "INSERT INTO leader_position (leader_id, symbol, qty) VALUES ($1, $2, $3)",
            UUID(leader["id"]),
            symbol,
            Decimal(qty),
        )
    return dict(leader)


async def copying(api: Api, follower_id: str, leader_id: str) -> dict[str, Any]:
    created: dict[str, Any] = await api.call(
        "POST",
        f"/v1/followers/{follower_id}/subscriptions",
        201,
        json={"leader_id": leader_id, "copy_open_positions": True},
    )
    return created


async def report(api: Api, follower_id: str) -> dict[str, Any]:
    """The copy report once the job is done."""

    async def done() -> dict[str, Any] | None:
        [sub] = await api.call("GET", f"/v1/followers/{follower_id}/subscriptions", 200)
        copy: dict[str, Any] = sub["open_positions"]
        return copy if copy["status"] == "done" else None

    copy: dict[str, Any] = await eventually(done, "the copy job done", WAIT_S)
    return copy


async def test_a_leader_without_fills_is_copied_at_the_venue_mark_and_says_what_it_skipped(
    server: LiveServer, redis: Any, db: asyncpg.Connection
) -> None:
    # Arrange: the leader holds BTC (the venue gave a mark) and ETH (no price anywhere).
    api = Api(server.http)
    await api.instrument("BTCUSDT", qty_step="0.001")
    leader = await leader_holding(api, db, BTCUSDT="2", ETHUSDT="-10")
    await db.execute(
        "INSERT INTO leader_mark (leader_id, symbol, price, as_of) VALUES ($1, $2, $3, $4)",
        UUID(leader["id"]),
        "BTCUSDT",
        Decimal("60000"),
        datetime.now(UTC),
    )
    follower = await api.follower()
    await api.follower_equity(follower["id"], "10000")

    # Act
    created = await copying(api, follower["id"], leader["id"])

    # Assert: the response says the copy is on its way; then what was synced and why not.
    assert created["open_positions"]["status"] in ("pending", "done")
    copy = await report(api, follower["id"])
    assert copy["synced"] == ["BTCUSDT"]
    assert copy["skipped"] == [{"symbol": "ETHUSDT", "reason": "no_price"}]
    orders = await read_stream(redis, follower["id"])
    assert [(o["symbol"], o["side"], o["qty"]) for o in orders] == [("BTCUSDT", "buy", "0.2")]
    assert orders[0]["leader_price"] == "60000"
    [detail] = await api.call("GET", f"/v1/followers/{follower['id']}/orders", 200)
    assert detail["leader_fill"]["kind"] == "sync"
    assert detail["leader_fill"]["reason"] == "copy_open_positions"


async def test_a_pending_copy_job_is_run_by_the_relay(
    server: LiveServer, redis: Any, db: asyncpg.Connection
) -> None:
    # Arrange: a subscription whose job was committed but never run (the process died right
    # after the commit): the row is there, nothing was sent.
    api = Api(server.http)
    leader = await leader_holding(api, db, SOLUSDT="-40")
    await db.execute(
        "INSERT INTO leader_mark (leader_id, symbol, price, as_of) "
        "VALUES ($1, 'SOLUSDT', 150, now())",
        UUID(leader["id"]),
    )
    follower = await api.follower()
    await api.follower_equity(follower["id"], "10000")
    sub = await api.subscribe(follower["id"], leader["id"])
    assert await read_stream(redis, follower["id"]) == []

    # Act
    await db.execute(
        "INSERT INTO position_copy (subscription_id, leader_id) VALUES ($1, $2)",
        UUID(sub["id"]),
        UUID(leader["id"]),
    )

    # Assert: the relay ran it to completion, once.
    copy = await report(api, follower["id"])
    assert copy["synced"] == ["SOLUSDT"]
    orders = await read_stream(redis, follower["id"])
    assert [(o["symbol"], o["side"], o["qty"]) for o in orders] == [("SOLUSDT", "sell", "4")]
    done = await db.fetchval(
        "SELECT count(*) FROM position_copy WHERE done_at IS NOT NULL AND subscription_id = $1",
        UUID(sub["id"]),
    )
    assert done == 1
