"""Signed position arithmetic: buys add, sells subtract; what a fill does to a position.

A position is a signed Decimal quantity in one symbol: positive long, negative short, zero flat.
"""

from __future__ import annotations

import enum
from decimal import Decimal, localcontext

from app.domain.decimals import sizing_context
from app.domain.model import Side

# Built once: a new Context per call costs more than the arithmetic it is for. Sharing it is
# safe because localcontext() enters a copy, so nothing a call does reaches this object.
_SIZING = sizing_context()


class FillEffect(enum.StrEnum):
    """What a fill does to the position it lands on."""

    OPEN = "open"  # flat before, not flat after
    ADD = "add"  # same side, larger
    REDUCE = "reduce"  # same side, smaller, not flat
    CLOSE = "close"  # exactly flat after
    REVERSE = "reverse"  # through zero to the other side


def sign(value: Decimal) -> int:
    """Return 1, -1 or 0 as ``value`` is long, short or flat."""
    return (value > 0) - (value < 0)


def direction(side: Side) -> int:
    """Return +1 for a buy and -1 for a sell."""
    return 1 if side is Side.BUY else -1


def side_of(delta: Decimal) -> Side:
    """Return the side of an order that changes a position by ``delta`` (non-zero)."""
    if delta == 0:
        raise ValueError("delta: a zero change has no side")
    return Side.BUY if delta > 0 else Side.SELL


def signed_qty(side: Side, qty: Decimal) -> Decimal:
    """Return ``qty`` signed by ``side``: + for a buy, - for a sell."""
    if qty <= 0:
        raise ValueError(f"qty: must be positive, got {qty}")
    # copy_negate is exact in any context; unary minus rounds to the caller's precision.
    return qty if side is Side.BUY else qty.copy_negate()


def apply_fill(position: Decimal, side: Side, qty: Decimal) -> Decimal:
    """Return the position after a fill of ``qty`` on ``side``."""
    with localcontext(_SIZING):
        # 80 digits: the sign flip and the sum of two bounded quantities are exact.
        return position + signed_qty(side, qty)


def opposite(a: Decimal, b: Decimal) -> bool:
    """Tell whether two positions are strictly on opposite sides (flat is on neither)."""
    return sign(a) * sign(b) < 0


def effect_of(position: Decimal, after: Decimal) -> FillEffect:
    """Classify a move from ``position`` to ``after`` (a fill's result, known already)."""
    if position == 0:
        return FillEffect.OPEN
    if after == 0:
        return FillEffect.CLOSE
    if opposite(position, after):
        return FillEffect.REVERSE
    return FillEffect.ADD if abs(after) > abs(position) else FillEffect.REDUCE


def reduced_share(held: Decimal, before: Decimal, after: Decimal) -> Decimal:
    """Return how much of ``held`` (a size, >= 0) to close when ``before`` shrinks to ``after``
    on the same side (a REDUCE: ``0 < |after| < |before|``; a close or a reversal takes all).

    ``held x (|before| - |after|) / |before|``, multiplied first and divided once, so a
    reduction that is a whole number of steps stays exact. Not rounded to a step. The caller
    is inside the sizing context (app.domain.decimals.sizing_context), where the one quotient
    rounds toward zero; the planner enters it once per plan.
    """
    return held * (abs(before) - abs(after)) / abs(before)
