"""OKX orders over the websocket ``order`` operation after ``login``, REST the fallback: the
execution client against the loopback OKX account, its order socket named."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from app.venues.execution import OrderState, OutcomeUnknown, RateLimited
from app.venues.okx.execution import OkxExecution
from tests.integration.venues.test_okx_execution import BTC, request, sent_orders, venue
from tests.integration.venues.test_okx_execution import _client as okx_client
from tests.venues.fake_okx import PASSPHRASE
from tests.venues.harness import Running, run_venue
from tests.venues.okx_order_socket import ORDER_PATH
from tests.venues.okx_trading import OkxTrading


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    async with run_venue(OkxTrading()) as running:
        yield running


def _client(running: Running) -> OkxExecution:
    return okx_client(running, PASSPHRASE, ws_orders_url=running.ws_base + ORDER_PATH)


@pytest.fixture
async def client(running: Running) -> AsyncIterator[OkxExecution]:
    client = _client(running)
    yield client
    await client.close()


async def test_an_order_is_placed_over_the_order_socket(
    running: Running, client: OkxExecution
) -> None:
    fake = venue(running)
    order = request("0.02")

    placed = await client.place(order)

    [sent] = fake.order_socket.orders
    assert sent["op"] == "order"
    assert sent["id"].isalnum()
    assert (sent["args"][0]["clOrdId"], sent["args"][0]["sz"]) == (order.client_id, "2")
    assert sent_orders(fake) == []
    assert placed.state is OrderState.ACCEPTED
    assert placed.venue_order_id == fake.orders[order.client_id]["ordId"]
    assert fake.placements[order.client_id] == 1


async def test_a_refusal_over_the_socket_keeps_its_code(
    running: Running, client: OkxExecution
) -> None:
    venue(running).available = Decimal(1)

    placed = await client.place(request("1"))

    assert placed.state is OrderState.REJECTED
    assert placed.raw_code == "51008"


async def test_a_socket_dropped_after_sending_is_unknown_and_the_query_finds_it(
    running: Running, client: OkxExecution
) -> None:
    fake = venue(running)
    fake.order_socket.drop_after_place = 1
    order = request("0.01")

    with pytest.raises(OutcomeUnknown):
        await client.place(order)
    await fake.settled()
    found = await client.query(BTC, order.client_id)

    assert found is not None
    assert found.state is OrderState.FILLED
    assert fake.placements[order.client_id] == 1
    assert sent_orders(fake) == []


async def test_orders_go_over_rest_while_the_order_socket_is_unavailable(
    running: Running, client: OkxExecution
) -> None:
    fake = venue(running)
    fake.order_socket.down = True
    order = request("0.01")

    placed = await client.place(order)

    assert placed.state is OrderState.ACCEPTED
    assert [o["clOrdId"] for o in sent_orders(fake)] == [order.client_id]
    assert fake.order_socket.orders == []


async def test_the_socket_rate_limit_raises_rate_limited(
    running: Running, client: OkxExecution
) -> None:
    fake = venue(running)
    fake.throttle = 1

    with pytest.raises(RateLimited):
        await client.place(request("0.01"))

    assert len(fake.order_socket.orders) == 1
    assert fake.refused == ["50011 Too Many Requests"]


async def test_the_socket_own_rate_limit_code_backs_off_not_rejects(
    running: Running, client: OkxExecution
) -> None:
    venue(running).order_socket.refuse_next = [("60014", "Requests too frequent.")]

    with pytest.raises(RateLimited):
        await client.place(request("0.01"))


async def test_an_order_refused_for_a_lost_login_goes_over_rest(
    running: Running, client: OkxExecution
) -> None:
    # Arrange: OKX's 60011 "Please log in": the socket's session is not logged in
    fake = venue(running)
    fake.order_socket.refuse_next = [("60011", "Please log in")]
    order = request("0.01")

    # Act
    placed = await client.place(order)

    # Assert: refused unplaced by the socket, placed once over REST
    assert placed.state is OrderState.ACCEPTED
    assert [o["clOrdId"] for o in sent_orders(fake)] == [order.client_id]
    assert fake.placements[order.client_id] == 1


async def test_an_order_timed_out_at_okx_is_an_unknown_outcome_not_a_rejection(
    running: Running, client: OkxExecution
) -> None:
    # OKX's 51149 "Order timed out": the order may exist; the executor must query it
    venue(running).order_socket.refuse_next = [("51149", "Order timed out. Please try again.")]

    with pytest.raises(OutcomeUnknown):
        await client.place(request("0.01"))
