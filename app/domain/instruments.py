"""What each venue lists, and how a leader's symbol maps onto a follower's venue. Pure.

Every quantity here is in base units (BTC, ETH): sizing works in them end to end. A venue
that counts in contracts (OKX: one contract is ``ctVal`` of the base) is described by its
``contract_size``, so its lot step and minimums are stored converted to base units, and an
executor converts an order's base quantity back with :func:`to_venue_units`.

Symbols are mapped by base asset between USD-margined perpetuals, each venue spelling them its
own way: Binance and Bybit ``BTCUSDT``, OKX ``BTC-USDT-SWAP``, Hyperliquid ``BTC`` (USDC).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from app.domain.decimals import round_down
from app.domain.model import Fill, SkipReason
from app.domain.plan_model import InstrumentRules, Plan
from app.domain.positions import effect_of, signed_qty

VENUES = ("binance-usdm", "bybit", "okx", "hyperliquid")
# The stablecoins USD-margined perpetuals settle in, the venues' usual one first: where a venue
# lists both for one base and nothing else decides, USDT.
QUOTE_ORDER = ("USDT", "USDC")
SOURCES = ("venue", "operator")
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Listing:
    """One perpetual on one venue, with its order rules in base units.

    Raises ValueError naming the field when a rule is impossible (a step not positive, a
    negative minimum), so a bad row from a venue is refused before it reaches sizing.
    """

    venue: str
    symbol: str
    base: str
    quote: str
    qty_step: Decimal
    min_qty: Decimal = _ZERO
    max_qty: Decimal | None = None
    # Binance's MARKET_LOT_SIZE: a market order has its own step, minimum and maximum.
    market_qty_step: Decimal | None = None
    market_min_qty: Decimal | None = None
    market_max_qty: Decimal | None = None
    min_notional: Decimal = _ZERO
    price_step: Decimal | None = None
    # Hyperliquid has no fixed tick: at most this many significant figures and decimals.
    price_sig_figs: int | None = None
    price_max_decimals: int | None = None
    contract_size: Decimal = Decimal(1)  # base units per venue unit
    source: str = "venue"

    def __post_init__(self) -> None:
        for name in ("venue", "symbol", "base", "quote"):
            if not getattr(self, name):
                raise ValueError(f"{name}: must not be empty")
        for name in ("qty_step", "contract_size"):
            _positive(name, getattr(self, name))
        for name in ("market_qty_step", "price_step", "max_qty", "market_max_qty"):
            value = getattr(self, name)
            if value is not None:
                _positive(name, value)
        for name in ("min_qty", "market_min_qty", "min_notional"):
            value = getattr(self, name)
            if value is not None and not (value.is_finite() and value >= 0):
                raise ValueError(f"{name}: must not be negative")
        if self.source not in SOURCES:
            raise ValueError(f"source: one of {', '.join(SOURCES)}")


def order_rules(listing: Listing, limit_orders: bool) -> InstrumentRules:
    """The rules sizing rounds to for a follower on ``listing``.

    With market orders only (no ``max_slippage``), the market step and minimum apply. With
    slippage-bounded limits, opening legs are limits and closes stay market orders: the
    coarser step serves both when one is a multiple of the other (as venues' steps are),
    else the limit step; the larger minimum applies.
    """
    step = listing.qty_step
    market_step = listing.market_qty_step or step
    market_min = max(listing.min_qty, listing.market_min_qty or _ZERO)
    if not limit_orders:
        return InstrumentRules(
            listing.symbol, market_step, market_min, listing.min_notional, listing.price_step
        )
    coarse, fine = max(step, market_step), min(step, market_step)
    if coarse % fine == 0:
        step = coarse
    return InstrumentRules(
        listing.symbol, step, market_min, listing.min_notional, listing.price_step
    )


def to_venue_units(qty: Decimal, listing: Listing) -> Decimal:
    """A base quantity in the venue's units, rounded toward zero to the venue's lot."""
    return round_down(qty / listing.contract_size, listing.qty_step / listing.contract_size)


class Catalogue:
    """The listings of every venue, looked up by symbol and by base asset."""

    __slots__ = ("_by_base", "_by_symbol", "venues")

    def __init__(self, listings: Iterable[Listing] = ()) -> None:
        self._by_symbol: dict[tuple[str, str], Listing] = {}
        self._by_base: dict[tuple[str, str], list[Listing]] = {}
        for listing in listings:
            self._by_symbol[listing.venue, listing.symbol] = listing
        for listing in self._by_symbol.values():
            self._by_base.setdefault((listing.venue, listing.base), []).append(listing)
        # The venues whose list is loaded: only on those can a symbol be "not listed".
        self.venues = frozenset(venue for venue, _ in self._by_symbol)

    def listing(self, venue: str, symbol: str) -> Listing | None:
        return self._by_symbol.get((venue, symbol))

    def with_base(self, venue: str, base: str) -> list[Listing]:
        return self._by_base.get((venue, base), [])

    def find(self, symbol: str, venue: str | None) -> Listing | None:
        """The listing of ``symbol`` on ``venue``; a venue not known: the first that lists it."""
        if venue is not None:
            found = self.listing(venue, symbol)
            if found is not None or venue in VENUES:
                return found
        for other in VENUES:
            found = self.listing(other, symbol)
            if found is not None:
                return found
        return None

    def __len__(self) -> int:
        return len(self._by_symbol)


def map_symbol(
    leader_symbol: str,
    leader_venue: str | None,
    follower_venue: str,
    catalogue: Catalogue,
    overrides: Mapping[str, str] | None = None,
    prefer_quote: str | None = None,
) -> str | None:
    """The follower's symbol for a leader's, or None when its venue does not list it.

    ``overrides`` (a subscription's ``symbols.map``) win. Otherwise the leader's listing
    gives the base asset, and the follower's venue's listings of that base are ranked: the
    subscription's preferred quote; on the leader's own venue, the leader's symbol; then the
    venue's convention (``QUOTE_ORDER``). A listing quoted in anything else is not a
    USD-margined perpetual and is never chosen.
    """
    if overrides and leader_symbol in overrides:
        return overrides[leader_symbol]
    source = catalogue.find(leader_symbol, leader_venue)
    if source is None:
        return None
    candidates = {c.quote: c.symbol for c in catalogue.with_base(follower_venue, source.base)}
    own = source.quote if source.venue == follower_venue else None
    for quote in (prefer_quote, own, *QUOTE_ORDER):
        if quote is not None and quote in candidates and (quote in QUOTE_ORDER or quote == own):
            return candidates[quote]
    return None


def not_listed_plan(fill: Fill, leader_before: Decimal, follower_before: Decimal) -> Plan:
    """The skipped plan of a fill whose symbol the follower's venue does not list."""
    after = leader_before + signed_qty(fill.side, fill.qty)
    return Plan(
        symbol=fill.symbol,
        legs=(),
        skip_reason=SkipReason.SYMBOL_NOT_LISTED,
        effect=effect_of(leader_before, after),
        leader_position_before=leader_before,
        leader_position_after=after,
        follower_position_before=follower_before,
        follower_position_after=follower_before,
    )


def _positive(name: str, value: Decimal) -> None:
    if not (value.is_finite() and value > 0):
        raise ValueError(f"{name}: must be positive")
