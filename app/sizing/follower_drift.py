"""What a follower's drift check (app.venues.drift) reads of the sizing engine's books.

The engine loads and locks the book (``SizingEngine.symbol_targets``); here one subscription's
symbols are laid out with their targets at the current equities.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from app.domain.model import EquityReading
from app.domain.planner import target_position
from app.sizing.books import LeaderBook, SubscriptionBook
from app.sizing.fill_plan import Place


@dataclass(frozen=True, slots=True)
class SymbolTarget:
    """One symbol of a subscription as sizing sees it: the leader's position in the leader
    symbol that maps to it, the tracked position, and the target (None without equities)."""

    leader_symbol: str
    symbol: str
    leader_qty: Decimal
    tracked: Decimal
    target: Decimal | None
    qty_step: Decimal
    price: Decimal | None  # the leader's last fill price in leader_symbol


def symbol_targets(
    book: LeaderBook,
    sub: SubscriptionBook,
    place: Place,
    leader_eq: EquityReading | None,
    follower_eq: EquityReading | None,
) -> list[SymbolTarget]:
    """Each follower symbol ``sub`` is tracked in or its leader trades, with its target at
    the equities ``leader_eq`` and ``follower_eq``."""
    out: dict[str, SymbolTarget] = {}
    for leader_symbol in sorted(book.positions.keys() | book.last_price.keys()):
        placed = place(book, sub, leader_symbol)
        if placed is None:
            continue
        symbol, rules = placed
        leader_qty = book.positions.get(leader_symbol, Decimal(0))
        target = None
        if leader_eq and follower_eq and leader_eq.equity > 0 and follower_eq.equity > 0:
            target = target_position(
                leader_qty, leader_eq.equity, follower_eq.equity, sub.settings.multiplier
            )
        if symbol not in out or leader_qty:
            out[symbol] = SymbolTarget(
                leader_symbol, symbol, leader_qty, sub.positions.get(symbol, Decimal(0)),
                target, rules.qty_step, book.last_price.get(leader_symbol),
            )  # fmt: skip
    return list(out.values())
