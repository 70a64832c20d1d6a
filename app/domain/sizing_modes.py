"""What each sizing mode asks for: how much of the follower's position to close and how much
to open, rounded to the lot step, before the planner applies caps and minimums
(app.domain.planner).

Called by the planner inside its sizing context (app.domain.decimals.sizing_context), which
every function here assumes: quotients are rounded toward zero at SIZING_PRECISION digits.
``fill_sign`` is the fill's direction, +1 for a buy and -1 for a sell; sizes are unsigned.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

from app.domain.controls import equity_reason
from app.domain.decimals import round_to_step
from app.domain.model import SkipReason
from app.domain.plan_model import PlanContext, Rounding, SizingMode
from app.domain.positions import FillEffect, reduced_share, sign

ZERO = Decimal(0)

# Enum members looked up once, as in app.domain.planner (the same reason).
_FIXED_MULTIPLIER, _FIXED_NOTIONAL = SizingMode.FIXED_MULTIPLIER, SizingMode.FIXED_NOTIONAL
_REDUCE, _CLOSE, _REVERSE = FillEffect.REDUCE, FillEffect.CLOSE, FillEffect.REVERSE
_NO_EQUITY, _STALE_EQUITY = SkipReason.NO_EQUITY, SkipReason.STALE_EQUITY
_NEAREST = Rounding.NEAREST


@dataclass(slots=True)
class Want:
    """What a sizing mode asks for, before caps and minimums (sizes unsigned).

    Mutable, unlike the Plan: it never leaves the planning, and a frozen dataclass is
    dearer to build (every field goes through object.__setattr__).
    """

    reason: SkipReason | None = None  # nothing at all can be planned
    close_raw: Decimal = ZERO
    close: Decimal = ZERO  # rounded, or the whole position when it takes the follower flat
    open_raw: Decimal = ZERO
    open: Decimal = ZERO  # rounded to the step
    open_reason: SkipReason | None = None  # the opening part could not be sized
    target: Decimal | None = None
    ratio: Decimal | None = None


def exact_target(
    leader_position: Decimal, leader_equity: Decimal, follower_equity: Decimal, multiplier: Decimal
) -> Decimal:
    """The follower's exact target, for equities known positive (inside the sizing context).

    Multiply first and divide once: the only rounding is one quotient, toward zero."""
    return leader_position * follower_equity * multiplier / leader_equity


def _equities(ctx: PlanContext) -> tuple[Decimal, Decimal] | SkipReason:
    """Return the leader's and the follower's equity, or why they cannot be used."""
    max_age = ctx.settings.max_equity_age_s
    leader, follower = ctx.leader_equity, ctx.follower_equity
    reasons = (equity_reason(leader, ctx.now, max_age), equity_reason(follower, ctx.now, max_age))
    # Missing beats stale: a fresher reading would not help a side that has none.
    if _NO_EQUITY in reasons or leader is None or follower is None:
        return _NO_EQUITY
    if _STALE_EQUITY in reasons:
        return _STALE_EQUITY
    return leader.equity, follower.equity


def target_want(ctx: PlanContext, fill_sign: int, leader_after: Decimal, close_only: bool) -> Want:
    """Ask for the target minus the follower's position, in the fill's direction only
    (``fill_sign``: +1 for a buy, -1 for a sell)."""
    follower_before = ctx.follower_position_before
    held = abs(follower_before)
    if leader_after == 0:
        # The leader is flat, so the follower goes exactly flat: the whole position.
        return Want(close_raw=held, close=held, target=ZERO)
    if sign(follower_before) == -fill_sign and sign(leader_after) == fill_sign:
        # Through zero: close everything first; the new side needs the equities.
        want = Want(close_raw=held, close=held)
        if close_only:
            want.open_reason = SkipReason.CLOSE_ONLY
            return want
        equities = _equities(ctx)
        if isinstance(equities, SkipReason):
            want.open_reason = equities
            return want
        leader, follower = equities
        target = exact_target(leader_after, leader, follower, ctx.settings.multiplier)
        want.open_raw = abs(target)
        want.open = round_size(want.open_raw, ctx.instrument.qty_step, ctx.settings.rounding, False)
        want.target, want.ratio = target, follower / leader
        return want
    if close_only and sign(follower_before) != -fill_sign:
        return Want(reason=SkipReason.CLOSE_ONLY)
    equities = _equities(ctx)
    if isinstance(equities, SkipReason):
        return Want(reason=equities)
    leader, follower = equities
    target = exact_target(leader_after, leader, follower, ctx.settings.multiplier)
    order_raw = target - follower_before
    if sign(order_raw) != fill_sign:
        # At the target already, or past it in the fill's direction: never trade back.
        return Want(reason=SkipReason.TARGET_REACHED, target=target, ratio=follower / leader)
    step = ctx.instrument.qty_step
    size = abs(order_raw)
    # Here the target is on the follower's side or the order opens: an order against the
    # position reduces it, toward a target short of flat.
    qty = round_size(size, step, ctx.settings.rounding, sign(follower_before) == -fill_sign)
    want = split_order(follower_before, fill_sign, size, qty, step)
    want.target, want.ratio = target, follower / leader
    return want


def fill_want(
    ctx: PlanContext, fill_sign: int, effect: FillEffect, leader_after: Decimal, close_only: bool
) -> Want:
    """Ask for a size per fill: proportional reductions, mode-sized openings."""
    leader_before, follower_before = ctx.leader_position_before, ctx.follower_position_before
    step, rounding = ctx.instrument.qty_step, ctx.settings.rounding
    if effect is _REDUCE:
        # The follower's position x the share the leader closed.
        held = abs(follower_before)
        raw = reduced_share(held, leader_before, leader_after)
        return Want(close_raw=raw, close=min(held, round_size(raw, step, rounding, True)))
    if effect is _CLOSE:
        return Want(close_raw=abs(follower_before), close=abs(follower_before))
    # Open, add or reverse: whatever the follower holds on the other side is closed first
    # (a reversal's old side, or a follower out of sync), and the sized order opens.
    close = abs(follower_before) if sign(follower_before) == -fill_sign else ZERO
    if close_only:
        return _opening_skipped(close, SkipReason.CLOSE_ONLY)
    leader_qty = abs(leader_after) if effect is _REVERSE else ctx.fill.qty
    sized = _size_opening(ctx, leader_qty)
    if isinstance(sized, SkipReason):
        return _opening_skipped(close, sized)
    raw, ratio = sized
    return Want(
        close_raw=close,
        close=close,
        open_raw=raw,
        open=round_size(raw, step, rounding, False),
        ratio=ratio,
    )


def _opening_skipped(close: Decimal, reason: SkipReason) -> Want:
    """The opening part cannot be sized: keep the reversal's close, if any, or skip it all."""
    if close:
        return Want(close_raw=close, close=close, open_reason=reason)
    return Want(reason=reason)


