"""Venue leaders on real data, the same scenarios on all four venues: a message of several MB,
an unreadable row live and in a backfill page, a fill the service never saw (the venue's
position then disagrees: the leader is resynced), and a leader added with open positions
copied at the venue's mark."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg
import pytest
from redis.asyncio import Redis

from tests.support import Api, LiveServer, eventually, read_stream, start_live_server
from tests.venues.drivers import DRIVERS, Driver, new_driver
from tests.venues.harness import Running, run_venue, venue_settings

T = TypeVar("T")
WAIT_S = 60.0
VENUES = pytest.mark.parametrize("kind", sorted(DRIVERS))


@dataclass
class Scene:
    driver: Driver
    running: Running
    live: LiveServer
    api: Api
    redis: Redis
    db: asyncpg.Connection
    leader_id: str
    follower_id: str

    async def orders_for(self, fill_ids: list[str]) -> list[dict[str, Any]]:
        """The follower's orders once every fill in ``fill_ids`` produced one."""

        async def probe() -> list[dict[str, Any]] | None:
            orders = await read_stream(self.redis, self.follower_id)
            seen = {o["leader_fill_id"] for o in orders}
            return orders if set(fill_ids) <= seen else None

        orders: list[dict[str, Any]] = await eventually(
            probe, f"orders of {fill_ids}", within_s=WAIT_S
        )
        return orders

    async def listener(self) -> dict[str, Any]:
        leader = await self.api.call("GET", f"/v1/leaders/{self.leader_id}", 200)
        state: dict[str, Any] = leader["listener"]
        return state

    async def quarantined(self) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.db.fetch(
            "SELECT reason, raw FROM quarantined_fill WHERE leader_id = $1", self.leader_id
        )
        return rows


@asynccontextmanager
async def scene(
    kind: str,
    redis: Redis,
    db: asyncpg.Connection,
    arrange: Callable[[Driver], None] = lambda _: None,
    copy_open_positions: bool = False,
    **settings: Any,
) -> AsyncIterator[Scene]:
    driver = new_driver(kind)
    arrange(driver)  # what the leader holds before it is added
    async with (
        run_venue(driver.venue) as running,
        start_live_server(venue_settings(**settings)) as live,
    ):
        api = Api(live.http)
        follower = await api.follower()
        await api.follower_equity(follower["id"], "10000")
        leader = await api.leader(f"{kind}-leader", driver.feed(running))
        await driver.venue.wait_subscribed()
        await api.call(
            "POST",
            f"/v1/followers/{follower['id']}/subscriptions",
            201,
            json={"leader_id": leader["id"], "copy_open_positions": copy_open_positions},
        )
        yield Scene(driver, running, live, api, redis, db, leader["id"], follower["id"])
        # No adapter used a URL form the venue has retired.
        assert driver.venue.retired_calls == []


@VENUES
async def test_a_message_of_several_megabytes_is_read(
    kind: str, redis: Redis, db: asyncpg.Connection
) -> None:
    async with scene(kind, redis, db) as s:
        # Act
        fill_ids = await s.driver.big_message("BTC", "60000")
        orders = await s.orders_for(fill_ids)
        sentinel = await s.driver.trade("BTC", "sell", "0.1", "60010")
        await s.orders_for([sentinel])

        # Assert: read on the connection it came on (Hyperliquid's snapshot comes with the
        # one reconnect the scenario makes), nothing closed for its size.
        state = await s.listener()
        assert state["reconnects"] == (1 if kind == "hyperliquid" else 0), state["last_error"]
        assert [o["qty"] for o in orders if o["leader_fill_id"] in fill_ids] == ["0.01"]


@VENUES
async def test_an_unreadable_live_row_is_quarantined_and_its_neighbours_applied(
    kind: str, redis: Redis, db: asyncpg.Connection
) -> None:
    async with scene(kind, redis, db) as s:
        # Act
        good = await s.driver.live_with_bad_row("ETH", "3000")

        # Assert: both neighbours copied, the bad row kept with its reason, no reconnect.
        orders = await s.orders_for(good)
        assert [(o["leader_fill_id"], o["qty"]) for o in orders] == [
            (good[0], "0.01"),
            (good[1], "0.02"),
        ]
        [row] = await s.quarantined()
        assert row["reason"] == "malformed_row"
        assert "not-a-" in row["raw"]
        assert (await s.listener())["reconnects"] == 0


