"""Followers trading on Bybit and on OKX: the live service (every role), a push leader, and
the loopback trading account. Each test follows a leader fill to the order the venue received
(side, quantity in the venue's units, reduce-only, client id), and the venue's answers back to
the order's status, events and the follower's actual position."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from app.domain.ids import order_id
from app.venues.okx.ids import cl_ord_id
from tests.support import Api, eventually, fill_frame, push_socket, send_frame, start_live_server
from tests.venues import bybit_trading, fake_okx
from tests.venues.bybit_trading import BybitTrading
from tests.venues.harness import Running, run_venue, venue_settings
from tests.venues.okx_trading import OkxTrading

Fake = BybitTrading | OkxTrading


@dataclass(frozen=True)
class Venue:
    kind: str
    symbol: str
    make: Callable[[], Fake]
    keys: dict[str, str]
    # What the venue received: (client id, side, qty in the venue's units, reduce-only).
    sent: Callable[[dict[str, Any]], tuple[str, str, str, bool]]
    client_id: Callable[[str], str]
    create_path: str

    def account_body(self, running: Running) -> dict[str, str]:
        return {
            "kind": self.kind,
            **self.keys,
            "rest_url": running.rest_url,
            "ws_url": running.ws_base + running.venue.ws_path,
        }


BYBIT = Venue(
    "bybit",
    "BTCUSDT",
    BybitTrading,
    {"api_key": bybit_trading.API_KEY, "api_secret": bybit_trading.API_SECRET},
    lambda o: (o["orderLinkId"], o["side"], o["qty"], o["reduceOnly"]),
    lambda oid: oid,
    "/v5/order/create",
)
OKX = Venue(
    "okx",
    "BTC-USDT-SWAP",
    OkxTrading,
    {
        "api_key": fake_okx.API_KEY,
        "api_secret": fake_okx.API_SECRET,
        "passphrase": fake_okx.PASSPHRASE,
        "td_mode": "cross",
    },
    lambda o: (o["clOrdId"], o["side"], o["sz"], o["reduceOnly"]),
    cl_ord_id,
    "/api/v5/trade/order",
)


@dataclass
class Desk:
    api: Api
    running: Running
    venue: Venue
    fake: Fake
    leader: dict[str, Any]
    follower_id: str
    subscription_id: str
    ws: ClientConnection
    fills: int = 0

    async def fill(self, side: str, qty: str, price: str = "50000") -> str:
        """The leader fills; return the follower's order id."""
        self.fills += 1
        fill_id = f"fill-{self.fills}"
        frame = fill_frame(fill_id, self.venue.symbol, side, qty, price)
        reply = await send_frame(self.ws, frame)
        assert reply["type"] == "ack", reply
        return order_id(self.leader["id"], fill_id, self.subscription_id)

    async def order(self, oid: str) -> dict[str, Any]:
        path = f"/v1/followers/{self.follower_id}/orders/{oid}"
        body: dict[str, Any] = await self.api.call("GET", path, 200)
        return body

    async def order_in(self, oid: str, *statuses: str) -> dict[str, Any]:
        async def done() -> bool:
            return (await self.order(oid))["status"] in statuses

        await eventually(done, f"order {oid} {statuses}", within_s=30)
        return await self.order(oid)

    async def account(self) -> dict[str, Any]:
        path = f"/v1/followers/{self.follower_id}/account"
        body: dict[str, Any] = await self.api.call("GET", path, 200)
        return body

    def sent(self) -> list[tuple[str, str, str, bool]]:
        return [
            self.venue.sent(json.loads(call.body))
            for call in self.fake.rest_calls
            if call.path == self.venue.create_path and call.method == "POST"
        ]


@pytest.fixture(params=[BYBIT, OKX], ids=["bybit", "okx"])
async def desk(redis: object, request: pytest.FixtureRequest) -> AsyncIterator[Desk]:
    venue: Venue = request.param
    fake = venue.make()
    marker = request.node.get_closest_marker("venue")
    hedged = bool(marker and marker.kwargs.get("hedged"))
    if hedged and isinstance(fake, BybitTrading):
        fake.hedge, fake.positions[venue.symbol] = True, Decimal("0.01")
    elif hedged and isinstance(fake, OkxTrading):
        fake.pos_mode = "long_short_mode"
    settings = venue_settings(account_equity_interval_s=0.3)
    async with run_venue(fake) as running, start_live_server(settings) as server:
        api = Api(server.http)
        await api.instrument(venue.symbol, qty_step="0.001", min_qty="0.001", price_step="0.1")
        leader = await api.leader()
        await api.leader_equity(leader["id"], "100000")
        follower = await api.follower()
        sub = await api.subscribe(follower["id"], leader["id"])
        path = f"/v1/followers/{follower['id']}/account"
        out = await api.call("PUT", path, 200, json=venue.account_body(running))
        assert venue.keys["api_secret"] not in json.dumps(out)
        async with push_socket(server.ws_url, leader["id"], leader["push_token"]) as ws:
            desk = Desk(api, running, venue, fake, leader, follower["id"], sub["id"], ws)
            if not hedged:
                await eventually(
                    lambda: _ready(desk), "the account read from the venue", within_s=30
                )
            yield desk


