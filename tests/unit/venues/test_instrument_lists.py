"""Each venue's public instrument list parsed into listings, without I/O: documented rows,
the rows left out on purpose, and refusals that leave the previous rules in place."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from app.venues.binance_usdm import instruments as binance
from app.venues.bybit import instruments as bybit
from app.venues.hyperliquid import instruments as hyperliquid
from app.venues.okx import instruments as okx
from app.venues.rules_loading import InstrumentsUnavailable, Loaded
from tests.venues.binance_usdm_instruments import binance_symbol
from tests.venues.bybit_instruments import bybit_instrument
from tests.venues.hyperliquid_instruments import hl_asset
from tests.venues.okx_instruments import okx_swap

D = Decimal


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_binance_keeps_the_market_lot_apart_from_the_limit_lot() -> None:
    loaded = binance.parse(
        body(
            {
                "symbols": [
                    binance_symbol("BTCUSDT", "BTC", "USDT", "0.001", "0.001", "0.01", "0.02"),
                    binance_symbol("ETHUSDT", "ETH", "USDT", "0.001", "0.001", "0", "0"),
                    binance_symbol("BTCUSDT_261225", "BTC", "USDT", "0.001", "0.001",
                                   contract_type="NEXT_QUARTER"),
                    binance_symbol("OLDUSDT", "OLD", "USDT", "1", "1", status="SETTLING"),
                ]
            }
        )
    )  # fmt: skip

    btc, eth = loaded.listings
    assert (btc.qty_step, btc.market_qty_step, btc.market_min_qty) == (
        D("0.001"),
        D("0.01"),
        D("0.02"),
    )
    assert (btc.min_notional, btc.price_step, btc.max_qty) == (D(5), D("0.10"), D(1000))
    assert eth.market_qty_step is None  # a zero step is no separate rule
    assert loaded.skipped == 0


def test_binance_without_a_lot_size_is_a_bad_row() -> None:
    row = binance_symbol("BTCUSDT", "BTC", "USDT", "0.001", "0.001")
    row["filters"] = [f for f in row["filters"] if f["filterType"] != "LOT_SIZE"]

    loaded = binance.parse(body({"symbols": [row]}))

    assert (loaded.listings, loaded.skipped) == ([], 1)


def test_bybit_pages_and_refusals() -> None:
    page = {
        "retCode": 0,
        "retMsg": "OK",
        "result": {
            "category": "linear",
            "list": [
                bybit_instrument("BTCUSDT", "BTC", "USDT", "0.001", "0.001", "5"),
                bybit_instrument("BTCUSDH26", "BTC", "USDT", "0.001", "0.001",
                                 contract_type="LinearFutures"),
            ],
            "nextPageCursor": "next",
        },
    }  # fmt: skip
    into = Loaded("bybit")

    cursor = bybit.parse_page(body(page), into)

    [btc] = into.listings
    assert cursor == "next"
    assert (btc.qty_step, btc.min_qty, btc.min_notional, btc.market_max_qty) == (
        D("0.001"), D("0.001"), D(5), D(500)
    )  # fmt: skip
    with pytest.raises(InstrumentsUnavailable, match="retCode 10001"):
        bybit.parse_page(body({"retCode": 10001, "retMsg": "params error", "result": {}}), into)


def test_okx_sizes_become_base_units_and_errors_refuse_the_list() -> None:
    loaded = okx.parse(
        body(
            {
                "code": "0",
                "data": [
                    okx_swap("ETH-USDT-SWAP", ct_val="0.1", lot_sz="0.01", min_sz="0.01"),
                    okx_swap("ETH-USD-SWAP", "10", "1", "1", ct_type="inverse"),
                    okx_swap("NEW-USDT-SWAP", ct_val="1", lot_sz="1", min_sz="1", state="preopen"),
                ],
            }
        )
    )  # fmt: skip

    [eth] = loaded.listings
    assert (eth.qty_step, eth.min_qty, eth.contract_size) == (D("0.001"), D("0.001"), D("0.1"))
    assert eth.market_max_qty == D(3000)  # maxMktSz 30000 contracts of 0.1 ETH
    with pytest.raises(InstrumentsUnavailable, match="code 50014"):
        okx.parse(body({"code": "50014", "msg": "Parameter instType can not be empty."}))


def test_hyperliquid_sizes_and_price_rules_from_sz_decimals() -> None:
    loaded = hyperliquid.parse(
        body({"universe": [hl_asset("BTC", 5), hl_asset("OLD", 0, delisted=True),
                           {"name": "ODD", "szDecimals": 9}]})
    )  # fmt: skip

    [btc] = loaded.listings
    assert (btc.qty_step, btc.min_notional, btc.quote) == (D("0.00001"), D(10), "USDC")
    assert (btc.price_sig_figs, btc.price_max_decimals) == (5, 1)
    assert loaded.skipped == 1  # szDecimals beyond what a perp price allows


@pytest.mark.parametrize(
    "parse", [binance.parse, okx.parse, hyperliquid.parse], ids=["binance", "okx", "hyperliquid"]
)
def test_a_body_that_is_not_the_list_is_refused_whole(parse: Any) -> None:
    with pytest.raises(InstrumentsUnavailable):
        parse(b"<html>maintenance</html>")
