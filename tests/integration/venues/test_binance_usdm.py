"""A Binance USD-M leader end to end: the live service, the loopback venue, real follower orders.

The leader is created over the API with its credentials and the fake venue's URLs; the
service fetches a listenKey, opens the stream through a proxy that can stall or drop it,
backfills over signed REST, and sizes every fill for a follower with a tenth of the leader's
equity. Each test asserts the exact orders in the follower's Redis stream.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from tests.support import Api, LiveServer, eventually, read_stream, start_live_server
from tests.venues.fake_binance_usdm import FakeBinanceUsdm
from tests.venues.harness import Running, run_venue, venue_settings

FIXTURES = Path(__file__).resolve().parents[2] / "venues" / "fixtures" / "binance_usdm"


@dataclass
class Desk:
    api: Api
    server: LiveServer
    running: Running
    venue: FakeBinanceUsdm
    redis: Redis
    db: asyncpg.Connection
    leader_id: str
    follower_id: str

    async def orders(self, count: int) -> list[tuple[str, str, str, str, bool]]:
        """The follower's stream once it holds ``count`` orders: (leader fill id, symbol,
        side, qty, reduce_only) each, sorted. Sorted because the stream's order across fills
        is not a promise (an order the relay delivers lands after later ones); the quantities
        show the fills were applied in the venue's order."""
        await eventually(lambda: self._streamed(count), f"{count} orders", 30)
        orders = await read_stream(self.redis, self.follower_id)
        return sorted(
            (o["leader_fill_id"], o["symbol"], o["side"], o["qty"], o["reduce_only"])
            for o in orders
        )

    async def _streamed(self, count: int) -> bool:
        orders = await read_stream(self.redis, self.follower_id)
        assert len(orders) <= count, [o["leader_fill_id"] for o in orders]
        return len(orders) == count

    async def listener(self) -> dict[str, Any]:
        leader = await self.api.call("GET", f"/v1/leaders/{self.leader_id}", 200)
        state: dict[str, Any] = leader["listener"]
        return state


