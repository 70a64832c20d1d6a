"""Decimal helpers: exact arithmetic, rounding toward zero to a lot step, canonical strings."""

from __future__ import annotations

from decimal import (
    ROUND_DOWN,
    Context,
    Decimal,
    DivisionByZero,
    FloatOperation,
    InvalidOperation,
    Overflow,
    localcontext,
)

# Wide enough that products of bounded API inputs (<= 30 significant digits each) are exact;
# only the final division of a sizing formula can round, and then correctly.
SIZING_PRECISION = 80


def sizing_context() -> Context:
    """Return a context for sizing: exact products, one correctly rounded quotient.

    ``FloatOperation`` is trapped besides the usual signals: a float that slipped into an
    amount (``Decimal(0.1)``, or a float compared with a Decimal) raises instead of sizing
    an order from a binary approximation.
    """
    return Context(
        prec=SIZING_PRECISION,
        rounding=ROUND_DOWN,
        traps=[InvalidOperation, DivisionByZero, Overflow, FloatOperation],
    )


# The widest amount accepted from outside (API, reports): keeps sizing products exact.
MAX_DIGITS = 30


def is_bounded(value: Decimal) -> bool:
    """True for a finite Decimal of at most MAX_DIGITS digits, within 1e-30 .. 1e30."""
    if not value.is_finite():
        return False
    exponent = int(value.as_tuple().exponent)
    return len(value.as_tuple().digits) <= MAX_DIGITS and -MAX_DIGITS <= exponent <= MAX_DIGITS


def round_down(value: Decimal, step: Decimal) -> Decimal:
    """Round ``value`` toward zero to a whole number of ``step``.

    Never rounds up: an order must not exceed what the sizing rule allows.
    """
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")
    with localcontext(sizing_context()):
        return round_to_step(value, step)


def round_to_step(value: Decimal, step: Decimal) -> Decimal:
    """``round_down`` for callers already in the sizing context, with a step the rules have
    validated (> 0, unchecked): the planner calls it per order."""
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def fmt(value: Decimal) -> str:
    """Format a Decimal as a plain string without exponent or trailing zeros ("0.2", "20")."""
    if value.is_zero():
        return "0"
    # Not value.normalize(): it rounds to the ambient context precision (28 digits by default).
    # str() is plain for the amounts sizing produces and faster than format(); it
    # writes an exponent only for large exponents and tiny values, which format() then takes.
    text = str(value)
    if "E" in text or "e" in text:
        text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
