"""What sizing keeps in memory per leader: its subscriptions and the positions they move.

The database is the truth; a book is a cache of it, loaded on a leader's first fill and
dropped whenever anything else may have changed it (the API, an executor report, a failed
write). Another instance's fills move it without a word: the book's sequence, compared and set
by the fill statement, catches those. Only the sizing engine moves positions, one fill at a
time per leader.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from app.domain.model import DEFAULT_QTY_STEP, Fill
from app.domain.plan_model import (
    DriftMode,
    InstrumentRules,
    Rounding,
    SizingMode,
    SizingSettings,
    SubscriptionStatus,
)

if TYPE_CHECKING:
    from app.sizing.vector_books import SymbolColumns


def settings_from_row(multiplier: Decimal, status: str, sizing: dict[str, Any]) -> SizingSettings:
    """Build a subscription's SizingSettings from its row (``sizing`` as the API stored it)."""

    def dec(name: str) -> Decimal | None:
        value = sizing.get(name)
        return None if value is None else Decimal(str(value))

    symbols = sizing.get("symbols") or {}
    allow = symbols.get("allow")
    age = sizing.get("max_equity_age_s")
    return SizingSettings(
        mode=SizingMode(sizing.get("mode", SizingMode.TARGET.value)),
        multiplier=multiplier,
        notional=dec("notional"),
        max_order_notional=dec("max_order_notional"),
        max_position_notional=dec("max_position_notional"),
        max_leverage=dec("max_leverage"),
        allow=frozenset(allow) if allow is not None else None,
        deny=frozenset(symbols.get("deny") or ()),
        symbol_map=dict(symbols.get("map") or {}),
        max_slippage=dec("max_slippage"),
        max_equity_age_s=float(age) if age is not None else None,
        equity_floor=dec("equity_floor"),
        status=SubscriptionStatus(status),
        rounding=Rounding(sizing.get("rounding", Rounding.CONSERVATIVE.value)),
        **drift_settings(sizing),
    )


def drift_settings(sizing: dict[str, Any]) -> dict[str, Any]:
    """The drift settings a stored ``sizing`` sets (the defaults for those it leaves out)."""
    out: dict[str, Any] = {}
    if "drift" in sizing:
        out["drift"] = DriftMode(sizing["drift"])
    if "drift_tolerance" in sizing:
        out["drift_tolerance"] = Decimal(str(sizing["drift_tolerance"]))
    if "drift_min_interval_s" in sizing:
        out["drift_min_interval_s"] = float(sizing["drift_min_interval_s"])
    return out


@dataclass(slots=True)
class SubscriptionBook:
    id: UUID
    follower_id: UUID
    settings: SizingSettings
    # Follower symbol -> the position sizing assumes (signed).
    positions: dict[str, Decimal] = field(default_factory=dict)
    # Follower symbol -> leader symbol, where symbols.map renames one.
    leader_symbols: dict[str, str] = field(default_factory=dict)
    # The venue the follower trades on (None: sized as the leader's symbol, operator rules),
    # its preferred quote, and per leader symbol its (symbol, rules) there (app.sizing.venue_rules).
    venue: str | None = None
    quote: str | None = None
    venue_placements: dict[str, tuple[str, InstrumentRules] | None] = field(default_factory=dict)
    # The ids as text, formatted once: every order of every fill spells them.
    id_text: str = field(init=False)
    follower_text: str = field(init=False)

    def __post_init__(self) -> None:
        self.leader_symbols = {f: ldr for ldr, f in self.settings.symbol_map.items()}
        self.id_text = str(self.id)
        self.follower_text = str(self.follower_id)


@dataclass(slots=True)
class LeaderBook:
    leader_id: UUID
    subscriptions: list[SubscriptionBook]
    positions: dict[str, Decimal]
    # Last leader price per leader symbol: the mark for gross exposure under max_leverage.
    last_price: dict[str, Decimal] = field(default_factory=dict)
    # The database's book sequence these positions are at (leader.book_seq).
    seq: int = 0
    venue: str | None = None  # the leader's venue, when its feed is a venue's
    stale: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Leader symbol -> the vector path's columns (app.sizing.vector_books); dropped on reload.
    columns: dict[str, SymbolColumns] = field(default_factory=dict)
    # How many subscriptions the vector path covers (app.sizing.vector_books.wide_enough):
    # counted on first use, forgotten on reload.
    covered: int | None = None

    def gross_exposure(self, sub: SubscriptionBook, except_symbol: str) -> Decimal:
        """|position| x last price over the subscription's other symbols."""
        total = Decimal(0)
        for symbol, qty in sub.positions.items():
            price = self.last_price.get(sub.leader_symbols.get(symbol, symbol))
            if symbol != except_symbol and qty and price is not None:
                total += abs(qty) * price
        return total


# What one subscription's plan for a fill moves: its follower symbol, the position delta and
# the status it changed to, if any.
Applied = tuple[SubscriptionBook, str, Decimal, SubscriptionStatus | None]


def move_book(
    book: LeaderBook, fill: Fill, leader_delta: Decimal, applied: Iterable[Applied]
) -> None:
    """Move the book the way a recorded fill moved the database: the leader's position and
    last price, then each subscription's position and status. The engine calls it once the
    fill has committed; the replay after each fill it plans, so the two never drift apart."""
    book.positions[fill.symbol] = book.positions.get(fill.symbol, Decimal(0)) + leader_delta
    book.last_price[fill.symbol] = fill.price
    for sub, symbol, delta, new_status in applied:
        if delta:
            sub.positions[symbol] = sub.positions.get(symbol, Decimal(0)) + delta
        if new_status is not None:
            sub.settings = replace(sub.settings, status=new_status)


def rules_from_row(row: Any) -> InstrumentRules:
    return InstrumentRules(
        row["symbol"], row["qty_step"], row["min_qty"], row["min_notional"], row["price_step"]
    )


def default_rules(symbol: str) -> InstrumentRules:
    """A symbol without an instrument row trades in 1e-8 steps, with no minimums."""
    return InstrumentRules(symbol, DEFAULT_QTY_STEP)
