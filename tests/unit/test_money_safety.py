"""A float never becomes an amount silently, and retry delays are drawn with full jitter."""

from __future__ import annotations

from decimal import Decimal, FloatOperation

import pytest

from app.domain.planner import planning
from app.loops import Backoff


def test_a_float_turned_into_a_decimal_while_sizing_raises() -> None:
    # Arrange / Act / Assert: what a float read from JSON would do to an amount.
    with planning(), pytest.raises(FloatOperation):
        Decimal(0.1)  # noqa: RUF032


def test_a_float_compared_with_an_amount_while_sizing_raises() -> None:
    with planning(), pytest.raises(FloatOperation):
        _ = Decimal("0.1") < 0.2


def test_decimals_from_text_still_size_exactly() -> None:
    # Arrange / Act
    with planning():
        total = Decimal("0.1") + Decimal("0.2")

    # Assert
    assert total == Decimal("0.3")


def test_backoff_draws_each_delay_from_zero_to_its_ceiling() -> None:
    # Arrange
    backoff = Backoff(initial=1.0, maximum=8.0)

    # Act: the first delay, a thousand times over, and the growing ceilings after it.
    firsts = []
    for _ in range(1000):
        backoff.reset()
        firsts.append(backoff.next_delay())
    backoff.reset()
    later = [backoff.next_delay() for _ in range(10)]

    # Assert: full jitter spans [0, ceiling], not [initial / 2, ceiling].
    assert all(0.0 <= delay <= 1.0 for delay in firsts)
    assert min(firsts) < 0.5
    assert all(
        delay <= ceiling
        for delay, ceiling in zip(later, [1, 2, 4, 8, 8, 8, 8, 8, 8, 8], strict=True)
    )
