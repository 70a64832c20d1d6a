"""Pure rules of follower execution: which URLs a follower may choose, how Binance's stream
events and error codes read."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.venues.binance_usdm import schemas
from app.venues.binance_usdm.stream import parse_event
from app.venues.execution import OrderState, RejectReason
from app.venues.urls import url_allowed

ALLOWLIST = ["https://testnet.binancefuture.com", "wss://fstream.example.com/private"]


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://testnet.binancefuture.com", True),
        ("https://testnet.binancefuture.com/fapi", True),
        ("https://TESTNET.binancefuture.com:443/", True),
        ("http://testnet.binancefuture.com", False),
        ("https://testnet.binancefuture.com:8443", False),
        ("https://testnet.binancefuture.com.evil.example", False),
        ("https://evil.example/testnet.binancefuture.com", False),
        ("wss://fstream.example.com/private/ws", True),
        ("wss://fstream.example.com/privateer", False),
        ("wss://fstream.example.com/", False),
        ("http://169.254.169.254/latest/meta-data", False),
    ],
)
def test_a_url_is_allowed_only_within_an_entry(url: str, allowed: bool) -> None:
    assert url_allowed(url, ALLOWLIST) is allowed


@given(
    host=st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z]{2,5}){1,2}", fullmatch=True),
    path=st.from_regex(r"(/[a-z0-9]{0,8}){0,3}", fullmatch=True),
)
def test_no_url_is_allowed_by_an_empty_allowlist_or_on_another_host(host: str, path: str) -> None:
    url = f"https://{host}{path}"
    assert not url_allowed(url, [])
    if host != "testnet.binancefuture.com":
        assert not url_allowed(url, ALLOWLIST)


def _event(raw: dict[str, object]) -> schemas.StreamEvent:
    return msgspec.json.decode(msgspec.json.encode(raw), type=schemas.StreamEvent)


def test_an_order_update_reads_the_cumulative_fill() -> None:
    event = parse_event(
        _event(
            {
                "e": "ORDER_TRADE_UPDATE",
                "o": {"c": "ctabc", "X": "PARTIALLY_FILLED", "z": "0.3", "ap": "50010.5", "i": 7},
            }
        )
    )

    assert event is not None
    assert event.order is not None
    assert (event.order.client_id, event.order.state) == ("ctabc", OrderState.PARTIALLY_FILLED)
    assert (event.order.filled_qty, event.order.avg_price) == (
        Decimal("0.3"),
        Decimal("50010.5"),
    )


def test_an_account_update_gives_positions_and_never_the_wallet_balance_as_equity() -> None:
    event = parse_event(
        _event(
            {
                "e": "ACCOUNT_UPDATE",
                "a": {
                    "B": [{"a": "USDT", "wb": "123.4"}],
                    "P": [{"s": "BTCUSDT", "pa": "-0.2", "ps": "BOTH"}],
                },
            }
        )
    )

    assert event is not None
    assert event.equity is None
    assert event.positions == {"BTCUSDT": Decimal("-0.2")}


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (-1111, RejectReason.BAD_PRECISION),
        (-4014, RejectReason.BAD_PRECISION),
        (-4023, RejectReason.BAD_PRECISION),
        (-2019, RejectReason.INSUFFICIENT_MARGIN),
        (-4164, RejectReason.BELOW_MIN_NOTIONAL),
        (-2022, RejectReason.REDUCE_ONLY_REJECTED),
        (-1121, RejectReason.UNKNOWN_SYMBOL),
        (-4005, RejectReason.VENUE_ERROR),
    ],
)
def test_binance_codes_map_to_reasons(code: int, reason: RejectReason) -> None:
    assert schemas.reason_for(code) is reason
