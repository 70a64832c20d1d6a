"""The pure parts of the Bybit execution client: the orderLinkId, retCode and status mapping,
the REST signature, reading the private stream, and the decimal text sent on the wire."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.ids import order_id
from app.security.crypto import Credential
from app.venues.bybit.errors import is_hedge_mode_refusal, order_state, reject_reason
from app.venues.bybit.execution import BybitExecution, build
from app.venues.bybit.signing import BybitSigner
from app.venues.bybit.stream import Fills, parse_stream
from app.venues.execution import ExecutionClient, OrderState, RejectReason, VenueOrder
from app.venues.transport import plain, to_step


def client() -> BybitExecution:
    return BybitExecution(api_key=Credential("k"), api_secret=Credential("s"))


@dataclass(frozen=True)
class Context:
    config: dict[str, Any]
    credentials: dict[str, Credential]
    timeout_s: float = 5.0


async def test_a_stored_account_builds_an_execution_client() -> None:
    # No rest_url or ws_url stored: Bybit's production URLs.
    context = Context({}, {"api_key": Credential("k"), "api_secret": Credential("s")})

    built: ExecutionClient = build(context)

    assert built.venue == "bybit"
    assert built.client_order_id("ctABC_-1") == "ctABC_-1"
    await built.close()


# -- orderLinkId -----------------------------------------------------------------------------


@given(st.text(min_size=1, max_size=10), st.text(min_size=1, max_size=10), st.integers(0, 9))
def test_a_copytrade_order_id_is_its_own_order_link_id(fill: str, sub: str, leg: int) -> None:
    order = order_id("leader", fill, sub, leg)

    assert client().client_order_id(order) == order


@pytest.mark.parametrize("bad", ["", "x" * 37, "has space", "dot.ted", "ünï"])
def test_an_id_bybit_would_refuse_is_refused_here(bad: str) -> None:
    with pytest.raises(ValueError, match="orderLinkId"):
        client().client_order_id(bad)


# -- codes and states ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message", "reason"),
    [
        (110007, "ab not enough for new order", RejectReason.INSUFFICIENT_MARGIN),
        (110004, "Wallet balance is insufficient", RejectReason.INSUFFICIENT_MARGIN),
        (
            110017,
            "current position is zero, cannot fix reduce-only order qty",
            RejectReason.REDUCE_ONLY_REJECTED,
        ),
        (110094, "Order does not meet minimum order value", RejectReason.BELOW_MIN_NOTIONAL),
        (10001, "Qty invalid", RejectReason.BAD_PRECISION),
        (10001, "params error: symbol invalid DOGEUSDT", RejectReason.UNKNOWN_SYMBOL),
        (10029, "The requested symbol is invalid", RejectReason.UNKNOWN_SYMBOL),
        (110003, "Order price exceeds the allowable range", RejectReason.VENUE_ERROR),
    ],
)
def test_each_ret_code_maps_to_its_reason(code: int, message: str, reason: RejectReason) -> None:
    assert reject_reason(code, message) is reason


def test_only_the_position_idx_refusal_means_hedge_mode() -> None:
    assert is_hedge_mode_refusal(10001, "position idx not match position mode")
    assert not is_hedge_mode_refusal(10001, "params error: symbol invalid")
    assert not is_hedge_mode_refusal(110017, "position idx not match position mode")


@pytest.mark.parametrize(
    ("status", "filled", "expected"),
    [
        ("New", "0", OrderState.ACCEPTED),
        ("New", "0.1", OrderState.PARTIALLY_FILLED),
        ("PartiallyFilled", "0.1", OrderState.PARTIALLY_FILLED),
        ("Filled", "1", OrderState.FILLED),
        ("Cancelled", "0", OrderState.CANCELED),
        ("PartiallyFilledCanceled", "0.5", OrderState.CANCELED),
        ("Rejected", "0", OrderState.REJECTED),
    ],
)
def test_order_statuses(status: str, filled: str, expected: OrderState) -> None:
    assert order_state(status, Decimal(filled)) is expected


def test_an_unlisted_status_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match="orderStatus"):
        order_state("Created", Decimal(0))


# -- signing ---------------------------------------------------------------------------------


def test_a_post_is_signed_over_timestamp_key_window_and_the_exact_body() -> None:
    body = '{"category":"linear","symbol":"BTCUSDT"}'

    headers = BybitSigner(Credential("key"), Credential("secret")).headers(body, 1658385579423)

    payload = f"1658385579423key5000{body}".encode()
    assert headers == {
        "X-BAPI-API-KEY": "key",
        "X-BAPI-TIMESTAMP": "1658385579423",
        "X-BAPI-RECV-WINDOW": "5000",
        "X-BAPI-SIGN": hmac.new(b"secret", payload, hashlib.sha256).hexdigest(),
    }


# -- the private stream ----------------------------------------------------------------------


def _push(topic: str, rows: list[dict[str, Any]]) -> str:
    return json.dumps({"id": "1", "topic": topic, "creationTime": 1672364262474, "data": rows})


def test_order_rows_become_updates_and_a_bad_row_is_skipped_alone() -> None:
    raw = _push(
        "order.linear",
        [
            {
                "category": "linear",
                "orderLinkId": "ct1",
                "orderId": "o1",
                "orderStatus": "PartiallyFilled",
                "cumExecQty": "0.01",
                "avgPrice": "50000",
            },
            {
                "category": "linear",
                "orderLinkId": "ct2",
                "orderId": "o2",
                "orderStatus": "Filled",
                "cumExecQty": "much",
                "avgPrice": "50000",
            },
            {"category": "spot", "orderLinkId": "ct3", "orderId": "o3", "orderStatus": "Filled"},
            {
                "category": "linear",
                "orderLinkId": "ct4",
                "orderId": "o4",
                "orderStatus": "Cancelled",
                "cumExecQty": "0",
                "avgPrice": "",
            },
        ],
    )

    events = parse_stream(raw)

    assert [e.order for e in events] == [
        VenueOrder("ct1", OrderState.PARTIALLY_FILLED, Decimal("0.01"), Decimal(50000), "o1"),
        VenueOrder("ct4", OrderState.CANCELED, Decimal(0), None, "o4"),
    ]
    assert events[0].at is not None


def _execution(link: str, qty: str, leaves: str, price: str, kind: str = "Trade") -> str:
    row = {
        "category": "linear",
        "orderLinkId": link,
        "orderId": "o1",
        "orderQty": "0.03",
        "leavesQty": leaves,
        "execQty": qty,
        "execPrice": price,
        "execType": kind,
    }
    return _push("execution.linear", [row])


def test_executions_become_cumulative_updates_with_their_average_price() -> None:
    fills = Fills()

    [first] = parse_stream(_execution("ct1", "0.01", "0.02", "50000"), fills)
    [second] = parse_stream(_execution("ct1", "0.02", "0", "50300"), fills)

    assert (first.order, second.order) == (
        VenueOrder("ct1", OrderState.PARTIALLY_FILLED, Decimal("0.01"), Decimal(50000), "o1"),
        VenueOrder("ct1", OrderState.FILLED, Decimal("0.03"), Decimal(50200), "o1"),
    )


def test_an_execution_whose_earlier_fills_were_not_seen_is_left_to_the_order_topic() -> None:
    # The stream opened after the first 0.01: an average over 0.02 would be wrong.
    assert parse_stream(_execution("ct1", "0.02", "0", "50300"), Fills()) == []
    assert parse_stream(_execution("ct1", "0.01", "0.02", "5", kind="Funding"), Fills()) == []


def test_position_and_wallet_pushes_carry_positions_and_the_margin_balance() -> None:
    positions = _push(
        "position.linear",
        [
            {"category": "linear", "symbol": "BTCUSDT", "side": "Sell", "size": "0.5"},
            {"category": "linear", "symbol": "ETHUSDT", "side": "", "size": "0"},
        ],
    )
    wallet = _push(
        "wallet",
        [{"accountType": "UNIFIED", "totalEquity": "10300", "totalMarginBalance": "10250.5"}],
    )

    [position_event] = parse_stream(positions)
    [wallet_event] = parse_stream(wallet)

    assert position_event.positions == {"BTCUSDT": Decimal("-0.5"), "ETHUSDT": Decimal(0)}
    assert wallet_event.equity == Decimal("10250.5")


def test_replies_pongs_and_garbage_are_not_events() -> None:
    assert parse_stream('{"op":"pong","args":["1"],"conn_id":"c"}') == []
    assert parse_stream('{"success":true,"op":"subscribe"}') == []
    assert parse_stream("{not json") == []
    assert parse_stream(_push("order.linear", "not rows")) == []  # type: ignore[arg-type]


# -- decimal text ----------------------------------------------------------------------------


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**12), max_value=10**12))
def test_plain_text_has_no_exponent_and_the_same_value(value: Decimal) -> None:
    text = plain(value)

    assert "E" not in text.upper()
    assert Decimal(text) == value


@given(
    st.decimals(min_value=Decimal("0.0001"), max_value=10**6, places=6),
    st.sampled_from([Decimal("0.1"), Decimal("0.5"), Decimal("0.01"), Decimal(5)]),
    st.booleans(),
)
def test_to_step_lands_on_the_step_on_the_requested_side(
    value: Decimal, step: Decimal, up: bool
) -> None:
    rounded = to_step(value, step, up=up)

    assert rounded % step == 0
    assert (rounded >= value) if up else (rounded <= value)
    assert abs(rounded - value) < step
