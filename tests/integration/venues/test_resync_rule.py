"""When an interval check may resync a leader: a difference seen twice, the same both times,
with no fill applied in that symbol between (once may be a fill still on its way)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

import httpx
from redis.asyncio import Redis

from app.domain.model import Fill, Side
from app.venues.feed import Item, VenueAdapter, VenuePosition
from app.venues.resync import PositionCheck
from tests.integration.desk import push_fills, seed_desk
from tests.support import Api, LiveServer, fill_frame, read_stream


class Venue(VenueAdapter):
    """An account whose positions the test sets (nothing else is asked of it here)."""

    kind: ClassVar[str] = "binance-usdm"

    def __init__(self, leader_id: UUID) -> None:
        super().__init__(leader_id, {}, {}, httpx.AsyncClient())
        self.held: list[VenuePosition] = []

    async def ws_url(self) -> str:
        raise NotImplementedError

    def parse(self, raw: str | bytes, received_at: datetime) -> list[Item]:
        raise NotImplementedError

    async def fetch_equity(self) -> Decimal:
        raise NotImplementedError

    async def positions(self) -> list[VenuePosition]:
        return list(self.held)

    def backfill(self, since: datetime, received_at: datetime) -> AsyncIterator[list[Item]]:
        raise NotImplementedError


async def now(call: Callable[[], Awaitable[object]]) -> None:
    await call()


def btc_fill(leader_id: UUID) -> Fill:
    at = datetime.now(UTC)
    return Fill(leader_id, "x", "BTCUSDT", Side.BUY, Decimal(1), Decimal(50000), at, at)


async def resyncs(redis: Redis, follower_id: str) -> list[dict[str, Any]]:
    orders = await read_stream(redis, follower_id)
    return [o for o in orders if o["leader_fill_id"].startswith("resync:")]


async def test_a_difference_counts_only_when_seen_twice_alike_with_no_fill_between(
    server: LiveServer, redis: Redis
) -> None:
    # Arrange: the tracked leader is long 2 BTC; the venue says 3.
    api = Api(server.http)
    desk = await seed_desk(api)
    await push_fills(server, desk, fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"))
    leader_id = UUID(desk.leader_id)
    venue = Venue(leader_id)
    venue.held = [VenuePosition("BTCUSDT", Decimal(3), Decimal(50000))]
    check = PositionCheck(venue, server.runtime.pipeline, now)
    follower = desk.followers[0].id

    # Act / Assert: seen once: nothing.
    await check.compare()
    assert await resyncs(redis, follower) == []
    # Seen again, but a BTC fill was applied between: a fill on its way; still nothing.
    check.applied(btc_fill(leader_id))
    await check.compare()
    assert await resyncs(redis, follower) == []
    # The venue's figure moved meanwhile: a new first sighting.
    venue.held = [VenuePosition("BTCUSDT", Decimal(4), Decimal(50000))]
    await check.compare()
    assert await resyncs(redis, follower) == []
    # The same difference again, nothing applied between: the leader is resynced to 4.
    await check.compare()
    [sync] = await resyncs(redis, follower)
    assert (sync["side"], sync["qty"]) == ("buy", "0.2")  # follower 0.2 -> 0.4
    positions = await api.call("GET", f"/v1/leaders/{desk.leader_id}/positions", 200)
    assert positions == [{"symbol": "BTCUSDT", "qty": "4"}]
    # Agreeing now: nothing more.
    await check.compare()
    await check.compare()
    assert len(await resyncs(redis, follower)) == 1
    await venue.http.aclose()
