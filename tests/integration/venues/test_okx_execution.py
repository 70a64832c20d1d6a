"""The OKX execution client against an OKX account on loopback: orders arrive in contracts
with a derived clOrdId as OKX documents them, its answers and stream become the contract's
orders and events in base units."""

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
from app.venues.execution import (
    AccountError,
    AccountEvent,
    OrderRequest,
    OrderState,
    OutcomeUnknown,
    RateLimited,
    RejectReason,
    VenueOrder,
)
from app.venues.okx.execution import OkxExecution
from app.venues.okx.ids import cl_ord_id
from tests.venues.fake_okx import API_KEY, API_SECRET, PASSPHRASE
from tests.venues.harness import Running, run_venue
from tests.venues.okx_trading import OkxTrading

WAIT_S = 20.0
BTC = "BTC-USDT-SWAP"


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    async with run_venue(OkxTrading()) as running:
        yield running


@pytest.fixture
async def client(running: Running) -> AsyncIterator[OkxExecution]:
    client = _client(running, PASSPHRASE)
    yield client
    await client.close()


def _client(running: Running, passphrase: str, **options: Any) -> OkxExecution:
    return OkxExecution(
        api_key=Credential(API_KEY),
        api_secret=Credential(API_SECRET),
        passphrase=Credential(passphrase),
        td_mode="isolated",
        rest_url=running.rest_url,
        ws_url=running.ws_base + running.venue.ws_path,
        **options,
    )


def venue(running: Running) -> OkxTrading:
    assert isinstance(running.venue, OkxTrading)
    return running.venue


def request(
    qty: str,
    side: str = "buy",
    *,
    symbol: str = BTC,
    reduce_only: bool = False,
    limit: str | None = None,
    leg: int = 0,
) -> OrderRequest:
    return OrderRequest(
        client_id=cl_ord_id(order_id("leader", "fill-1", "subscription", leg)),
        symbol=symbol,
        side="buy" if side == "buy" else "sell",
        qty=Decimal(qty),
        reduce_only=reduce_only,
        limit_price=Decimal(limit) if limit else None,
        reference_price=Decimal(50000),
    )


def sent_orders(fake: OkxTrading) -> list[dict[str, Any]]:
    return [
        json.loads(c.body)
        for c in fake.rest_calls
        if c.path == "/api/v5/trade/order" and c.method == "POST"
    ]


async def test_a_market_buy_is_sent_in_contracts_with_the_derived_client_id(
    running: Running, client: OkxExecution
) -> None:
    fake = venue(running)
    the_order_id = order_id("leader", "fill-1", "subscription")
    order = request("0.05")

    placed = await client.place(order)
    await fake.settled()
    found = await client.query(BTC, order.client_id)

    [sent] = sent_orders(fake)
    assert sent == {
        "instId": BTC,
        "tdMode": "isolated",
        "side": "buy",
        "ordType": "market",
        "sz": "5",  # 0.05 BTC / ctVal 0.01
        "clOrdId": client.client_order_id(the_order_id),
        "reduceOnly": False,
    }
    assert placed.state is OrderState.ACCEPTED
    assert placed.venue_order_id == fake.orders[order.client_id]["ordId"]
    assert found == VenueOrder(
        order.client_id, OrderState.FILLED, Decimal("0.05"), Decimal(50000), placed.venue_order_id
    )
    assert fake.positions == {BTC: Decimal(5)}


async def test_a_limit_order_is_ioc_on_the_tick_and_a_partial_lot_is_rounded_down(
    running: Running, client: OkxExecution
) -> None:
    fake = venue(running)

    await client.place(request("0.050009", "sell", limit="49999.93"))
    await client.place(request("0.02", "buy", limit="49999.97", leg=1))
    await fake.settled()

    sent = [(o["ordType"], o["px"], o["sz"]) for o in sent_orders(fake)]
    assert sent == [("ioc", "50000", "5"), ("ioc", "49999.9", "2")]
    unfilled = await client.query(BTC, request("0", leg=1).client_id)
    assert unfilled is not None
    assert (unfilled.state, unfilled.filled_qty) == (OrderState.CANCELED, Decimal(0))


