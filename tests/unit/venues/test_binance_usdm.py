"""Binance USD-M adapter: every documented message, the signature, REST paging.

Parsing tests read the fixtures in tests/venues/fixtures/binance_usdm (Binance's documented
examples and variants); REST tests run the adapter against the loopback fake venue, which
checks the signature and userTrades' limits the way Binance does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from app.domain.model import Fill, Side
from app.ingest.frames import FrameError
from app.security.crypto import Credential
from app.venues.binance_usdm.feed import BinanceUsdmAdapter
from app.venues.binance_usdm.signing import sign
from app.venues.feed import StreamExpired, VenueError
from app.venues.registry import adapter_class
from tests.venues.fake_binance_usdm import FakeBinanceUsdm, now_ms
from tests.venues.harness import Running, backfilled, fills_of, run_venue

FIXTURES = Path(__file__).resolve().parents[2] / "venues" / "fixtures" / "binance_usdm"
LEADER = UUID("00000000-0000-0000-0000-0000000000b1")
RECEIVED = datetime(2026, 1, 1, tzinfo=UTC)
DAY_MS = 24 * 3600 * 1000


def at_ms(value: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=value)


def adapter(
    rest_url: str = "http://127.0.0.1:9", key: str = "k", secret: str = "s"
) -> BinanceUsdmAdapter:
    config = {"rest_url": rest_url, "ws_url": "wss://fstream.binance.com/"}
    credentials = {"api_key": Credential(key), "api_secret": Credential(secret)}
    return BinanceUsdmAdapter(LEADER, config, credentials, httpx.AsyncClient(base_url=rest_url))


def parse(name: str) -> list[Fill]:
    return fills_of(adapter().parse((FIXTURES / name).read_bytes(), RECEIVED))


# -- parsing ------------------------------------------------------------------------------


def test_registry_names_this_adapter() -> None:
    assert adapter_class("binance-usdm") is BinanceUsdmAdapter


def test_documented_trade_execution_is_one_fill() -> None:
    assert parse("order_update_trade.json") == [
        Fill(
            leader_id=LEADER,
            fill_id="BTCUSDT:21305",
            symbol="BTCUSDT",
            side=Side.SELL,
            qty=Decimal("0.001"),
            price=Decimal("7103.04"),
            event_at=at_ms(1568879465650),
            received_at=RECEIVED,
            fee=Decimal("0.00284121"),
            fee_asset="USDT",
            reduce_only=True,
            liquidation=False,
        )
    ]


def test_partial_fills_of_one_order_are_two_fills() -> None:
    first, second = parse("partial_fill_1.json"), parse("partial_fill_2.json")

    common = {"leader_id": LEADER, "symbol": "ETHUSDT", "side": Side.BUY, "fee_asset": "USDT"}
    assert first == [
        Fill(
            **common,  # type: ignore[arg-type]
            fill_id="ETHUSDT:913401",
            qty=Decimal("1.250"),
            price=Decimal("1999.50"),
            event_at=at_ms(1700000000100),
            received_at=RECEIVED,
            fee=Decimal("0.49987500"),
            reduce_only=False,
        )
    ]
    assert second == [
        Fill(
            **common,  # type: ignore[arg-type]
            fill_id="ETHUSDT:913402",
            qty=Decimal("1.750"),
            price=Decimal("2000.00"),
            event_at=at_ms(1700000000210),
            received_at=RECEIVED,
            fee=Decimal("0.70000000"),
            reduce_only=False,
        )
    ]


def test_liquidation_is_a_fill_flagged_as_such() -> None:
    [fill] = parse("liquidation.json")

    assert fill == Fill(
        leader_id=LEADER,
        fill_id="BTCUSDT:57880211",
        symbol="BTCUSDT",
        side=Side.SELL,
        qty=Decimal("0.001"),
        price=Decimal("10913.21"),
        event_at=at_ms(1596107620087),
        received_at=RECEIVED,
        fee=Decimal("0.00436528"),
        fee_asset="USDT",
        reduce_only=False,
        liquidation=True,
    )


def test_adl_is_a_liquidation_and_may_come_without_commission() -> None:
    [fill] = parse("adl.json")

    assert fill == Fill(
        leader_id=LEADER,
        fill_id="BTCUSDT:57880377",
        symbol="BTCUSDT",
        side=Side.BUY,
        qty=Decimal("0.001"),
        price=Decimal("10979.82"),
        event_at=at_ms(1596110725071),
        received_at=RECEIVED,
        fee=None,
        fee_asset=None,
        reduce_only=False,
        liquidation=True,
    )


def test_delisting_settlement_is_a_forced_fill() -> None:
    message = json.loads((FIXTURES / "order_update_trade.json").read_text())
    message["o"]["c"] = "settlement_autoclose-1700000000000"

    [fill] = fills_of(adapter().parse(json.dumps(message), RECEIVED))

    assert (fill.fill_id, fill.qty, fill.liquidation) == ("BTCUSDT:21305", Decimal("0.001"), True)


@pytest.mark.parametrize(
    "name",
    [
        "order_update_new.json",  # the documented example: a new order, no execution
        "calculated.json",  # liquidation calculated, not yet traded
        "account_update.json",  # balances and positions, not fills
        "trade_lite.json",  # the same trade as its ORDER_TRADE_UPDATE: never counted twice
        "unknown_event.json",
    ],
)
def test_messages_that_are_not_fills(name: str) -> None:
    assert parse(name) == []


def test_listen_key_expired_ends_the_stream() -> None:
    with pytest.raises(StreamExpired):
        parse("listen_key_expired.json")


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ((FIXTURES / "malformed.txt").read_bytes(), "malformed JSON"),
        ((FIXTURES / "missing_price.json").read_bytes(), "o.L"),
        (b'["ORDER_TRADE_UPDATE"]', "JSON object"),
        (b'{"e": "ORDER_TRADE_UPDATE", "o": "x"}', "o: expected an object"),
    ],
)
def test_unreadable_messages_raise_frame_errors(raw: bytes, error: str) -> None:
    with pytest.raises(FrameError, match=error):
        fills_of(adapter().parse(raw, RECEIVED))


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("S", "LONG", "o.S"),
        ("t", 0, "o.t"),
        ("t", "21305", "o.t"),
        ("l", "0", "o.l"),
        ("R", "false", "o.R"),
        ("s", "BTC USDT", "o.s"),
        ("T", "yesterday", "o.T"),
    ],
)
def test_execution_with_an_invalid_field_raises(field: str, value: object, error: str) -> None:
    message = json.loads((FIXTURES / "order_update_trade.json").read_text())
    message["o"][field] = value

    with pytest.raises(FrameError, match=error):
        fills_of(adapter().parse(json.dumps(message), RECEIVED))


def test_amounts_keep_every_digit() -> None:
    message = json.loads((FIXTURES / "order_update_trade.json").read_text())
    message["o"]["l"] = "0.123456789012345678"
    message["o"]["L"] = "65432.123456789"

    [fill] = fills_of(adapter().parse(json.dumps(message), RECEIVED))

    assert (fill.qty, fill.price) == (Decimal("0.123456789012345678"), Decimal("65432.123456789"))


# -- signing ------------------------------------------------------------------------------


def test_signature_matches_binance_documented_example() -> None:
    # "SIGNED Endpoint Examples for POST /fapi/v1/order" in the USD-M Futures general info.
    secret = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
    query = (
        "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC"
        "&recvWindow=5000&timestamp=1591702613943"
    )

    assert sign(query, secret) == "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"


# -- REST against the fake venue ----------------------------------------------------------


@pytest.fixture
async def venue() -> AsyncIterator[Running]:
    async with run_venue(FakeBinanceUsdm()) as running:
        yield running


def venue_adapter(running: Running, secret: str | None = None) -> BinanceUsdmAdapter:
    fake = running.venue
    assert isinstance(fake, FakeBinanceUsdm)
    return adapter(running.rest_url, fake.api_key, secret or fake.api_secret)


async def test_signed_calls_read_equity_and_net_positions(venue: Running) -> None:
    fake = venue.venue
    assert isinstance(fake, FakeBinanceUsdm)
    fake.equity = Decimal("123456.78901234")
    fake.positions = {"BTCUSDT": Decimal("0.5"), "ETHUSDT": Decimal("-3"), "XRPUSDT": Decimal(0)}
    client = venue_adapter(venue)

    assert await client.fetch_equity() == Decimal("123456.78901234")
    assert await client.fetch_positions() == {"BTCUSDT": Decimal("0.5"), "ETHUSDT": Decimal("-3")}
    account = fake.calls("/fapi/v3/account")[0]
    assert set(account) == {"recvWindow", "timestamp", "signature"}


async def test_a_wrong_secret_is_refused_by_the_venue(venue: Running) -> None:
    client = venue_adapter(venue, secret="not-the-secret")

    with pytest.raises(VenueError, match="-1022"):
        await client.fetch_equity()


async def test_listen_key_makes_the_stream_url_and_is_kept_alive(venue: Running) -> None:
    fake = venue.venue
    assert isinstance(fake, FakeBinanceUsdm)
    client = venue_adapter(venue)

    url = await client.ws_url()
    await client.keepalive()

    assert url == f"wss://fstream.binance.com/private/ws?listenKey={fake.listen_key}"
    assert fake.keepalives == 1
    await fake.expire_listen_key()
    with pytest.raises(StreamExpired, match="-1125"):
        await client.keepalive()


async def test_backfill_pages_through_windows_and_from_id(venue: Running) -> None:
    # Arrange: 2,500 BTCUSDT trades over the last 20 days (more than two pages, more than
    # two 7-day windows), a few ETHUSDT trades with the same trade ids, and one
    # liquidation; the leader is flat in ETHUSDT so only its income shows it was traded.
    fake = venue.venue
    assert isinstance(fake, FakeBinanceUsdm)
    start = now_ms() - 20 * DAY_MS
    for n in range(2500):
        fake.trade(
            "BTCUSDT", "BUY" if n % 2 else "SELL", "0.001", "50000", at_ms=start + n * 600_000
        )
    fake.trade("ETHUSDT", "BUY", "2", "3000", at_ms=start + 5 * DAY_MS)
    fake.trade(
        "ETHUSDT", "SELL", "2", "3100", at_ms=start + 8 * DAY_MS, client_order_id="adl_autoclose"
    )
    since = at_ms(start + 1000 * 600_000)  # trade 1000 onwards: before it is not ours

    # Act
    fills = await backfilled(venue_adapter(venue).backfill(since, datetime.now(UTC)))

    # Assert: every fill from `since`, in time then id order, no duplicates
    btc = [f for f in fills if f.symbol == "BTCUSDT"]
    assert [f.fill_id for f in btc] == [f"BTCUSDT:{5001 + n}" for n in range(1000, 2500)]
    assert [f.event_at for f in fills] == sorted(f.event_at for f in fills)
    assert all(f.event_at >= since for f in fills)
    assert not any(f.liquidation for f in btc)
    eth = [(f.fill_id, f.side, f.liquidation) for f in fills if f.symbol == "ETHUSDT"]
    assert eth == [("ETHUSDT:5002", Side.SELL, True)]  # ETHUSDT:5001 is before since
    trades = fake.calls("/fapi/v1/userTrades")
    assert all(
        "fromId" in q or int(q["endTime"]) - int(q["startTime"]) <= 7 * DAY_MS for q in trades
    )
    assert {q["limit"] for q in trades} == {"1000"}
    # A window holding a full page goes on by id; the others take one call per symbol.
    assert sum("fromId" in q for q in trades) >= 1


async def test_backfill_finds_a_symbol_opened_and_closed_while_away(venue: Running) -> None:
    fake = venue.venue
    assert isinstance(fake, FakeBinanceUsdm)
    base = now_ms() - 60_000
    fake.trade("SOLUSDT", "BUY", "10", "150", at_ms=base)
    fake.trade("SOLUSDT", "SELL", "10", "151", at_ms=base + 1, client_order_id="autoclose-99")

    fills = await backfilled(venue_adapter(venue).backfill(at_ms(base - 1000), datetime.now(UTC)))

    assert [(f.fill_id, f.side, f.qty, f.liquidation, f.reduce_only) for f in fills] == [
        ("SOLUSDT:5001", Side.BUY, Decimal("10"), False, None),
        ("SOLUSDT:5002", Side.SELL, Decimal("10"), True, None),
    ]
    assert fills[0].fee == Decimal("0.60000000")
    assert fills[0].fee_asset == "USDT"
    assert fake.positions["SOLUSDT"] == 0  # flat: not in positionRisk's non-zero rows


def test_backfill_fee_is_positive_whatever_its_documented_sign() -> None:
    trade = json.loads((FIXTURES / "user_trades.json").read_text())[0]

    _, fill = adapter()._history_fill(trade, "BTCUSDT", {25851813}, RECEIVED)

    assert fill == Fill(
        leader_id=LEADER,
        fill_id="BTCUSDT:698759",
        symbol="BTCUSDT",
        side=Side.SELL,
        qty=Decimal("0.002"),
        price=Decimal("7819.01"),
        event_at=at_ms(1569514978020),
        received_at=RECEIVED,
        fee=Decimal("0.07819010"),
        fee_asset="USDT",
        reduce_only=None,
        liquidation=True,
    )
