"""The Hyperliquid execution client against the loopback venue: what reaches the venue, what
each answer means, exactly once across lost answers, rate limits, the account and its stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import aiohttp
import pytest
from eth_account import Account as Wallet

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
)
from app.venues.hyperliquid.execution import HyperliquidExecution, build
from tests.venues.harness import Running, run_venue
from tests.venues.hyperliquid_trading import Account, FakeHyperliquidTrading

AGENT_KEY = "0x" + "4c" * 32
ADDRESS = "0x8c967e73e7b15087c42a10d344cff4c96d877f1d"
WAIT_S = 20.0


@dataclass
class Scene:
    venue: FakeHyperliquidTrading
    running: Running
    client: HyperliquidExecution
    account: Account

    def orders_sent(self) -> list[dict[str, Any]]:
        return [order for body in self.venue.actions for order in body["action"]["orders"]]

    def client_for(self, key: str = AGENT_KEY, **options: Any) -> HyperliquidExecution:
        return HyperliquidExecution(
            ADDRESS,
            Credential(key),
            rest_url=self.running.rest_url,
            ws_url=self.running.ws_base + "/ws",
            **options,
        )


@pytest.fixture(params=["ws post", "rest"])
async def scene(request: pytest.FixtureRequest) -> AsyncIterator[Scene]:
    """The venue and a client of its account; every test runs over both request paths."""
    venue = FakeHyperliquidTrading(prices={"BTC": Decimal("60000"), "ETH": Decimal("3000")})
    account = venue.register(ADDRESS, Wallet.from_key(AGENT_KEY).address)
    async with run_venue(venue) as running:
        client = HyperliquidExecution(
            ADDRESS,
            Credential(AGENT_KEY),
            rest_url=running.rest_url,
            ws_url=running.ws_base + "/ws",
            ws_post=request.param == "ws post",
        )
        try:
            yield Scene(venue, running, client, account)
        finally:
            await client.close()


def request(
    client: HyperliquidExecution,
    fill: str,
    symbol: str = "BTC",
    side: Literal["buy", "sell"] = "buy",
    qty: str = "0.0123456",
    reduce_only: bool = False,
    limit: str | None = None,
    reference: str = "60000",
) -> OrderRequest:
    return OrderRequest(
        client_id=client.client_order_id(order_id("leader", fill, "subscription")),
        symbol=symbol,
        side=side,
        qty=Decimal(qty),
        reduce_only=reduce_only,
        limit_price=None if limit is None else Decimal(limit),
        reference_price=Decimal(reference),
    )


async def test_a_market_buy_reaches_the_venue_as_a_bounded_ioc_with_its_cloid(scene: Scene) -> None:
    # Arrange
    buy = request(scene.client, "f1")

    # Act
    placed = await scene.client.place(buy)

    # Assert: BTC is asset 0 with szDecimals 5; 60000 * 1.05 on the price grid.
    assert scene.orders_sent() == [
        {
            "a": 0,
            "b": True,
            "p": "63000",
            "s": "0.01234",
            "r": False,
            "t": {"limit": {"tif": "Ioc"}},
            "c": buy.client_id,
        }
    ]
    assert placed.state is OrderState.FILLED
    assert (placed.filled_qty, placed.avg_price) == (Decimal("0.01234"), Decimal("60000"))
    assert placed.client_id == buy.client_id
    assert scene.venue.placements[buy.client_id] == 1
    assert scene.account.positions["BTC"] == Decimal("0.01234")


async def test_a_reduce_only_sell_and_a_limit_order_are_sent_as_such(scene: Scene) -> None:
    await scene.client.place(request(scene.client, "f1"))
    close = request(scene.client, "f2", side="sell", qty="0.01234", reduce_only=True)
    limit = request(scene.client, "f3", symbol="ETH", qty="0.5", limit="3000.129", reference="3000")

    closed = await scene.client.place(close)
    limited = await scene.client.place(limit)

    sent = scene.orders_sent()
    # A sell never receives less than reference * 0.95; a limit buy never pays above its limit
    # (5 significant figures, rounded down).
    assert (sent[1]["b"], sent[1]["p"], sent[1]["s"], sent[1]["r"]) == (
        False,
        "57000",
        "0.01234",
        True,
    )
    assert (sent[2]["a"], sent[2]["b"], sent[2]["p"], sent[2]["s"]) == (1, True, "3000.1", "0.5")
    assert closed.state is limited.state is OrderState.FILLED
    assert scene.account.positions == {"BTC": Decimal(0), "ETH": Decimal("0.5")}


async def test_a_partial_fill_ends_the_ioc_with_what_filled(scene: Scene) -> None:
    scene.venue.fill_fraction = Decimal("0.5")
    buy = request(scene.client, "f1", qty="0.01")

    placed = await scene.client.place(buy)
    found = await scene.client.query("BTC", buy.client_id)

    assert (placed.state, placed.filled_qty, placed.avg_price) == (
        OrderState.EXPIRED, Decimal("0.005"), Decimal("60000"),
    )  # fmt: skip
    assert found is not None
    assert (found.state, found.filled_qty, found.avg_price) == (
        OrderState.EXPIRED, Decimal("0.005"), Decimal("60000"),
    )  # fmt: skip
    assert found.venue_order_id == placed.venue_order_id


@pytest.mark.parametrize(
    ("setup", "order", "reason", "raw"),
    [
        ("none", {"qty": "0.0001"}, RejectReason.BELOW_MIN_NOTIONAL, "minimum value of $10"),
        (
            "none",
            {"side": "sell", "reduce_only": True},
            RejectReason.REDUCE_ONLY_REJECTED,
            "would increase position",
        ),
        ("margin", {}, RejectReason.INSUFFICIENT_MARGIN, "Insufficient margin"),
        ("lot size changed", {}, RejectReason.BAD_PRECISION, "Order has invalid size."),
    ],
)
async def test_each_refusal_maps_to_its_reason(
    scene: Scene, setup: str, order: dict[str, Any], reason: RejectReason, raw: str
) -> None:
    if setup == "margin":
        scene.account.max_notional = Decimal(100)
    if setup == "lot size changed":
        scene.venue.sz_decimals["BTC"] = 3
    refused = request(scene.client, "f1", **order)

    placed = await scene.client.place(refused)
    found = await scene.client.query("BTC", refused.client_id)

    assert (placed.state, placed.reason) == (OrderState.REJECTED, reason)
    assert placed.raw_message is not None
    assert raw in placed.raw_message
    if reason is RejectReason.BAD_PRECISION:
        assert found is None  # refused before the book: the venue never took it
    else:
        assert found is not None
        assert (found.state, found.reason) == (OrderState.REJECTED, reason)
    assert "BTC" not in scene.account.positions


@pytest.mark.parametrize("symbol", ["NOPE", "OLD"])
async def test_an_unknown_or_delisted_coin_is_refused_without_sending(
    scene: Scene, symbol: str
) -> None:
    placed = await scene.client.place(request(scene.client, "f1", symbol=symbol))

    assert (placed.state, placed.reason) == (OrderState.REJECTED, RejectReason.UNKNOWN_SYMBOL)
    assert scene.orders_sent() == []


async def test_an_ioc_beyond_the_slippage_bound_expires_unfilled(scene: Scene) -> None:
    scene.venue.prices["BTC"] = Decimal("63001")  # the book moved past 60000 * 1.05

    placed = await scene.client.place(request(scene.client, "f1"))

    assert (placed.state, placed.filled_qty, placed.reason) == (
        OrderState.EXPIRED,
        Decimal(0),
        None,
    )
    assert placed.raw_message is not None
    assert "could not immediately match" in placed.raw_message


async def test_a_lost_answer_then_a_resend_places_the_order_once(scene: Scene) -> None:
    # Arrange: the venue applies the order but its answer is lost.
    scene.venue.lose_answers = 1
    buy = request(scene.client, "f1")

    # Act
    with pytest.raises(OutcomeUnknown):
        await scene.client.place(buy)
    found = await scene.client.query("BTC", buy.client_id)
    resent = await scene.client.place(buy)  # as a crash before the ack would resend it

    # Assert
    assert found is not None
    assert found.state is OrderState.FILLED
    assert (found.filled_qty, found.avg_price) == (Decimal("0.01234"), Decimal("60000"))
    assert resent == found
    assert scene.venue.placements[buy.client_id] == 1
    assert scene.account.positions["BTC"] == Decimal("0.01234")
    assert len(scene.orders_sent()) == 2  # the resend reached the venue and was refused


async def test_a_never_seen_cloid_is_not_found(scene: Scene) -> None:
    assert await scene.client.query("BTC", request(scene.client, "nothing").client_id) is None


async def test_429_raises_rate_limited_and_the_next_try_is_placed(scene: Scene) -> None:
    await scene.client.place(request(scene.client, "f0"))  # meta read: the order is throttled
    scene.venue.throttled = 1
    buy = request(scene.client, "f1")

    with pytest.raises(RateLimited) as limited:
        await scene.client.place(buy)
    placed = await scene.client.place(buy)

    assert limited.value.retry_after_s > 0
    assert placed.state is OrderState.FILLED
    assert scene.venue.placements[buy.client_id] == 1


async def test_the_venue_rate_limits_by_weight(scene: Scene) -> None:
    scene.venue.weight_per_minute = 5  # two clearinghouseState reads of weight 2

    await scene.client.account()
    await scene.client.account()
    with pytest.raises(RateLimited):
        await scene.client.account()


async def test_account_reads_equity_positions_and_one_way(scene: Scene) -> None:
    scene.account.equity = Decimal("2543.25")
    scene.account.positions["ETH"] = Decimal("-2.5")
    await scene.client.place(request(scene.client, "f1"))

    snapshot = await scene.client.account()

    assert snapshot.equity == Decimal("2543.25")
    assert snapshot.positions == {"ETH": Decimal("-2.5"), "BTC": Decimal("0.01234")}
    assert snapshot.one_way is True


async def test_an_agent_the_account_never_approved_is_an_account_error(scene: Scene) -> None:
    stranger = scene.client_for("0x" + "5d" * 32)
    try:
        with pytest.raises(AccountError, match="does not exist"):
            await stranger.place(request(stranger, "f1"))
    finally:
        await stranger.close()
    assert scene.venue.placements == {}


async def test_signing_for_the_other_network_is_refused(scene: Scene) -> None:
    mainnet = scene.client_for(mainnet=True)  # the venue is a testnet one
    try:
        with pytest.raises(AccountError):
            await mainnet.place(request(mainnet, "f1"))
    finally:
        await mainnet.close()


async def test_the_venue_refuses_a_replayed_nonce(scene: Scene) -> None:
    await scene.client.place(request(scene.client, "f1"))
    first = scene.venue.actions[0]

    async with (
        aiohttp.ClientSession() as http,
        http.post(scene.running.rest_url + "/exchange", json=first) as replay,
    ):
        answer = await replay.json()

    nonce = first["nonce"]
    assert answer == {"status": "err", "response": f"Invalid nonce: duplicate nonce {nonce}"}
    assert len(scene.venue.orders) == 1


async def test_orders_go_as_websocket_posts_when_enabled(scene: Scene) -> None:
    await scene.client.place(request(scene.client, "f1"))
    await scene.client.query("BTC", request(scene.client, "f1").client_id)

    rest = [call.path for call in scene.venue.rest_calls]
    if scene.client.ws_post:
        # meta, the order, orderStatus, userFillsByTime (its average price)
        assert (scene.venue.posts, rest) == (4, [])
    else:
        assert (scene.venue.posts, rest) == (0, ["/info", "/exchange", "/info", "/info"])


async def test_without_a_websocket_orders_go_over_rest(scene: Scene) -> None:
    # A websocket URL nothing listens on: the post connection cannot even be opened.
    async with aiohttp.ClientSession() as http:
        closed = HyperliquidExecution(
            ADDRESS,
            Credential(AGENT_KEY),
            rest_url=scene.running.rest_url,
            ws_url=scene.running.ws_base.rsplit(":", 1)[0] + ":9/ws",
            session=http,
        )
        placed = await closed.place(request(closed, "f1"))
        await closed.close()

    assert placed.state is OrderState.FILLED
    assert [c.path for c in scene.venue.rest_calls] == ["/info", "/exchange"]


async def test_the_private_stream_reports_fills_with_their_price(scene: Scene) -> None:
    # Arrange
    events: list[AccountEvent] = []
    got = asyncio.Event()

    async def listen() -> None:
        async for event in scene.client.events():
            events.append(event)
            if len(events) == 2:
                got.set()

    listener = asyncio.create_task(listen())
    await scene.venue.wait_subscribed()
    full, part = request(scene.client, "f1", qty="0.01"), request(scene.client, "f2", qty="0.01")

    # Act
    await scene.client.place(full)
    scene.venue.fill_fraction = Decimal("0.5")
    await scene.client.place(part)
    await asyncio.wait_for(got.wait(), WAIT_S)
    listener.cancel()

    # Assert: each order once, its quantity with the price it filled at.
    orders = [(e.order.client_id, e.order.state, e.order.filled_qty, e.order.avg_price)
              for e in events if e.order is not None]  # fmt: skip
    assert orders == [
        (full.client_id, OrderState.FILLED, Decimal("0.01"), Decimal("60000")),
        (part.client_id, OrderState.EXPIRED, Decimal("0.005"), Decimal("60000")),
    ]


@dataclass(frozen=True)
class StoredAccount:
    config: dict[str, Any]
    credentials: dict[str, Credential]
    timeout_s: float = 5.0


async def test_a_client_built_from_a_stored_account_trades_it(scene: Scene) -> None:
    stored = StoredAccount(
        {
            "address": ADDRESS,
            "rest_url": scene.running.rest_url,
            "ws_url": scene.running.ws_base + "/ws",
        },
        {"agent_key": Credential(AGENT_KEY)},
    )
    client = build(stored)
    try:
        placed = await client.place(request(client, "f1"))
    finally:
        await client.close()

    assert placed.state is OrderState.FILLED
    assert client.mainnet is False  # a URL other than the mainnet one signs as testnet
    assert scene.venue.placements[request(client, "f1").client_id] == 1


async def test_the_private_stream_ends_when_the_connection_drops(scene: Scene) -> None:
    async def drain() -> int:
        return len([event async for event in scene.client.events()])

    listener = asyncio.create_task(drain())
    await scene.venue.wait_subscribed()

    await scene.running.proxy.cut()

    assert await asyncio.wait_for(listener, WAIT_S) == 0


async def test_a_stalled_post_is_an_unknown_outcome_that_the_query_resolves(
    scene: Scene,
) -> None:
    # Arrange: a client whose answers stall (the websocket passes through the freezing proxy).
    client = scene.client_for(timeout_s=0.5, ws_post=True)
    buy = request(client, "f1")
    await client.query("BTC", buy.client_id)  # the post connection is open
    scene.running.proxy.freeze()

    # Act
    try:
        with pytest.raises(OutcomeUnknown):
            await client.place(buy)
        scene.running.proxy.thaw()
        found = await client.query("BTC", buy.client_id)
        placed = await client.place(buy)
    finally:
        await client.close()

    # Assert: the stalled order never reached the venue, so the resend is the one placement.
    assert found is None
    assert placed.state is OrderState.FILLED
    assert scene.venue.placements[buy.client_id] == 1
