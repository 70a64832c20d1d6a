"""Hyperliquid adapter: every documented message and variant parsed to exact fills; the
subscription handshake, REST reads and userFillsByTime paging against the loopback venue."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from websockets.asyncio.client import connect

from app.domain.model import Fill, Side
from app.ingest.frames import FrameError
from app.venues.feed import VenueError
from app.venues.hyperliquid.feed import PAGE_LIMIT, HyperliquidAdapter
from app.venues.registry import adapter_class
from tests.venues.fake_hyperliquid import ADDRESS, FakeHyperliquid
from tests.venues.harness import Running, backfilled, fills_of, run_venue

FIXTURES = Path(__file__).resolve().parents[2] / "venues" / "fixtures" / "hyperliquid"
LEADER = UUID("00000000-0000-4000-8000-00000000beef")
# Just after the documented fills (1681222254710 .. 1681222273000).
RECEIVED = datetime(2023, 4, 11, 14, 12, tzinfo=UTC)
OTHER = "0x31ca8395cf837de08b24da3f660e77761dfb974b"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def at(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def adapter(rest_url: str = "http://127.0.0.1:9", address: str = ADDRESS) -> HyperliquidAdapter:
    config = {"address": address, "rest_url": rest_url, "ws_url": "ws://127.0.0.1:9/ws"}
    return HyperliquidAdapter(LEADER, config, {}, httpx.AsyncClient(base_url=rest_url))


def fill(**fields: Any) -> Fill:
    values: dict[str, Any] = {"leader_id": LEADER, "received_at": RECEIVED}
    values.update(fields)
    return Fill(**values)


def message(*fills: dict[str, Any], user: str = ADDRESS) -> str:
    return json.dumps({"channel": "userFills", "data": {"user": user, "fills": list(fills)}})


def ws_fill(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = json.loads(fixture("fill_documented.json"))["data"]["fills"][0]
    base.update(overrides)
    return base


# -- parsing --------------------------------------------------------------------------------


def test_registry_resolves_the_hyperliquid_adapter() -> None:
    assert adapter_class("hyperliquid") is HyperliquidAdapter


def test_documented_fill_parses_to_exact_values() -> None:
    fills = fills_of(adapter().parse(fixture("fill_documented.json"), RECEIVED))

    assert fills == [
        fill(
            fill_id="118906512037719",
            symbol="AVAX",
            side=Side.BUY,
            qty=Decimal("93.53"),
            price=Decimal("18.435"),
            event_at=at(1681222254710),
            fee=Decimal("0.01"),
            fee_asset="USDC",
            reduce_only=False,
            liquidation=False,
        )
    ]


def test_snapshot_is_history_not_new_trades() -> None:
    assert fills_of(adapter().parse(fixture("snapshot.json"), RECEIVED)) == []


def test_several_executions_and_partial_fills_in_one_message() -> None:
    fills = fills_of(adapter().parse(fixture("several_partial.json"), RECEIVED))

    assert fills == [
        fill(
            fill_id="221000000000001",
            symbol="BTC",
            side=Side.BUY,
            qty=Decimal("0.2"),
            price=Decimal("61990.0"),
            event_at=at(1681222260001),
            fee=Decimal("5.579100"),
            fee_asset="USDC",
            reduce_only=False,
        ),
        fill(
            fill_id="221000000000002",
            symbol="BTC",
            side=Side.BUY,
            qty=Decimal("0.3"),
            price=Decimal("62000.0"),
            event_at=at(1681222260001),
            fee=Decimal("8.370000"),
            fee_asset="USDC",
            reduce_only=False,
        ),
        fill(
            fill_id="221000000000003",
            symbol="ETH",
            side=Side.SELL,
            qty=Decimal("4.0"),
            price=Decimal("1912.5"),
            event_at=at(1681222260002),
            # A maker rebate stays negative: the fee is a cost.
            fee=Decimal("-0.765000"),
            fee_asset="USDC",
            reduce_only=False,
        ),
    ]


def test_own_liquidation_is_a_forced_close() -> None:
    fills = fills_of(adapter().parse(fixture("liquidation.json"), RECEIVED))

    assert fills == [
        fill(
            fill_id="221000000000010",
            symbol="BTC",
            side=Side.SELL,
            qty=Decimal("0.5"),
            price=Decimal("59500.0"),
            event_at=at(1681222270000),
            fee=Decimal("0.0"),
            fee_asset="USDC",
            reduce_only=True,
            liquidation=True,
        )
    ]


def test_liquidation_block_naming_the_leader_flags_an_ordinary_dir() -> None:
    # The venue may report a liquidated position with an ordinary "Close Long".
    row = ws_fill(
        dir="Close Long",
        side="A",
        startPosition="93.53",
        liquidation={"liquidatedUser": ADDRESS.upper().replace("0X", "0x"), "markPx": "18.4"},
    )

    (parsed,) = fills_of(adapter().parse(message(row), RECEIVED))

    assert (parsed.liquidation, parsed.reduce_only, parsed.side) == (True, True, Side.SELL)


def test_trading_against_someone_elses_liquidation_is_an_ordinary_trade() -> None:
    fills = fills_of(adapter().parse(fixture("liquidation_counterparty.json"), RECEIVED))

    assert [(f.fill_id, f.symbol, f.side, f.qty, f.liquidation) for f in fills] == [
        ("221000000000011", "SOL", Side.BUY, Decimal("120.0"), False)
    ]


def test_auto_deleveraging_is_flagged_like_a_liquidation() -> None:
    fills = fills_of(adapter().parse(fixture("adl.json"), RECEIVED))

    assert fills == [
        fill(
            fill_id="221000000000012",
            symbol="ETH",
            side=Side.BUY,
            qty=Decimal("0.5"),
            price=Decimal("1950.0"),
            event_at=at(1681222272000),
            fee=Decimal("0.0"),
            fee_asset="USDC",
            reduce_only=True,
            liquidation=True,
        )
    ]


def test_reversal_through_zero_is_not_reduce_only() -> None:
    (parsed,) = fills_of(adapter().parse(fixture("reversal.json"), RECEIVED))

    assert (parsed.symbol, parsed.side, parsed.qty, parsed.reduce_only) == (
        "kPEPE",
        Side.SELL,
        Decimal("3000000"),
        False,
    )


@pytest.mark.parametrize(
    ("direction", "side", "start", "sz", "reduce_only"),
    [
        ("Open Long", "B", "0.0", "1", False),
        ("Open Long", "B", "2.5", "1", False),
        ("Close Long", "A", "2.5", "1", True),
        ("Close Long", "A", "2.5", "2.5", True),
        ("Open Short", "A", "-1", "1", False),
        ("Close Short", "B", "-3", "1", True),
        ("Short > Long", "B", "-1", "3", False),
    ],
)
def test_close_flag_comes_from_start_position_and_side(
    direction: str, side: str, start: str, sz: str, reduce_only: bool
) -> None:
    row = ws_fill(dir=direction, side=side, startPosition=start, sz=sz)

    (parsed,) = fills_of(adapter().parse(message(row), RECEIVED))

    assert parsed.reduce_only is reduce_only
    assert parsed.side is (Side.BUY if side == "B" else Side.SELL)


def test_spot_fills_are_not_perp_fills() -> None:
    assert fills_of(adapter().parse(fixture("spot.json"), RECEIVED)) == []


@pytest.mark.parametrize("direction", ["Spot Dust Conversion", "Settlement"])
def test_non_trade_rows_are_skipped(direction: str) -> None:
    assert fills_of(adapter().parse(message(ws_fill(dir=direction, tid=0)), RECEIVED)) == []


@pytest.mark.parametrize(
    "name", ["subscription_response.json", "pong.json", "unknown.json", "snapshot.json"]
)
def test_acks_pongs_and_other_channels_are_not_fills(name: str) -> None:
    assert fills_of(adapter().parse(fixture(name), RECEIVED)) == []


def test_hip3_perp_coin_is_kept_as_is() -> None:
    (parsed,) = fills_of(adapter().parse(message(ws_fill(coin="xyz:XYZ100")), RECEIVED))

    assert parsed.symbol == "xyz:XYZ100"


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ('{"channel":"userFills","data":{"user":', "malformed JSON"),
        ("[1, 2]", "expected a JSON object"),
        (fixture("error.json"), "venue error: Invalid subscription"),
        (json.dumps({"channel": "userFills", "data": []}), "data must be an object"),
        (json.dumps({"channel": "userFills", "data": {"user": ADDRESS}}), "fills must be a list"),
        (message(ws_fill(), user=OTHER), "not the leader's address"),
        (message({k: v for k, v in ws_fill().items() if k not in ("tid", "hash")}), "no tid"),
        (message(ws_fill(tid="118906512037719")), "fills[0].tid"),
        (message(ws_fill(side="S")), "fills[0].side"),
        (message(ws_fill(sz=None)), "fills[0].sz"),
        (message(ws_fill(sz="0")), "fills[0].sz"),
        (message(ws_fill(px="abc")), "fills[0].px"),
        (message(ws_fill(time="yesterday")), "fills[0].time"),
        (message({k: v for k, v in ws_fill().items() if k != "coin"}), "fills[0].coin"),
        (message({k: v for k, v in ws_fill().items() if k != "dir"}), "fills[0].dir"),
        (message(ws_fill(startPosition=None)), "fills[0].startPosition"),
        (message(ws_fill(coin="BTC USD")), "fills[0].coin"),
        (message(ws_fill(), ws_fill(liquidation="yes")), "fills[1].liquidation"),
        # The side must agree with the direction the venue reports.
        (message(ws_fill(side="A")), "contradicts dir 'Open Long'"),
        (message(ws_fill(dir="Liquidated Isolated Long", side="B")), "contradicts dir"),
        (message(ws_fill(dir="Close Short", side="B", startPosition="2")), "startPosition 2"),
    ],
)
def test_malformed_messages_raise_frame_errors(raw: str, error: str) -> None:
    with pytest.raises(FrameError, match=error.replace("(", r"\(").replace("[", r"\[")):
        fills_of(adapter().parse(raw, RECEIVED))


def test_a_fill_far_in_the_future_is_quarantined() -> None:
    row = ws_fill(time=1681222254710 + 3_600_000)

    with pytest.raises(FrameError) as caught:
        fills_of(adapter().parse(message(row), at(1681222254710)))

    assert caught.value.quarantine is not None


def test_ping_frame_is_the_documented_heartbeat() -> None:
    assert json.loads(adapter().ping_frame() or "") == {"method": "ping"}
    assert HyperliquidAdapter.app_ping_interval_s is not None
    assert HyperliquidAdapter.app_ping_interval_s < 60


# -- the loopback venue: subscribe, REST, paging ---------------------------------------------


@pytest.fixture
async def venue() -> AsyncIterator[Running]:
    async with run_venue(FakeHyperliquid()) as running:
        yield running


def fake(running: Running) -> FakeHyperliquid:
    assert isinstance(running.venue, FakeHyperliquid)
    return running.venue


async def test_on_open_subscribes_with_the_address_and_waits_for_the_ack(venue: Running) -> None:
    hl = adapter(venue.rest_url, ADDRESS.upper().replace("0X", "0x"))
    async with connect(venue.ws_base + "/ws") as ws:
        await hl.on_open(ws)
        snapshot = await ws.recv()

    assert fake(venue).received == [
        {"method": "subscribe", "subscription": {"type": "userFills", "user": ADDRESS}}
    ]
    assert fills_of(hl.parse(snapshot, RECEIVED)) == []


async def test_on_open_raises_when_the_venue_refuses(venue: Running) -> None:
    fake(venue).refuse = True
    async with connect(venue.ws_base + "/ws") as ws:
        with pytest.raises(VenueError, match="refused: Invalid subscription"):
            await adapter(venue.rest_url).on_open(ws)


async def test_pong_replies_parse_to_nothing(venue: Running) -> None:
    hl = adapter(venue.rest_url)
    async with connect(venue.ws_base + "/ws") as ws:
        await ws.send(hl.ping_frame() or "")
        reply = await ws.recv()

    assert json.loads(reply) == {"channel": "pong"}
    assert fills_of(hl.parse(reply, RECEIVED)) == []


async def test_equity_and_positions_from_the_documented_clearinghouse_state(
    venue: Running,
) -> None:
    fake(venue).state = json.loads(fixture("clearinghouse_state.json"))
    hl = adapter(venue.rest_url)

    equity = await hl.fetch_equity()
    positions = await hl.fetch_positions()

    assert equity == Decimal("13109.482328")
    assert positions == {"ETH": Decimal("0.0335")}
    bodies = [json.loads(call.body) for call in fake(venue).rest_calls]
    assert bodies == [{"type": "clearinghouseState", "user": ADDRESS}] * 2
    assert {call.path for call in fake(venue).rest_calls} == {"/info"}


async def test_short_positions_are_negative(venue: Running) -> None:
    venue_ = fake(venue)
    venue_.fill("BTC", "A", "0.25", "60000")
    venue_.fill("ETH", "B", "3", "3000")

    assert await adapter(venue.rest_url).fetch_positions() == {
        "BTC": Decimal("-0.25"),
        "ETH": Decimal("3"),
    }


async def test_rest_errors_are_venue_errors(venue: Running) -> None:
    fake(venue).state = {"marginSummary": {"accountValue": None}}

    with pytest.raises(VenueError, match="accountValue"):
        await adapter(venue.rest_url).fetch_equity()
    with pytest.raises(VenueError, match="HTTP 404"):
        await HyperliquidAdapter(
            LEADER,
            {"address": ADDRESS, "rest_url": venue.rest_url + "/nowhere"},
            {},
            httpx.AsyncClient(base_url=venue.rest_url + "/nowhere"),
        ).fetch_equity()


async def test_backfill_of_the_documented_response_skips_spot(venue: Running) -> None:
    fake(venue).history = json.loads(fixture("user_fills_by_time.json"))
    since = at(1681222254710)

    fills = await backfilled(
        adapter(venue.rest_url).backfill(since, datetime(2025, 1, 5, tzinfo=UTC))
    )

    assert [(f.fill_id, f.symbol, f.qty, f.event_at) for f in fills] == [
        ("118906512037719", "AVAX", Decimal("93.53"), since)
    ]
    (call,) = fake(venue).rest_calls
    assert json.loads(call.body) == {
        "type": "userFillsByTime",
        "user": ADDRESS,
        "startTime": 1681222254710,
        "aggregateByTime": False,
    }


async def test_backfill_pages_forward_through_same_millisecond_fills(venue: Running) -> None:
    # Arrange: 4500 fills, three to a millisecond, so pages end inside a millisecond.
    venue_ = fake(venue)
    base = 1_700_000_000_000
    made = [
        venue_.fill("BTC", "B" if i % 2 else "A", "0.001", "50000", at_ms=base + i // 3)
        for i in range(4500)
    ]
    venue_.add(*made)
    since = at(base + 10)  # the first 30 fills are older

    # Act
    fills = await backfilled(adapter(venue.rest_url).backfill(since, at(base + 3_600_000)))

    # Assert: every fill since `since` exactly once, oldest first, by (time, trade id).
    expected = [str(f["tid"]) for f in made[30:]]
    assert [f.fill_id for f in fills] == expected
    assert all(f.event_at >= since for f in fills)
    starts = [json.loads(call.body)["startTime"] for call in venue_.rest_calls]
    assert starts[0] == base + 10
    # Each next page starts at the last millisecond of the previous one (repeats dropped).
    assert starts[1] == made[30 + PAGE_LIMIT - 1]["time"]
    assert len(starts) == 3


async def test_backfill_steps_past_a_page_that_is_one_millisecond_only(venue: Running) -> None:
    # The venue cannot page inside one millisecond: 2500 fills in one ms yield their first
    # 2000, then the backfill moves on instead of asking for the same page forever.
    venue_ = fake(venue)
    base = 1_700_000_000_000
    crowd = [venue_.fill("ETH", "B", "0.01", "3000", at_ms=base) for _ in range(2500)]
    later = [venue_.fill("ETH", "A", "0.01", "3000", at_ms=base + 5) for _ in range(3)]
    venue_.add(*crowd, *later)

    fills = await backfilled(adapter(venue.rest_url).backfill(at(base), at(base + 60_000)))

    assert [f.fill_id for f in fills] == [str(f["tid"]) for f in crowd[:PAGE_LIMIT] + later]
    starts = [json.loads(call.body)["startTime"] for call in venue_.rest_calls]
    assert starts == [base, base, base + 1]


async def test_backfill_never_returns_fills_before_since(venue: Running) -> None:
    venue_ = fake(venue)
    base = 1_700_000_000_000
    venue_.add(
        venue_.fill("BTC", "B", "1", "50000", at_ms=base),
        venue_.fill("BTC", "B", "1", "50000", at_ms=base + 1),
    )

    # `since` inside the millisecond after the first fill's.
    fills = await backfilled(
        adapter(venue.rest_url).backfill(at(base) + timedelta(microseconds=500), at(base + 60_000))
    )

    assert [f.event_at for f in fills] == [at(base + 1)]


async def test_backfill_of_an_empty_account_is_one_call(venue: Running) -> None:
    fills = await backfilled(adapter(venue.rest_url).backfill(at(1_700_000_000_000), RECEIVED))

    assert fills == []
    assert len(fake(venue).rest_calls) == 1


def test_other_leaders_adapter_has_its_own_address() -> None:
    other = HyperliquidAdapter(uuid4(), {"address": OTHER}, {}, httpx.AsyncClient())

    assert other.address == OTHER
    with pytest.raises(FrameError, match="not the leader's address"):
        fills_of(other.parse(fixture("fill_documented.json"), RECEIVED))