async def _ready(desk: Desk) -> bool:
    account = await desk.account()
    return bool(account["status"] == "ready" and account["equity"] is not None)


async def test_a_leader_fill_becomes_the_right_order_at_the_venue(desk: Desk) -> None:
    # Arrange: the follower's equity is the venue's 10,000, a tenth of the leader's
    assert Decimal((await desk.account())["equity"]) == 10000
    buy, sell = ("Buy", "Sell") if desk.venue.kind == "bybit" else ("buy", "sell")
    qty = "0.1" if desk.venue.kind == "bybit" else "10"  # OKX: 0.1 BTC is 10 contracts of 0.01

    # Act
    opened = await desk.fill("buy", "1")
    shown = await desk.order_in(opened, "filled")
    closed = await desk.fill("sell", "1", "51000")
    await desk.order_in(closed, "filled")

    # Assert: the orders as the venue received them, each once
    assert desk.sent() == [
        (desk.venue.client_id(opened), buy, qty, False),
        (desk.venue.client_id(closed), sell, qty, True),
    ]
    assert set(desk.fake.placements.values()) == {1}
    assert (shown["filled_qty"], shown["avg_price"]) == ("0.1", "50000")
    assert desk.fake.positions[desk.venue.symbol] == 0


async def test_fills_in_parts_move_the_status_and_the_actual_position(desk: Desk) -> None:
    # Arrange
    desk.fake.fill_parts = 4

    # Act
    oid = await desk.fill("buy", "2")

    # Assert: reported from the venue part by part, to the end
    order = await desk.order_in(oid, "filled")
    assert order["filled_qty"] == "0.2"
    statuses = [e["status"] for e in order["events"]]
    assert statuses[0] == "accepted"

    async def venue_actual() -> bool:
        rows = await desk.api.call("GET", f"/v1/followers/{desk.follower_id}/positions", 200)
        return any(r["actual"] == "0.2" and r["actual_source"] == "venue" for r in rows)

    await eventually(venue_actual, "the venue's position in GET positions", within_s=30)


async def test_a_venue_rejection_is_reported_with_its_reason_and_code(desk: Desk) -> None:
    # Arrange: the account cannot margin a tenth of a bitcoin
    if isinstance(desk.fake, BybitTrading):
        desk.fake.wallet_balance, code = Decimal(100), "110007"
    else:
        desk.fake.available, code = Decimal(100), "51008"

    # Act
    oid = await desk.fill("buy", "1")

    # Assert
    order = await desk.order_in(oid, "rejected")
    assert order["events"][-1]["reason"].startswith(f"insufficient_margin: {code} ")
    assert not desk.fake.placements


async def test_a_rate_limit_backs_off_then_places_the_order_once(desk: Desk) -> None:
    # Arrange: the venue refuses the next order with its rate-limit code
    desk.fake.throttle = 1

    # Act
    oid = await desk.fill("buy", "1")

    # Assert
    await desk.order_in(oid, "filled")
    assert len(desk.sent()) == 2
    assert desk.fake.placements[desk.venue.client_id(oid)] == 1


async def test_an_unknown_outcome_is_resolved_by_query_not_by_resending(desk: Desk) -> None:
    # Arrange: the venue places the order but the answer is lost (502)
    desk.fake.lose_answers = True

    # Act
    oid = await desk.fill("buy", "1")

    # Assert
    await desk.order_in(oid, "filled")
    assert desk.fake.placements[desk.venue.client_id(oid)] == 1


async def test_equity_read_from_the_venue_sizes_the_next_fill(desk: Desk) -> None:
    # Arrange: the account grows to 20,000
    if isinstance(desk.fake, BybitTrading):
        desk.fake.wallet_balance = Decimal(20000)
    else:
        desk.fake.total_eq = Decimal(20000)

    async def grown() -> bool:
        return Decimal((await desk.account())["equity"]) == 20000

    await eventually(grown, "the new equity read", within_s=30)

    # Act
    oid = await desk.fill("buy", "1")

    # Assert: a fifth of the leader's move now
    order = await desk.order_in(oid, "filled")
    assert order["qty"] == "0.2"
    assert desk.sent()[-1][2] == ("0.2" if desk.venue.kind == "bybit" else "20")


@pytest.mark.venue(hedged=True)
async def test_a_hedge_mode_account_is_refused(desk: Desk) -> None:
    async def refused() -> bool:
        return bool((await desk.account())["status"] == "error")

    await eventually(refused, "the account in error", within_s=30)
    assert "hedge mode" in (await desk.account())["last_error"]
