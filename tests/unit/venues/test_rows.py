"""One unreadable row stays one: every adapter returns it as a BadRow in its place, between
fills that still apply. Hyperliquid's fills without a tid get a stable, distinct id."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from app.domain.model import Fill
from app.domain.quarantine import QuarantineReason
from app.sizing.copies import copy_report
from app.venues.feed import BadRow, Item
from app.venues.okx.signing import sign
from tests.conftest import make_settings
from tests.unit.venues import test_bybit, test_hyperliquid, test_okx
from tests.venues.fake_binance_usdm import FakeBinanceUsdm, order_trade_update
from tests.venues.fake_bybit import FakeBybit, execution
from tests.venues.fake_okx import API_KEY, API_SECRET, PASSPHRASE, FakeOkx, Trade
from tests.venues.harness import run_venue

FIXTURES = Path(__file__).resolve().parents[2] / "venues" / "fixtures"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
HL_AT = test_hyperliquid.RECEIVED
SIX = ("hash", "oid", "time", "px", "sz", "startPosition")


def shape(items: list[Item]) -> list[str]:
    return ["fill" if isinstance(item, Fill) else "bad" for item in items]


def bad(items: list[Item]) -> BadRow:
    [row] = [item for item in items if isinstance(item, BadRow)]
    return row


# -- a bad row among good ones, live ----------------------------------------------------------


def test_hyperliquid_keeps_the_fills_around_an_unreadable_one() -> None:
    message = json.loads((FIXTURES / "hyperliquid" / "several_partial.json").read_text())
    message["data"]["fills"][1]["sz"] = "lots"

    items = test_hyperliquid.adapter().parse(json.dumps(message), HL_AT)

    assert shape(items) == ["fill", "bad", "fill"]
    row = bad(items)
    assert row.reason is QuarantineReason.MALFORMED_ROW
    assert "fills[1].sz" in row.error
    assert json.loads(row.raw)["sz"] == "lots"


def test_bybit_keeps_the_executions_around_an_unreadable_one() -> None:
    rows = [execution("BTCUSDT", "Buy", "0.1", "60000", exec_time_ms=1_700_000_000_000 + n)
            for n in range(3)]  # fmt: skip
    rows[1]["side"] = "Up"
    raw = json.dumps({"topic": "execution.linear", "data": rows})

    items = test_bybit.adapter().parse(raw, NOW)

    assert shape(items) == ["fill", "bad", "fill"]
    assert "side" in bad(items).error


def test_okx_keeps_the_fills_around_an_unreadable_one() -> None:
    okx = test_okx.make_adapter()
    trades = [Trade("BTC-USDT-SWAP", str(n), "buy", "1", "60000", fill_time=1_700_000_000_000)
              for n in range(3)]  # fmt: skip
    rows = [t.order_row() for t in trades]
    rows[1]["fillPx"] = "-5"
    raw = json.dumps({"arg": {"channel": "orders", "instType": "SWAP"}, "data": rows})

    items = okx.parse(raw, NOW)

    assert shape(items) == ["fill", "bad", "fill"]
    assert bad(items).reason is QuarantineReason.NON_POSITIVE_VALUE


def test_binance_quarantines_an_unreadable_execution_event() -> None:
    event = order_trade_update("BTCUSDT", "BUY", "0.1", "60000", 7, 8, 1_700_000_000_000)
    event["o"]["S"] = "LONG"
    from tests.unit.venues.test_binance_usdm import adapter

    items = adapter().parse(json.dumps(event), NOW)

    assert shape(items) == ["bad"]
    assert "o.S" in bad(items).error


# -- Hyperliquid fills without a tid ---------------------------------------------------------


SEVERAL_PARTIAL = (FIXTURES / "hyperliquid" / "several_partial.json").read_text()


def tidless() -> list[dict[str, Any]]:
    fills: list[dict[str, Any]] = json.loads(SEVERAL_PARTIAL)["data"]["fills"]
    for fill in fills:
        del fill["tid"]
    return fills


def parse_rows(rows: list[dict[str, Any]]) -> list[Fill]:
    items = test_hyperliquid.adapter().parse(test_hyperliquid.message(*rows), HL_AT)
    assert all(isinstance(item, Fill) for item in items)
    return [item for item in items if isinstance(item, Fill)]


def test_tidless_fills_get_stable_distinct_ids() -> None:
    rows = tidless()
    # The first two are partial fills of one order: same hash, same oid.
    assert (rows[0]["hash"], rows[0]["oid"]) == (rows[1]["hash"], rows[1]["oid"])

    first = [f.fill_id for f in parse_rows(rows)]
    again = [f.fill_id for f in parse_rows(tidless())]

    assert first == again  # the stream and the backfill name a fill alike
    assert len(set(first)) == 3
    assert all(fill_id.startswith("h") and not fill_id.isdigit() for fill_id in first)


def bump(value: Any) -> Any:
    if isinstance(value, int):
        return value + 1
    if value.startswith("0x"):
        return value[:-1] + ("1" if value[-1] != "1" else "2")
    return str(Decimal(value) + 1)


@settings(deadline=None)  # no timing threshold: the machine may be busy
@given(field=st.sampled_from(SIX), other=st.sampled_from(["closedPnl", "crossed", "fee"]))
def test_a_derived_id_depends_on_exactly_the_six_fields(field: str, other: str) -> None:
    [row] = tidless()[:1]
    changed = {**row, field: bump(row[field])}  # startPosition 1.0 is still an Open Long
    unrelated = {**row, other: "0.5" if other != "crossed" else False}

    [base] = parse_rows([row])
    [moved] = parse_rows([changed])
    [same] = parse_rows([unrelated])

    assert moved.fill_id != base.fill_id
    assert same.fill_id == base.fill_id


def test_a_tidless_row_missing_what_the_id_needs_is_unreadable() -> None:
    row = {k: v for k, v in tidless()[0].items() if k != "hash"}
    items = test_hyperliquid.adapter().parse(test_hyperliquid.message(row), HL_AT)
    assert "no tid" in bad(items).error


def test_each_fill_carries_the_venue_position_before_it_once() -> None:
    hl = test_hyperliquid.adapter()
    message = (FIXTURES / "hyperliquid" / "several_partial.json").read_text()
    fills = [item for item in hl.parse(message, HL_AT) if isinstance(item, Fill)]

    assert [hl.position_before(f) for f in fills] == [
        Decimal("0.0"),
        Decimal("0.2"),
        Decimal("-1.5"),
    ]
    assert hl.position_before(fills[0]) is None  # taken by the listener once


# -- retired forms, settings, the copy report ------------------------------------------------


async def test_the_binance_fake_refuses_the_retired_stream_url() -> None:
    async with run_venue(FakeBinanceUsdm(listen_key="k" * 64)) as running:
        with pytest.raises(InvalidStatus):
            async with connect(f"{running.ws_base}/ws/{'k' * 64}", open_timeout=5):
                pass
        async with connect(f"{running.ws_base}/private/ws?listenKey={'k' * 64}"):
            pass
        assert running.venue.retired_calls == [f"/ws/{'k' * 64}"]


@pytest.mark.parametrize("path", ["/realtime_private", "/contract/private/v3"])
async def test_the_bybit_fake_refuses_the_private_streams_v5_replaced(path: str) -> None:
    async with run_venue(FakeBybit()) as running:
        with pytest.raises(InvalidStatus):
            async with connect(f"{running.ws_base}{path}", open_timeout=5):
                pass
        assert running.venue.retired_calls == [path]


async def test_the_okx_fake_refuses_a_subscription_by_uly() -> None:
    okx = FakeOkx()
    ts = str(int(time.time()))
    login = {
        "apiKey": API_KEY,
        "passphrase": PASSPHRASE,
        "timestamp": ts,
        "sign": sign(API_SECRET, f"{ts}GET/users/self/verify"),
    }
    arg = {"channel": "orders", "instType": "SWAP", "uly": "BTC-USDT"}
    async with run_venue(okx) as running, connect(running.ws_base + okx.ws_path) as ws:
        await ws.send(json.dumps({"op": "login", "args": [login]}))
        assert json.loads(await ws.recv())["event"] == "login"
        await ws.send(json.dumps({"op": "subscribe", "args": [arg]}))
        reply = json.loads(await ws.recv())
    assert (reply["event"], reply["code"]) == ("error", "60018")
    assert okx.retired_calls == ["subscribe uly"]


def test_an_idle_timeout_shorter_than_two_pings_is_refused_naming_both() -> None:
    with pytest.raises(ValidationError) as caught:
        make_settings(feed_ping_interval_s=20, venue_idle_timeout_s=30)
    message = str(caught.value)
    assert "COPYTRADE_VENUE_IDLE_TIMEOUT_S" in message
    assert "COPYTRADE_FEED_PING_INTERVAL_S" in message
    assert make_settings(feed_ping_interval_s=20, venue_idle_timeout_s=40)


def test_the_copy_report_lists_every_symbol_synced_or_why_not() -> None:
    report = copy_report(
        {"BTC": "synced", "ETH": "no_price", "SOL": "already_synced", "XRP": "min_notional"}
    )
    assert report == {
        "synced": ["BTC", "SOL"],
        "skipped": [
            {"symbol": "ETH", "reason": "no_price"},
            {"symbol": "XRP", "reason": "min_notional"},
        ],
    }


async def test_bybit_reads_a_position_its_settle_coin_list_leaves_out() -> None:
    # Arrange: USDT settled only, the leader also holds a USDC-settled perpetual.
    venue = FakeBybit()
    venue.positions = {
        "linear": [
            {"symbol": "BTCUSDT", "side": "Buy", "size": "1", "markPrice": "60000"},
            {"symbol": "ETHPERP", "side": "Sell", "size": "2", "markPrice": "3000"},
        ]
    }
    async with run_venue(venue) as running:
        bybit = test_bybit.adapter(rest_url=running.rest_url)
        bybit.config = {**bybit.config, "settle_coins": ["USDT"]}

        # Act
        listed = await bybit.positions()
        asked = await bybit.positions_of(["ETHPERP", "SOLUSDT"])
        await bybit.http.aclose()

    # Assert: the list misses it, asking by name finds it (and SOLUSDT flat).
    assert [(p.symbol, p.qty) for p in listed] == [("BTCUSDT", Decimal(1))]
    assert [(p.symbol, p.qty, p.price) for p in asked] == [("ETHPERP", Decimal(-2), Decimal(3000))]
