"""Unit tests of the planner's fast paths: the helpers that skip a context switch or a check
must give exactly what the checked, self-contained versions give."""

from __future__ import annotations

from decimal import Decimal, localcontext

from hypothesis import given
from hypothesis import strategies as st

from app.domain.decimals import round_down, round_to_step, sizing_context
from app.domain.model import Side
from app.domain.planner import plan
from app.domain.positions import apply_fill
from tests.unit.plan_builders import context


def scaled(n: int, e: int) -> Decimal:
    """``n * 10**e`` exactly."""
    return Decimal(f"{n}e{e}")


def quantities(signed: bool = False) -> st.SearchStrategy[Decimal]:
    low = -(10**12) if signed else 1
    return st.builds(scaled, st.integers(min_value=low, max_value=10**12), st.integers(-12, 3))


@given(value=quantities(signed=True), step=quantities())
def test_round_to_step_is_round_down_in_the_sizing_context(value: Decimal, step: Decimal) -> None:
    # Act
    with localcontext(sizing_context()):
        fast = round_to_step(value, step)

    # Assert: the same value and the same digits (exponent included)
    assert str(fast) == str(round_down(value, step))


def test_a_sell_is_exact_in_a_narrow_ambient_context() -> None:
    # Arrange: a 13-digit qty, which a 5-digit context would round when it negates it
    position = Decimal("123456789012345678.123456789012")

    # Act
    with localcontext() as ctx:
        ctx.prec = 5
        after = apply_fill(position, Side.SELL, Decimal("1.000000000001"))

    # Assert
    assert after == Decimal("123456789012345677.123456789011")


def test_plan_leaves_no_flags_in_the_callers_context() -> None:
    # Arrange: a division that rounds (1/3 of the leader's equity)
    ctx = context(qty="1", leader_equity="30000", follower_equity="10000")

    # Act
    with localcontext() as ambient:
        ambient.clear_flags()
        first, second = plan(ctx), plan(ctx)
        flags = [name for name, raised in ambient.flags.items() if raised]

    # Assert: the shared sizing context is entered as a copy; calls do not leak into each other
    assert first == second
    assert flags == []
