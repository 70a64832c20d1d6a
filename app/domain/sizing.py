"""Proportional sizing: a leader fill scaled by the follower's share of the leader's equity."""

from __future__ import annotations

from decimal import Decimal, localcontext

from app.domain.decimals import round_down, sizing_context
from app.domain.model import EquityReading, Fill, Instrument, Sizing, SkipReason


def size_proportional(
    fill: Fill,
    leader_equity: EquityReading | None,
    follower_equity: EquityReading | None,
    multiplier: Decimal,
    instrument: Instrument,
) -> Sizing:
    """Size a follower order: leader qty x follower equity / leader equity x multiplier.

    The quantity is rounded toward zero to the instrument's step and checked against its
    minimums; an order that cannot be sized comes back with a skip reason and qty 0.
    """
    if (
        leader_equity is None
        or follower_equity is None
        or leader_equity.equity <= 0
        or follower_equity.equity <= 0
    ):
        return Sizing(
            leader_equity=leader_equity,
            follower_equity=follower_equity,
            multiplier=multiplier,
            ratio=None,
            raw_qty=None,
            qty=Decimal(0),
            qty_step=instrument.qty_step,
            skip_reason=SkipReason.NO_EQUITY,
        )

    with localcontext(sizing_context()):
        ratio = follower_equity.equity / leader_equity.equity
        # Multiply first and divide once: the only rounding is one correctly rounded quotient,
        # so a result that is exactly a whole number of steps stays exact.
        raw = fill.qty * follower_equity.equity * multiplier / leader_equity.equity
    qty = round_down(raw, instrument.qty_step)

    with localcontext(sizing_context()):
        # In the ambient context (28 digits, half-even) a notional just under the minimum
        # could round up to it; rounding toward zero at 80 digits keeps the comparison exact.
        notional = qty * fill.price

    reason: SkipReason | None = None
    if qty <= 0:
        reason = SkipReason.ROUNDS_TO_ZERO
    elif qty < instrument.min_qty:
        reason = SkipReason.BELOW_MIN_QTY
    elif notional < instrument.min_notional:
        reason = SkipReason.BELOW_MIN_NOTIONAL

    return Sizing(
        leader_equity=leader_equity,
        follower_equity=follower_equity,
        multiplier=multiplier,
        ratio=ratio,
        raw_qty=raw,
        qty=Decimal(0) if reason else qty,
        qty_step=instrument.qty_step,
        skip_reason=reason,
    )
