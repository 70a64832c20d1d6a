"""Bybit orders over the websocket trade stream (``/v5/trade``), REST the fallback: the
execution client against the loopback unified account, its trade socket named."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from app.venues.bybit.execution import BybitExecution
from app.venues.execution import OrderState, OutcomeUnknown, RateLimited
from tests.integration.venues.test_bybit_execution import _client as bybit_client
from tests.integration.venues.test_bybit_execution import request, sent_orders, venue
from tests.venues.bybit_trade_socket import TRADE_PATH
from tests.venues.bybit_trading import API_SECRET, BybitTrading
from tests.venues.harness import Running, run_venue


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    async with run_venue(BybitTrading()) as running:
        yield running


def _client(running: Running, secret: str = API_SECRET) -> BybitExecution:
    return bybit_client(running, secret, ws_orders_url=running.ws_base + TRADE_PATH)


@pytest.fixture
async def client(running: Running) -> AsyncIterator[BybitExecution]:
    client = _client(running)
    yield client
    await client.close()


async def test_an_order_is_created_over_the_trade_socket(
    running: Running, client: BybitExecution
) -> None:
    fake = venue(running)
    order = request("0.012")

    placed = await client.place(order)

    [sent] = fake.trade_socket.orders
    assert sent["op"] == "order.create"
    assert set(sent["header"]) == {"X-BAPI-TIMESTAMP", "X-BAPI-RECV-WINDOW"}
    assert sent["args"][0]["orderLinkId"] == order.client_id
    assert sent["args"][0]["qty"] == "0.012"
    assert sent_orders(fake) == []
    assert placed.state is OrderState.ACCEPTED
    assert placed.venue_order_id == fake.orders[order.client_id]["orderId"]
    assert fake.placements[order.client_id] == 1


async def test_a_refusal_over_the_socket_keeps_its_code(
    running: Running, client: BybitExecution
) -> None:
    venue(running).wallet_balance = Decimal(1)

    placed = await client.place(request("0.1"))

    assert placed.state is OrderState.REJECTED
    assert placed.raw_code == "110007"


async def test_a_socket_dropped_after_sending_is_unknown_and_the_query_finds_it(
    running: Running, client: BybitExecution
) -> None:
    fake = venue(running)
    fake.trade_socket.drop_after_place = 1
    order = request("0.01")

    with pytest.raises(OutcomeUnknown):
        await client.place(order)
    await fake.settled()
    found = await client.query("BTCUSDT", order.client_id)

    assert found is not None
    assert found.state is OrderState.FILLED
    assert fake.placements[order.client_id] == 1
    assert sent_orders(fake) == []


async def test_orders_go_over_rest_while_the_trade_socket_is_unavailable(
    running: Running, client: BybitExecution
) -> None:
    fake = venue(running)
    fake.trade_socket.down = True
    order = request("0.01")

    placed = await client.place(order)

    assert placed.state is OrderState.ACCEPTED
    assert [o["orderLinkId"] for o in sent_orders(fake)] == [order.client_id]
    assert fake.trade_socket.orders == []


async def test_a_refused_socket_login_sends_the_order_over_rest(running: Running) -> None:
    fake = venue(running)
    client = _client(running, secret="not-the-secret")
    try:
        with pytest.raises(Exception, match=r"10004|API key|sign"):
            await client.place(request("0.01"))
    finally:
        await client.close()

    # The socket's auth was refused, so the order went to REST, which refused it too.
    assert fake.trade_socket.orders == []
    assert any(r.startswith("10004") for r in fake.refused)


async def test_the_socket_rate_limit_raises_rate_limited_until_the_reset(
    running: Running, client: BybitExecution
) -> None:
    fake = venue(running)
    fake.throttle = 1

    with pytest.raises(RateLimited) as raised:
        await client.place(request("0.01"))

    assert 0 <= raised.value.retry_after_s <= 1.0
    assert len(fake.trade_socket.orders) == 1


async def test_orders_in_flight_together_share_one_socket_and_get_their_own_answers(
    running: Running, client: BybitExecution
) -> None:
    fake = venue(running)
    orders = [request("0.01", leg=leg) for leg in range(5)]

    placed = await asyncio.gather(*(client.place(order) for order in orders))

    assert [p.client_id for p in placed] == [o.client_id for o in orders]
    assert [p.venue_order_id for p in placed] == [
        fake.orders[o.client_id]["orderId"] for o in orders
    ]
    assert fake.trade_socket.connections == 1
    assert len(fake.trade_socket.orders) == 5


async def test_a_socket_that_stopped_answering_is_replaced_not_used_until_orders_expire(
    running: Running,
) -> None:
    # Arrange: the venue places the first order, then the connection goes silent (half-open)
    fake = venue(running)
    fake.trade_socket.freeze_after_place = 1
    client = bybit_client(
        running, API_SECRET, ws_orders_url=running.ws_base + TRADE_PATH, timeout_s=0.5
    )
    first, second = request("0.01"), request("0.01", leg=1)
    try:
        with pytest.raises(OutcomeUnknown):
            await client.place(first)

        # Act: the next order must not be sent into the silent connection
        placed = await client.place(second)
    finally:
        await client.close()

    # Assert
    assert placed.state is OrderState.ACCEPTED
    assert fake.trade_socket.connections == 2
    assert fake.placements == {first.client_id: 1, second.client_id: 1}


@pytest.mark.parametrize(
    ("code", "message"),
    [(10429, "System level frequency protection"), (20003, "Too frequent requests")],
)
async def test_the_trade_socket_own_rate_limit_codes_back_off_not_reject(
    running: Running, client: BybitExecution, code: int, message: str
) -> None:
    venue(running).trade_socket.refuse_next = [(code, message)]

    with pytest.raises(RateLimited):
        await client.place(request("0.01"))


async def test_a_restarting_trade_service_sends_the_order_over_rest(
    running: Running, client: BybitExecution
) -> None:
    # Arrange: Bybit's 10019, "ws trade service is restarting, do not accept new request"
    fake = venue(running)
    fake.trade_socket.refuse_next = [(10019, "ws trade service is restarting")]
    order = request("0.01")

    # Act
    placed = await client.place(order)

    # Assert: refused unplaced by the socket, placed once over REST
    assert placed.state is OrderState.ACCEPTED
    assert [o["orderLinkId"] for o in sent_orders(fake)] == [order.client_id]
    assert fake.placements[order.client_id] == 1


def _socket_tasks() -> list[asyncio.Task[object]]:
    return [
        task
        for task in asyncio.all_tasks()
        if not task.done() and task.get_coro().__qualname__.startswith("OrderSocket.")  # type: ignore[union-attr]
    ]


async def test_closing_after_a_reconnect_leaves_no_socket_task_behind(
    running: Running, client: BybitExecution
) -> None:
    # Arrange: the first connection is dropped by the venue, the next order reconnects
    fake = venue(running)
    fake.trade_socket.drop_after_place = 1
    with pytest.raises(OutcomeUnknown):
        await client.place(request("0.01"))
    await client.place(request("0.01", leg=1))
    assert fake.trade_socket.connections == 2

    # Act
    await client.close()

    # Assert: neither connection's reader or keepalive outlives the client
    assert _socket_tasks() == []
