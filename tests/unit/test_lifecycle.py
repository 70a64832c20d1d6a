"""Unit tests of app.domain.lifecycle.apply_report (pure, no I/O)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.lifecycle import OrderState, Report, ReportError, ReportStatus, apply_report
from app.domain.model import Side

QTY = Decimal("0.5")
PRICE = Decimal("50000")


def state(
    status: str = "dispatched",
    filled: str | Decimal = "0",
    avg_price: str | Decimal | None = None,
    side: Side = Side.BUY,
    qty: Decimal = QTY,
) -> OrderState:
    price = Decimal(avg_price) if avg_price is not None else None
    return OrderState(status, side, qty, Decimal(filled), price)


def report(
    status: ReportStatus,
    filled: str | Decimal = "0",
    avg_price: str | Decimal | None = None,
    reason: str | None = None,
) -> Report:
    price = Decimal(avg_price) if avg_price is not None else None
    return Report(status, Decimal(filled), price, reason)


def advance(current: OrderState, rep: Report) -> OrderState:
    """The order after ``rep`` (unchanged when the report brings nothing new)."""
    transition = apply_report(current, rep)
    if transition is None:
        return current
    return OrderState(
        transition.status, current.side, current.qty, transition.filled_qty, transition.avg_price
    )


# --- transitions -----------------------------------------------------------------------------


def test_dispatched_to_accepted_moves_no_quantity() -> None:
    # Act
    transition = apply_report(state(), report(ReportStatus.ACCEPTED))

    # Assert
    assert transition is not None
    assert transition.status == "accepted"
    assert transition.filled_qty == 0
    assert transition.avg_price is None
    assert transition.position_delta == 0


def test_accepted_to_partially_filled_records_qty_price_and_delta() -> None:
    # Act
    transition = apply_report(
        state("accepted"), report(ReportStatus.PARTIALLY_FILLED, "0.1", "50010.5")
    )

    # Assert
    assert transition is not None
    assert transition.status == "partially_filled"
    assert transition.filled_qty == Decimal("0.1")
    assert transition.avg_price == Decimal("50010.5")
    assert transition.position_delta == Decimal("0.1")


def test_partially_filled_to_filled_adds_only_the_remainder() -> None:
    # Arrange
    current = state("partially_filled", "0.1", "50010.5")

    # Act
    transition = apply_report(current, report(ReportStatus.FILLED, QTY, "50020"))

    # Assert
    assert transition is not None
    assert transition.status == "filled"
    assert transition.filled_qty == QTY
    assert transition.avg_price == Decimal("50020")
    assert transition.position_delta == Decimal("0.4")


def test_partial_report_of_the_full_qty_completes_the_order() -> None:
    # Act
    transition = apply_report(state("accepted"), report(ReportStatus.PARTIALLY_FILLED, QTY, PRICE))

    # Assert
    assert transition is not None
    assert transition.status == "filled"


def test_rejected_after_partial_fill_keeps_the_filled_qty_and_price() -> None:
    # Arrange
    current = state("partially_filled", "0.2", "50005")

    # Act: a rejection that (as executors often do) does not repeat the filled quantity.
    transition = apply_report(current, report(ReportStatus.REJECTED, reason="insufficient margin"))

    # Assert
    assert transition is not None
    assert transition.status == "rejected"
    assert transition.filled_qty == Decimal("0.2")
    assert transition.avg_price == Decimal("50005")
    assert transition.reason == "insufficient margin"
    assert transition.position_delta == 0


def test_expired_from_dispatched() -> None:
    # Act
    transition = apply_report(state(), report(ReportStatus.EXPIRED, reason="valid_until passed"))

    # Assert
    assert transition is not None
    assert transition.status == "expired"
    assert transition.filled_qty == 0
    assert transition.position_delta == 0


def test_report_on_a_pending_order_is_applied() -> None:
    # Arrange: the executor was faster than the "dispatched" mark.
    current = state("pending")

    # Act
    transition = apply_report(current, report(ReportStatus.ACCEPTED))

    # Assert
    assert transition is not None
    assert transition.status == "accepted"


# --- idempotence and stale reports -----------------------------------------------------------


@pytest.mark.parametrize(
    "rep",
    [
        report(ReportStatus.ACCEPTED),
        report(ReportStatus.PARTIALLY_FILLED, "0.1", PRICE),
        report(ReportStatus.FILLED, QTY, PRICE),
        report(ReportStatus.REJECTED, reason="no"),
        report(ReportStatus.EXPIRED),
    ],
    ids=lambda r: r.status.value,
)
def test_the_same_report_twice_changes_nothing_the_second_time(rep: Report) -> None:
    # Arrange
    once = advance(state(), rep)
    assert once != state()

    # Act
    again = apply_report(once, rep)

    # Assert
    assert again is None


@pytest.mark.parametrize(
    ("status", "filled"),
    [
        (ReportStatus.ACCEPTED, "0"),
        (ReportStatus.PARTIALLY_FILLED, "0.1"),
        (ReportStatus.PARTIALLY_FILLED, "0.3"),
    ],
)
def test_stale_report_after_partial_neither_regresses_nor_shrinks(
    status: ReportStatus, filled: str
) -> None:
    # Arrange
    current = state("partially_filled", "0.3", "50001")
    price = PRICE if Decimal(filled) > 0 else None

    # Act
    transition = apply_report(current, report(status, filled, price))

    # Assert
    assert transition is None


@pytest.mark.parametrize(
    ("status", "filled"),
    [
        (ReportStatus.ACCEPTED, "0"),
        (ReportStatus.PARTIALLY_FILLED, "0.1"),
        (ReportStatus.REJECTED, "0"),
        (ReportStatus.EXPIRED, "0"),
    ],
)
def test_nothing_moves_a_filled_order(status: ReportStatus, filled: str) -> None:
    # Arrange
    current = state("filled", QTY, "50001")
    price = PRICE if Decimal(filled) > 0 else None

    # Act
    transition = apply_report(current, report(status, filled, price))

    # Assert
    assert transition is None


def test_expired_order_does_not_go_back_to_accepted() -> None:
    # Act
    transition = apply_report(state("expired"), report(ReportStatus.ACCEPTED))

    # Assert
    assert transition is None


# --- position deltas -------------------------------------------------------------------------


@pytest.mark.parametrize(("side", "sign"), [(Side.BUY, 1), (Side.SELL, -1)])
def test_position_delta_is_signed_and_incremental(side: Side, sign: int) -> None:
    # Arrange
    steps = [
        report(ReportStatus.PARTIALLY_FILLED, "0.1", PRICE),
        report(ReportStatus.PARTIALLY_FILLED, "0.35", PRICE),
        report(ReportStatus.FILLED, QTY, PRICE),
    ]
    current = state("accepted", side=side)

    # Act
    deltas: list[Decimal] = []
    for rep in steps:
        transition = apply_report(current, rep)
        assert transition is not None
        deltas.append(transition.position_delta)
        current = advance(current, rep)

    # Assert
    assert deltas == [sign * Decimal(d) for d in ("0.1", "0.25", "0.15")]
    assert sum(deltas) == sign * QTY


# --- errors name the field -------------------------------------------------------------------


def test_filled_qty_above_order_qty_is_refused() -> None:
    with pytest.raises(ReportError, match=r"^filled_qty:"):
        apply_report(state(), report(ReportStatus.PARTIALLY_FILLED, "0.6", PRICE))


def test_negative_filled_qty_is_refused() -> None:
    with pytest.raises(ReportError, match=r"^filled_qty:"):
        apply_report(state(), report(ReportStatus.ACCEPTED, "-0.1"))


@pytest.mark.parametrize("price", [None, "0", "-1"])
def test_fill_without_a_positive_avg_price_is_refused(price: str | None) -> None:
    with pytest.raises(ReportError, match=r"^avg_price:"):
        apply_report(state(), report(ReportStatus.PARTIALLY_FILLED, "0.1", price))


def test_filled_with_a_partial_qty_is_refused() -> None:
    with pytest.raises(ReportError, match=r"^filled_qty:.*partially_filled"):
        apply_report(state(), report(ReportStatus.FILLED, "0.1", PRICE))


def test_report_on_a_skipped_order_is_refused() -> None:
    with pytest.raises(ReportError, match=r"^order_id:.*skipped"):
        apply_report(state("skipped", qty=Decimal(0)), report(ReportStatus.ACCEPTED))


# --- property: any order of valid reports ----------------------------------------------------


@st.composite
def report_sequences(draw: st.DrawFn) -> tuple[Decimal, list[Report]]:
    """An order qty and a shuffled list of valid reports about it (cumulative fills)."""
    qty_units = draw(st.integers(min_value=1, max_value=10_000))
    qty = Decimal(qty_units).scaleb(-3)
    levels = draw(st.lists(st.integers(min_value=0, max_value=qty_units), max_size=8))
    reports: list[Report] = []
    for units in levels:
        filled = Decimal(units).scaleb(-3)
        price = Decimal(draw(st.integers(min_value=1, max_value=10**7))).scaleb(-2)
        if units == qty_units:
            status = draw(st.sampled_from([ReportStatus.FILLED, ReportStatus.PARTIALLY_FILLED]))
        elif units == 0:
            status = draw(st.sampled_from([ReportStatus.ACCEPTED, ReportStatus.PARTIALLY_FILLED]))
        else:
            status = ReportStatus.PARTIALLY_FILLED
        reports.append(Report(status, filled, price if units else None))
    terminal = draw(st.lists(st.sampled_from([ReportStatus.REJECTED, ReportStatus.EXPIRED])))
    for status in terminal:
        units = draw(st.sampled_from([0, *levels]))
        filled = Decimal(units).scaleb(-3)
        reports.append(Report(status, filled, Decimal(1) if units else None, "gone"))
    return qty, draw(st.permutations(reports))


@given(report_sequences(), st.sampled_from(list(Side)))
def test_any_order_of_valid_reports_ends_at_the_max_fill(
    case: tuple[Decimal, list[Report]], side: Side
) -> None:
    # Arrange
    qty, reports = case
    current = state("dispatched", side=side, qty=qty)
    sign = 1 if side is Side.BUY else -1
    ranks = {"dispatched": 1, "accepted": 2, "partially_filled": 3}

    # Act
    position = Decimal(0)
    for rep in reports:
        transition = apply_report(current, rep)
        if transition is not None:
            position += transition.position_delta
            # Never backwards: a filled quantity only grows, a terminal status stays terminal.
            assert transition.filled_qty >= current.filled_qty
            assert ranks.get(transition.status, 4) >= ranks.get(current.status, 4)
        current = advance(current, rep)
        # Applying it again at once brings nothing new.
        assert apply_report(current, rep) is None

    # Assert
    expected = max((r.filled_qty for r in reports), default=Decimal(0))
    assert current.filled_qty == expected
    assert position == sign * expected
    if expected == qty:
        assert current.status == "filled"
