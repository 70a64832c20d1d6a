"""Hyperliquid's order rules: cloids from order ids, prices on the venue's grid within the
slippage bound, sizes on szDecimals, and what the venue's statuses and errors mean."""

from __future__ import annotations

import json
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.ids import order_id
from app.venues.execution import ExecutionError, OrderState, RejectReason, VenueOrder
from app.venues.hyperliquid.rules import (
    CLOID,
    MARKET_SLIPPAGE,
    cloid_for,
    error_outcome,
    is_valid_price,
    limit_price,
    order_id_for,
    order_size,
    price_decimals,
    status_outcome,
)
from app.venues.hyperliquid.schemas import BasicOrder, OrderWithStatus, UserFill
from app.venues.hyperliquid.stream import OrderBook
from app.venues.hyperliquid.ws import parse

order_ids = st.builds(
    order_id, st.uuids(), st.text(min_size=1, max_size=40), st.uuids(), st.integers(0, 5)
)
# Positive decimals from 1e-12 to 1e12 with up to 12 significant digits.
amounts = st.builds(
    lambda digits, exponent: Decimal(digits).scaleb(exponent),
    st.integers(1, 10**12 - 1),
    st.integers(-18, 3),
).filter(lambda d: Decimal("1e-12") <= d <= Decimal("1e12"))
sz_decimals = st.integers(0, 6)
sides = st.sampled_from(["buy", "sell"])


# -- cloids -----------------------------------------------------------------------------------


@given(order_ids)
def test_a_cloid_is_0x_and_32_hex_digits_and_gives_back_its_order_id(oid: str) -> None:
    cloid = cloid_for(oid)

    assert CLOID.match(cloid)
    assert cloid_for(oid) == cloid
    assert order_id_for(cloid) == oid


@given(order_ids, order_ids)
def test_distinct_order_ids_have_distinct_cloids(a: str, b: str) -> None:
    assert (cloid_for(a) == cloid_for(b)) == (a == b)


@given(st.text(max_size=64))
def test_any_other_text_hashes_to_a_valid_cloid(text: str) -> None:
    assert CLOID.match(cloid_for(text))
    assert cloid_for(text) == cloid_for(text)


def test_a_non_canonical_spelling_of_the_same_bits_gets_another_cloid() -> None:
    oid = order_id(UUID(int=1), "fill", UUID(int=2))
    # The last base64 character holds 4 bits and 2 padding bits: flip a padding bit.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = oid[:-1] + alphabet[alphabet.index(oid[-1]) ^ 1]

    assert cloid_for(twin) != cloid_for(oid)


def test_order_id_for_refuses_what_is_not_a_cloid() -> None:
    with pytest.raises(ValueError, match="cloid"):
        order_id_for("0x1234")


# -- prices and sizes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "sz_decimals", "valid"),
    [
        # The tick-and-lot-size page's examples.
        ("1234.5", 0, True),
        ("1234.56", 0, False),
        ("0.001234", 0, True),
        ("0.0012345", 0, False),
        ("0.01234", 1, True),
        ("0.012345", 1, False),
        ("123456", 0, True),
        ("123456.0", 5, True),
        ("12345.6", 0, False),
        ("0", 0, False),
    ],
)
def test_the_documented_price_examples(price: str, sz_decimals: int, valid: bool) -> None:
    assert is_valid_price(Decimal(price), sz_decimals) is valid


@given(amounts, sz_decimals, sides)
def test_a_market_price_is_on_the_grid_and_never_beyond_the_bound(
    reference: Decimal, sz_decimals: int, side: str
) -> None:
    bound = reference * (1 + MARKET_SLIPPAGE if side == "buy" else 1 - MARKET_SLIPPAGE)

    price = limit_price(side, reference, None, sz_decimals)  # type: ignore[arg-type]

    tick = Decimal(1).scaleb(-price_decimals(bound, sz_decimals))
    if side == "buy":
        assert bound - tick < price <= bound
    else:
        assert bound <= price < bound + tick
    assert price == 0 or is_valid_price(price, sz_decimals)


@given(amounts, sz_decimals, sides)
def test_a_limit_price_is_never_worse_than_the_limit(
    limit: Decimal, sz_decimals: int, side: str
) -> None:
    price = limit_price(side, Decimal(1), limit, sz_decimals)  # type: ignore[arg-type]

    assert price <= limit if side == "buy" else price >= limit
    assert price == 0 or is_valid_price(price, sz_decimals)


@given(amounts, sz_decimals)
def test_a_size_is_rounded_down_to_sz_decimals(qty: Decimal, sz_decimals: int) -> None:
    size = order_size(qty, sz_decimals)

    step = Decimal(1).scaleb(-sz_decimals)
    assert qty - step < size <= qty
    assert size % step == 0


def test_prices_of_many_digits_are_whole_numbers() -> None:
    assert limit_price("buy", Decimal("123456.7"), None, 5) == Decimal("129629")
    assert limit_price("sell", Decimal("1.234567"), None, 0) == Decimal("1.1729")


# -- what the venue says ----------------------------------------------------------------------


REJECTED, EXPIRED = OrderState.REJECTED, OrderState.EXPIRED


