"""The Bybit execution client against a Bybit unified account on loopback: orders arrive as
Bybit documents them, its answers and stream become the contract's orders and events."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from app.domain.ids import order_id
from app.security.crypto import Credential
from app.venues.bybit.execution import BybitExecution
from app.venues.execution import (
    AccountError,
    AccountEvent,
    OrderRequest,
    OrderState,
    OutcomeUnknown,
    RateLimited,
    RejectReason,
)
from tests.venues.bybit_trading import API_KEY, API_SECRET, BybitTrading
from tests.venues.harness import Running, run_venue

WAIT_S = 20.0


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    async with run_venue(BybitTrading()) as running:
        yield running


@pytest.fixture
async def client(running: Running) -> AsyncIterator[BybitExecution]:
    client = _client(running, API_SECRET)
    yield client
    await client.close()


def _client(running: Running, secret: str, **options: Any) -> BybitExecution:
    return BybitExecution(
        api_key=Credential(API_KEY),
        api_secret=Credential(secret),
        rest_url=running.rest_url,
        ws_url=running.ws_base + running.venue.ws_path,
        **options,
    )


def venue(running: Running) -> BybitTrading:
    assert isinstance(running.venue, BybitTrading)
    return running.venue


def request(
    qty: str,
    side: str = "buy",
    *,
    symbol: str = "BTCUSDT",
    reduce_only: bool = False,
    limit: str | None = None,
    leg: int = 0,
) -> OrderRequest:
    return OrderRequest(
        client_id=order_id("leader", "fill-1", "subscription", leg),
        symbol=symbol,
        side="buy" if side == "buy" else "sell",
        qty=Decimal(qty),
        reduce_only=reduce_only,
        limit_price=Decimal(limit) if limit else None,
        reference_price=Decimal(50000),
    )


def sent_orders(fake: BybitTrading) -> list[dict[str, Any]]:
    return [json.loads(c.body) for c in fake.rest_calls if c.path == "/v5/order/create"]


async def test_a_market_buy_reaches_bybit_as_documented_and_fills(
    running: Running, client: BybitExecution
) -> None:
    fake = venue(running)
    order = request("0.012")

    placed = await client.place(order)
    await fake.settled()
    found = await client.query("BTCUSDT", order.client_id)

    [sent] = sent_orders(fake)
    assert sent == {
        "category": "linear",
        "symbol": "BTCUSDT",
        "side": "Buy",
        "orderType": "Market",
        "qty": "0.012",
        "positionIdx": 0,
        "orderLinkId": order.client_id,
        "reduceOnly": False,
        "timeInForce": "IOC",
    }
    assert placed.state is OrderState.ACCEPTED
    assert placed.venue_order_id == fake.orders[order.client_id]["orderId"]
    assert found is not None
    assert (found.state, found.filled_qty, found.avg_price) == (
        OrderState.FILLED,
        Decimal("0.012"),
        Decimal(50000),
    )
    assert fake.positions == {"BTCUSDT": Decimal("0.012")}


async def test_a_limit_order_is_an_ioc_limit_on_the_tick_never_past_the_limit(
    running: Running, client: BybitExecution
) -> None:
    fake = venue(running)
    sell = request("0.01", "sell", limit="49999.93")
    buy = request("0.01", "buy", limit="49999.97", leg=1)  # below the fill price: no fill

    await client.place(sell)
    await client.place(buy)
    await fake.settled()

    sent = sent_orders(fake)
    assert [(o["orderType"], o["timeInForce"], o["price"]) for o in sent] == [
        ("Limit", "IOC", "50000"),  # a sell rounds up to the 0.10 tick
        ("Limit", "IOC", "49999.9"),  # a buy rounds down
    ]
    unfilled = await client.query("BTCUSDT", buy.client_id)
    assert unfilled is not None
    assert (unfilled.state, unfilled.filled_qty) == (OrderState.CANCELED, Decimal(0))


async def test_a_reduce_only_order_is_sent_reduce_only_and_reduces(
    running: Running, client: BybitExecution
) -> None:
    fake = venue(running)
    fake.positions["BTCUSDT"] = Decimal("0.02")

    placed = await client.place(request("0.015", "sell", reduce_only=True))
    await fake.settled()

    assert placed.state is OrderState.ACCEPTED
    assert [(o["side"], o["reduceOnly"]) for o in sent_orders(fake)] == [("Sell", True)]
    assert fake.positions["BTCUSDT"] == Decimal("0.005")


async def test_partial_fills_reach_the_stream_cumulatively(
    running: Running, client: BybitExecution
) -> None:
    fake = venue(running)
    fake.auto_fill = False
    events: asyncio.Queue[AccountEvent] = asyncio.Queue()

    async def listen() -> None:
        async for event in client.events():
            events.put_nowait(event)

    listener = asyncio.create_task(listen())
    try:
        await fake.wait_subscribed()
        order = request("0.03")
        await client.place(order)
        await fake.settled()  # the order's "new" push is out before its fills
        await fake.fill(order.client_id, Decimal("0.01"), Decimal(50000))
        await fake.fill(order.client_id, Decimal("0.02"), Decimal(50300))

        updates, positions, equities = await _collect(events, order.client_id)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener

    # The order and execution topics both report each fill, both with its average price.
    assert all(u.avg_price for u in updates if u.filled_qty)
    with_average = [(u.state, u.filled_qty, u.avg_price) for u in updates if u.avg_price]
    assert list(dict.fromkeys(with_average)) == [
        (OrderState.PARTIALLY_FILLED, Decimal("0.01"), Decimal(50000)),
        (OrderState.FILLED, Decimal("0.03"), Decimal(50200)),
    ]
    assert [u.filled_qty for u in updates] == sorted(u.filled_qty for u in updates)
    assert positions[-1] == {"BTCUSDT": Decimal("0.03")}
    assert equities[-1] == Decimal(10000)
    found = await client.query("BTCUSDT", order.client_id)
    assert found is not None
    assert (found.state, found.filled_qty) == (OrderState.FILLED, Decimal("0.03"))


async def _collect(
    events: asyncio.Queue[AccountEvent], client_id: str
) -> tuple[list[Any], list[dict[str, Decimal]], list[Decimal]]:
    updates: list[Any] = []
    positions: list[dict[str, Decimal]] = []
    equities: list[Decimal] = []
    while not (updates and updates[-1].state is OrderState.FILLED and updates[-1].avg_price):
        event = await asyncio.wait_for(events.get(), WAIT_S)
        if event.order is not None and event.order.client_id == client_id:
            updates.append(event.order)
        if event.positions:
            positions.append(event.positions)
        if event.equity is not None:
            equities.append(event.equity)
    # The fill's position and wallet pushes follow its order update.
    while len(positions) < 2 or len(equities) < 2:
        event = await asyncio.wait_for(events.get(), WAIT_S)
        if event.positions:
            positions.append(event.positions)
        if event.equity is not None:
            equities.append(event.equity)
    return updates, positions, equities


@pytest.mark.parametrize(
    ("setup", "order", "code", "reason"),
    [
        ("poor", request("0.5"), "110007", RejectReason.INSUFFICIENT_MARGIN),
        (
            "flat",
            request("0.01", "sell", reduce_only=True),
            "110017",
            RejectReason.REDUCE_ONLY_REJECTED,
        ),
        ("flat", request("0.0105"), "10001", RejectReason.BAD_PRECISION),
        ("flat", request("0.001", symbol="ETHUSDT"), "110094", RejectReason.BELOW_MIN_NOTIONAL),
        ("flat", request("1", symbol="DOGEUSDT"), "10001", RejectReason.UNKNOWN_SYMBOL),
    ],
)
async def test_each_refusal_maps_to_its_reason(
    running: Running,
    client: BybitExecution,
    setup: str,
    order: OrderRequest,
    code: str,
    reason: RejectReason,
) -> None:
    fake = venue(running)
    if setup == "poor":
        fake.wallet_balance = Decimal(100)

    result = await client.place(order)

    assert (result.state, result.reason, result.raw_code) == (OrderState.REJECTED, reason, code)
    assert result.raw_message
    assert not fake.placements


async def test_the_rate_limit_raises_rate_limited_until_the_reset_timestamp(
    running: Running, client: BybitExecution
) -> None:
    fake = venue(running)
    fake.order_limit = 0

    with pytest.raises(RateLimited) as raised:
        await client.place(request("0.01"))

    # Bybit's window is one second: the reset is at most a second away.
    assert 0 <= raised.value.retry_after_s <= 1.0
    assert fake.refused == ["10006 Too many visits!"]
    assert not fake.placements


async def test_a_duplicate_client_id_returns_the_order_already_placed(
    running: Running, client: BybitExecution
) -> None:
    fake = venue(running)
    order = request("0.01")
    first = await client.place(order)
    await fake.settled()

    again = await client.place(order)

    assert fake.placements[order.client_id] == 1
    assert "110072 OrderLinkedID is duplicate" in fake.refused
    assert (again.state, again.filled_qty, again.venue_order_id) == (
        OrderState.FILLED,
        Decimal("0.01"),
        first.venue_order_id,
    )


async def test_an_unknown_client_id_is_not_found(client: BybitExecution) -> None:
    assert await client.query("BTCUSDT", order_id("leader", "never", "sent")) is None


async def test_hedge_mode_is_refused_as_an_account_error(
    running: Running, client: BybitExecution
) -> None:
    fake = venue(running)
    fake.hedge = True
    fake.positions["BTCUSDT"] = Decimal("0.01")

    with pytest.raises(AccountError, match="hedge mode"):
        await client.place(request("0.01"))
    snapshot = await client.account()

    assert snapshot.one_way is False
    assert not fake.placements


async def test_the_account_reads_margin_balance_and_signed_positions(
    running: Running, client: BybitExecution
) -> None:
    fake = venue(running)
    fake.wallet_balance, fake.unrealised = Decimal(10000), Decimal("-250.5")
    fake.positions.update({"BTCUSDT": Decimal("0.02"), "ETHUSDT": Decimal("-1.5")})

    snapshot = await client.account()

    assert snapshot.equity == Decimal("9749.5")
    assert snapshot.positions == {"BTCUSDT": Decimal("0.02"), "ETHUSDT": Decimal("-1.5")}
    assert snapshot.one_way is True


async def test_a_wrong_secret_is_an_account_error(running: Running) -> None:
    client = _client(running, "not-the-secret")
    try:
        with pytest.raises(AccountError, match="10004"):
            await client.place(request("0.01"))
    finally:
        await client.close()
    assert not venue(running).placements


async def test_a_lost_answer_is_an_unknown_outcome_that_the_query_resolves(
    running: Running, client: BybitExecution
) -> None:
    fake = venue(running)
    fake.lose_answers = True
    order = request("0.01")

    with pytest.raises(OutcomeUnknown):
        await client.place(order)
    await fake.settled()
    found = await client.query("BTCUSDT", order.client_id)
    again = await client.place(order)  # a resend anyway is recognised as the same order

    assert found is not None
    assert (found.state, found.filled_qty) == (OrderState.FILLED, Decimal("0.01"))
    assert again == found
    assert fake.placements[order.client_id] == 1


async def test_the_stream_ends_when_the_venue_drops_the_connection(
    running: Running, client: BybitExecution
) -> None:
    fake = venue(running)

    async def listen() -> None:
        async for _event in client.events():
            pass

    listener = asyncio.create_task(listen())
    await fake.wait_subscribed()
    await fake.drop()

    await asyncio.wait_for(listener, WAIT_S)  # ended, not hanging: the loop reconnects
    assert listener.exception() is None
    assert fake.connections == 1


async def test_a_limit_order_on_a_symbol_bybit_does_not_list_is_rejected_unsent(
    running: Running, client: BybitExecution
) -> None:
    result = await client.place(request("1", symbol="DOGEUSDT", limit="0.1"))

    assert (result.state, result.reason) == (OrderState.REJECTED, RejectReason.UNKNOWN_SYMBOL)
    assert not sent_orders(venue(running))


async def test_an_order_gone_from_realtime_after_a_bybit_restart_is_found_in_history(
    running: Running, client: BybitExecution
) -> None:
    fake = venue(running)
    order = request("0.01")
    await client.place(order)
    await fake.settled()
    fake.restarted = True

    found = await client.query("BTCUSDT", order.client_id)

    assert found is not None
    assert found.state is OrderState.FILLED
    paths = [c.path for c in fake.rest_calls if c.path.startswith("/v5/order/")]
    assert paths[-2:] == ["/v5/order/realtime", "/v5/order/history"]
