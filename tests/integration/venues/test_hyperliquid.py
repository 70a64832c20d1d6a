"""A Hyperliquid leader end to end: the service follows an address on the loopback venue and
the followers' streams get exactly the orders its fills mean, across drops and stalls."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg
from redis.asyncio import Redis

from tests.support import Api, LiveServer, eventually, read_stream, start_live_server
from tests.venues.fake_hyperliquid import ADDRESS, FakeHyperliquid
from tests.venues.harness import Running, run_venue, venue_settings

T = TypeVar("T")
WAIT_S = 30.0


@dataclass
class Scene:
    live: LiveServer
    api: Api
    running: Running
    venue: FakeHyperliquid
    redis: Redis
    db: asyncpg.Connection
    leader: dict[str, Any]
    follower: dict[str, Any]

    async def orders(self, count: int) -> list[tuple[str, str, str, bool, str]]:
        """The follower's stream once it holds ``count`` orders: (symbol, side, qty,
        reduce_only, leader fill id), oldest first."""

        async def probe() -> list[dict[str, Any]] | None:
            orders = await read_stream(self.redis, self.follower["id"])
            return orders if len(orders) >= count else None

        orders = await eventually(probe, f"{count} orders", WAIT_S)
        return [
            (o["symbol"], o["side"], o["qty"], o["reduce_only"], o["leader_fill_id"])
            for o in orders
        ]

    async def listener(self) -> dict[str, Any]:
        leader = await self.api.call("GET", f"/v1/leaders/{self.leader['id']}", 200)
        state: dict[str, Any] = leader["listener"]
        return state


@asynccontextmanager
async def scene(redis: Redis, db: asyncpg.Connection) -> AsyncIterator[Scene]:
    settings = venue_settings()
    venue = FakeHyperliquid()
    # The leader already holds a short when it is added: its positions are the start.
    venue.positions["SOL"] = Decimal("-10")
    async with run_venue(venue) as running, start_live_server(settings) as live:
        api = Api(live.http)
        await api.instrument("BTC", qty_step="0.001", min_qty="0.001", min_notional="5")
        await api.instrument("ETH", qty_step="0.01", min_qty="0.01", min_notional="5")
        follower = await api.follower()
        await api.follower_equity(follower["id"], "10000")
        leader = await api.leader(
            "hl-leader",
            {
                "kind": "hyperliquid",
                "address": ADDRESS.upper().replace("0X", "0x"),
                "rest_url": running.rest_url,
                "ws_url": running.ws_base + "/ws",
            },
        )
        await api.subscribe(follower["id"], leader["id"])
        await venue.wait_subscribed()
        yield Scene(live, api, running, venue, redis, db, leader, follower)


async def test_leader_is_created_by_address_and_shows_no_secret(
    redis: Redis, db: asyncpg.Connection
) -> None:
    async with scene(redis, db) as s:
        # Assert: the feed as stored and shown; nothing secret exists or is returned.
        expected_config = {
            "address": ADDRESS.upper().replace("0X", "0x"),
            "rest_url": s.running.rest_url + "/",
            "ws_url": s.running.ws_base + "/ws",
        }
        assert s.leader["feed"] == {"kind": "hyperliquid", "url": None, "config": expected_config}
        assert s.leader["push_token"] is None
        shown = await s.api.call("GET", f"/v1/leaders/{s.leader['id']}", 200)
        assert shown["feed"]["config"] == expected_config
        secret = await s.db.fetchval("SELECT feed_secret FROM leader WHERE id = $1", s.leader["id"])
        assert secret is None
        # The venue saw the documented subscription, with the address in the venue's case.
        assert s.venue.received[0] == {
            "method": "subscribe",
            "subscription": {"type": "userFills", "user": ADDRESS},
        }
        # A key the feed does not take (e.g. a secret) is refused, not stored.
        body = {"name": "x", "feed": {"kind": "hyperliquid", "address": ADDRESS, "api_key": "k"}}
        await s.api.call("POST", "/v1/leaders", 422, json=body)
        await s.api.call(
            "POST",
            "/v1/leaders",
            422,
            json={"name": "x", "feed": {"kind": "hyperliquid", "address": "0x1234"}},
        )
        # The leader's open position was seeded from clearinghouseState.
        positions = await s.api.call("GET", f"/v1/leaders/{s.leader['id']}/positions", 200)
        assert positions == [{"symbol": "SOL", "qty": "-10"}]


async def test_normal_run_of_fills_becomes_exact_orders(
    redis: Redis, db: asyncpg.Connection
) -> None:
    async with scene(redis, db) as s:
        v = s.venue
        # Act: one message with two partial fills of one BTC order and an ETH short.
        btc_1 = v.fill("BTC", "B", "0.3", "60000", oid=7001)
        btc_2 = v.fill("BTC", "B", "0.2", "60010", oid=7001)
        eth_1 = v.fill("ETH", "A", "2", "3000")
        await v.emit(btc_1, btc_2, eth_1)
        # Not trades, or not readable: a spot fill, another channel, malformed JSON.
        await v.emit(v.fill("@107", "A", "43.84", "18.62"))
        await v.push({"channel": "userFundings", "data": {"user": ADDRESS, "fundings": []}})
        await v.push('{"channel":"userFills","data":')
        # The leader's long is liquidated, then it closes half its short.
        liquidated = v.fill("BTC", "A", "0.5", "59000", liquidated=True)
        await v.emit(liquidated)
        eth_2 = v.fill("ETH", "B", "1", "2990")
        await v.emit(eth_2)

        # Assert: leader equity 100000, follower 10000: ratio 0.1, target mode.
        orders = await s.orders(5)
        assert orders == [
            ("BTC", "buy", "0.03", False, str(btc_1["tid"])),
            ("BTC", "buy", "0.02", False, str(btc_2["tid"])),
            ("ETH", "sell", "0.2", False, str(eth_1["tid"])),
            ("BTC", "sell", "0.05", True, str(liquidated["tid"])),
            ("ETH", "buy", "0.1", True, str(eth_2["tid"])),
        ]
        # eth_2 came last on the socket, and frames are read in order: the frames before it
        # (the spot fill, the other channel, the malformed one) were read and gave nothing.
        assert len(await read_stream(s.redis, s.follower["id"])) == 5
        flags = await s.db.fetch(
            "SELECT fill_id, liquidation FROM leader_fill WHERE leader_id = $1 ORDER BY fill_id",
            s.leader["id"],
        )
        assert {r["fill_id"]: r["liquidation"] for r in flags} == {
            str(btc_1["tid"]): False,
            str(btc_2["tid"]): False,
            str(eth_1["tid"]): False,
            str(liquidated["tid"]): True,
            str(eth_2["tid"]): False,
        }
        state = await s.listener()
        assert state["state"] == "connected"
        assert state["reconnects"] == 0
        # Leader equity from clearinghouseState is stored, and refreshed on schedule.
        v.account_value = "120000"

        async def equities() -> list[Decimal] | None:
            rows = await s.db.fetch(
                "SELECT equity FROM equity_snapshot WHERE leader_id = $1 ORDER BY id",
                s.leader["id"],
            )
            values = [r["equity"] for r in rows]
            return values if Decimal("120000") in values else None

        values = await eventually(equities, "the refreshed equity snapshot", WAIT_S)
        assert values[0] == Decimal("100000")


async def test_dropped_connection_fills_are_backfilled_once(
    redis: Redis, db: asyncpg.Connection
) -> None:
    async with scene(redis, db) as s:
        v = s.venue
        first = v.fill("BTC", "B", "0.5", "60000")
        await v.emit(first)
        assert await s.orders(1) == [("BTC", "buy", "0.05", False, str(first["tid"]))]

        # Act: the venue drops the connection and holds the next subscription while the
        # leader trades: those fills are in the history only.
        v.gate.clear()
        await v.drop()
        missed_1 = v.fill("BTC", "B", "0.4", "60100")
        missed_2 = v.fill("ETH", "A", "1.5", "3000")
        both = v.fill("BTC", "A", "0.2", "60200")
        v.add(missed_1, missed_2, both)
        v.gate.set()
        await v.wait_subscribed()
        # One of them is also delivered live after the reconnect (and again the first one).
        await v.push(v.message([both, first]))

        # Assert: each fill exactly once, in exchange order.
        orders = await s.orders(4)
        # A marker fill after them: once its order is in, the duplicate before it was read.
        marker = v.fill("BTC", "B", "0.1", "60300")
        await v.emit(marker)
        *before, last = await s.orders(5)
        assert before == orders
        assert last[4] == str(marker["tid"])
        assert orders == [
            ("BTC", "buy", "0.05", False, str(first["tid"])),
            ("BTC", "buy", "0.04", False, str(missed_1["tid"])),
            ("ETH", "sell", "0.15", False, str(missed_2["tid"])),
            ("BTC", "sell", "0.02", True, str(both["tid"])),
        ]
        state = await s.listener()
        assert state["reconnects"] >= 1
        assert state["backfilled"] >= 3
        fills = await s.db.fetchval(
            "SELECT count(*) FROM leader_fill WHERE leader_id = $1", s.leader["id"]
        )
        assert fills == 4 + 1  # and the marker
        # Every reconnect backfilled over userFillsByTime, from the leader's address.
        bodies = [json.loads(c.body) for c in v.rest_calls if b"userFillsByTime" in c.body]
        assert len(bodies) >= 2
        assert {b["user"] for b in bodies} == {ADDRESS}


async def test_silent_socket_reconnects_and_recovers_fills(
    redis: Redis, db: asyncpg.Connection
) -> None:
    async with scene(redis, db) as s:
        v = s.venue
        opened = v.fill("ETH", "B", "3", "3000")
        await v.emit(opened)
        assert await s.orders(1) == [("ETH", "buy", "0.3", False, str(opened["tid"]))]
        before: int = (await s.listener())["reconnects"]

        # Act: the socket stays open but goes silent (no fills, no pongs).
        s.running.proxy.freeze()

        async def reconnected() -> bool:
            count: int = (await s.listener())["reconnects"]
            return count > before

        await eventually(reconnected, "the idle timeout to reconnect", WAIT_S)
        silent_1 = v.fill("ETH", "A", "1", "3050")
        silent_2 = v.fill("BTC", "A", "0.1", "61000")
        v.add(silent_1, silent_2)
        s.running.proxy.thaw()

        # Assert
        orders = await s.orders(3)
        assert orders == [
            ("ETH", "buy", "0.3", False, str(opened["tid"])),
            ("ETH", "sell", "0.1", True, str(silent_1["tid"])),
            ("BTC", "sell", "0.01", False, str(silent_2["tid"])),
        ]

        async def connected() -> dict[str, Any] | None:
            state = await s.listener()
            return state if state["state"] == "connected" else None

        state = await eventually(connected, "the listener to be connected again", WAIT_S)
        assert state["reconnects"] > before
        assert v.connections >= 2
