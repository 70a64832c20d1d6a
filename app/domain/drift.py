"""A follower's drift: its venue position against the position Copytrade aims for.

Three amounts per follower and symbol: ``actual`` (the venue's), ``tracked`` (what sizing
assumes, summed over the follower's subscriptions in the symbol) and ``adopted`` (what the
follower holds on its own, accepted under the ``adopt`` mode). Sizing never trades the
adopted part: the follower is expected to hold ``target + adopted``.

- :func:`reconcile` moves what the venue says into tracked (alert, resync: the next fill is
  sized from the truth) or into adopted (adopt: the next fill leaves it alone).
- :func:`split` shares a tracked correction over the subscriptions trading one symbol.
- :func:`assess` tells whether what is left counts as drift: more than one lot step away and,
  in notional terms, more than ``drift_tolerance`` of the follower's equity.
- :func:`resync_qty` sizes the correcting order: toward the target, whole lot steps, a
  reduction rounded up (never left more exposed than the target), never leaving the
  follower on the side opposite the leader's position.
- :func:`resync_plan` turns it into the planner's :class:`Plan`, so a resync goes through the
  sizing engine's ordinary write path as a ``sync`` event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal, localcontext
from typing import NamedTuple

from app.domain.decimals import round_down, sizing_context
from app.domain.model import Side, SkipReason
from app.domain.plan_model import DriftMode, Plan, PlanContext, PlannedLeg, SubscriptionStatus
from app.domain.planner import target_position
from app.domain.positions import FillEffect, sign

ZERO = Decimal(0)
# The reason a follower resync's sync event and its log line carry.
FOLLOWER_RESYNC = "follower_resync"


class Correction(NamedTuple):
    """What a venue reading moves: the tracked position and the adopted one."""

    tracked: Decimal
    adopted: Decimal


NO_CORRECTION = Correction(ZERO, ZERO)


class Assessment(NamedTuple):
    """``drift``: actual - (target + adopted), signed base units; ``fraction``: its notional
    over the follower's equity; ``counts``: beyond a lot step and the tolerance."""

    drift: Decimal
    fraction: Decimal
    counts: bool


def reconcile(mode: DriftMode, actual: Decimal, tracked: Decimal, adopted: Decimal) -> Correction:
    """Take the venue's position as the truth: under ``adopt`` the difference becomes the
    follower's own, otherwise the tracked position moves to what the venue holds."""
    gap = actual - tracked - adopted
    if mode is DriftMode.ADOPT:
        return Correction(ZERO, gap)
    return Correction(gap, ZERO)


def split(gap: Decimal, tracked: Sequence[Decimal]) -> list[Decimal]:
    """Share a correction ``gap`` of the tracked positions ``tracked`` of one follower symbol
    (the oldest subscription's first) so that none is pushed past flat while another can take
    it: first each position the correction reduces, down to flat at most, in order; the rest
    to the first one flat or on the correction's side, else the oldest. A subscription
    tracked on its leader's other side would have the next fill answered against the leader.
    """
    moves = [ZERO] * len(tracked)
    left = gap
    for index, qty in enumerate(tracked):
        if left and sign(qty) == -sign(left):
            moves[index] = min(abs(left), abs(qty)) * sign(left)
            left -= moves[index]
    if left:
        index = next((i for i, qty in enumerate(tracked) if sign(qty) != -sign(left)), 0)
        moves[index] += left
    return moves


def assess(
    actual: Decimal,
    target: Decimal,
    adopted: Decimal,
    qty_step: Decimal,
    price: Decimal,
    equity: Decimal,
    tolerance: Decimal,
) -> Assessment:
    """Measure the drift. Raises ValueError for a price or equity that is not positive."""
    if price <= 0 or equity <= 0:
        raise ValueError("price, equity: must be positive to measure a drift")
    drift = actual - target - adopted
    fraction = abs(drift) * price / equity
    return Assessment(drift, fraction, abs(drift) > qty_step and fraction > tolerance)


