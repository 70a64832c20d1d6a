"""A leader copied onto other venues: the service loads each venue's rules from its public list
at start-up (loopback fakes), maps the leader's symbol by base asset, and sizes each follower
with its own venue's step and minimums."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from app.domain.instruments import Listing, to_venue_units
from app.sizing.replay import load_inputs, replay
from tests.conftest import make_settings
from tests.integration.venues.instrument_fakes import Venues, running_venues
from tests.support import (
    Api,
    LiveServer,
    eventually,
    fill_frame,
    push_socket,
    send_frame,
    start_live_server,
)

D = Decimal
pytestmark = pytest.mark.usefixtures("clean")


@pytest.fixture
async def venues() -> AsyncIterator[Venues]:
    async with running_venues() as running:
        yield running


@pytest.fixture
async def served(venues: Venues) -> AsyncIterator[LiveServer]:
    settings = make_settings(instrument_venues=list(venues.urls), instrument_urls=venues.urls)
    async with start_live_server(settings) as server:
        api = Api(server.http)

        async def all_loaded() -> bool:
            for venue in venues.urls:
                if not await api.call("GET", "/v1/instruments", 200, params={"venue": venue}):
                    return False
            return True

        await eventually(all_loaded, "every venue's rules at start-up", 20)
        yield server


async def follower_on(api: Api, leader: dict[str, Any], venue: str | None, equity: str) -> Any:
    follower = await api.follower(venue or "no-venue")
    await api.follower_equity(follower["id"], equity)
    sizing = {"symbols": {"venue": venue}} if venue else {}
    path = f"/v1/followers/{follower['id']}/subscriptions"
    await api.call("POST", path, 201, json={"leader_id": leader["id"], "sizing": sizing})
    return follower


def sent(orders: list[dict[str, Any]]) -> list[tuple[str, str, str, str | None]]:
    return sorted((o["symbol"], o["status"], o["qty"], o["skip_reason"]) for o in orders)


async def test_a_leader_is_sized_on_each_followers_venue(served: LiveServer) -> None:
    # Arrange: the leader (equity 100,000) trades Hyperliquid's names; each follower holds
    # 5,000 (a twentieth) on its own venue, small ones on Hyperliquid and OKX, one with no
    # venue.
    api = Api(served.http)
    leader = await api.leader()
    await api.leader_equity(leader["id"], "100000")
    binance = await follower_on(api, leader, "binance-usdm", "5000")
    okx = await follower_on(api, leader, "okx", "5000")
    bybit = await follower_on(api, leader, "bybit", "5000")
    hyperliquid = await follower_on(api, leader, "hyperliquid", "5000")
    small = await follower_on(api, leader, "hyperliquid", "10")
    okx_small = await follower_on(api, leader, "okx", "100")
    legacy = await follower_on(api, leader, None, "5000")

    # Act: BTC 1.134 (a target of 0.0567 BTC each), then HYPE, listed on Hyperliquid only.
    async with push_socket(served.ws_url, leader["id"], leader["push_token"]) as ws:
        for frame in (
            fill_frame("f-1", "BTC", "buy", "1.134", "50000"),
            fill_frame("f-2", "HYPE", "buy", "100", "20"),
        ):
            assert (await send_frame(ws, frame))["status"] == "accepted"

    # Assert
    not_listed = "symbol_not_listed"
    # Binance: a market order's step (MARKET_LOT_SIZE 0.01), not the limit step (0.001).
    assert sent(await api.settled_orders(binance["id"])) == [
        ("BTCUSDT", "dispatched", "0.05", None),
        ("HYPE", "skipped", "0", not_listed),
    ]
    # OKX: 0.1-contract lots of 0.01 BTC are 0.001 BTC; the order carries base units.
    assert sent(await api.settled_orders(okx["id"])) == [
        ("BTC-USDT-SWAP", "dispatched", "0.056", None),
        ("HYPE", "skipped", "0", not_listed),
    ]
    # 0.001 BTC is a lot, but under OKX's minSz of 1 contract (0.01 BTC).
    assert sent(await api.settled_orders(okx_small["id"])) == [
        ("BTC-USDT-SWAP", "skipped", "0", "below_min_qty"),
        ("HYPE", "skipped", "0", not_listed),
    ]
    assert sent(await api.settled_orders(bybit["id"])) == [
        ("BTCUSDT", "dispatched", "0.056", None),
        ("HYPE", "skipped", "0", not_listed),
    ]
    # Hyperliquid: szDecimals 5 for BTC, 2 for HYPE; 0.00001 BTC is worth less than $10.
    assert sent(await api.settled_orders(hyperliquid["id"])) == [
        ("BTC", "dispatched", "0.0567", None),
        ("HYPE", "dispatched", "5", None),
    ]
    assert sent(await api.settled_orders(small["id"])) == [
        ("BTC", "skipped", "0", "below_min_notional"),
        ("HYPE", "skipped", "0", "below_min_notional"),
    ]
    # No venue: as before, the leader's symbol in 1e-8 steps.
    assert sent(await api.settled_orders(legacy["id"])) == [
        ("BTC", "dispatched", "0.0567", None),
        ("HYPE", "dispatched", "5", None),
    ]
    [okx_btc] = [
        r
        for r in await api.call("GET", "/v1/instruments", 200, params={"venue": "okx"})
        if r["symbol"] == "BTC-USDT-SWAP"
    ]
    contracts = to_venue_units(
        D("0.056"),
        Listing(
            venue="okx",
            symbol="BTC-USDT-SWAP",
            base="BTC",
            quote="USDT",
            qty_step=D(okx_btc["qty_step"]),
            contract_size=D(okx_btc["contract_size"]),
        ),
    )
    assert contracts == D("5.6")
    # The dry run (copytrade replay) places and sizes them the same way.
    async with served.runtime.sessionmaker() as session:
        inputs = await load_inputs(
            session, UUID(leader["id"]), datetime(2000, 1, 1, tzinfo=UTC),
            follower_id=UUID(binance["id"]),
        )  # fmt: skip
    replayed = replay(inputs)
    assert [(f.plan.symbol, [leg.qty for leg in f.plan.legs], f.plan.skip_reason)
            for f in replayed.fills] == [
        ("BTCUSDT", [D("0.05")], None),
        ("HYPE", [], "symbol_not_listed"),
    ]  # fmt: skip


async def test_subscriptions_show_each_leader_symbol_on_the_followers_venue(
    served: LiveServer,
) -> None:
    # Arrange
    api = Api(served.http)
    leader = await api.leader()
    await api.leader_equity(leader["id"], "100000")
    follower = await api.follower()
    await api.follower_equity(follower["id"], "5000")
    path = f"/v1/followers/{follower['id']}/subscriptions"
    sizing = {"symbols": {"venue": "binance-usdm", "quote": "USDC", "map": {"ETH": "ETHUSDT"}}}
    await api.call("POST", path, 201, json={"leader_id": leader["id"], "sizing": sizing})
    async with push_socket(served.ws_url, leader["id"], leader["push_token"]) as ws:
        for frame in (
            fill_frame("f-1", "BTC", "buy", "1", "50000"),
            fill_frame("f-2", "HYPE", "buy", "100", "20"),
            fill_frame("f-3", "ETH", "buy", "1", "3000"),
        ):
            assert (await send_frame(ws, frame))["status"] == "accepted"

    # Act
    [listed] = await api.call("GET", path, 200, token=follower["api_key"])

    # Assert: USDC preferred where listed; the map wins; HYPE is not on Binance.
    assert listed["symbols"] == [
        {"leader_symbol": "BTC", "symbol": "BTCUSDC", "skip_reason": None},
        {"leader_symbol": "ETH", "symbol": "ETHUSDT", "skip_reason": None},
        {"leader_symbol": "HYPE", "symbol": None, "skip_reason": "symbol_not_listed"},
    ]
    orders = await api.settled_orders(follower["id"])
    assert sorted(o["symbol"] for o in orders) == ["BTCUSDC", "ETHUSDT", "HYPE"]


async def test_operator_rules_override_the_venues_and_show_their_source(
    served: LiveServer, venues: Venues
) -> None:
    # Arrange
    api = Api(served.http)
    leader = await api.leader()
    await api.leader_equity(leader["id"], "100000")
    follower = await follower_on(api, leader, "bybit", "5000")

    # Act: an operator sets Bybit's BTCUSDT lot to 0.005 BTC.
    put = await api.call(
        "PUT", "/v1/instruments/BTCUSDT", 200, params={"venue": "bybit"},
        json={"qty_step": "0.005", "min_qty": "0.005"},
    )  # fmt: skip
    await served.runtime.instruments.refresh("bybit")  # the venue's next load
    async with push_socket(served.ws_url, leader["id"], leader["push_token"]) as ws:
        fill = fill_frame("f-1", "BTC", "buy", "1.134", "50000")
        assert (await send_frame(ws, fill))["status"] == "accepted"
    listed = await api.call("GET", "/v1/instruments", 200, params={"venue": "bybit"})
    unknown = await api.call(
        "PUT", "/v1/instruments/NEWUSDT", 422, params={"venue": "bybit"}, json={"qty_step": "1"}
    )
    await api.call("DELETE", "/v1/instruments/BTCUSDT", 204, params={"venue": "bybit"})
    await served.runtime.instruments.refresh("bybit")
    after = await api.call("GET", "/v1/instruments", 200, params={"venue": "bybit"})

    # Assert
    assert (put["source"], put["venue"], put["qty_step"], put["base"]) == (
        "operator", "bybit", "0.005", "BTC"
    )  # fmt: skip
    by_symbol = {row["symbol"]: row for row in listed}
    assert (by_symbol["BTCUSDT"]["source"], by_symbol["BTCUSDT"]["qty_step"]) == (
        "operator", "0.005"
    )  # fmt: skip
    assert by_symbol["ETHUSDT"]["source"] == "venue"
    assert sent(await api.settled_orders(follower["id"])) == [
        ("BTCUSDT", "dispatched", "0.055", None)
    ]
    assert unknown["detail"] == "base, quote: required for a symbol the venue does not list"
    [btc] = [row for row in after if row["symbol"] == "BTCUSDT"]
    assert (btc["source"], btc["qty_step"]) == ("venue", "0.001")
