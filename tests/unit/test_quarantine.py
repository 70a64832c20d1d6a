"""The quarantine rule: a fill worth more than 1000x the leader's equity is not sized."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.domain.quarantine import MAX_NOTIONAL_TO_EQUITY, QuarantineReason, quarantine_reason


def test_fill_just_above_a_thousand_times_equity_is_quarantined() -> None:
    # Arrange: notional 1,000,001 against equity 1,000
    qty, price, equity = Decimal("1000.001"), Decimal(1000), Decimal(1000)

    # Act
    reason = quarantine_reason(qty, price, equity)

    # Assert
    assert reason is QuarantineReason.NOTIONAL_OVER_EQUITY
    assert str(reason) == "notional_over_equity"


def test_fill_of_exactly_a_thousand_times_equity_is_sized() -> None:
    # Arrange
    equity = Decimal("2.5")

    # Act
    reason = quarantine_reason(Decimal(1), equity * MAX_NOTIONAL_TO_EQUITY, equity)

    # Assert
    assert reason is None


@pytest.mark.parametrize(
    ("qty", "price", "equity"),
    [
        ("1", "50000", "100000"),  # an ordinary fill
        ("0.00000001", "0.0001", "0.01"),  # tiny everything
        ("1000000", "1", "1000"),  # leverage 1000x, not more
    ],
)
def test_ordinary_fills_are_sized(qty: str, price: str, equity: str) -> None:
    # Act
    reason = quarantine_reason(Decimal(qty), Decimal(price), Decimal(equity))

    # Assert
    assert reason is None


@pytest.mark.parametrize("equity", [None, Decimal(0), Decimal(-5)])
def test_without_a_positive_equity_nothing_is_quarantined(equity: Decimal | None) -> None:
    # Act: sizing skips these fills as no_equity on its own
    reason = quarantine_reason(Decimal("1e20"), Decimal("1e9"), equity)

    # Assert
    assert reason is None
