"""The OKX adapter: parsing every documented message and variant, signing, REST paging.

Parsing tests are pure; the REST and login tests talk to the fake OKX on loopback, which
checks every signature the way OKX documents it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from websockets.asyncio.client import connect

from app.domain.model import Fill, Side
from app.ingest.frames import FrameError
from app.security.crypto import Credential
from app.venues.feed import StreamExpired, VenueError
from app.venues.okx.feed import OkxAdapter
from app.venues.okx.signing import rest_timestamp, sign
from app.venues.registry import adapter_class
from tests.venues.fake_okx import API_KEY, API_SECRET, PASSPHRASE, FakeOkx, Trade, now_ms
from tests.venues.harness import Running, backfilled, fills_of, run_venue

FIXTURES = Path(__file__).resolve().parents[2] / "venues" / "fixtures" / "okx"
LEADER = UUID("00000000-0000-0000-0000-0000000000aa")
RECEIVED = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def at_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def make_adapter(
    rest_url: str = "http://127.0.0.1:9",
    secret: str = API_SECRET,
    passphrase: str = PASSPHRASE,
    **config: Any,
) -> OkxAdapter:
    credentials = {
        "api_key": Credential(API_KEY),
        "api_secret": Credential(secret),
        "passphrase": Credential(passphrase),
    }
    full = {"inst_type": "SWAP", "simulated": False, "rest_url": rest_url, "ws_url": "ws://x"}
    adapter = OkxAdapter(LEADER, full | config, credentials, httpx.AsyncClient(base_url=rest_url))
    adapter.remember_instruments(json.loads(fixture("instruments_swap.json"))["data"])
    return adapter


@pytest.fixture
async def adapter() -> AsyncIterator[OkxAdapter]:
    okx = make_adapter()
    yield okx
    await okx.http.aclose()


@pytest.fixture
async def venue() -> AsyncIterator[Running]:
    async with run_venue(FakeOkx()) as running:
        yield running


def fill(fill_id: str, symbol: str, side: Side, qty: str, price: str, ms: int, **kw: Any) -> Fill:
    return Fill(
        leader_id=LEADER,
        fill_id=fill_id,
        symbol=symbol,
        side=side,
        qty=Decimal(qty),
        price=Decimal(price),
        event_at=at_ms(ms),
        received_at=RECEIVED,
        **kw,
    )


# -- signing --------------------------------------------------------------------------------


def test_login_signature_matches_a_vector_computed_with_openssl() -> None:
    # printf '1538054050GET/users/self/verify' | openssl dgst -sha256 -hmac <the docs'
    # example SecretKey> -binary | base64
    assert sign(API_SECRET, "1538054050GET/users/self/verify") == (
        "+LdIr8lkkvhr5hoA3g9TMC0+uQJ849ftAcocA/ouu4M="
    )


def test_rest_signature_covers_timestamp_method_path_and_query() -> None:
    # The docs' example request: GET /api/v5/account/balance?ccy=BTC at 2020-12-08T09:08:57.715Z
    prehash = "2020-12-08T09:08:57.715Z" + "GET" + "/api/v5/account/balance?ccy=BTC"
    assert sign(API_SECRET, prehash) == "HiZhvSfMtWJA3uUIVXV3a/bSXNPCWvYFXoGCVS8V4zY="


def test_rest_timestamp_is_iso_utc_with_milliseconds() -> None:
    at = datetime(2020, 12, 8, 9, 8, 57, 715_999, tzinfo=UTC)
    assert rest_timestamp(at) == "2020-12-08T09:08:57.715Z"
    assert rest_timestamp(datetime(2020, 12, 8, 9, 8, 57, tzinfo=UTC)) == "2020-12-08T09:08:57.000Z"


def test_registry_finds_the_adapter() -> None:
    assert adapter_class("okx") is OkxAdapter


# -- the orders channel ---------------------------------------------------------------------


async def test_documented_push_example_is_one_fill(adapter: OkxAdapter) -> None:
    # Spot sizes are base quantities already (fillSz "0.001" BTC).
    fills = fills_of(adapter.parse(fixture("orders_doc.json"), RECEIVED))

    assert fills == [
        fill(
            "BTC-USDT:242589207",
            "BTC-USDT",
            Side.SELL,
            "0.001",
            "31527.1",
            1654084353263,
            fee=Decimal("0.02522168"),
            fee_asset="USDT",
            reduce_only=False,
        )
    ]


async def test_partial_fills_of_one_order_are_two_fills_in_base_units(
    adapter: OkxAdapter,
) -> None:
    first = fills_of(adapter.parse(fixture("orders_partial_1.json"), RECEIVED))
    second = fills_of(adapter.parse(fixture("orders_partial_2.json"), RECEIVED))

    # 2 and 3 contracts of 0.01 BTC.
    common = {"fee_asset": "USDT", "reduce_only": False}
    assert first == [
        fill(
            "BTC-USDT-SWAP:242589301",
            "BTC-USDT-SWAP",
            Side.BUY,
            "0.02",
            "31500.5",
            1654084353263,
            fee=Decimal("0.0315005"),
            **common,
        )
    ]
    assert second == [
        fill(
            "BTC-USDT-SWAP:242589302",
            "BTC-USDT-SWAP",
            Side.BUY,
            "0.03",
            "31501",
            1654084353270,
            fee=Decimal("0.0472515"),
            **common,
        )
    ]


async def test_several_updates_in_one_message_keep_their_order_and_skip_non_fills(
    adapter: OkxAdapter,
) -> None:
    fills = fills_of(adapter.parse(fixture("orders_multi.json"), RECEIVED))

    assert fills == [
        # A maker rebate (fillFee > 0) is a negative cost; sell on the long side closes.
        fill(
            "BTC-USDT-SWAP:242590001",
            "BTC-USDT-SWAP",
            Side.SELL,
            "0.01",
            "31600",
            1654084400000,
            fee=Decimal("-0.00632"),
            fee_asset="USDT",
            reduce_only=True,
        ),
        # 30 contracts of 0.1 ETH, opening a short.
        fill(
            "ETH-USDT-SWAP:88001",
            "ETH-USDT-SWAP",
            Side.SELL,
            "3",
            "1800.25",
            1654084400001,
            fee=Decimal("1.0801"),
            fee_asset="USDT",
            reduce_only=False,
        ),
    ]


async def test_liquidation_and_adl_are_flagged_fills(adapter: OkxAdapter) -> None:
    liquidation = fills_of(adapter.parse(fixture("orders_liquidation.json"), RECEIVED))
    adl = fills_of(adapter.parse(fixture("orders_adl.json"), RECEIVED))

    assert liquidation == [
        fill(
            "BTC-USDT-SWAP:-242591000",
            "BTC-USDT-SWAP",
            Side.SELL,
            "0.03",
            "29000.1",
            1654084500000,
            fee=Decimal("0.43500150"),
            fee_asset="USDT",
            reduce_only=True,
            liquidation=True,
        )
    ]
    assert adl == [
        fill(
            "BTC-USDT-SWAP:-242592000",
            "BTC-USDT-SWAP",
            Side.BUY,
            "0.02",
            "33000",
            1654084600000,
            fee=Decimal(0),
            fee_asset="USDT",
            reduce_only=False,
            liquidation=True,
        )
    ]


@pytest.mark.parametrize(
    "name",
    [
        "orders_delivery.json",  # a futures delivery: not a trade to copy
        "orders_canceled.json",  # an update without a fill
        "orders_inverse.json",  # inverse contracts are not copied
        "unknown_notice.json",
        "unknown_channel.json",
        "login_ok_doc.json",
        "subscribe_ok.json",
    ],
)
async def test_messages_without_a_copied_fill_are_empty(adapter: OkxAdapter, name: str) -> None:
    assert fills_of(adapter.parse(fixture(name), RECEIVED)) == []


async def test_pong_is_not_a_frame_error(adapter: OkxAdapter) -> None:
    assert fills_of(adapter.parse("pong", RECEIVED)) == []
    assert fills_of(adapter.parse(b"pong", RECEIVED)) == []


async def test_zero_fill_size_with_a_trade_id_is_no_fill(adapter: OkxAdapter) -> None:
    message = json.loads(fixture("orders_partial_1.json"))
    message["data"][0]["fillSz"] = "0"

    assert fills_of(adapter.parse(json.dumps(message), RECEIVED)) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"fillPx": ""}, "fillPx"),
        ({"fillSz": ""}, "fillSz"),
        ({"fillSz": "-1"}, "fillSz"),
        ({"side": "short"}, "side"),
        ({"fillTime": "soon"}, "fillTime"),
        ({"instId": "BTC USDT"}, "instId"),
        ({"fillFee": "abc"}, "fee"),
    ],
)
async def test_a_fill_with_an_invalid_field_is_a_frame_error(
    adapter: OkxAdapter, change: dict[str, str], field: str
) -> None:
    message = json.loads(fixture("orders_partial_1.json"))
    message["data"][0].update(change)

    with pytest.raises(FrameError, match=field):
        fills_of(adapter.parse(json.dumps(message), RECEIVED))


@pytest.mark.parametrize("raw", ['{"arg": {"channel": "orders"', "[1, 2]", ""])
async def test_malformed_messages_are_frame_errors(adapter: OkxAdapter, raw: str) -> None:
    with pytest.raises(FrameError):
        fills_of(adapter.parse(raw, RECEIVED))


async def test_orders_data_that_is_not_a_list_is_a_frame_error(adapter: OkxAdapter) -> None:
    with pytest.raises(FrameError, match="data"):
        fills_of(adapter.parse('{"arg": {"channel": "orders"}, "data": {}}', RECEIVED))


async def test_an_error_event_ends_the_stream(adapter: OkxAdapter) -> None:
    with pytest.raises(StreamExpired, match="60009"):
        fills_of(adapter.parse(fixture("login_error_doc.json"), RECEIVED))


async def test_a_fill_in_an_instrument_listed_since_connect_restarts_the_session(
    adapter: OkxAdapter,
) -> None:
    message = json.loads(fixture("orders_partial_1.json"))
    message["data"][0]["instId"] = "SOL-USDT-SWAP"

    with pytest.raises(VenueError, match="SOL-USDT-SWAP") as raised:
        fills_of(adapter.parse(json.dumps(message), RECEIVED))
    assert not isinstance(raised.value, StreamExpired)


# -- fills history rows ---------------------------------------------------------------------


async def test_documented_fills_history_row(adapter: OkxAdapter) -> None:
    row = json.loads(fixture("fills_history_doc.json"))["data"][0]

    assert adapter.history_fill(row, RECEIVED) == fill(
        "BTC-USDT:744876980",
        "BTC-USDT",
        Side.BUY,
        "0.00192834",
        "51858",
        1708587373361,
        fee=Decimal("0.00000192834"),
        fee_asset="BTC",
        reduce_only=None,  # net mode: the history does not say
    )


@pytest.mark.parametrize(
    ("sub_type", "expected"),
    [("3", False), ("5", False), ("104", True), ("127", True), ("112", None), ("204", None)],
)
async def test_history_subtypes(adapter: OkxAdapter, sub_type: str, expected: bool | None) -> None:
    # liquidation flag for trades, liquidations and ADL; None: delivery, block trade.
    trade = Trade("BTC-USDT-SWAP", "5", "buy", "1", "30000", fill_time=1654084353263)
    row = trade.history_row(1) | {"subType": sub_type}

    got = adapter.history_fill(row, RECEIVED)

    assert (got.liquidation if got else None) == expected


async def test_live_and_history_forms_of_one_trade_are_the_same_fill(adapter: OkxAdapter) -> None:
    trade = Trade(
        "ETH-USDT-SWAP",
        "-99",
        "sell",
        "7",
        "1800",
        pos_side="long",
        category="adl",
        fee="0",
        fill_time=1654084353263,
    )
    message = {"arg": {"channel": "orders", "instType": "SWAP"}, "data": [trade.order_row()]}

    live = fills_of(adapter.parse(json.dumps(message), RECEIVED))

    assert live == [adapter.history_fill(trade.history_row(1), RECEIVED)]
    assert live[0].qty == Decimal("0.7")
    assert live[0].liquidation
    assert live[0].reduce_only


# -- REST against the fake venue --------------------------------------------------------------


def history(count: int, start_ms: int, first: int = 1000) -> list[Trade]:
    return [
        Trade("BTC-USDT-SWAP", str(first + n), "buy", "1", "30000", fill_time=start_ms + n * 1000)
        for n in range(count)
    ]


async def test_backfill_pages_through_recent_fills_oldest_first(venue: Running) -> None:
    okx = venue.venue
    assert isinstance(okx, FakeOkx)
    start = now_ms() - 3_600_000
    okx.add_history(*history(5, start - 60_000, first=1))  # before `since`: never returned
    okx.add_history(*history(230, start))
    adapter = make_adapter(venue.rest_url)

    fills = await backfilled(adapter.backfill(at_ms(start), datetime.now(UTC)))
    await adapter.http.aclose()

    assert [f.fill_id for f in fills] == [f"BTC-USDT-SWAP:{1000 + n}" for n in range(230)]
    assert all(f.qty == Decimal("0.01") for f in fills)
    pages = [c.query for c in okx.rest_calls if c.path == "/api/v5/trade/fills"]
    # billIds 7005..7234 are ours, newest first: each page goes on below the last billId.
    assert [p.get("after") for p in pages] == [None, "7135", "7035"]
    assert pages[0]["begin"] == str(start - 1)
    assert all(p["limit"] == "100" and p["instType"] == "SWAP" for p in pages)
    assert okx.calls("/api/v5/trade/fills-history") == 0
    assert okx.refused == []


async def test_backfill_older_than_three_days_reads_the_history_too(venue: Running) -> None:
    okx = venue.venue
    assert isinstance(okx, FakeOkx)
    ten_days_ago = now_ms() - 10 * 86_400_000
    old = history(150, ten_days_ago)
    ms = now_ms() - 10_000
    recent = [
        Trade("ETH-USDT-SWAP", "1", "sell", "10", "1800", pos_side="short", fill_time=ms),
        Trade("BTC-USD-SWAP", "2", "buy", "10", "30000", fill_time=ms + 1),  # inverse: skipped
        Trade(
            "BTC-USDT-SWAP",
            "-3",
            "sell",
            "2",
            "29000",
            category="full_liquidation",
            fill_time=ms + 2,
        ),
    ]
    okx.add_history(*old, *recent)
    adapter = make_adapter(venue.rest_url)

    fills = await backfilled(adapter.backfill(at_ms(ten_days_ago), datetime.now(UTC)))
    await adapter.http.aclose()

    assert [f.fill_id for f in fills] == [
        *(f"BTC-USDT-SWAP:{1000 + n}" for n in range(150)),
        "ETH-USDT-SWAP:1",
        "BTC-USDT-SWAP:-3",
    ]
    assert fills[-1].liquidation
    assert fills[-2].qty == Decimal("1.0")
    assert okx.calls("/api/v5/trade/fills-history") == 2
    assert okx.refused == []


async def test_backfill_orders_one_instant_by_trade_id(venue: Running) -> None:
    okx = venue.venue
    assert isinstance(okx, FakeOkx)
    ms = now_ms() - 1000
    okx.add_history(*(Trade("BTC-USDT-SWAP", t, "buy", "1", "1", fill_time=ms) for t in "921"))
    adapter = make_adapter(venue.rest_url)

    fills = await backfilled(adapter.backfill(at_ms(ms), datetime.now(UTC)))
    await adapter.http.aclose()

    assert [f.fill_id for f in fills] == [f"BTC-USDT-SWAP:{t}" for t in "129"]


async def test_paging_that_does_not_advance_is_an_error(venue: Running) -> None:
    okx = venue.venue
    assert isinstance(okx, FakeOkx)
    okx.ignore_after = True
    start = now_ms() - 600_000
    okx.add_history(*history(120, start))
    adapter = make_adapter(venue.rest_url)

    with pytest.raises(VenueError, match="paging did not advance"):
        await backfilled(adapter.backfill(at_ms(start), datetime.now(UTC)))
    await adapter.http.aclose()

    assert okx.calls("/api/v5/trade/fills") == 2


async def test_a_wrong_secret_is_refused_by_the_signature_check(venue: Running) -> None:
    adapter = make_adapter(venue.rest_url, secret="not-the-secret")

    with pytest.raises(VenueError, match="50113"):
        await adapter.fetch_equity()
    await adapter.http.aclose()


async def test_equity_and_positions(venue: Running) -> None:
    okx = venue.venue
    assert isinstance(okx, FakeOkx)
    okx.total_eq = "55837.43556134779"  # the documented balance example's totalEq
    okx.positions = [
        {"instId": "BTC-USDT-SWAP", "instType": "SWAP", "pos": "3", "posSide": "long"},
        {"instId": "BTC-USDT-SWAP", "instType": "SWAP", "pos": "1", "posSide": "short"},
        {"instId": "ETH-USDT-SWAP", "instType": "SWAP", "pos": "-25", "posSide": "net"},
        {"instId": "BTC-USD-SWAP", "instType": "SWAP", "pos": "50", "posSide": "net"},
        {"instId": "DOGE-USDT-SWAP", "instType": "SWAP", "pos": "0", "posSide": "net"},
        {"instId": "SOL-USDT-SWAP", "instType": "SWAP", "pos": "4", "posSide": "net"},
    ]
    okx.instruments["SOL-USDT-SWAP"] = {"instId": "SOL-USDT-SWAP", "ctVal": "1", "ctType": "linear"}
    okx.instruments["DOGE-USDT-SWAP"] = {"instId": "DOGE-USDT-SWAP", "ctVal": "1000"}
    adapter = make_adapter(venue.rest_url)

    equity = await adapter.fetch_equity()
    positions = await adapter.fetch_positions()
    await adapter.http.aclose()

    assert equity == Decimal("55837.43556134779")
    assert positions == {
        "BTC-USDT-SWAP": Decimal("0.02"),
        "ETH-USDT-SWAP": Decimal("-2.5"),
        "SOL-USDT-SWAP": Decimal("4"),
    }
    # Instruments not cached were looked up one by one.
    lookups = [c.query for c in okx.rest_calls if c.path == "/api/v5/public/instruments"]
    assert {q.get("instId") for q in lookups} == {"DOGE-USDT-SWAP", "SOL-USDT-SWAP"}
    assert okx.refused == []


async def test_demo_trading_sends_the_simulated_header() -> None:
    async with run_venue(FakeOkx(simulated=True)) as running:
        demo = make_adapter(running.rest_url, simulated=True)
        live = make_adapter(running.rest_url)

        assert await demo.fetch_equity() == Decimal("100000")
        with pytest.raises(VenueError, match="50101"):
            await live.fetch_equity()
        await demo.http.aclose()
        await live.http.aclose()


async def test_login_and_subscribe(venue: Running) -> None:
    okx = venue.venue
    assert isinstance(okx, FakeOkx)
    adapter = make_adapter(venue.rest_url)

    async with connect(venue.ws_base + okx.ws_path) as ws:
        await adapter.on_open(ws)
        await okx.wait_subscribed(5)
        await ws.send("ping")
        assert await ws.recv() == "pong"
    await adapter.http.aclose()

    assert okx.logins == 1
    assert okx.received[-2] == {
        "id": "orders",
        "op": "subscribe",
        "args": [{"channel": "orders", "instType": "SWAP"}],
    }
    # Contract values are reloaded on every connect.
    assert okx.calls("/api/v5/public/instruments") == 1


async def test_refused_login_raises(venue: Running) -> None:
    okx = venue.venue
    assert isinstance(okx, FakeOkx)
    adapter = make_adapter(venue.rest_url, passphrase="wrong")

    async with connect(venue.ws_base + okx.ws_path) as ws:
        with pytest.raises(VenueError, match="60009"):
            await adapter.on_open(ws)
    await adapter.http.aclose()

    assert okx.refused == ["ws login"]
    assert not okx.subscribed.is_set()