def _size_opening(
    ctx: PlanContext, leader_qty: Decimal
) -> tuple[Decimal, Decimal | None] | SkipReason:
    """Return the unrounded opening size for the mode, and the equity ratio if it read one."""
    settings = ctx.settings
    if settings.mode == _FIXED_MULTIPLIER:
        return leader_qty * settings.multiplier, None
    if settings.mode == _FIXED_NOTIONAL:
        if settings.notional is None:  # SizingSettings refuses this; narrow the type
            raise ValueError("notional: required when mode is fixed_notional")
        return settings.notional / ctx.fill.price, None
    equities = _equities(ctx)
    if isinstance(equities, SkipReason):
        return equities
    leader, follower = equities
    return exact_target(leader_qty, leader, follower, settings.multiplier), follower / leader


def round_size(size: Decimal, step: Decimal, rounding: Rounding, reducing: bool) -> Decimal:
    """Round an order size (>= 0) to the step as ``rounding`` says; ``reducing``: the order
    takes a position toward flat (the caller caps it at the whole position)."""
    if rounding == _NEAREST:
        return (size / step).to_integral_value(rounding=ROUND_HALF_EVEN) * step
    if reducing:
        return (size / step).to_integral_value(rounding=ROUND_CEILING) * step
    return round_to_step(size, step)


def split_order(
    position: Decimal, fill_sign: int, raw: Decimal, qty: Decimal, step: Decimal
) -> Want:
    """Split an order of ``qty`` in direction ``fill_sign`` into the part that reduces
    ``position`` and the part that opens beyond it."""
    if sign(position) != -fill_sign:
        return Want(open_raw=raw, open=qty)
    held = abs(position)
    close_raw, close = min(raw, held), min(qty, held)
    return Want(
        close_raw=close_raw,
        close=close,
        open_raw=raw - close_raw,
        open=round_to_step(qty - close, step),
    )
