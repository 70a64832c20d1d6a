"""A follower's orders over Binance USD-M's websocket order API (``ws-fapi``), REST the
fallback: the same desk as ``test_binance_execution`` (live service, push leader, fake
account), with the account naming the fake's order socket."""

from __future__ import annotations

import pytest

from tests.integration.venues.test_binance_execution import Desk, desk
from tests.support import eventually

__all__ = ["desk"]  # the fixture, shared with the REST tests

pytestmark = pytest.mark.ws_orders


def rest_queries(desk: Desk, oid: str) -> int:
    return sum(
        1
        for c in desk.venue.rest_calls
        if c.path == "/fapi/v1/order"
        and c.method == "GET"
        and c.query.get("origClientOrderId") == oid
    )


async def test_an_order_is_placed_over_the_order_socket(desk: Desk) -> None:
    # Act
    oid = await desk.fill("buy", "1")

    # Assert: order.place, signed, carried the order; REST placed nothing
    order = await desk.order_in(oid, "filled")
    (sent,) = desk.venue.ws_api.orders
    assert (sent["newClientOrderId"], sent["side"], sent["type"]) == (oid, "BUY", "MARKET")
    assert sent["quantity"] == "0.1"
    assert sent["apiKey"] == desk.venue.api_key
    assert len(sent["signature"]) == 64
    assert isinstance(sent["timestamp"], int)
    assert desk.venue.order_calls() == []
    assert desk.venue.placements == {oid: 1}
    assert (order["filled_qty"], order["avg_price"]) == ("0.1", "50000")


async def test_a_refusal_over_the_socket_keeps_its_reason_and_code(desk: Desk) -> None:
    # Arrange
    desk.venue.rules = {}

    # Act
    oid = await desk.fill("buy", "1")

    # Assert
    order = await desk.order_in(oid, "rejected")
    assert order["events"][-1]["reason"].startswith("unknown_symbol: -1121 ")
    assert len(desk.venue.ws_api.orders) == 1


async def test_a_socket_dropped_after_sending_is_queried_not_sent_twice(desk: Desk) -> None:
    # Arrange: the venue places the order, then closes the socket unanswered
    desk.venue.ws_api.drop_after_place = 1

    # Act
    oid = await desk.fill("buy", "1")

    # Assert: found by client id over REST (the private stream may report it first), once
    await desk.order_in(oid, "filled")

    async def queried() -> bool:
        return rest_queries(desk, oid) >= 1

    await eventually(queried, "the query by client id", within_s=30)
    assert desk.venue.placements[oid] == 1
    assert len(desk.venue.ws_api.orders) == 1
    assert desk.venue.order_calls() == []


@pytest.mark.settings(order_ttl_s=1.0)
async def test_an_order_past_its_deadline_while_the_socket_opens_is_not_sent(desk: Desk) -> None:
    # Arrange: the socket's handshake outlasts the order's validity
    desk.venue.ws_api.accept_delay_s = 2.5

    # Act
    oid = await desk.fill("buy", "1")

    # Assert: expired, saying why, and nothing reached the venue by either way
    order = await desk.order_in(oid, "expired")
    assert order["events"][-1]["reason"] == "expired before it was sent"
    assert desk.venue.ws_api.orders == []
    assert desk.venue.order_calls() == []
    assert desk.venue.placements.get(oid, 0) == 0


async def test_orders_go_over_rest_while_the_socket_is_unavailable(desk: Desk) -> None:
    # Arrange: the order socket refuses its handshake
    desk.venue.ws_api.down = True

    # Act
    oid = await desk.fill("buy", "1")

    # Assert
    await desk.order_in(oid, "filled")
    assert [c["newClientOrderId"] for c in desk.venue.order_calls()] == [oid]
    assert desk.venue.ws_api.orders == []
    assert desk.venue.placements[oid] == 1


async def test_a_429_on_the_socket_backs_off_then_places_once(desk: Desk) -> None:
    # Arrange
    desk.venue.throttle = 1

    # Act
    oid = await desk.fill("buy", "1")

    # Assert
    await desk.order_in(oid, "filled")
    assert len(desk.venue.ws_api.orders) == 2
    assert desk.venue.placements[oid] == 1
