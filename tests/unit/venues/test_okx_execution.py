"""The pure parts of the OKX execution client: clOrdId derivation, contract sizes, code and
state mapping, the REST signature and reading the private stream."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.ids import order_id
from app.security.crypto import Credential
from app.venues.execution import (
    ExecutionClient,
    ExecutionError,
    OrderState,
    RejectReason,
    VenueOrder,
)
from app.venues.okx.contracts import Contract
from app.venues.okx.errors import is_long_short_refusal, order_state, reject_reason
from app.venues.okx.execution import build
from app.venues.okx.ids import cl_ord_id, order_id_of
from app.venues.okx.schemas import Instrument
from app.venues.okx.signing import OkxSigner
from app.venues.okx.stream import parse_stream

ORDER_ID_CHARS = string.ascii_letters + string.digits + "-_"
order_ids = st.text(alphabet=ORDER_ID_CHARS, min_size=1, max_size=31)
AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
BTC = Contract(
    "BTC-USDT-SWAP", Decimal("0.01"), Decimal("0.01"), Decimal("0.01"), Decimal("0.1"), False
)


@dataclass(frozen=True)
class Context:
    config: dict[str, Any]
    credentials: dict[str, Credential]
    timeout_s: float = 5.0


KEYS = {"api_key": Credential("k"), "api_secret": Credential("s"), "passphrase": Credential("p")}
URLS = {"rest_url": "https://www.okx.com", "ws_url": "wss://ws.okx.com:8443/ws/v5/private"}


async def test_a_stored_account_builds_an_execution_client() -> None:
    built: ExecutionClient = build(Context({**URLS, "td_mode": "isolated"}, KEYS))

    assert built.venue == "okx"
    assert built.client_order_id("ctAB") == cl_ord_id("ctAB")
    await built.close()


def test_a_stored_account_with_an_unknown_td_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="td_mode"):
        build(Context({**URLS, "td_mode": "cash"}, KEYS))


# -- clOrdId ---------------------------------------------------------------------------------


@given(order_ids)
def test_a_cl_ord_id_is_1_to_32_alphanumerics_and_gives_its_order_id_back(order: str) -> None:
    derived = cl_ord_id(order)

    assert 1 <= len(derived) <= 32
    assert derived.isascii()
    assert derived.isalnum()
    assert order_id_of(derived) == order


@given(order_ids, order_ids)
def test_two_order_ids_never_share_a_cl_ord_id(first: str, second: str) -> None:
    assert (cl_ord_id(first) == cl_ord_id(second)) == (first == second)


@given(st.text(min_size=1, max_size=60))
def test_anything_that_is_not_an_order_id_is_refused_not_truncated(text: str) -> None:
    fits = all(c in ORDER_ID_CHARS for c in text) and len(text) <= 31
    if fits:
        assert order_id_of(cl_ord_id(text)) == text
    else:
        with pytest.raises(ValueError, match="order id"):
            cl_ord_id(text)


def test_copytrade_order_ids_give_25_characters_deterministically() -> None:
    ids = [order_id("leader", f"fill-{n}", "subscription") for n in range(200)]

    derived = [cl_ord_id(i) for i in ids]

    assert {len(d) for d in derived} == {25}
    assert len(set(derived)) == len(ids)
    assert derived == [cl_ord_id(i) for i in ids]


def test_leading_zero_digits_keep_ids_apart() -> None:
    # "A" is digit 0: without the leading 1, "AAb" and "b" would be the same number.
    assert cl_ord_id("AAb") != cl_ord_id("b")


@pytest.mark.parametrize("text", ["", "0abc", "ab-c", "x" * 40])
def test_a_string_no_order_id_makes_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="clOrdId"):
        order_id_of(text)


# -- contracts -------------------------------------------------------------------------------


@given(st.decimals(min_value=0, max_value=1000, places=8))
def test_contracts_round_down_to_the_lot_and_never_exceed_the_qty(qty: Decimal) -> None:
    size = BTC.contracts(qty)

    assert size % BTC.lot == 0
    assert BTC.base(size) <= qty
    assert qty - BTC.base(size) < BTC.lot * BTC.ct_val


@given(st.integers(min_value=1, max_value=10**9))
def test_a_whole_number_of_lots_converts_exactly_both_ways(lots: int) -> None:
    qty = BTC.base(BTC.lot * lots)

    assert BTC.base(BTC.contracts(qty)) == qty


def test_an_instrument_row_without_values_is_not_a_contract() -> None:
    with pytest.raises(ValueError, match="ctVal"):
        Contract.of(Instrument(instId="NEW-USDT-SWAP", lotSz="1", minSz="1", tickSz="0.1"))


# -- codes and states ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("51008", RejectReason.INSUFFICIENT_MARGIN),
        ("51131", RejectReason.INSUFFICIENT_MARGIN),
        ("51121", RejectReason.BAD_PRECISION),
        ("51020", RejectReason.BELOW_MIN_NOTIONAL),
        ("51169", RejectReason.REDUCE_ONLY_REJECTED),
        ("51170", RejectReason.REDUCE_ONLY_REJECTED),
        ("51001", RejectReason.UNKNOWN_SYMBOL),
        ("51006", RejectReason.VENUE_ERROR),  # price outside the limit band
    ],
)
def test_each_refusal_code_maps_to_its_reason(code: str, reason: RejectReason) -> None:
    assert reject_reason(code) is reason


def test_only_a_pos_side_parameter_error_means_long_short_mode() -> None:
    assert is_long_short_refusal("51000", "Parameter posSide error")
    assert not is_long_short_refusal("51000", "Parameter sz error")
    assert not is_long_short_refusal("51001", "posSide")


@pytest.mark.parametrize(
    ("state", "filled", "expected"),
    [
        ("live", "0", OrderState.ACCEPTED),
        ("live", "1", OrderState.PARTIALLY_FILLED),
        ("partially_filled", "1", OrderState.PARTIALLY_FILLED),
        ("filled", "2", OrderState.FILLED),
        ("canceled", "0", OrderState.CANCELED),
        ("mmp_canceled", "0", OrderState.CANCELED),
    ],
)
def test_order_states(state: str, filled: str, expected: OrderState) -> None:
    assert order_state(state, Decimal(filled)) is expected


def test_an_unlisted_state_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match="state"):
        order_state("effective", Decimal(0))


# -- signing ---------------------------------------------------------------------------------


def test_rest_headers_sign_timestamp_method_path_and_body() -> None:
    signer = OkxSigner(Credential("key"), Credential("secret"), Credential("pass"), simulated=True)
    body = '{"instId":"BTC-USDT-SWAP","sz":"5"}'

    headers = signer.headers("POST", "/api/v5/trade/order", body, AT)

    prehash = f"2026-12-07T12:00:00.000ZPOST/api/v5/trade/order{body}"
    digest = hmac.new(b"secret", prehash.encode(), hashlib.sha256).digest()
    assert headers == {
        "OK-ACCESS-KEY": "key",
        "OK-ACCESS-SIGN": base64.b64encode(digest).decode(),
        "OK-ACCESS-TIMESTAMP": "2026-12-07T12:00:00.000Z",
        "OK-ACCESS-PASSPHRASE": "pass",
        "x-simulated-trading": "1",
    }


# -- the private stream ----------------------------------------------------------------------


def _push(channel: str, rows: list[dict[str, str]]) -> str:
    return json.dumps({"arg": {"channel": channel, "instType": "SWAP"}, "data": rows})


def test_orders_become_cumulative_base_unit_updates_and_a_bad_row_is_skipped() -> None:
    raw = _push(
        "orders",
        [
            {
                "instId": "BTC-USDT-SWAP",
                "clOrdId": "a1",
                "ordId": "7",
                "state": "partially_filled",
                "accFillSz": "3",
                "avgPx": "50000",
            },
            {
                "instId": "BTC-USDT-SWAP",
                "clOrdId": "a2",
                "ordId": "8",
                "state": "filled",
                "accFillSz": "lots",
                "avgPx": "50000",
            },
            {"instId": "BTC-USDT-SWAP", "clOrdId": "", "ordId": "9", "state": "filled"},
            {
                "instId": "BTC-USDT-SWAP",
                "clOrdId": "a3",
                "ordId": "10",
                "state": "canceled",
                "accFillSz": "0",
                "avgPx": "",
            },
        ],
    )

    events = parse_stream(raw, {"BTC-USDT-SWAP": BTC}, AT)

    assert [e.order for e in events] == [
        VenueOrder("a1", OrderState.PARTIALLY_FILLED, Decimal("0.03"), Decimal(50000), "7"),
        VenueOrder("a3", OrderState.CANCELED, Decimal(0), None, "10"),
    ]


def test_positions_and_account_pushes_carry_positions_and_equity() -> None:
    contracts = {"BTC-USDT-SWAP": BTC}
    positions = _push("positions", [{"instId": "BTC-USDT-SWAP", "pos": "-7", "posSide": "net"}])
    account = json.dumps({"arg": {"channel": "account"}, "data": [{"totalEq": "10250.5"}]})

    [position_event] = parse_stream(positions, contracts, AT)
    [account_event] = parse_stream(account, contracts, AT)

    assert position_event.positions == {"BTC-USDT-SWAP": Decimal("-0.07")}
    assert account_event.equity == Decimal("10250.5")


def test_acks_and_pongs_are_not_events_and_an_error_event_ends_the_stream() -> None:
    ack = json.dumps({"event": "subscribe", "arg": {"channel": "orders"}, "connId": "c"})

    assert parse_stream("pong", {}, AT) == []
    assert parse_stream(ack, {}, AT) == []
    assert parse_stream("{not json", {}, AT) == []
    with pytest.raises(ExecutionError, match="60011"):
        parse_stream(
            json.dumps({"event": "error", "code": "60011", "msg": "Please log in"}), {}, AT
        )