def _outbox_empty(desk: Desk, fills: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        counts = await desk.db.fetchrow(
            "SELECT count(*) AS fills, count(*) FILTER (WHERE dispatched_at IS NULL) AS waiting"
            " FROM leader_fill WHERE leader_id = $1",
            desk.leader_id,
        )
        return counts is not None and (counts["fills"], counts["waiting"]) == (fills, 0)

    return check


@pytest.fixture
async def desk(redis: Redis, db: asyncpg.Connection) -> AsyncIterator[Desk]:
    venue = FakeBinanceUsdm()
    settings = venue_settings()
    async with run_venue(venue) as running, start_live_server(settings) as server:
        api = Api(server.http)
        follower = await api.follower()
        await api.follower_equity(follower["id"], "10000")
        for symbol, step in (("BTCUSDT", "0.001"), ("ETHUSDT", "0.01"), ("SOLUSDT", "0.1")):
            await api.instrument(symbol, qty_step=step, min_qty=step)
        feed = {
            "kind": "binance-usdm",
            "api_key": venue.api_key,
            "api_secret": venue.api_secret,
            "rest_url": running.rest_url,
            "ws_url": running.ws_base,
        }
        leader = await api.call("POST", "/v1/leaders", 201, json={"name": "bn", "feed": feed})
        shown = await api.call("GET", f"/v1/leaders/{leader['id']}", 200)
        for body in (leader, shown):
            text = json.dumps(body)
            assert venue.api_key not in text
            assert venue.api_secret not in text
        assert shown["feed"]["kind"] == "binance-usdm"
        await api.subscribe(follower["id"], leader["id"])
        await venue.wait_subscribed()
        yield Desk(api, server, running, venue, redis, db, leader["id"], follower["id"])


async def test_a_normal_run_of_fills(desk: Desk) -> None:
    # Arrange: executions only the stream shows (so that the start-up backfill, which may
    # still be running, cannot deliver them first: this test is about the stream)
    venue = desk.venue
    buy_1 = venue.trade(
        "BTCUSDT", "BUY", "1", "50000", order_id=71, status="PARTIALLY_FILLED", in_history=False
    )
    buy_2 = venue.trade("BTCUSDT", "BUY", "1", "50010", order_id=71, in_history=False)
    eth = venue.trade("ETHUSDT", "BUY", "10", "3000", in_history=False)
    liquidation = venue.trade(
        "BTCUSDT",
        "SELL",
        "2",
        "45000",
        client_order_id="autoclose-1596107620040000020",
        order_type="LIQUIDATION",
        in_history=False,
    )
    lite = json.loads((FIXTURES / "trade_lite.json").read_text())

    # Act: executions among messages that are not
    await venue.push((FIXTURES / "order_update_new.json").read_text())
    await venue.push(buy_1)
    await venue.push(buy_2)
    await venue.push({**lite, "t": buy_2["o"]["t"]})
    await venue.push((FIXTURES / "account_update.json").read_text())
    await venue.push((FIXTURES / "unknown_event.json").read_text())
    await venue.push((FIXTURES / "malformed.txt").read_text())
    await venue.push((FIXTURES / "calculated.json").read_text())
    await venue.push(eth)
    await venue.push(liquidation)

    # Assert: a tenth of each move, the liquidation followed down to flat
    assert await desk.orders(4) == sorted(
        [
            ("BTCUSDT:5001", "BTCUSDT", "buy", "0.1", False),
            ("BTCUSDT:5002", "BTCUSDT", "buy", "0.1", False),
            ("ETHUSDT:5001", "ETHUSDT", "buy", "1", False),
            ("BTCUSDT:5003", "BTCUSDT", "sell", "0.2", True),
        ]
    )
    rows = await desk.db.fetch(
        "SELECT fill_id, qty, price, fee, fee_asset, reduce_only, liquidation FROM leader_fill"
        " WHERE leader_id = $1 ORDER BY id",
        desk.leader_id,
    )
    assert [tuple(r) for r in rows] == [
        ("BTCUSDT:5001", Decimal(1), Decimal(50000), Decimal("20.00000000"), "USDT", False, False),
        ("BTCUSDT:5002", Decimal(1), Decimal(50010), Decimal("20.00400000"), "USDT", False, False),
        ("ETHUSDT:5001", Decimal(10), Decimal(3000), Decimal("12.00000000"), "USDT", False, False),
        ("BTCUSDT:5003", Decimal(2), Decimal(45000), Decimal("36.00000000"), "USDT", False, True),
    ]
    metrics = (await desk.server.http.get("/metrics")).text
    assert 'copytrade_frames_rejected_total{source="binance-usdm"} 1.0' in metrics


async def test_fills_made_while_disconnected_are_backfilled_once(desk: Desk) -> None:
    # Arrange: one live fill, then the venue drops the stream and refuses new ones
    venue = desk.venue
    await venue.push(venue.trade("BTCUSDT", "BUY", "1", "50000"))
    await desk.orders(1)
    venue.accepting = False
    await venue.drop()

    # Act: trades only in the history (SOLUSDT opened and closed: no position remains),
    # and one that the stream also delivers once it is back
    venue.trade("BTCUSDT", "SELL", "0.5", "51000")
    venue.trade("SOLUSDT", "BUY", "100", "150")
    venue.trade("SOLUSDT", "SELL", "100", "151")
    both = venue.trade("ETHUSDT", "BUY", "5", "3000")
    await eventually(_reconnected(desk, 1), "a failed reconnect", 30)
    venue.accepting = True
    await venue.wait_subscribed()
    await venue.push(both)

    # Assert: every fill exactly once, in the venue's order
    assert await desk.orders(5) == sorted(
        [
            ("BTCUSDT:5001", "BTCUSDT", "buy", "0.1", False),
            ("BTCUSDT:5002", "BTCUSDT", "sell", "0.05", True),
            ("SOLUSDT:5001", "SOLUSDT", "buy", "10", False),
            ("SOLUSDT:5002", "SOLUSDT", "sell", "10", True),
            ("ETHUSDT:5001", "ETHUSDT", "buy", "0.5", False),
        ]
    )
    await eventually(_listener_has(desk, backfilled=4), "the backfill count", 30)
    # Every recorded fill handed to Redis: the outbox relay has nothing left to send late.
    await eventually(_outbox_empty(desk, fills=5), "every fill dispatched", 30)
    assert len(await read_stream(desk.redis, desk.follower_id)) == 5


async def test_a_silent_socket_is_replaced_and_its_gap_backfilled(desk: Desk) -> None:
    # Arrange
    venue, proxy = desk.venue, desk.running.proxy
    await venue.push(venue.trade("BTCUSDT", "BUY", "2", "50000"))
    await desk.orders(1)
    before = (await desk.listener())["reconnects"]

    # Act: the stream stalls (no messages, no pongs); the leader closes meanwhile
    proxy.freeze()
    closing = venue.trade("BTCUSDT", "SELL", "2", "52000", reduce_only=True)
    await eventually(_reconnected(desk, before + 1), "the idle timeout", 30)
    proxy.thaw()
    await venue.push(closing)  # if the new stream is already up, it also comes live

    # Assert
    assert await desk.orders(2) == sorted(
        [
            ("BTCUSDT:5001", "BTCUSDT", "buy", "0.2", False),
            ("BTCUSDT:5002", "BTCUSDT", "sell", "0.2", True),
        ]
    )


async def test_an_expired_listen_key_is_replaced(desk: Desk) -> None:
    # Arrange
    venue = desk.venue
    old_key = venue.listen_key
    # A lease read before the listener's first report carries no counters yet: none so far.
    before = (await desk.listener()).get("reconnects", 0)
    venue.subscribed.clear()

    # Act: a trade the stream does not deliver, then the venue expires the key
    venue.trade("ETHUSDT", "SELL", "4", "2900")
    await venue.expire_listen_key()
    await venue.wait_subscribed()

    # Assert
    assert await desk.orders(1) == [("ETHUSDT:5001", "ETHUSDT", "sell", "0.4", False)]
    assert venue.listen_key not in (None, old_key)
    state = await desk.listener()
    assert state["reconnects"] > before
    assert "StreamExpired" in (state["last_error"] or "")


async def test_equity_is_read_from_the_venue_and_stored(desk: Desk) -> None:
    # Arrange
    leader_equity = "SELECT equity FROM equity_snapshot WHERE leader_id = $1"

    # Act
    desk.venue.equity = Decimal("120000.5")

    # Assert: the first reading, then the new one on the next refresh
    async def stored() -> bool:
        values = {r["equity"] for r in await desk.db.fetch(leader_equity, desk.leader_id)}
        assert values <= {Decimal(100000), Decimal("120000.5")}
        return values == {Decimal(100000), Decimal("120000.5")}

    await eventually(stored, "both equity snapshots", 30)
    await desk.venue.push(desk.venue.trade("BTCUSDT", "BUY", "1", "50000"))
    # 1 BTC x 10000 / 120000.5 = 0.0833329..., rounded down to the 0.001 step
    assert await desk.orders(1) == [("BTCUSDT:5001", "BTCUSDT", "buy", "0.083", False)]


def _reconnected(desk: Desk, at_least: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return int((await desk.listener())["reconnects"]) >= at_least

    return check


def _listener_has(desk: Desk, backfilled: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return int((await desk.listener())["backfilled"]) >= backfilled

    return check