async def test_a_reduce_only_order_is_sent_reduce_only_and_reduces(
    running: Running, client: OkxExecution
) -> None:
    fake = venue(running)
    fake.positions[BTC] = Decimal(3)

    placed = await client.place(request("0.02", "sell", reduce_only=True))
    await fake.settled()

    assert placed.state is OrderState.ACCEPTED
    assert [(o["side"], o["sz"], o["reduceOnly"]) for o in sent_orders(fake)] == [
        ("sell", "2", True)
    ]
    assert fake.positions[BTC] == Decimal(1)


async def test_partial_fills_reach_the_stream_cumulatively_in_base_units(
    running: Running, client: OkxExecution
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
        await fake.fill(order.client_id, Decimal(1), Decimal(50000))
        await fake.fill(order.client_id, Decimal(2), Decimal(50300))
        updates: list[VenueOrder] = []
        positions: list[dict[str, Decimal]] = []
        equities: list[Decimal] = []
        while len(positions) < 2 or len(equities) < 2:
            event = await asyncio.wait_for(events.get(), WAIT_S)
            if event.order is not None and event.order.client_id == order.client_id:
                updates.append(event.order)
            if event.positions:
                positions.append(event.positions)
            if event.equity is not None:
                equities.append(event.equity)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener

    assert [(u.state, u.filled_qty, u.avg_price) for u in updates] == [
        (OrderState.ACCEPTED, Decimal(0), None),
        (OrderState.PARTIALLY_FILLED, Decimal("0.01"), Decimal(50000)),
        (OrderState.FILLED, Decimal("0.03"), Decimal(50200)),
    ]
    assert positions == [{BTC: Decimal("0.01")}, {BTC: Decimal("0.03")}]
    assert equities[-1] == Decimal(10000)


@pytest.mark.parametrize(
    ("setup", "order", "code", "reason"),
    [
        ("poor", request("1"), "51008", RejectReason.INSUFFICIENT_MARGIN),
        (
            "flat",
            request("0.01", "sell", reduce_only=True),
            "51169",
            RejectReason.REDUCE_ONLY_REJECTED,
        ),
        (
            "long",
            request("0.01", "buy", reduce_only=True),
            "51170",
            RejectReason.REDUCE_ONLY_REJECTED,
        ),
        ("whole lots", request("0.055"), "51121", RejectReason.BAD_PRECISION),
        ("min size", request("0.05"), "51020", RejectReason.BELOW_MIN_NOTIONAL),
        ("delisted", request("0.01"), "51001", RejectReason.UNKNOWN_SYMBOL),
    ],
)
async def test_each_refusal_maps_to_its_reason(
    running: Running,
    client: OkxExecution,
    setup: str,
    order: OrderRequest,
    code: str,
    reason: RejectReason,
) -> None:
    fake = venue(running)
    await client.account()
    await client.query(BTC, request("0", leg=9).client_id)  # instruments read as they were
    if setup == "poor":
        fake.available = Decimal(10)
    elif setup == "long":
        fake.positions[BTC] = Decimal(1)
    elif setup == "whole lots":
        fake.instruments[BTC] = {**fake.instruments[BTC], "lotSz": "1"}
    elif setup == "min size":
        fake.instruments[BTC] = {**fake.instruments[BTC], "minSz": "10"}
    elif setup == "delisted":
        del fake.instruments[BTC]

    result = await client.place(order)

    assert (result.state, result.reason, result.raw_code) == (OrderState.REJECTED, reason, code)
    assert result.raw_message
    assert not fake.placements


async def test_a_symbol_okx_does_not_list_is_rejected_without_an_order(
    running: Running, client: OkxExecution
) -> None:
    result = await client.place(request("1", symbol="DOGE-USDT-SWAP"))

    assert (result.state, result.reason) == (OrderState.REJECTED, RejectReason.UNKNOWN_SYMBOL)
    assert not sent_orders(venue(running))


async def test_the_rate_limit_raises_rate_limited_for_one_window(
    running: Running, client: OkxExecution
) -> None:
    fake = venue(running)
    fake.order_limit = 0

    with pytest.raises(RateLimited) as raised:
        await client.place(request("0.01"))

    assert raised.value.retry_after_s == 2.0
    assert fake.refused == ["50011 Too Many Requests"]
    assert not fake.placements


async def test_a_duplicate_client_id_returns_the_order_already_placed(
    running: Running, client: OkxExecution
) -> None:
    fake = venue(running)
    order = request("0.01")
    first = await client.place(order)
    await fake.settled()

    again = await client.place(order)

    assert fake.placements[order.client_id] == 1
    assert "51016 Client order ID already exists." in fake.refused
    assert (again.state, again.filled_qty, again.venue_order_id) == (
        OrderState.FILLED,
        Decimal("0.01"),
        first.venue_order_id,
    )


async def test_an_unknown_client_id_is_not_found(client: OkxExecution) -> None:
    assert await client.query(BTC, cl_ord_id(order_id("leader", "never", "sent"))) is None


async def test_long_short_mode_is_refused_before_any_order(
    running: Running, client: OkxExecution
) -> None:
    fake = venue(running)
    fake.pos_mode = "long_short_mode"

    with pytest.raises(AccountError, match="long/short mode"):
        await client.place(request("0.01"))
    snapshot = await client.account()

    assert snapshot.one_way is False
    assert not sent_orders(fake)


async def test_a_switch_to_long_short_mode_after_the_check_is_refused_by_okx(
    running: Running, client: OkxExecution
) -> None:
    fake = venue(running)
    await client.account()  # net mode, remembered
    fake.pos_mode = "long_short_mode"

    with pytest.raises(AccountError, match="long/short mode"):
        await client.place(request("0.01"))

    assert fake.refused == ["51000 Parameter posSide error"]
    assert not fake.placements


async def test_the_account_reads_total_equity_and_positions_in_base_units(
    running: Running, client: OkxExecution
) -> None:
    fake = venue(running)
    fake.total_eq = Decimal("12345.67")
    fake.positions.update({BTC: Decimal(5), "ETH-USDT-SWAP": Decimal(-12)})

    snapshot = await client.account()

    assert snapshot.equity == Decimal("12345.67")
    assert snapshot.positions == {BTC: Decimal("0.05"), "ETH-USDT-SWAP": Decimal("-1.2")}
    assert snapshot.one_way is True


async def test_a_wrong_passphrase_is_an_account_error(running: Running) -> None:
    client = _client(running, "not-the-passphrase")
    try:
        with pytest.raises(AccountError, match="50105"):
            await client.place(request("0.01"))
    finally:
        await client.close()
    assert not venue(running).placements


async def test_a_lost_answer_is_an_unknown_outcome_that_the_query_resolves(
    running: Running, client: OkxExecution
) -> None:
    fake = venue(running)
    fake.lose_answers = True
    order = request("0.01")

    with pytest.raises(OutcomeUnknown):
        await client.place(order)
    await fake.settled()
    found = await client.query(BTC, order.client_id)
    again = await client.place(order)  # a resend anyway is recognised as the same order

    assert found is not None
    assert (found.state, found.filled_qty) == (OrderState.FILLED, Decimal("0.01"))
    assert again == found
    assert fake.placements[order.client_id] == 1


async def test_the_stream_ends_when_the_venue_drops_the_connection(
    running: Running, client: OkxExecution
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


async def test_accounts_on_one_host_share_one_instruments_list(running: Running) -> None:
    fake = venue(running)
    clients = [_client(running, PASSPHRASE) for _ in range(5)]
    try:
        placed = await asyncio.gather(
            *(c.place(request("0.01", leg=n)) for n, c in enumerate(clients))
        )
    finally:
        for c in clients:
            await c.close()

    assert {p.state for p in placed} == {OrderState.ACCEPTED}
    assert sum(c.path == "/api/v5/public/instruments" for c in fake.rest_calls) == 1
