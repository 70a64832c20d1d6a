"""Instrument rules loaded from each venue's public list (loopback fakes) into
venue_instrument: filters read as documented, a malformed row skipped while its neighbours
load, pages followed, operator rules kept, a reload on request."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.session import make_engine, make_sessionmaker
from app.metrics import INSTRUMENT_ROWS_SKIPPED
from app.venues.instruments import InstrumentRefresher
from tests.conftest import TEST_DATABASE_URL, Rolled
from tests.integration.venues.instrument_fakes import Venues, running_venues
from tests.support import eventually

D = Decimal
RULES = (
    "SELECT symbol, base, quote, qty_step, min_qty, market_qty_step, min_notional, price_step,"
    " contract_size, source FROM venue_instrument WHERE venue = $1 ORDER BY symbol"
)


BTC_STEP = "SELECT qty_step FROM venue_instrument WHERE venue = 'hyperliquid' AND symbol = 'BTC'"


def refresher(
    venues: Venues,
    min_interval_s: float = 0.0,
    sessions: async_sessionmaker[AsyncSession] | None = None,
) -> InstrumentRefresher:
    """A refresher of every fake venue: on ``sessions`` (a test's rolled-back transaction)
    or, without, on a pool of its own that commits."""
    if sessions is None:
        sessions = make_sessionmaker(make_engine(TEST_DATABASE_URL, 2))
    return InstrumentRefresher(
        sessions, list(venues.urls), venues.urls, 3600.0, min_interval_s, 5.0
    )


async def rows(db: asyncpg.Connection, venue: str) -> dict[str, dict[str, Any]]:
    return {r["symbol"]: dict(r) for r in await db.fetch(RULES, venue)}


def skipped(venue: str) -> float:
    return float(INSTRUMENT_ROWS_SKIPPED.labels(venue=venue)._value.get())


async def test_each_venue_list_loads_as_base_unit_rules(tx: Rolled) -> None:
    db = tx.db
    async with running_venues() as venues:
        # Arrange: a malformed row on each venue, between good ones.
        venues.binance.symbols.insert(1, {"symbol": "BADUSDT", "contractType": "PERPETUAL"})
        venues.bybit.instruments.insert(2, {"symbol": "BADUSDT", "lotSizeFilter": "x"})
        venues.okx.instruments.insert(1, {"instId": "BAD-USDT-SWAP", "instType": "SWAP",
                                          "state": "live", "ctType": "linear", "ctVal": "abc",
                                          "lotSz": "1"})  # fmt: skip
        venues.hyperliquid.universe.insert(1, {"name": "BAD", "szDecimals": "five"})
        before = {venue: skipped(venue) for venue in venues.urls}
        loader = refresher(venues, sessions=tx.sessions)

        # Act
        loaded = {venue: await loader.refresh(venue) for venue in venues.urls}

        # Assert: each bad row counted once, every good row kept.
        assert {v: x.skipped for v, x in loaded.items()} == dict.fromkeys(venues.urls, 1)
        assert {v: skipped(v) - before[v] for v in venues.urls} == dict.fromkeys(venues.urls, 1)
        binance = await rows(db, "binance-usdm")
        assert sorted(binance) == ["BTCUSDC", "BTCUSDT", "ETHUSDT"]  # no quarterly future
        assert binance["BTCUSDT"] == {
            "symbol": "BTCUSDT", "base": "BTC", "quote": "USDT", "qty_step": D("0.001"),
            "min_qty": D("0.001"), "market_qty_step": D("0.01"), "min_notional": D(100),
            "price_step": D("0.10"), "contract_size": D(1), "source": "venue",
        }  # fmt: skip
        # Five rows, two a page: every page followed, with the documented parameters.
        assert sorted(await rows(db, "bybit")) == [
            "BTCPERP", "BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"
        ]  # fmt: skip
        pages = venues.bybit.rest_calls
        assert [c.query.get("category") for c in pages] == ["linear"] * 3
        assert [("cursor" in c.query) for c in pages] == [False, True, True]
        okx = await rows(db, "okx")
        assert sorted(okx) == ["BTC-USDT-SWAP", "ETH-USDT-SWAP"]  # the inverse swap left out
        btc = okx["BTC-USDT-SWAP"]
        assert (btc["qty_step"], btc["min_qty"], btc["contract_size"]) == (
            D("0.001"), D("0.01"), D("0.01")
        )  # fmt: skip
        assert (btc["base"], btc["quote"], btc["price_step"]) == ("BTC", "USDT", D("0.1"))
        hl = await rows(db, "hyperliquid")
        assert sorted(hl) == ["BTC", "ETH", "HYPE"]  # LUNA is delisted
        assert (hl["BTC"]["qty_step"], hl["HYPE"]["qty_step"]) == (D("0.00001"), D("0.01"))
        assert hl["BTC"]["min_notional"] == 10
        assert venues.hyperliquid.rest_calls[0].body == b'{"type":"meta"}'


async def test_a_reload_writes_changes_keeps_operator_rules_and_drops_delisted(
    db: asyncpg.Connection,
) -> None:
    async with running_venues() as venues:
        loader = refresher(venues)
        await loader.refresh("bybit")
        await db.execute(
            "UPDATE venue_instrument SET qty_step = 0.5, source = 'operator'"
            " WHERE venue = 'bybit' AND symbol = 'SOLUSDT'"
        )
        stamps = {r["symbol"]: r["updated_at"] for r in await db.fetch(
            "SELECT symbol, updated_at FROM venue_instrument WHERE venue = 'bybit'")}  # fmt: skip
        # The venue changes ETH's step, delists XRP, and changes SOL (an operator's now).
        venues.bybit.instruments = [i for i in venues.bybit.instruments if i["symbol"] != "XRPUSDT"]
        for item in venues.bybit.instruments:
            if item["symbol"] in ("ETHUSDT", "SOLUSDT"):
                item["lotSizeFilter"]["qtyStep"] = "0.001"

        # Act
        await loader.refresh("bybit")

        # Assert
        after = await rows(db, "bybit")
        assert sorted(after) == ["BTCPERP", "BTCUSDT", "ETHUSDT", "SOLUSDT"]
        assert after["ETHUSDT"]["qty_step"] == D("0.001")
        assert (after["SOLUSDT"]["qty_step"], after["SOLUSDT"]["source"]) == (D("0.5"), "operator")
        unchanged = await db.fetchval(
            "SELECT updated_at FROM venue_instrument WHERE venue = 'bybit' AND symbol = 'BTCUSDT'"
        )
        assert unchanged == stamps["BTCUSDT"]  # rewritten only when its rules changed


async def test_a_load_with_a_bad_row_removes_nothing(tx: Rolled) -> None:
    db = tx.db
    async with running_venues() as venues:
        loader = refresher(venues, sessions=tx.sessions)
        await loader.refresh("okx")
        # ETH's row turns malformed: it may still be listed, so it is not removed.
        venues.okx.instruments[1]["lotSz"] = "n/a"

        await loader.refresh("okx")

        assert sorted(await rows(db, "okx")) == ["BTC-USDT-SWAP", "ETH-USDT-SWAP"]


async def test_a_refusal_asks_for_a_reload_and_a_burst_costs_one(db: asyncpg.Connection) -> None:
    async with running_venues() as venues:
        loader = refresher(venues)
        loader.start()
        try:
            await eventually(lambda: _rows_count(db, "hyperliquid", 3), what="first load")
            venues.hyperliquid.universe[0]["szDecimals"] = 3

            # Act: an executor saw BTC refused for its size precision, three times.
            for _ in range(3):
                loader.request_refresh("hyperliquid")
            await eventually(lambda: _btc_step_is(db, D("0.001")), what="the reload")
        finally:
            await loader.stop()

        assert len(venues.hyperliquid.rest_calls) == 2


async def _rows_count(db: asyncpg.Connection, venue: str, count: int) -> bool:
    return len(await rows(db, venue)) == count


async def _btc_step_is(db: asyncpg.Connection, step: Decimal) -> bool:
    return bool(await db.fetchval(BTC_STEP) == step)


async def test_a_reload_asked_for_where_no_loop_runs_loads_once(db: asyncpg.Connection) -> None:
    async with running_venues() as venues:
        loader = refresher(venues)  # not started: an executor's process

        try:
            loader.request_refresh("okx")
            loader.request_refresh("okx")
            await eventually(lambda: _rows_count(db, "okx", 2), what="the one-off load")
        finally:
            await loader.stop()

        assert len(venues.okx.rest_calls) == 1