@VENUES
async def test_an_unreadable_row_in_a_backfill_page_does_not_stop_the_backfill(
    kind: str, redis: Redis, db: asyncpg.Connection
) -> None:
    async with scene(kind, redis, db) as s:
        first = await s.driver.trade("ETH", "buy", "1", "3000")
        await s.orders_for([first])
        before: int = (await s.listener())["reconnects"]
        # The stream stalls: what the leader does meanwhile is only in the history.
        s.running.proxy.freeze()

        async def reconnecting() -> bool:
            count: int = (await s.listener())["reconnects"]
            return count > before

        await eventually(reconnecting, "the idle timeout", within_s=WAIT_S)
        good = s.driver.history_with_bad_row("ETH", "3000")
        s.running.proxy.thaw()

        # Assert: the backfill applied the rows around the bad one and went on.
        orders = await s.orders_for(good)
        assert [(o["leader_fill_id"], o["qty"]) for o in orders][-2:] == [
            (good[0], "0.01"),
            (good[1], "0.02"),
        ]
        rows = await s.quarantined()
        assert {row["reason"] for row in rows} == {"malformed_row"}
        sentinel = await s.driver.trade("ETH", "sell", "1", "3000")
        await s.orders_for([sentinel])


def holds_sol(driver: Driver) -> None:
    driver.hold("SOL", "-40", "150")


@VENUES
async def test_a_missed_fill_is_corrected_by_a_leader_resync(
    kind: str, redis: Redis, db: asyncpg.Connection
) -> None:
    async with scene(kind, redis, db, holds_sol, venue_resync_interval_s=0.2) as s:
        sold = await s.driver.trade("SOL", "sell", "10", "151")
        [order] = await s.orders_for([sold])
        assert (order["side"], order["qty"]) == ("sell", "5")  # target -50 x 0.1

        # Act: the leader buys 50 back, and the service never hears of it (cut from both the
        # stream and the history, as a fill at the edge of the venue's window is).
        s.driver.missed("SOL", "buy", "50", "152")

        # Assert: the leader's position is the venue's again, the follower is sent to its
        # target (flat) by a sync order recorded with the reason leader_resync.
        async def resynced() -> list[dict[str, Any]] | None:
            orders = await read_stream(s.redis, s.follower_id)
            sync = [o for o in orders if o["leader_fill_id"].startswith("resync:")]
            return sync or None

        [sync] = await eventually(resynced, "a leader resync", within_s=WAIT_S)
        assert (sync["symbol"], sync["side"], sync["qty"]) == (s.driver.symbol("SOL"), "buy", "5")
        positions = await s.api.call("GET", f"/v1/leaders/{s.leader_id}/positions", 200)
        held = [p["qty"] for p in positions if p["symbol"] == s.driver.symbol("SOL")]
        assert held in ([], ["0"])
        listed = await s.api.call("GET", f"/v1/followers/{s.follower_id}/orders", 200)
        [shown] = [o for o in listed if o["order_id"] == sync["order_id"]]
        assert shown["leader_fill"]["kind"] == "sync"
        assert shown["leader_fill"]["reason"] == "leader_resync"
        metrics = (await s.live.http.get("/metrics")).text
        assert f'copytrade_leader_resyncs_total{{venue="{kind}"}}' in metrics
        # Corrected once: the next fill is sized from the corrected position.
        bought = await s.driver.trade("SOL", "buy", "20", "150")
        orders = await s.orders_for([bought])
        assert [(o["side"], o["qty"]) for o in orders if o["leader_fill_id"] == bought] == [
            ("buy", "2")
        ]
        assert len([o for o in orders if o["leader_fill_id"].startswith("resync:")]) == 1


def holds_two(driver: Driver) -> None:
    driver.hold("BTC", "2", "60000")
    driver.hold("ETH", "-10", "3000")


@VENUES
async def test_a_leader_added_with_open_positions_is_copied_at_the_venue_mark(
    kind: str, redis: Redis, db: asyncpg.Connection
) -> None:
    async with scene(kind, redis, db, holds_two, copy_open_positions=True) as s:
        # Assert: no fill yet, so the venue's marks price the copy; the follower reaches its
        # targets (0.1 of the leader) and the subscription says so.
        async def copied() -> dict[str, Any] | None:
            [sub] = await s.api.call("GET", f"/v1/followers/{s.follower_id}/subscriptions", 200)
            copy: dict[str, Any] = sub["open_positions"]
            return copy if copy["status"] == "done" else None

        copy = await eventually(copied, "the copy job", within_s=WAIT_S)
        assert copy["synced"] == sorted([s.driver.symbol("BTC"), s.driver.symbol("ETH")])
        assert copy["skipped"] == []
        orders = await read_stream(s.redis, s.follower_id)
        assert sorted((o["symbol"], o["side"], o["qty"]) for o in orders) == sorted(
            [(s.driver.symbol("BTC"), "buy", "0.2"), (s.driver.symbol("ETH"), "sell", "1")]
        )
        prices = {o["symbol"]: Decimal(o["leader_price"]) for o in orders}
        assert prices == {s.driver.symbol("BTC"): 60000, s.driver.symbol("ETH"): 3000}