@pytest.mark.parametrize(
    ("message", "state", "reason"),
    [
        ("Insufficient margin to place order.", REJECTED, RejectReason.INSUFFICIENT_MARGIN),
        ("Order must have minimum value of $10.", REJECTED, RejectReason.BELOW_MIN_NOTIONAL),
        ("Price must be divisible by tick size.", REJECTED, RejectReason.BAD_PRECISION),
        ("Order has invalid price.", REJECTED, RejectReason.BAD_PRECISION),
        ("Order has invalid size.", REJECTED, RejectReason.BAD_PRECISION),
        ("Reduce only order would increase position.", REJECTED, RejectReason.REDUCE_ONLY_REJECTED),
        ("Unknown asset 9999.", REJECTED, RejectReason.UNKNOWN_SYMBOL),
        ("Order price too far from oracle", REJECTED, RejectReason.VENUE_ERROR),
        ("Order could not immediately match against any resting orders.", EXPIRED, None),
        ("No liquidity available for market order.", EXPIRED, None),
    ],
)
def test_each_error_string_means_its_outcome(
    message: str, state: OrderState, reason: RejectReason | None
) -> None:
    assert error_outcome(message) == (state, reason)


@pytest.mark.parametrize(
    ("status", "filled", "outcome"),
    [
        ("open", "0", (OrderState.ACCEPTED, None)),
        ("open", "1", (OrderState.PARTIALLY_FILLED, None)),
        ("filled", "2", (OrderState.FILLED, None)),
        ("canceled", "1", (OrderState.EXPIRED, None)),
        ("iocCancelRejected", "0", (OrderState.EXPIRED, None)),
        ("perpMarginRejected", "0", (OrderState.REJECTED, RejectReason.INSUFFICIENT_MARGIN)),
        ("minTradeNtlRejected", "0", (OrderState.REJECTED, RejectReason.BELOW_MIN_NOTIONAL)),
        ("tickRejected", "0", (OrderState.REJECTED, RejectReason.BAD_PRECISION)),
        ("reduceOnlyRejected", "0", (OrderState.REJECTED, RejectReason.REDUCE_ONLY_REJECTED)),
        ("oracleRejected", "0", (OrderState.REJECTED, RejectReason.VENUE_ERROR)),
        ("marginCanceled", "0", (OrderState.CANCELED, None)),
        ("somethingNew", "0", (OrderState.ACCEPTED, None)),
    ],
)
def test_each_order_status_means_its_outcome(
    status: str, filled: str, outcome: tuple[OrderState, RejectReason | None]
) -> None:
    assert status_outcome(status, Decimal(filled), Decimal(2)) == outcome


# -- the private stream's merge ---------------------------------------------------------------

CLOID_A = "0x" + "0a" * 16


def update(status: str, left: str, size: str = "2", cloid: str | None = CLOID_A) -> OrderWithStatus:
    order = BasicOrder("BTC", "B", Decimal(100), Decimal(left), 7, 1, Decimal(size), cloid)
    return OrderWithStatus(order, status, 2)


def fill(tid: int, sz: str, px: str) -> UserFill:
    return UserFill("BTC", Decimal(px), Decimal(sz), "B", 3, 7, tid)


def test_an_update_waits_for_the_fills_that_explain_it() -> None:
    book = OrderBook()

    early = book.on_order(update("filled", "0"))
    first = book.on_fill(fill(1, "1", "100"))
    second = book.on_fill(fill(2, "1", "102"))
    again = book.on_fill(fill(2, "1", "102"))  # a resent fill counts once

    assert early is None
    assert first is None  # 1 of the 2 the update says filled
    assert second == VenueOrder(CLOID_A, OrderState.FILLED, Decimal(2), Decimal(101), "7")
    assert again is None


def test_fills_of_a_placed_order_are_reported_before_its_update() -> None:
    book = OrderBook()
    book.remember(7, CLOID_A, Decimal(2))

    partial = book.on_fill(fill(1, "1", "100"))
    done = book.on_order(update("canceled", "1"))

    assert partial == VenueOrder(
        CLOID_A, OrderState.PARTIALLY_FILLED, Decimal(1), Decimal(100), "7"
    )
    assert done == VenueOrder(CLOID_A, OrderState.EXPIRED, Decimal(1), Decimal(100), "7")


def test_orders_of_others_and_history_emit_nothing() -> None:
    book = OrderBook()

    assert book.on_order(update("filled", "0", cloid=None)) is None
    assert book.on_fill(fill(1, "2", "100"), emit=False) is None
    assert book.on_fill(fill(9, "1", "1")) is None


def test_a_rejection_is_reported_with_its_reason() -> None:
    book = OrderBook()

    refused = book.on_order(update("reduceOnlyRejected", "2"))

    assert refused is not None
    assert (refused.state, refused.reason, refused.filled_qty, refused.avg_price) == (
        OrderState.REJECTED, RejectReason.REDUCE_ONLY_REJECTED, Decimal(0), None,
    )  # fmt: skip


# -- stream messages --------------------------------------------------------------------------

USER = "0x" + "ee" * 20


def test_a_refused_subscription_ends_the_stream() -> None:
    with pytest.raises(ExecutionError, match="refused"):
        parse('{"channel": "error", "data": "Invalid subscription"}', USER, OrderBook())


FILL = {"coin": "BTC", "px": "100", "sz": "2", "side": "B", "time": 1, "oid": 7, "tid": 1}


def fills_message(user: str) -> str:
    return json.dumps({"channel": "userFills", "data": {"user": user, "fills": [FILL]}})


def test_acks_pongs_and_other_users_fills_are_not_events() -> None:
    book = OrderBook()
    book.remember(7, CLOID_A, Decimal(2))

    assert parse('{"channel": "pong"}', USER, book) == []
    assert parse('{"channel": "subscriptionResponse", "data": {}}', USER, book) == []
    assert parse(fills_message("0x" + "11" * 20), USER, book) == []


def test_a_fills_message_of_the_account_is_an_order_event() -> None:
    book = OrderBook()
    book.remember(7, CLOID_A, Decimal(2))

    events = parse(fills_message(USER), USER, book)

    assert [event.order for event in events] == [
        VenueOrder(CLOID_A, OrderState.FILLED, Decimal(2), Decimal(100), "7")
    ]
