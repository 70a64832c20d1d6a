"""Decimals and datetimes as the vector sizing kernel's integers (app.domain.vector_sizing).

A position becomes whole lot steps, an equity units of 1e-8, a time microseconds since the
epoch: exactly, or not at all (None), so that a row the kernel cannot hold exactly is left to
the Decimal planner. Every integer kept is below ``LIMIT`` in size, which the kernel's
overflow guard builds on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from fractions import Fraction

from app.domain.decimals import sizing_context
from app.domain.model import EquityReading

LIMIT = 2**62  # every stored integer is below it in size; products are checked against it
EQUITY_SCALE = 10**8  # equities in units of 1e-8
SIZING = sizing_context()
MICROSECOND = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ceil(value: Fraction) -> int:
    """The least integer not below ``value``."""
    return -((-value.numerator) // value.denominator)


def clamp(value: int) -> int:
    """``value`` bounded to ``[-LIMIT, LIMIT]``."""
    return max(-LIMIT, min(LIMIT, value))


def whole_steps(position: Decimal, step: Decimal) -> int | None:
    """``position`` in whole steps, if it is whole and fits."""
    if not position:
        return 0
    with localcontext(SIZING):
        # Exact when the position is whole in steps (80 digits hold any bounded quotient);
        # otherwise the quotient has a fraction.
        steps = position / step
    if steps != steps.to_integral_value() or abs(steps) >= LIMIT:
        return None
    return int(steps)


def equity_units(reading: EquityReading | None) -> tuple[int | None, int]:
    """(equity in 1e-8 units, as_of in microseconds); units None: not whole or too large
    (or no reading), as_of 0 without a usable timestamp."""
    if reading is None:
        return None, 0
    with localcontext(SIZING):
        units = reading.equity.scaleb(8)
    if units != units.to_integral_value() or abs(units) >= LIMIT:
        return None, 0
    try:
        return int(units), micros(reading.as_of)
    except TypeError:  # a naive timestamp: the planner raises on it
        return None, 0


def micros(at: datetime) -> int:
    """``at`` in microseconds since the epoch (exact: timedeltas count microseconds)."""
    return (at - _EPOCH) // MICROSECOND
