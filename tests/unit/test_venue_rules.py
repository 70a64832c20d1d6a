"""app.sizing.venue_rules: a subscription's placement of leader symbols on its venue."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

from app.domain.instruments import Listing
from app.domain.plan_model import InstrumentRules, SizingSettings
from app.sizing.books import SubscriptionBook
from app.sizing.venue_rules import VenueRules, follower_venue

D = Decimal
LISTINGS = [
    Listing("hyperliquid", "BTC", "BTC", "USDC", D("0.00001"), min_notional=D(10)),
    Listing("binance-usdm", "BTCUSDT", "BTC", "USDT", D("0.001"), D("0.001"),
            market_qty_step=D("0.01"), market_min_qty=D("0.01")),
]  # fmt: skip


def book(venue: str, **settings: object) -> SubscriptionBook:
    sub = SubscriptionBook(uuid4(), uuid4(), SizingSettings(**settings))  # type: ignore[arg-type]
    sub.venue = venue
    return sub


def test_a_placed_symbol_joins_the_map_and_is_remembered() -> None:
    venues = VenueRules(LISTINGS)
    sub = book("binance-usdm")

    placed = venues.place(sub, "BTC", "hyperliquid", {})

    assert placed == ("BTCUSDT", InstrumentRules("BTCUSDT", D("0.01"), D("0.01")))
    assert dict(sub.settings.symbol_map) == {"BTC": "BTCUSDT"}
    assert sub.leader_symbols == {"BTCUSDT": "BTC"}
    assert sub.venue_placements == {"BTC": placed}
    assert venues.rules("binance-usdm", "BTCUSDT", limit_orders=True) == placed[1]


def test_an_unlisted_symbol_is_none_and_a_mapped_one_falls_back_to_operator_rules() -> None:
    venues = VenueRules(LISTINGS)
    sub = book("binance-usdm", symbol_map={"kPEPE": "1000PEPEUSDT"})
    operator = {"1000PEPEUSDT": InstrumentRules("1000PEPEUSDT", D(1), D(1))}

    assert venues.place(sub, "ETH", None, operator) is None
    assert venues.place(sub, "kPEPE", "hyperliquid", operator) == (
        "1000PEPEUSDT", operator["1000PEPEUSDT"]
    )  # fmt: skip
    assert venues.rules("binance-usdm", "ETHUSDT") is None


def test_the_accounts_venue_is_the_default_and_symbols_venue_overrides_it() -> None:
    assert follower_venue({}, "binance-usdm") == ("binance-usdm", None)
    assert follower_venue({"symbols": {"quote": "USDC"}}, "okx") == ("okx", "USDC")
    assert follower_venue({"symbols": {"venue": "bybit"}}, "binance-usdm") == ("bybit", None)
    assert follower_venue({}, None) == (None, None)
    # An account on a venue whose instrument list was never loaded keeps the operator's rules.
    assert follower_venue({}, "binance-usdm", frozenset()) == (None, None)
    assert follower_venue({"symbols": {"venue": "bybit"}}, "okx", frozenset()) == ("bybit", None)
    # A kind sizing knows no venue for keeps the follower unplaced, as without an account.
    assert follower_venue({}, "paper") == (None, None)
