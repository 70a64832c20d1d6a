"""The fakes refuse a request stamped more than a second ahead, as Binance and Bybit do,
whatever its recvWindow: a client whose clock runs ahead must fail here, not in production."""

from __future__ import annotations

import hashlib
import hmac

from tests.venues.bybit_trade_socket import TradeSocket
from tests.venues.clock import now_ms
from tests.venues.fake_binance_usdm import BinanceAccount


def _binance_refusal(stamp: int, window: int = 10_000) -> tuple[int, int, str] | None:
    fake = BinanceAccount()
    payload = f"recvWindow={window}&symbol=BTCUSDT&timestamp={stamp}"
    signature = hmac.new(fake.api_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return fake.refusal(fake.api_key, payload, signature, str(stamp), str(window))


def test_binance_refuses_a_timestamp_two_seconds_ahead() -> None:
    refused = _binance_refusal(now_ms() + 2_000)

    assert refused is not None
    assert refused[1] == -1021


def test_binance_takes_a_timestamp_within_the_window_behind() -> None:
    assert _binance_refusal(now_ms() - 5_000) is None


def test_bybit_trade_socket_refuses_a_timestamp_two_seconds_ahead() -> None:
    request = {
        "reqId": "o1",
        "header": {"X-BAPI-TIMESTAMP": str(now_ms() + 2_000), "X-BAPI-RECV-WINDOW": "10000"},
        "op": "order.create",
        "args": [{}],
    }

    answer = TradeSocket().answer(venue=None, request=request, authed=True)

    assert answer["retCode"] == 10002
