"""Per-subscription controls on a planned order: equity freshness, caps, minimums, limit price.

The arithmetic here runs in the caller's decimal context, which must be the sizing context
(``app.domain.decimals.sizing_context``): the planner enters it once per plan, because entering
it again in every helper cost more than the arithmetic. Outside it, products could round.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from functools import lru_cache

from app.domain.decimals import round_to_step
from app.domain.model import EquityReading, Side, SkipReason
from app.domain.plan_model import (
    MAX_LEVERAGE,
    MAX_ORDER_NOTIONAL,
    MAX_POSITION_NOTIONAL,
    InstrumentRules,
    SizingSettings,
)

ZERO = Decimal(0)


@lru_cache(maxsize=256, typed=True)
def _max_age(seconds: float) -> timedelta:
    # A few distinct settings serve every follower: building the timedelta cost more than the
    # comparison. Errors (an age too large for a timedelta) are raised, not cached.
    return timedelta(seconds=seconds)


def is_fresh(reading: EquityReading | None, now: datetime, max_age_s: float | None) -> bool:
    """Tell whether a reading exists and is no older than ``max_age_s`` (None: any age)."""
    if reading is None:
        return False
    # A reading stamped in the future (clock skew) is as fresh as one stamped now.
    return max_age_s is None or now - reading.as_of <= _max_age(max_age_s)


def equity_reason(
    reading: EquityReading | None, now: datetime, max_age_s: float | None
) -> SkipReason | None:
    """Return why a reading cannot divide or scale a size (missing, stale, not positive)."""
    if reading is None:
        return SkipReason.NO_EQUITY
    if not is_fresh(reading, now, max_age_s):
        return SkipReason.STALE_EQUITY
    if reading.equity <= 0:
        return SkipReason.NO_EQUITY
    return None


def minimum_reason(qty: Decimal, price: Decimal, rules: InstrumentRules) -> SkipReason | None:
    """Return why ``qty`` cannot be sent under the instrument's minimums, or None."""
    if qty <= 0:
        return SkipReason.ROUNDS_TO_ZERO
    if qty < rules.min_qty:
        return SkipReason.BELOW_MIN_QTY
    # Exact at 80 digits: a notional just under the minimum must not round up to it.
    if qty * price < rules.min_notional:
        return SkipReason.BELOW_MIN_NOTIONAL
    return None


def clamp_opening(
    qty: Decimal,
    *,
    price: Decimal,
    held: Decimal,
    gross_exposure: Decimal,
    follower_equity: Decimal | None,
    rules: InstrumentRules,
    settings: SizingSettings,
) -> tuple[Decimal, tuple[str, ...]]:
    """Clamp an opening quantity to the caps; return it and the names of the caps that cut it.

    ``held`` is the size of the position the leg adds to (0 after a reversal's close). Each
    limit is rounded toward zero to the step, so the clamped order never breaches its cap.
    ``follower_equity`` must be given (and positive) when ``max_leverage`` is set.
    """
    # Multiply and subtract first (exact at 80 digits), divide once, rounding toward zero.
    held_notional = held * price
    order_cap = settings.max_order_notional
    position_cap = settings.max_position_notional
    leverage = settings.max_leverage
    if order_cap is None and position_cap is None and leverage is None:
        return qty, ()  # the common case: no caps at all
    limits: list[tuple[str, Decimal]] = []
    if order_cap is not None:
        limits.append((MAX_ORDER_NOTIONAL, order_cap / price))
    if position_cap is not None:
        limits.append((MAX_POSITION_NOTIONAL, (position_cap - held_notional) / price))
    if leverage is not None:
        if follower_equity is None or follower_equity <= 0:
            raise ValueError("follower_equity: required and positive with max_leverage")
        room = leverage * follower_equity - gross_exposure - held_notional
        limits.append((MAX_LEVERAGE, room / price))
    clamps: list[str] = []
    for name, limit in limits:
        allowed = max(ZERO, round_to_step(limit, rules.qty_step))
        if allowed < qty:
            qty = allowed
            clamps.append(name)
    return qty, tuple(clamps)


def limit_price(side: Side, price: Decimal, band: Decimal, price_step: Decimal | None) -> Decimal:
    """Return the IOC limit price for an opening leg: ``price`` widened by ``band``.

    Rounded to ``price_step`` toward the leader's price, so the band is never exceeded:
    a buy limit rounds down, a sell limit rounds up.
    """
    if side is Side.BUY:
        bound = price * (1 + band)
        return bound if price_step is None else round_to_step(bound, price_step)
    bound = price * (1 - band)
    if price_step is None:
        return bound
    return (bound / price_step).to_integral_value(rounding=ROUND_CEILING) * price_step
