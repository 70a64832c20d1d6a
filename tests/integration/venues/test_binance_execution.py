"""A follower trading on Binance USD-M: the live service (every role), a push leader, and the
loopback trading account. Each test follows a leader fill to the order the venue received,
and the venue's answers back to the order's status, events and the actual position.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection

from app.domain.ids import order_id
from tests.support import (
    Api,
    LiveServer,
    eventually,
    fill_frame,
    push_socket,
    send_frame,
    start_live_server,
)
from tests.venues.binance_usdm_trading import FakeBinanceTrading
from tests.venues.binance_usdm_ws_api import WS_FAPI_PATH
from tests.venues.harness import Running, run_venue, venue_settings


@dataclass
class Desk:
    api: Api
    server: LiveServer
    running: Running
    venue: FakeBinanceTrading
    redis: Redis
    leader: dict[str, Any]
    follower_id: str
    subscription_id: str
    ws: ClientConnection
    fills: int = 0

    async def fill(self, side: str, qty: str, price: str = "50000") -> str:
        """The leader fills; return the follower's order id."""
        self.fills += 1
        fill_id = f"fill-{self.fills}"
        reply = await send_frame(self.ws, fill_frame(fill_id, "BTCUSDT", side, qty, price))
        assert reply["type"] == "ack", reply
        return order_id(self.leader["id"], fill_id, self.subscription_id)

    async def order(self, oid: str) -> dict[str, Any]:
        body: dict[str, Any] = await self.api.call(
            "GET", f"/v1/followers/{self.follower_id}/orders/{oid}", 200
        )
        return body

    async def order_in(self, oid: str, *statuses: str) -> dict[str, Any]:
        async def done() -> bool:
            return (await self.order(oid))["status"] in statuses

        await eventually(done, f"order {oid} {statuses}", within_s=30)
        return await self.order(oid)

    async def account(self) -> dict[str, Any]:
        body: dict[str, Any] = await self.api.call(
            "GET", f"/v1/followers/{self.follower_id}/account", 200
        )
        return body


def account_body(
    venue: FakeBinanceTrading, running: Running, ws_orders: bool = False
) -> dict[str, str]:
    body = {
        "kind": "binance-usdm",
        "api_key": venue.api_key,
        "api_secret": venue.api_secret,
        "rest_url": running.rest_url,
        "ws_url": running.ws_base,
    }
    if ws_orders:
        body["ws_api_url"] = running.ws_base + WS_FAPI_PATH
    return body


@pytest.fixture
async def desk(redis: Redis, request: pytest.FixtureRequest) -> AsyncIterator[Desk]:
    venue = FakeBinanceTrading()
    marker = request.node.get_closest_marker("venue")
    for name, value in (marker.kwargs if marker else {}).items():
        setattr(venue, name, value)
    overrides = request.node.get_closest_marker("settings")
    settings = venue_settings(
        account_equity_interval_s=0.3, **(overrides.kwargs if overrides else {})
    )
    async with run_venue(venue) as running, start_live_server(settings) as server:
        api = Api(server.http)
        await api.instrument("BTCUSDT", qty_step="0.001", min_qty="0.001", price_step="0.1")
        leader = await api.leader()
        await api.leader_equity(leader["id"], "100000")
        follower = await api.follower()
        sub = await api.subscribe(follower["id"], leader["id"])
        out = await api.call(
            "PUT",
            f"/v1/followers/{follower['id']}/account",
            200,
            json=account_body(
                venue, running, ws_orders=request.node.get_closest_marker("ws_orders") is not None
            ),
        )
        assert venue.api_secret not in json.dumps(out)
        async with push_socket(server.ws_url, leader["id"], leader["push_token"]) as ws:
            desk = Desk(api, server, running, venue, redis, leader, follower["id"], sub["id"], ws)
            if not (marker and marker.kwargs.get("dual_side")):
                await eventually(
                    lambda: _ready(desk), "the account read from the venue", within_s=30
                )
            yield desk


