"""app.domain.instruments: listings, the rules sizing rounds to, symbols across venues, and
contract units. Examples first, then hypothesis properties."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.instruments import (
    VENUES,
    Catalogue,
    Listing,
    map_symbol,
    not_listed_plan,
    order_rules,
    to_venue_units,
)
from app.domain.model import Side, SkipReason
from app.domain.positions import FillEffect
from tests.unit.plan_builders import make_fill

D = Decimal


def spelled(venue: str, base: str, quote: str) -> str:
    """A USD-margined perpetual as each venue spells it."""
    if venue == "okx":
        return f"{base}-{quote}-SWAP"
    if venue == "hyperliquid":
        return base
    return f"{base}{quote}"


def listing(
    venue: str, base: str, quote: str, symbol: str | None = None, **rules: Decimal
) -> Listing:
    rules.setdefault("qty_step", D("0.001"))
    values: dict[str, Any] = {"base": base, "quote": quote, **rules}
    return Listing(venue=venue, symbol=symbol or spelled(venue, base, quote), **values)


OKX_BTC = listing(
    "okx", "BTC", "USDT", qty_step=D("0.0001"), min_qty=D("0.0001"), contract_size=D("0.01")
)
CATALOGUE_LISTINGS = (
    listing("hyperliquid", "BTC", "USDC"),
    listing("hyperliquid", "kPEPE", "USDC"),
    listing("binance-usdm", "BTC", "USDT"),
    listing("binance-usdm", "BTC", "USDC"),
    listing("binance-usdm", "ETH", "USDT"),
    listing("binance-usdm", "1000PEPE", "USDT"),
    listing("bybit", "BTC", "USDT"),
    listing("bybit", "BTC", "USDC", symbol="BTCPERP"),
    listing("bybit", "BTC", "USD"),  # inverse-style name, USD quote
    OKX_BTC,
)
CATALOGUE = Catalogue(CATALOGUE_LISTINGS)


# --- examples ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("leader", "leader_venue", "follower_venue", "prefer", "expected"),
    [
        pytest.param("BTC", "hyperliquid", "binance-usdm", None, "BTCUSDT", id="hl-to-binance"),
        pytest.param("BTC", "hyperliquid", "okx", None, "BTC-USDT-SWAP", id="hl-to-okx"),
        pytest.param("BTC", "hyperliquid", "bybit", None, "BTCUSDT", id="venue-convention"),
        pytest.param("BTC", "hyperliquid", "binance-usdm", "USDC", "BTCUSDC", id="prefer-usdc"),
        pytest.param("BTC", "hyperliquid", "bybit", "USDC", "BTCPERP", id="prefer-usdc-bybit"),
        pytest.param("BTC-USDT-SWAP", "okx", "hyperliquid", None, "BTC", id="okx-to-hl"),
        pytest.param("BTCUSDC", "binance-usdm", "bybit", None, "BTCUSDT", id="cross-venue"),
        pytest.param("BTCUSDC", "binance-usdm", "binance-usdm", None, "BTCUSDC", id="own-venue"),
        pytest.param("BTCUSDT", None, "hyperliquid", None, "BTC", id="push-leader-found"),
        pytest.param("ETHUSDT", "binance-usdm", "hyperliquid", None, None, id="not-listed"),
        pytest.param("kPEPE", "hyperliquid", "binance-usdm", None, None, id="other-base"),
        pytest.param("DOGEUSDT", None, "binance-usdm", None, None, id="nowhere"),
        pytest.param("BTCUSDT", "binance-usdm", "binance-usdm", None, "BTCUSDT", id="same"),
    ],
)
def test_map_symbol_by_base_asset(
    leader: str,
    leader_venue: str | None,
    follower_venue: str,
    prefer: str | None,
    expected: str | None,
) -> None:
    assert map_symbol(leader, leader_venue, follower_venue, CATALOGUE, {}, prefer) == expected


def test_symbols_map_overrides_the_catalogue_even_for_unlisted_symbols() -> None:
    overrides = {"kPEPE": "1000PEPEUSDT", "BTC": "BTCUSDC"}

    assert map_symbol("kPEPE", "hyperliquid", "binance-usdm", CATALOGUE, overrides) == (
        "1000PEPEUSDT"
    )
    assert map_symbol("BTC", "hyperliquid", "binance-usdm", CATALOGUE, overrides, "USDT") == (
        "BTCUSDC"
    )


def test_usdt_ranks_before_usdc_and_usd_by_convention() -> None:
    # Bybit lists BTCUSDT, BTCPERP (USDC) and BTCUSD for one base.
    only_usd = Catalogue(
        [*CATALOGUE_LISTINGS, listing("hyperliquid", "SOL", "USDC"), listing("okx", "SOL", "USD")]
    )

    assert map_symbol("BTC", "hyperliquid", "bybit", CATALOGUE, {}, None) == "BTCUSDT"
    # A coin-margined (USD) contract is not a USD-margined perpetual: never chosen.
    assert map_symbol("SOL", "hyperliquid", "okx", only_usd, {}, None) is None


def test_binance_market_orders_round_to_the_market_lot() -> None:
    # Arrange: LOT_SIZE step 0.001 / min 0.001; MARKET_LOT_SIZE step 0.01 / min 0.01.
    rules = listing(
        "binance-usdm",
        "BTC",
        "USDT",
        qty_step=D("0.001"),
        min_qty=D("0.001"),
        market_qty_step=D("0.01"),
        market_min_qty=D("0.01"),
        min_notional=D("100"),
        price_step=D("0.1"),
    )

    # Act
    market = order_rules(rules, limit_orders=False)
    limits = order_rules(rules, limit_orders=True)

    # Assert
    assert (market.qty_step, market.min_qty, market.min_notional) == (D("0.01"), D("0.01"), D(100))
    # Limits open, market orders close: the coarser step serves both.
    assert (limits.qty_step, limits.min_qty, limits.price_step) == (D("0.01"), D("0.01"), D("0.1"))


def test_steps_that_do_not_nest_keep_the_limit_step_for_limit_orders() -> None:
    rules = listing("binance-usdm", "X", "USDT", qty_step=D("0.2"), market_qty_step=D("0.3"))

    assert order_rules(rules, limit_orders=True).qty_step == D("0.2")
    assert order_rules(rules, limit_orders=False).qty_step == D("0.3")


def test_okx_contracts_convert_through_base_units() -> None:
    # 0.1234 BTC on BTC-USDT-SWAP (ctVal 0.01 BTC, lotSz 0.01 contracts = 0.0001 BTC).
    assert to_venue_units(D("0.1234"), OKX_BTC) == D("12.34")
    assert to_venue_units(D("0.12345"), OKX_BTC) == D("12.34")  # never more than sized


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("qty_step", D(0), "qty_step: must be positive"),
        ("contract_size", D("-1"), "contract_size: must be positive"),
        ("min_qty", D("-0.1"), "min_qty: must not be negative"),
        ("market_qty_step", D(0), "market_qty_step: must be positive"),
        ("base", "", "base: must not be empty"),
        ("source", "guess", "source: one of venue, operator"),
    ],
)
def test_impossible_rules_are_refused_naming_the_field(
    field: str, value: object, message: str
) -> None:
    values: dict[str, object] = {
        "venue": "okx",
        "symbol": "BTC-USDT-SWAP",
        "base": "BTC",
        "quote": "USDT",
        "qty_step": D("0.01"),
        field: value,
    }
    with pytest.raises(ValueError, match=message):
        Listing(**values)  # type: ignore[arg-type]


def test_not_listed_plan_skips_without_moving_the_follower() -> None:
    fill = make_fill(Side.SELL, "2", "100")

    plan = not_listed_plan(fill, D(5), D("0.5"))

    assert plan.skip_reason is SkipReason.SYMBOL_NOT_LISTED
    assert plan.legs == ()
    assert (plan.leader_position_after, plan.effect) == (D(3), FillEffect.REDUCE)
    assert plan.follower_position_after == D("0.5")


# --- properties -------------------------------------------------------------------------------

BASES = st.sampled_from(["BTC", "ETH", "SOL", "DOGE", "XRP", "AVAX"])
QUOTES = st.sampled_from(["USDT", "USDC"])


@st.composite
def catalogues(draw: st.DrawFn) -> tuple[Catalogue, list[Listing]]:
    """Random venues' lists: one listing per (venue, base, quote), spelled as the venue does
    (Hyperliquid lists only USDC)."""
    listings = []
    for venue in VENUES:
        for base in draw(st.sets(BASES, max_size=4)):
            quotes = ["USDC"] if venue == "hyperliquid" else draw(st.sets(QUOTES, min_size=1))
            listings += [listing(venue, base, quote) for quote in sorted(quotes)]
    return Catalogue(listings), listings


@given(catalogues(), st.data())
def test_property_a_mapped_symbol_is_listed_with_the_same_base(
    drawn: tuple[Catalogue, list[Listing]], data: st.DataObject
) -> None:
    catalogue, listings = drawn
    if not listings:
        return
    source = data.draw(st.sampled_from(listings))
    follower_venue = data.draw(st.sampled_from(VENUES))
    prefer = data.draw(st.none() | QUOTES)

    mapped = map_symbol(source.symbol, source.venue, follower_venue, catalogue, {}, prefer)

    same_base = catalogue.with_base(follower_venue, source.base)
    if not same_base:
        assert mapped is None
        return
    target = catalogue.listing(follower_venue, mapped or "")
    assert target is not None
    assert target.base == source.base
    quotes = {c.quote for c in same_base}
    own = source.quote if source.venue == follower_venue else None
    ranked = [q for q in (prefer, own, "USDT", "USDC") if q in quotes]
    assert target.quote == ranked[0]


@given(catalogues(), st.data())
def test_property_a_symbol_maps_to_itself_on_its_own_venue(
    drawn: tuple[Catalogue, list[Listing]], data: st.DataObject
) -> None:
    catalogue, listings = drawn
    if not listings:
        return
    source = data.draw(st.sampled_from(listings))

    assert map_symbol(source.symbol, source.venue, source.venue, catalogue) == source.symbol


@given(catalogues(), st.data(), st.text(min_size=1, max_size=12))
def test_property_symbols_map_always_wins(
    drawn: tuple[Catalogue, list[Listing]], data: st.DataObject, renamed: str
) -> None:
    catalogue, listings = drawn
    leader = data.draw(st.sampled_from([x.symbol for x in listings] or ["BTC"]))
    venue = data.draw(st.sampled_from(VENUES))
    prefer = data.draw(st.none() | QUOTES)

    assert map_symbol(leader, None, venue, catalogue, {leader: renamed}, prefer) == renamed


def _scaled(n: int, e: int) -> Decimal:
    return Decimal(f"{n}e{e}")


@given(
    lots=st.integers(0, 10**9),
    lot_contracts=st.builds(_scaled, st.integers(1, 9), st.integers(-3, 1)),
    ct_val=st.builds(_scaled, st.integers(1, 9), st.integers(-4, 2)),
    dust=st.integers(0, 999),
)
def test_property_contract_units_round_trip_and_never_round_up(
    lots: int, lot_contracts: Decimal, ct_val: Decimal, dust: int
) -> None:
    # Arrange: a venue counting in contracts of ct_val base units, lots of lot_contracts.
    venue = Listing(
        venue="okx",
        symbol="X-USDT-SWAP",
        base="X",
        quote="USDT",
        qty_step=lot_contracts * ct_val,
        contract_size=ct_val,
    )
    on_lot = lots * venue.qty_step
    off_lot = on_lot + venue.qty_step * dust / 1000

    # Act
    units = to_venue_units(on_lot, venue)
    rounded = to_venue_units(off_lot, venue) * venue.contract_size

    # Assert: on the lot it is exact both ways; off it, rounded down by less than a lot.
    assert units * venue.contract_size == on_lot
    assert units % lot_contracts == 0
    assert on_lot <= rounded <= off_lot
