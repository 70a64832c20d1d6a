"""A new venue leader starts from the positions its venue reports: trades already in them
are never backfilled on top, not at creation and not after a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
from redis.asyncio import Redis

from tests.support import Api, eventually, read_stream, start_live_server
from tests.venues.fake_hyperliquid import ADDRESS, FakeHyperliquid, now_ms
from tests.venues.harness import run_venue, venue_settings

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def settings() -> object:
    return venue_settings(
        venue_backfill_overlap_s=30.0,  # wider than the gap below: only the floor protects
    )


async def test_trades_already_in_the_seeded_position_are_not_applied_twice(
    redis: Redis, db: asyncpg.Connection
) -> None:
    # Arrange: the leader bought 0.5 BTC a moment before being added to Copytrade.
    venue = FakeHyperliquid()
    venue.add(venue.fill("BTC", "B", "0.5", "50000", at_ms=now_ms() - 1000))
    async with run_venue(venue) as running:
        async with start_live_server(settings()) as live:  # type: ignore[arg-type]
            api = Api(live.http)
            follower = await api.follower()
            await api.follower_equity(follower["id"], "10000")
            leader = await api.leader(
                "hl",
                {
                    "kind": "hyperliquid",
                    "address": ADDRESS,
                    "rest_url": running.rest_url,
                    "ws_url": running.ws_base + "/ws",
                },
            )
            await api.subscribe(follower["id"], leader["id"])
            await venue.wait_subscribed()

            # Act: one new trade after the leader was added (stamped after its floor, even
            # within the floor's millisecond).
            floor_at = await db.fetchval(
                "SELECT backfill_floor_at FROM leader WHERE id = $1", leader["id"]
            )
            after_floor = max(now_ms(), (floor_at - EPOCH) // timedelta(milliseconds=1) + 1)
            await venue.emit(venue.fill("BTC", "B", "0.1", "50000", at_ms=after_floor))

            async def one_order() -> list[dict[str, object]] | None:
                orders = await read_stream(redis, follower["id"])
                return orders if orders else None

            orders = await eventually(one_order, "the new trade's order", 30)
            positions = await api.call("GET", f"/v1/leaders/{leader['id']}/positions", 200)

        # Act again: a restart resumes from what is recorded, floor included. A live trade
        # after it is applied only once the new session's backfill is: its order marks the
        # point by which a trade applied twice would show.
        venue.subscribed.clear()
        async with start_live_server(settings()) as live:  # type: ignore[arg-type]
            await venue.wait_subscribed()
            sentinel = venue.fill("BTC", "B", "0.1", "50000")
            await venue.emit(sentinel)

            async def sentinel_order() -> list[dict[str, object]] | None:
                orders = await read_stream(redis, follower["id"])
                seen = [o["leader_fill_id"] for o in orders]
                return orders if str(sentinel["tid"]) in seen else None

            stream = await eventually(sentinel_order, "the sentinel trade's order", 30)
            after_restart = await Api(live.http).call(
                "GET", f"/v1/leaders/{leader['id']}/positions", 200
            )

    # Assert: the start position is the venue's, the old trade was not applied again (after
    # the restart, only the sentinel was added).
    new_trade, sentinel_trade = str(venue.history[1]["tid"]), str(sentinel["tid"])
    assert positions == [{"symbol": "BTC", "qty": "0.6"}]
    assert after_restart == [{"symbol": "BTC", "qty": "0.7"}]
    assert [o["leader_fill_id"] for o in orders] == [new_trade]
    assert (
        await db.fetchval("SELECT count(*) FROM leader_fill WHERE leader_id = $1", leader["id"])
        == 2
    )
    assert [o["leader_fill_id"] for o in stream] == [new_trade, sentinel_trade]
    floor = await db.fetchval("SELECT backfill_floor_at FROM leader WHERE id = $1", leader["id"])
    assert floor is not None
    assert Decimal(positions[0]["qty"]) == Decimal("0.6")