async def _ready(desk: Desk) -> bool:
    account = await desk.account()
    return bool(account["status"] == "ready" and account["equity"] is not None)


async def test_a_leader_fill_becomes_the_right_order_at_the_venue(desk: Desk) -> None:
    # Arrange: the follower's equity is the venue's 10,000, a tenth of the leader's
    assert (await desk.account())["equity"] == "10000"

    # Act
    opened = await desk.fill("buy", "1")
    shown = await desk.order_in(opened, "filled")
    closed = await desk.fill("sell", "1", "51000")
    await desk.order_in(closed, "filled")

    # Assert: the orders as the venue received them
    first, second = desk.venue.order_calls()
    assert (first["newClientOrderId"], first["side"], first["type"]) == (opened, "BUY", "MARKET")
    assert first["quantity"] == "0.1"
    assert "reduceOnly" not in first
    assert (second["newClientOrderId"], second["side"], second["quantity"]) == (
        closed,
        "SELL",
        "0.1",
    )
    assert second["reduceOnly"] == "true"
    assert desk.venue.placements == {opened: 1, closed: 1}
    assert (shown["filled_qty"], shown["avg_price"]) == ("0.1", "50000")
    assert desk.venue.positions["BTCUSDT"] == 0


async def test_fills_in_parts_move_the_status_and_the_actual_position(desk: Desk) -> None:
    # Arrange
    desk.venue.fill_parts = 4

    # Act
    oid = await desk.fill("buy", "2")

    # Assert: reported through the user stream, part by part, to the end
    order = await desk.order_in(oid, "filled")
    assert order["filled_qty"] == "0.2"
    statuses = [e["status"] for e in order["events"]]
    assert statuses[0] == "accepted"
    assert "partially_filled" in statuses

    async def venue_actual() -> bool:
        rows = await desk.api.call("GET", f"/v1/followers/{desk.follower_id}/positions", 200)
        return any(r["actual"] == "0.2" and r["actual_source"] == "venue" for r in rows)

    await eventually(venue_actual, "the venue's position in GET positions", within_s=30)
    rows = await desk.api.call("GET", f"/v1/followers/{desk.follower_id}/positions", 200)
    assert rows[0]["symbol_target"] == "0.2"


@pytest.mark.parametrize(
    ("venue_change", "reason", "code"),
    [
        ({"rules": {}}, "unknown_symbol", "-1121"),
        ({"equity": Decimal("100")}, "insufficient_margin", "-2019"),
        ({"prices": {"BTCUSDT": Decimal("500")}}, "below_min_notional", "-4164"),
    ],
)
async def test_a_venue_rejection_is_reported_with_its_reason_and_code(
    desk: Desk, venue_change: dict[str, Any], reason: str, code: str
) -> None:
    # Arrange
    for name, value in venue_change.items():
        setattr(desk.venue, name, value)

    # Act
    oid = await desk.fill("buy", "1")

    # Assert
    order = await desk.order_in(oid, "rejected")
    assert order["events"][-1]["reason"].startswith(f"{reason}: {code} ")
    assert desk.venue.placements[oid] == 0


async def test_a_reduce_only_order_without_a_position_is_rejected(desk: Desk) -> None:
    # Arrange: the follower holds what sizing assumes, but the venue's position was closed
    opened = await desk.fill("buy", "1")
    await desk.order_in(opened, "filled")
    desk.venue.positions["BTCUSDT"] = Decimal(0)

    # Act
    closed = await desk.fill("sell", "1")

    # Assert
    order = await desk.order_in(closed, "rejected")
    assert order["events"][-1]["reason"].startswith("reduce_only_rejected: -2022 ")


async def test_a_429_backs_off_then_places_the_order_once(desk: Desk) -> None:
    # Arrange
    desk.venue.throttle = 1

    # Act
    oid = await desk.fill("buy", "1")

    # Assert
    await desk.order_in(oid, "filled")
    assert desk.venue.order_requests == 2
    assert desk.venue.placements[oid] == 1