def resync_qty(current: Decimal, target: Decimal, leader: Decimal, qty_step: Decimal) -> Decimal:
    """The signed size of the order that brings ``current`` toward ``target``.

    Whole ``qty_step``s, never beyond the target except where it reduces: a reduction is
    rounded up, to flat at most, as the planner rounds a reducing order, so that the follower
    is never left more exposed than its target. Never leaves the follower on the side
    opposite ``leader``'s position (with a flat leader: never through zero): such an order
    stops at flat instead.
    """
    gap = target - current
    if current and sign(gap) == -sign(current) and abs(gap) <= abs(current):
        with localcontext(sizing_context()):
            up = (abs(gap) / qty_step).to_integral_value(rounding=ROUND_CEILING) * qty_step
        qty = min(up, round_down(abs(current), qty_step)) * sign(gap)
    else:
        qty = _toward_zero(gap, qty_step)
    after = current + qty
    side = sign(leader)
    if side == 0 and sign(after) == -sign(current) != 0:
        return _toward_zero(-current, qty_step)  # to flat at most
    if side != 0 and sign(qty) == -side and sign(after) == -side:
        # Against the leader onto its other side: to flat at most, and not at all from there.
        return _toward_zero(-current, qty_step) if sign(current) == side else ZERO
    return qty


def due(last_at: datetime | None, now: datetime, min_interval_s: float) -> bool:
    """Tell whether a resync may be sent now, ``min_interval_s`` after the last one."""
    return last_at is None or now - last_at >= timedelta(seconds=min_interval_s)


def resync_plan(ctx: PlanContext) -> Plan:
    """Plan the order that brings one subscription's tracked position to its target.

    ``ctx.fill`` is the sync event (its leader symbol and price); ``ctx.leader_position_before``
    the leader's position now. Skipped (no legs, with a reason) where the equities are
    missing, the subscription sends nothing, or the order is below the venue's minimums.
    """
    current = ctx.follower_position_before
    leader = ctx.leader_position_before
    rules, settings = ctx.instrument, ctx.settings

    def planned(legs: tuple[PlannedLeg, ...], reason: SkipReason | None, qty: Decimal) -> Plan:
        after = current + qty if legs else current
        return Plan(
            symbol=rules.symbol,
            legs=legs,
            skip_reason=reason,
            effect=_effect(current, after),
            leader_position_before=leader,
            leader_position_after=leader,
            follower_position_before=current,
            follower_position_after=after,
            target=target,
            raw_qty=None if target is None else target - current,
        )

    target: Decimal | None = None
    leader_eq, follower_eq = ctx.leader_equity, ctx.follower_equity
    if leader_eq is None or follower_eq is None or leader_eq.equity <= 0 or follower_eq.equity <= 0:
        return planned((), SkipReason.NO_EQUITY, ZERO)
    target = target_position(leader, leader_eq.equity, follower_eq.equity, settings.multiplier)
    if settings.status is SubscriptionStatus.PAUSED:
        return planned((), SkipReason.SUBSCRIPTION_PAUSED, ZERO)
    qty = resync_qty(current, target, leader, rules.qty_step)
    if not qty:
        return planned((), SkipReason.TARGET_REACHED, ZERO)
    legs = _legs(current, qty, rules.qty_step)
    qty = sum((leg.qty if leg.side is Side.BUY else -leg.qty for leg in legs), ZERO)
    if not legs:
        return planned((), SkipReason.ROUNDS_TO_ZERO, ZERO)
    if settings.status is SubscriptionStatus.CLOSE_ONLY and not legs[-1].reduce_only:
        return planned((), SkipReason.CLOSE_ONLY, ZERO)
    opening = [leg for leg in legs if not leg.reduce_only]
    if opening and opening[0].qty < rules.min_qty:
        return planned((), SkipReason.BELOW_MIN_QTY, ZERO)
    if opening and opening[0].qty * ctx.fill.price < rules.min_notional:
        return planned((), SkipReason.BELOW_MIN_NOTIONAL, ZERO)
    return planned(legs, None, qty)


def _toward_zero(value: Decimal, step: Decimal) -> Decimal:
    return round_down(value, step) if value else ZERO


def _legs(current: Decimal, qty: Decimal, step: Decimal) -> tuple[PlannedLeg, ...]:
    """A reduce_only close for the part that reduces, and an order for the part beyond flat,
    each in whole steps (a position off the step is closed as far as whole steps go)."""
    side = Side.BUY if qty > 0 else Side.SELL
    if sign(current) != -sign(qty):
        return (PlannedLeg(side, abs(qty), reduce_only=False),)
    closing = round_down(min(abs(qty), abs(current)), step)
    opening = round_down(abs(qty) - closing, step)
    legs = [PlannedLeg(side, closing, reduce_only=True)] if closing else []
    if opening:
        legs.append(PlannedLeg(side, opening, reduce_only=False))
    return tuple(legs)


def _effect(before: Decimal, after: Decimal) -> FillEffect:
    if not before:
        return FillEffect.OPEN
    if not after:
        return FillEffect.CLOSE
    if sign(before) != sign(after):
        return FillEffect.REVERSE
    return FillEffect.ADD if abs(after) > abs(before) else FillEffect.REDUCE
