"""The sizing planner: one leader fill in, the follower's orders out.

What each mode asks for is in app.domain.sizing_modes; here, the checks around it (paused,
symbol lists, close_only, the equity floor) and the turning of its ask into legs (caps,
minimums, the price band).

Choices the sizing rules (README, Sizing) leave open, made here:

- A close that takes the follower exactly flat is never held back by ``min_qty`` or
  ``min_notional``; otherwise a dust position could never be closed. Flat closes send the
  whole position, unrounded.
- Only the opening part of an order is clamped, limited to a price band or blocked by
  ``close_only``; reducing legs are always market orders.
- A fill is never copied against its own direction, except to go flat. A follower left on the
  other side from the leader (a rejected order, a manual trade, a partial fill) is brought back
  by the next leader fill in that symbol: closed whole before an opening or adding fill's
  order, closed whole by a reducing fill (against the fill's direction, reduce_only). A
  reducing fill meets a flat follower with ``no_position_to_reduce``, in every mode.
- ``sizing.rounding`` rounds every size the modes ask for: ``conservative`` (the default)
  rounds opening and adding orders down and reducing orders up, so a position never ends
  above its target in size; ``nearest`` rounds to the nearest step. Caps always round down.
- ``symbols.allow`` and ``symbols.deny`` match the leader's or the follower's symbol name;
  deny wins. A symbol that is not copied is not copied at all, closes included.
- Controls that read the follower's equity (``max_leverage``, ``equity_floor``) fail closed:
  without a usable reading the opening leg is dropped with the equity reason.
- Reasons are reported for the first check that fails, in this order: paused, symbol lists,
  no position to reduce, close_only (nothing to reduce), equity, target reached, rounding,
  caps, minimums.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from decimal import ROUND_DOWN, Context, Decimal, getcontext, localcontext

from app.domain.controls import (
    clamp_opening,
    equity_reason,
    is_fresh,
    limit_price,
    minimum_reason,
)
from app.domain.decimals import SIZING_PRECISION, sizing_context
from app.domain.model import SkipReason
from app.domain.plan_model import (
    IOC,
    InstrumentRules,
    OrderType,
    Plan,
    PlanContext,
    PlannedLeg,
    Rounding,
    SizingMode,
    SizingSettings,
    SubscriptionStatus,
)
from app.domain.positions import FillEffect, direction, effect_of, side_of, sign, signed_qty
from app.domain.sizing_modes import Want, exact_target, fill_want, target_want

__all__ = [
    "InstrumentRules",
    "Plan",
    "PlanContext",
    "PlannedLeg",
    "Rounding",
    "SizingMode",
    "SizingSettings",
    "SubscriptionStatus",
    "plan",
    "plan_within",
    "planning",
    "target_position",
]

ZERO = Decimal(0)
EQUITY_FLOOR = "equity_floor"

# plan() runs once per follower for every leader fill (10,000 followers a fill), so it is
# written for speed: the sizing context is entered once per call and everything below runs
# inside it; each Plan is built once, at the end, from locals. The context is built once here:
# localcontext() enters a copy, so nothing a call does reaches this object.
_SIZING = sizing_context()

# Enum members on the fill path, looked up once: on Python 3.11 (the image's) an attribute
# lookup on an Enum class such as ``SkipReason.NO_EQUITY`` is several times dearer than a
# module global, and a plan makes about ten of them (docs/measurements.md).
_PAUSED, _CLOSE_ONLY = SubscriptionStatus.PAUSED, SubscriptionStatus.CLOSE_ONLY
_TARGET = SizingMode.TARGET
_REDUCE, _CLOSE = FillEffect.REDUCE, FillEffect.CLOSE


def target_position(
    leader_position: Decimal, leader_equity: Decimal, follower_equity: Decimal, multiplier: Decimal
) -> Decimal:
    """Return the follower's exact target: leader position x follower / leader equity x mult.

    Not rounded to a step. Raises ValueError when an equity is not positive.
    """
    if leader_equity <= 0 or follower_equity <= 0:
        raise ValueError("equity: both equities must be positive")
    with localcontext(_SIZING):
        return exact_target(leader_position, leader_equity, follower_equity, multiplier)


def plan(ctx: PlanContext) -> Plan:
    """Plan the follower's orders for one leader fill.

    A skip is a Plan with a reason, never an exception. Raises ValueError only for inputs
    that cannot be true: a fill qty or price that is not positive, rules of another symbol.
    """
    with localcontext(_SIZING):
        return _plan(ctx)


def planning() -> AbstractContextManager[Context]:
    """The decimal context plan() works in, entered once for many plans (plan_within):
    entering a context is a sizeable part of one plan, and a fan-out plans thousands in a
    row."""
    return localcontext(_SIZING)


def plan_within(ctx: PlanContext) -> Plan:
    """plan(), for a caller inside ``planning()``. Raises RuntimeError outside it: sizing in
    the default context (28 digits, rounding half-even) could round an order up."""
    context = getcontext()
    if context.prec != SIZING_PRECISION or context.rounding != ROUND_DOWN:
        raise RuntimeError("plan_within: call it inside planning()")
    return _plan(ctx)


def _plan(ctx: PlanContext) -> Plan:
    fill, settings = ctx.fill, ctx.settings
    symbol = settings.symbol_map.get(fill.symbol, fill.symbol)
    if fill.price <= 0:
        raise ValueError(f"fill.price: must be positive, got {fill.price}")
    if ctx.instrument.symbol != symbol:
        raise ValueError(f"instrument: rules of {ctx.instrument.symbol}, order in {symbol}")
    leader_before, follower_before = ctx.leader_position_before, ctx.follower_position_before
    # Raises for a qty that is not positive.
    leader_after = leader_before + signed_qty(fill.side, fill.qty)
    effect = effect_of(leader_before, leader_after)
    fill_sign = direction(fill.side)  # +1 for a buy, -1 for a sell

    # What the Plan will hold besides the inputs: a skip leaves the defaults.
    status_change: SubscriptionStatus | None = None
    status_reason: str | None = None
    ratio: Decimal | None = None
    target: Decimal | None = None
    raw_qty: Decimal | None = None
    residue = ZERO
    legs: tuple[PlannedLeg, ...] = ()
    clamps: tuple[str, ...] = ()
    position = follower_before

    reason = _gate(settings, fill.symbol, symbol)
    if reason is None:
        close_only = settings.status == _CLOSE_ONLY
        reading = ctx.follower_equity
        if (
            settings.equity_floor is not None
            and not close_only
            and reading is not None
            and is_fresh(reading, ctx.now, settings.max_equity_age_s)
            and reading.equity < settings.equity_floor
        ):
            close_only = True
            status_change, status_reason = _CLOSE_ONLY, EQUITY_FLOOR
        if (effect is _REDUCE or effect is _CLOSE) and sign(follower_before) != sign(leader_before):
            if follower_before:
                # Held on the fill's side, against a leader that reduces the other side or
                # goes flat: the fill cannot take it back, so close it whole.
                held = abs(follower_before)
                legs = (PlannedLeg(side=side_of(-follower_before), qty=held, reduce_only=True),)
                raw_qty, position = held, ZERO
                target = ZERO if leader_after == 0 else None
            else:
                reason = SkipReason.NO_POSITION_TO_REDUCE
        else:
            if settings.mode == _TARGET:
                want = target_want(ctx, fill_sign, leader_after, close_only)
            else:
                want = fill_want(ctx, fill_sign, effect, leader_after, close_only)
            ratio, target, reason = want.ratio, want.target, want.reason
            if reason is None:
                raw_qty = want.close_raw + want.open_raw
                residue = raw_qty - want.close - want.open
                legs, reason, clamps, position = _legs(ctx, fill_sign, want, close_only)
    return Plan(
        symbol=symbol,
        legs=legs,
        skip_reason=reason,
        effect=effect,
        leader_position_before=leader_before,
        leader_position_after=leader_after,
        follower_position_before=follower_before,
        follower_position_after=position,
        ratio=ratio,
        target=target,
        raw_qty=raw_qty,
        residue=residue,
        clamps=clamps,
        status_change=status_change,
        status_reason=status_reason,
    )


def _gate(settings: SizingSettings, leader_symbol: str, symbol: str) -> SkipReason | None:
    if settings.status == _PAUSED:
        return SkipReason.SUBSCRIPTION_PAUSED
    # Either name matches; membership tests, not a set of both names built per call.
    deny = settings.deny
    if deny and (leader_symbol in deny or symbol in deny):
        return SkipReason.SYMBOL_DENIED
    allow = settings.allow
    if allow is not None and leader_symbol not in allow and symbol not in allow:
        return SkipReason.SYMBOL_NOT_ALLOWED
    return None


def _legs(
    ctx: PlanContext, fill_sign: int, want: Want, close_only: bool
) -> tuple[tuple[PlannedLeg, ...], SkipReason | None, tuple[str, ...], Decimal]:
    """Turn what the mode asked for into legs: minimums, close_only, caps, price band.

    Return the legs, why (part of) the order is not sent, the caps that cut the opening leg
    and the follower's position once every leg fills.
    """
    follower_before, side, price = ctx.follower_position_before, ctx.fill.side, ctx.fill.price
    reason: SkipReason | None = None
    clamps: tuple[str, ...] = ()
    position = follower_before
    close_leg: PlannedLeg | None = None
    if want.close_raw > 0:
        # A close to exactly flat always goes: a dust position must stay closable.
        if want.close != abs(follower_before):
            reason = minimum_reason(want.close, price, ctx.instrument)
        if reason is None:
            close_leg = PlannedLeg(side=side, qty=want.close, reduce_only=True)
            position = follower_before + fill_sign * want.close
    if reason is None and (want.open_raw > 0 or want.open_reason is not None):
        leg, reason, clamps = _opening_leg(ctx, want, abs(position), close_only)
        if leg is not None:
            position += fill_sign * leg.qty
            legs = (leg,) if close_leg is None else (close_leg, leg)
            return legs, reason, clamps, position
    if close_leg is not None:
        return (close_leg,), reason, clamps, position
    return (), reason or SkipReason.TARGET_REACHED, clamps, position


def _opening_leg(
    ctx: PlanContext, want: Want, held: Decimal, close_only: bool
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
        # A ratio means the mode read this reading already, in this call: fresh and positive.
        problem = (
            None
            if want.ratio is not None
            else equity_reason(reading, ctx.now, settings.max_equity_age_s)
        )
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