@pytest.mark.settings(order_ttl_s=1.0)
async def test_an_order_held_back_by_rate_limits_expires_and_says_so(desk: Desk) -> None:
    # Arrange
    desk.venue.throttle = 1000

    # Act
    oid = await desk.fill("buy", "1")

    # Assert
    order = await desk.order_in(oid, "expired")
    assert order["events"][-1]["reason"].startswith("rate_limited: ")
    assert desk.venue.placements[oid] == 0


async def test_an_unknown_outcome_is_resolved_by_query_not_by_resending(desk: Desk) -> None:
    # Arrange: the venue places the order but answers 503
    desk.venue.lose_answers = 1

    # Act
    oid = await desk.fill("buy", "1")

    # Assert
    await desk.order_in(oid, "filled")
    assert desk.venue.placements[oid] == 1
    assert len(desk.venue.order_calls()) == 1


async def test_equity_read_from_the_venue_sizes_the_next_fill(desk: Desk) -> None:
    # Arrange: the account grows to 20,000
    desk.venue.equity = Decimal("20000")

    async def grown() -> bool:
        return bool((await desk.account())["equity"] == "20000")

    await eventually(grown, "the new equity read", within_s=30)

    # Act
    oid = await desk.fill("buy", "1")

    # Assert: a fifth of the leader's move now
    order = await desk.order_in(oid, "filled")
    assert order["qty"] == "0.2"
    assert desk.venue.order_calls()[-1]["quantity"] == "0.2"


@pytest.mark.venue(dual_side=True)
async def test_a_hedge_mode_account_is_refused(desk: Desk) -> None:
    async def refused() -> bool:
        return bool((await desk.account())["status"] == "error")

    await eventually(refused, "the account in error", within_s=30)
    assert "hedge mode" in (await desk.account())["last_error"]


@pytest.mark.venue(dual_side=True)
async def test_disconnecting_expires_the_queued_orders_and_removes_the_group(desk: Desk) -> None:
    # Arrange: an account in hedge mode trades nothing, so its orders wait in the stream
    async def refused() -> bool:
        return bool((await desk.account())["status"] == "error")

    await eventually(refused, "the account in error", within_s=30)
    await desk.api.follower_equity(desk.follower_id, "10000")
    oid = await desk.fill("buy", "1")
    stream = f"copytrade:orders:{{{desk.follower_id}}}"

    async def queued() -> bool:
        return bool(await desk.redis.xlen(stream) == 1)

    await eventually(queued, "the order in the stream", within_s=30)

    # Act
    await desk.api.call("DELETE", f"/v1/followers/{desk.follower_id}/account", 204)

    # Assert
    order = await desk.order_in(oid, "expired")
    assert order["events"][-1]["reason"] == "account_disconnected"
    groups = await desk.redis.xinfo_groups(stream)
    assert "copytrade-exec" not in [g["name"] for g in groups]
    await desk.api.call("GET", f"/v1/followers/{desk.follower_id}/account", 404)
    assert desk.venue.placements == {}


async def test_reconnecting_with_new_keys_rebuilds_the_executor(desk: Desk) -> None:
    # Arrange: keys the venue refuses
    path = f"/v1/followers/{desk.follower_id}/account"
    wrong = {**account_body(desk.venue, desk.running), "api_key": "not-the-key"}
    await desk.api.call("PUT", path, 200, json=wrong)

    async def refused() -> bool:
        return bool((await desk.account())["status"] == "error")

    await eventually(refused, "the account in error", within_s=30)
    assert "refused the API key" in (await desk.account())["last_error"]

    # Act: the right keys again
    await desk.api.call("PUT", path, 200, json=account_body(desk.venue, desk.running))
    await eventually(lambda: _ready(desk), "the account ready again", within_s=30)
    oid = await desk.fill("buy", "1")

    # Assert
    await desk.order_in(oid, "filled")
    assert desk.venue.placements[oid] == 1
