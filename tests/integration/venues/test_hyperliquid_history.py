"""Hyperliquid on a real account's history: fills without a tid, and the startPosition every
fill carries, which corrects a tracked position before the fill is applied."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import asyncpg
from redis.asyncio import Redis

from tests.integration.venues.test_hyperliquid import scene


async def test_fills_without_a_tid_are_copied_once_across_stream_and_backfill(
    redis: Redis, db: asyncpg.Connection
) -> None:
    async with scene(redis, db) as s:
        v = s.venue
        # Three partial fills of one order in one transaction: same hash, same oid, no tid.
        fills: list[dict[str, Any]] = [
            v.fill("BTC", "B", size, "60000", oid=4242) for size in ("0.1", "0.1", "0.3")
        ]
        for fill in fills:
            del fill["tid"]
        await v.emit(*fills)
        first = await s.orders(3)

        # Act: the connection drops; the backfill and the stream both deliver them again.
        v.gate.clear()
        await v.drop()
        v.gate.set()
        await v.wait_subscribed()
        await v.push(v.message(fills))
        sentinel = v.fill("ETH", "A", "1", "3000")
        await v.emit(sentinel)

        # Assert: each once, under three distinct derived ids.
        orders = await s.orders(4)
        assert orders[:3] == first
        assert [o[2] for o in first] == ["0.01", "0.01", "0.03"], orders
        assert orders[3][4] == str(sentinel["tid"]), orders
        ids = await s.db.fetch(
            "SELECT fill_id FROM leader_fill WHERE leader_id = $1 AND symbol = 'BTC'",
            s.leader["id"],
        )
        assert len({row["fill_id"] for row in ids}) == 3
        assert all(row["fill_id"].startswith("h") for row in ids)


async def test_a_fill_whose_start_position_disagrees_resyncs_the_leader_first(
    redis: Redis, db: asyncpg.Connection
) -> None:
    async with scene(redis, db) as s:
        v = s.venue
        # The leader bought 2 ETH in a fill the service never saw.
        v.positions["ETH"] = v.positions.get("ETH", Decimal(0)) + 2

        # Act: its next fill says the position before it was 2.
        fill = v.fill("ETH", "B", "1", "3000")
        assert fill["startPosition"] == "2"
        await v.emit(fill)

        # Assert: first a resync to 2 (follower to 0.2), then the fill (to 0.3).
        orders = await s.orders(2)
        assert orders == [
            ("ETH", "buy", "0.2", False, f"resync:{fill['tid']}"),
            ("ETH", "buy", "0.1", False, str(fill["tid"])),
        ]
        positions = await s.api.call("GET", f"/v1/leaders/{s.leader['id']}/positions", 200)
        assert {"symbol": "ETH", "qty": "3"} in positions
