"""The sizing planner: one leader fill in, the follower's orders out.

Choices the issue leaves open, made here:

- A close that takes the follower exactly flat is never held back by ``min_qty`` or
  ``min_notional``; otherwise a dust position could never be closed. Flat closes send the
  whole position, unrounded.
- Only the opening part of an order is clamped, limited to a price band or blocked by
  ``close_only``; reducing legs are always market orders.
- A fill is never copied against its own direction. A reducing leader fill meets a follower
  holding nothing on the leader's side with ``no_position_to_reduce``, in every mode.
- ``symbols.allow`` and ``symbols.deny`` match the leader's or the follower's symbol name;
  deny wins. A symbol that is not copied is not copied at all, closes included.
- Controls that read the follower's equity (``max_leverage``, ``equity_floor``) fail closed:
  without a usable reading the opening leg is dropped with the equity reason.
- Reasons are reported for the first check that fails, in this order: paused, symbol lists,
  no position to reduce, close_only (nothing to reduce), equity, target reached, rounding,
  caps, minimums.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal, localcontext

from app.domain.controls import (
    clamp_opening,
    equity_reason,
    is_fresh,
    limit_price,
    minimum_reason,
)
from app.domain.decimals import round_down, sizing_context
from app.domain.model import SkipReason
from app.domain.plan_model import (
    IOC,
    InstrumentRules,
    OrderType,
    Plan,
    PlanContext,
    PlannedLeg,
    SizingMode,
    SizingSettings,
    SubscriptionStatus,
)
from app.domain.positions import (
    FillEffect,
    apply_fill,
    classify,
    direction,
    proportional_reduction,
    sign,
)

__all__ = [
    "InstrumentRules",
    "Plan",
    "PlanContext",
    "PlannedLeg",
    "SizingMode",
    "SizingSettings",
    "SubscriptionStatus",
    "plan",
    "target_position",
]

ZERO = Decimal(0)
EQUITY_FLOOR = "equity_floor"


@dataclass(frozen=True, slots=True)
class _Want:
    """What a sizing mode asks for, before caps and minimums (sizes unsigned)."""

    reason: SkipReason | None = None  # nothing at all can be planned
    close_raw: Decimal = ZERO
    close: Decimal = ZERO  # rounded, or the whole position when it takes the follower flat
    open_raw: Decimal = ZERO
    open: Decimal = ZERO  # rounded toward zero to the step
    open_reason: SkipReason | None = None  # the opening part could not be sized
    target: Decimal | None = None
    ratio: Decimal | None = None


@dataclass(frozen=True, slots=True)
class _Equities:
    leader: Decimal
    follower: Decimal

    @property
    def ratio(self) -> Decimal:
        return self.follower / self.leader


def target_position(
    leader_position: Decimal, leader_equity: Decimal, follower_equity: Decimal, multiplier: Decimal
) -> Decimal:
    """Return the follower's exact target: leader position x follower / leader equity x mult.

    Not rounded to a step. Raises ValueError when an equity is not positive.
    """
    if leader_equity <= 0 or follower_equity <= 0:
        raise ValueError("equity: both equities must be positive")
    with localcontext(sizing_context()):
        # Multiply first and divide once: the only rounding is one quotient, toward zero.
        return leader_position * follower_equity * multiplier / leader_equity


def plan(ctx: PlanContext) -> Plan:
    """Plan the follower's orders for one leader fill.

    A skip is a Plan with a reason, never an exception. Raises ValueError only for inputs
    that cannot be true: a fill qty or price that is not positive, rules of another symbol.
    """
    with localcontext(sizing_context()):
        return _plan(ctx)


def _plan(ctx: PlanContext) -> Plan:
    fill, settings = ctx.fill, ctx.settings
    symbol = settings.symbol_map.get(fill.symbol, fill.symbol)
    if fill.price <= 0:
        raise ValueError(f"fill.price: must be positive, got {fill.price}")
    if ctx.instrument.symbol != symbol:
        raise ValueError(f"instrument: rules of {ctx.instrument.symbol}, order in {symbol}")
    l0, f0 = ctx.leader_position_before, ctx.follower_position_before
    effect = classify(l0, fill.side, fill.qty)
    l1 = apply_fill(l0, fill.side, fill.qty)
    result = Plan(
        symbol=symbol,
        legs=(),
        skip_reason=None,
        effect=effect,
        leader_position_before=l0,
        leader_position_after=l1,
        follower_position_before=f0,
        follower_position_after=f0,
    )

    gate = _gate(ctx, symbol)
    if gate is not None:
        return replace(result, skip_reason=gate)
    close_only = settings.status == SubscriptionStatus.CLOSE_ONLY
    reading = ctx.follower_equity
    if (
        settings.equity_floor is not None
        and not close_only
        and reading is not None
        and is_fresh(reading, ctx.now, settings.max_equity_age_s)
        and reading.equity < settings.equity_floor
    ):
        close_only = True
        result = replace(
            result, status_change=SubscriptionStatus.CLOSE_ONLY, status_reason=EQUITY_FLOOR
        )
    if effect in (FillEffect.REDUCE, FillEffect.CLOSE) and sign(f0) != sign(l0):
        return replace(result, skip_reason=SkipReason.NO_POSITION_TO_REDUCE)

    if settings.mode == SizingMode.TARGET:
        want = _target_want(ctx, l1, close_only)
    else:
        want = _fill_want(ctx, effect, l1, close_only)
    return _legs(ctx, result, want, close_only)


def _gate(ctx: PlanContext, symbol: str) -> SkipReason | None:
    settings = ctx.settings
    if settings.status == SubscriptionStatus.PAUSED:
        return SkipReason.SUBSCRIPTION_PAUSED
    names = {ctx.fill.symbol, symbol}
    if names & settings.deny:
        return SkipReason.SYMBOL_DENIED
    if settings.allow is not None and not names & settings.allow:
        return SkipReason.SYMBOL_NOT_ALLOWED
    return None


def _equities(ctx: PlanContext) -> _Equities | SkipReason:
    max_age = ctx.settings.max_equity_age_s
    leader, follower = ctx.leader_equity, ctx.follower_equity
    reasons = (equity_reason(leader, ctx.now, max_age), equity_reason(follower, ctx.now, max_age))
    # Missing beats stale: a fresher reading would not help a side that has none.
    if SkipReason.NO_EQUITY in reasons or leader is None or follower is None:
        return SkipReason.NO_EQUITY
    if SkipReason.STALE_EQUITY in reasons:
        return SkipReason.STALE_EQUITY
    return _Equities(leader.equity, follower.equity)


def _target_want(ctx: PlanContext, l1: Decimal, close_only: bool) -> _Want:
    """Ask for the target minus the follower's position, in the fill's direction only."""
    f0, d = ctx.follower_position_before, direction(ctx.fill.side)
    held = abs(f0)
    if l1 == 0:
        # The leader is flat, so the follower goes exactly flat: the whole position.
        return _Want(close_raw=held, close=held, target=ZERO)
    if sign(f0) == -d and sign(l1) == d:
        # Through zero: close everything first; the new side needs the equities.
        closing = _Want(close_raw=held, close=held)
        if close_only:
            return replace(closing, open_reason=SkipReason.CLOSE_ONLY)
        equities = _equities(ctx)
        if isinstance(equities, SkipReason):
            return replace(closing, open_reason=equities)
        target = target_position(l1, equities.leader, equities.follower, ctx.settings.multiplier)
        return replace(
            closing,
            open_raw=abs(target),
            open=round_down(abs(target), ctx.instrument.qty_step),
            target=target,
            ratio=equities.ratio,
        )
    if close_only and sign(f0) != -d:
        return _Want(reason=SkipReason.CLOSE_ONLY)
    equities = _equities(ctx)
    if isinstance(equities, SkipReason):
        return _Want(reason=equities)
    target = target_position(l1, equities.leader, equities.follower, ctx.settings.multiplier)
    order_raw = target - f0
    if sign(order_raw) != d:
        # At the target already, or past it in the fill's direction: never trade back.
        return _Want(reason=SkipReason.TARGET_REACHED, target=target, ratio=equities.ratio)
    order = round_down(abs(order_raw), ctx.instrument.qty_step)
    return _split(f0, d, abs(order_raw), order, ctx.instrument.qty_step, target, equities.ratio)


def _fill_want(ctx: PlanContext, effect: FillEffect, l1: Decimal, close_only: bool) -> _Want:
    """Ask for a size per fill: proportional reductions, mode-sized openings."""
    l0, f0, d = ctx.leader_position_before, ctx.follower_position_before, direction(ctx.fill.side)
    step = ctx.instrument.qty_step
    if effect is FillEffect.REDUCE:
        raw = proportional_reduction(abs(f0), l0, l1)
        return _Want(close_raw=raw, close=round_down(raw, step))
    if effect is FillEffect.CLOSE:
        return _Want(close_raw=abs(f0), close=abs(f0))
    # Open, add or reverse: a reversal first closes what the follower holds on the old side.
    close = abs(f0) if effect is FillEffect.REVERSE and sign(f0) == sign(l0) else ZERO
    closing = _Want(close_raw=close, close=close)
    after_close = f0 + d * close
    if close_only and sign(after_close) != -d:
        reason = SkipReason.CLOSE_ONLY
        return replace(closing, open_reason=reason) if close else _Want(reason=reason)
    leader_qty = abs(l1) if effect is FillEffect.REVERSE else ctx.fill.qty
    sized = _size_opening(ctx, leader_qty)
    if isinstance(sized, SkipReason):
        return replace(closing, open_reason=sized) if close else _Want(reason=sized)
    raw, ratio = sized
    # Out of sync (the follower holds the other side): the sized order reduces that first.
    rest = _split(after_close, d, raw, round_down(raw, step), step, None, ratio)
    return replace(rest, close_raw=close + rest.close_raw, close=close + rest.close)


def _size_opening(
    ctx: PlanContext, leader_qty: Decimal
) -> tuple[Decimal, Decimal | None] | SkipReason:
    """Return the unrounded opening size for the mode, and the equity ratio if it read one."""
    settings = ctx.settings
    if settings.mode == SizingMode.FIXED_MULTIPLIER:
        return leader_qty * settings.multiplier, None
    if settings.mode == SizingMode.FIXED_NOTIONAL:
        if settings.notional is None:  # SizingSettings refuses this; narrow the type
            raise ValueError("notional: required when mode is fixed_notional")
        return settings.notional / ctx.fill.price, None
    equities = _equities(ctx)
    if isinstance(equities, SkipReason):
        return equities
    raw = target_position(leader_qty, equities.leader, equities.follower, settings.multiplier)
    return raw, equities.ratio


def _split(
    position: Decimal,
    d: int,
    raw: Decimal,
    qty: Decimal,
    step: Decimal,
    target: Decimal | None,
    ratio: Decimal | None,
) -> _Want:
    """Split an order of ``qty`` in direction ``d`` into the part that reduces ``position``
    and the part that opens beyond it."""
    if sign(position) != -d:
        return _Want(open_raw=raw, open=qty, target=target, ratio=ratio)
    held = abs(position)
    close_raw, close = min(raw, held), min(qty, held)
    return _Want(
        close_raw=close_raw,
        close=close,
        open_raw=raw - close_raw,
        open=round_down(qty - close, step),
        target=target,
        ratio=ratio,
    )


def _legs(ctx: PlanContext, result: Plan, want: _Want, close_only: bool) -> Plan:
    """Turn what the mode asked for into legs: minimums, close_only, caps, price band."""
    result = replace(result, ratio=want.ratio, target=want.target)
    if want.reason is not None:
        return replace(result, skip_reason=want.reason)
    raw = want.close_raw + want.open_raw
    result = replace(result, raw_qty=raw, residue=raw - want.close - want.open)
    f0, side, price = ctx.follower_position_before, ctx.fill.side, ctx.fill.price
    legs: list[PlannedLeg] = []
    reason: SkipReason | None = None
    clamps: tuple[str, ...] = ()
    position = f0
    if want.close_raw > 0:
        # A close to exactly flat always goes: a dust position must stay closable.
        if want.close != abs(f0):
            reason = minimum_reason(want.close, price, ctx.instrument)
        if reason is None:
            legs.append(PlannedLeg(side=side, qty=want.close, reduce_only=True))
            position = f0 + direction(side) * want.close
    if reason is None and (want.open_raw > 0 or want.open_reason is not None):
        leg, reason, clamps = _opening_leg(ctx, want, abs(position), close_only)
        if leg is not None:
            legs.append(leg)
            position += direction(side) * leg.qty
    if not legs and reason is None:
        reason = SkipReason.TARGET_REACHED
    return replace(
        result,
        legs=tuple(legs),
        skip_reason=reason,
        clamps=clamps,
        follower_position_after=position,
    )


def _opening_leg(
    ctx: PlanContext, want: _Want, held: Decimal, close_only: bool
) -> tuple[PlannedLeg | None, SkipReason | None, tuple[str, ...]]:
    """Return the opening leg (or why there is none) and the caps that cut it."""
    settings, side, price = ctx.settings, ctx.fill.side, ctx.fill.price
    if close_only:
        return None, SkipReason.CLOSE_ONLY, ()
    if want.open_reason is not None:
        return None, want.open_reason, ()
    if want.open <= 0:
        return None, SkipReason.ROUNDS_TO_ZERO, ()
    follower_equity: Decimal | None = None
    if settings.max_leverage is not None or settings.equity_floor is not None:
        reading = ctx.follower_equity
        problem = equity_reason(reading, ctx.now, settings.max_equity_age_s)
        if problem is not None or reading is None:
            return None, problem or SkipReason.NO_EQUITY, ()
        follower_equity = reading.equity
    qty, clamps = clamp_opening(
        want.open,
        price=price,
        held=held,
        gross_exposure=ctx.follower_gross_exposure,
        follower_equity=follower_equity,
        rules=ctx.instrument,
        settings=settings,
    )
    if qty <= 0:
        return None, SkipReason(clamps[-1]), clamps
    problem = minimum_reason(qty, price, ctx.instrument)
    if problem is not None:
        return None, problem, clamps
    if settings.max_slippage is None:
        return PlannedLeg(side=side, qty=qty, reduce_only=False), None, clamps
    limit = limit_price(side, price, settings.max_slippage, ctx.instrument.price_step)
    if limit <= 0:
        # A price step coarser than the price: there is no valid limit inside the band.
        return None, SkipReason.ROUNDS_TO_ZERO, clamps
    leg = PlannedLeg(
        side=side,
        qty=qty,
        reduce_only=False,
        order_type=OrderType.LIMIT,
        limit_price=limit,
        time_in_force=IOC,
    )
    return leg, None, clamps
