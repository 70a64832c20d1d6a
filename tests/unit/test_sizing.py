"""Unit tests of app.domain.sizing.size_proportional (pure, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from fractions import Fraction
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.model import (
    DEFAULT_QTY_STEP,
    EquityReading,
    Fill,
    Instrument,
    Side,
    Sizing,
    SkipReason,
)
from app.domain.sizing import size_proportional

LEADER_ID = UUID("00000000-0000-4000-8000-000000000001")
AT = datetime(2024, 11, 24, tzinfo=UTC)


def make_fill(qty: str | Decimal, price: str | Decimal = "50000", side: Side = Side.BUY) -> Fill:
    return Fill(
        leader_id=LEADER_ID,
        fill_id="fill-1",
        symbol="BTCUSDT",
        side=side,
        qty=Decimal(qty),
        price=Decimal(price),
        event_at=AT,
        received_at=AT,
    )


def equity(value: str | Decimal, snapshot_id: int = 1) -> EquityReading:
    return EquityReading(snapshot_id=snapshot_id, equity=Decimal(value), as_of=AT)


def instrument(step: str = "0.001", min_qty: str = "0", min_notional: str = "0") -> Instrument:
    return Instrument("BTCUSDT", Decimal(step), Decimal(min_qty), Decimal(min_notional))


def size(
    qty: str,
    leader: str | None,
    follower: str | None,
    *,
    multiplier: str = "1",
    price: str = "50000",
    inst: Instrument | None = None,
) -> Sizing:
    return size_proportional(
        make_fill(qty, price),
        equity(leader, 1) if leader is not None else None,
        equity(follower, 2) if follower is not None else None,
        Decimal(multiplier),
        inst if inst is not None else instrument(),
    )


# --- the issue's example ---


def test_issue_example_buy_2_btc_at_a_tenth_of_the_leader_equity() -> None:
    # Arrange: a symbol with no instrument row trades in 1e-8 steps with no minimums
    fill = make_fill("2", "50000")
    no_row = Instrument("BTCUSDT")

    # Act
    sizing = size_proportional(fill, equity("100000", 1), equity("10000", 2), Decimal(1), no_row)

    # Assert
    assert sizing.qty == Decimal("0.2")
    assert sizing.skip_reason is None
    assert not sizing.skipped
    assert sizing.qty_step == DEFAULT_QTY_STEP == Decimal("0.00000001")
    assert sizing.ratio == Decimal("0.1")
    assert sizing.raw_qty == Decimal("0.2")
    assert sizing.multiplier == Decimal(1)
    assert sizing.leader_equity == equity("100000", 1)
    assert sizing.follower_equity == equity("10000", 2)


@pytest.mark.parametrize("side", list(Side), ids=[s.value for s in Side])
def test_side_does_not_change_the_size(side: Side) -> None:
    # Arrange
    fill = make_fill("2", "50000", side)

    # Act
    sizing = size_proportional(
        fill, equity("100000"), equity("10000"), Decimal(1), Instrument("BTCUSDT")
    )

    # Assert
    assert sizing.qty == Decimal("0.2")


# --- exact rounding ---


@pytest.mark.parametrize(
    ("qty", "leader", "follower", "multiplier", "step", "expected"),
    [
        pytest.param("2", "100000", "10000", "1", "0.001", "0.2", id="step-0.001-exact"),
        pytest.param("2", "100000", "9999.99", "1", "0.001", "0.199", id="just-under-boundary"),
        pytest.param(
            "2", "100000", "9999.99999999", "1", "0.001", "0.199", id="1e-13-under-boundary"
        ),
        pytest.param("2", "99999.99", "10000", "1", "0.001", "0.2", id="just-over-boundary"),
        pytest.param("1", "3", "1", "1", "0.001", "0.333", id="thirds"),
        pytest.param("1", "3", "2", "1", "0.001", "0.666", id="two-thirds-not-rounded-up"),
        pytest.param("1", "3", "1", "3", "0.001", "1", id="divide-last-keeps-exact"),
        pytest.param("1", "7", "1", "7", "0.00000001", "1", id="sevenths-times-7-exact"),
        pytest.param("2", "100000", "10000", "2.5", "0.001", "0.5", id="multiplier-2.5"),
        pytest.param("2", "100000", "10000", "0.3", "0.001", "0.06", id="multiplier-0.3"),
        pytest.param("2", "100000", "10000", "0.0049", "0.001", "0", id="tiny-multiplier-to-zero"),
        pytest.param("7.9", "1", "1", "1", "1", "7", id="integer-step"),
        pytest.param("0.0249", "1", "1", "1", "0.005", "0.020", id="step-0.005"),
        pytest.param("1", "1", "1", "0.3", "0.1", "0.3", id="0.1-step-exact-0.3"),
        pytest.param(
            "1",
            "1000000000000000",
            "999999999999999",
            "1",
            "0.00000001",
            "0.99999999",
            id="huge-equities",
        ),
        pytest.param(
            "3",
            "123456789012345678.123456789",
            "123456789012345678.123456789",
            "1",
            "0.00000001",
            "3",
            id="huge-equal-equities",
        ),
        pytest.param("1", "0.00000001", "0.00000002", "1", "0.00000001", "2", id="tiny-equities"),
        pytest.param(
            "0.5", "0.00000003", "1000000000", "1", "1", "16666666666666666", id="tiny-leader"
        ),
        pytest.param(
            "1",
            "3",
            "1",
            "1",
            "0.000000000000000000000000000001",
            "0.333333333333333333333333333333",
            id="step-1e-30",
        ),
    ],
)
def test_rounds_toward_zero_to_the_step(
    qty: str, leader: str, follower: str, multiplier: str, step: str, expected: str
) -> None:
    # Arrange
    inst = instrument(step)

    # Act
    sizing = size(qty, leader, follower, multiplier=multiplier, inst=inst)

    # Assert
    assert sizing.qty == Decimal(expected)
    if Decimal(expected) > 0:
        assert sizing.skip_reason is None
    else:
        assert sizing.skip_reason is SkipReason.ROUNDS_TO_ZERO


def test_sizing_ignores_a_narrow_ambient_context() -> None:
    # Arrange: 20-digit equities, 3-digit ambient precision
    fill = make_fill("1")
    leader, follower = equity("30000000000000000000"), equity("10000000000000000001")

    # Act
    with localcontext() as ctx:
        ctx.prec = 3
        sizing = size_proportional(fill, leader, follower, Decimal(1), instrument("1E-20"))

    # Assert
    assert sizing.qty == Decimal("0.33333333333333333336")


# --- skip reasons ---


@pytest.mark.parametrize(
    ("leader", "follower", "qty", "price", "inst", "reason"),
    [
        pytest.param(
            None, "10000", "2", "50000", instrument(), SkipReason.NO_EQUITY, id="no-leader-equity"
        ),
        pytest.param(
            "100000",
            None,
            "2",
            "50000",
            instrument(),
            SkipReason.NO_EQUITY,
            id="no-follower-equity",
        ),
        pytest.param(
            None, None, "2", "50000", instrument(), SkipReason.NO_EQUITY, id="no-equity-either-side"
        ),
        pytest.param(
            "0", "10000", "2", "50000", instrument(), SkipReason.NO_EQUITY, id="zero-leader-equity"
        ),
        pytest.param(
            "100000",
            "0",
            "2",
            "50000",
            instrument(),
            SkipReason.NO_EQUITY,
            id="zero-follower-equity",
        ),
        pytest.param(
            "100000",
            "-5",
            "2",
            "50000",
            instrument(),
            SkipReason.NO_EQUITY,
            id="negative-follower-equity",
        ),
        pytest.param(
            "100000",
            "10",
            "0.009",
            "50000",
            instrument("0.001"),
            SkipReason.ROUNDS_TO_ZERO,
            id="rounds-to-zero",
        ),
        pytest.param(
            "100000",
            "10000",
            "0.00000009",
            "50000",
            Instrument("BTCUSDT"),
            SkipReason.ROUNDS_TO_ZERO,
            id="rounds-to-zero-default-step",
        ),
        pytest.param(
            "100000",
            "10000",
            "0.05",
            "50000",
            instrument("0.001", min_qty="0.01"),
            SkipReason.BELOW_MIN_QTY,
            id="below-min-qty",
        ),
        pytest.param(
            "100000",
            "10000",
            "0.0999",
            "50000",
            instrument("0.001", min_qty="0.01"),
            SkipReason.BELOW_MIN_QTY,
            id="rounded-qty-below-min-qty",
        ),
        pytest.param(
            "100000",
            "10000",
            "0.001",
            "50000",
            instrument("0.0001", min_notional="10"),
            SkipReason.BELOW_MIN_NOTIONAL,
            id="below-min-notional",
        ),
        pytest.param(
            "1",
            "1",
            "0.00035",
            "50000",
            instrument("0.0002", min_notional="15"),
            SkipReason.BELOW_MIN_NOTIONAL,
            id="notional-uses-rounded-qty",
        ),
        pytest.param(
            "1",
            "1",
            "0.3",
            "33.3333333333333333333333333333",
            instrument("0.1", min_notional="10"),
            SkipReason.BELOW_MIN_NOTIONAL,
            id="notional-just-under-beyond-28-digits",
        ),
        pytest.param(
            "100000",
            "10000",
            "0.05",
            "50000",
            instrument("0.001", min_qty="0.01", min_notional="1000"),
            SkipReason.BELOW_MIN_QTY,
            id="min-qty-checked-before-min-notional",
        ),
    ],
)
def test_skips_with_reason_and_zero_qty(
    leader: str | None,
    follower: str | None,
    qty: str,
    price: str,
    inst: Instrument,
    reason: SkipReason,
) -> None:
    # Act
    sizing = size(qty, leader, follower, price=price, inst=inst)

    # Assert
    assert sizing.skip_reason is reason
    assert sizing.skipped
    assert sizing.qty == 0
    assert sizing.qty_step == inst.qty_step


def test_no_equity_records_no_ratio_or_raw_qty() -> None:
    # Act
    sizing = size("2", None, "10000")

    # Assert
    assert sizing.skip_reason is SkipReason.NO_EQUITY
    assert sizing.ratio is None
    assert sizing.raw_qty is None
    assert sizing.leader_equity is None
    assert sizing.follower_equity == equity("10000", 2)


def test_a_skip_after_sizing_still_records_the_raw_qty() -> None:
    # Act
    sizing = size("0.009", "100000", "10", inst=instrument("0.001"))

    # Assert
    assert sizing.skip_reason is SkipReason.ROUNDS_TO_ZERO
    assert sizing.raw_qty == Decimal("0.0000009")
    assert sizing.ratio == Decimal("0.0001")


@pytest.mark.parametrize(
    ("qty", "price", "inst"),
    [
        pytest.param("0.1", "50000", instrument("0.001", min_qty="0.01"), id="exactly-min-qty"),
        pytest.param(
            "0.002", "50000", instrument("0.0001", min_notional="10"), id="exactly-min-notional"
        ),
        pytest.param(
            "0.3",
            "33.3333333333333333333333333334",
            instrument("0.1", min_notional="10"),
            id="notional-just-over-beyond-28-digits",
        ),
    ],
)
def test_minimums_are_inclusive(qty: str, price: str, inst: Instrument) -> None:
    # Act
    sizing = size(qty, "100000", "100000", price=price, inst=inst)

    # Assert
    assert sizing.skip_reason is None
    assert sizing.qty == Decimal(qty)


# --- properties against an exact rational oracle ---


def scaled(n: int, e: int) -> Decimal:
    """``n * 10**e`` exactly."""
    return Decimal(f"{n}e{e}")


def exact(max_int: int, min_exp: int, max_exp: int) -> st.SearchStrategy[Decimal]:
    """Positive decimals built from integers scaled by powers of ten: exact, never floats."""
    return st.builds(
        scaled,
        st.integers(min_value=1, max_value=max_int),
        st.integers(min_value=min_exp, max_value=max_exp),
    )


@dataclass(frozen=True)
class Case:
    fill: Fill
    leader: EquityReading
    follower: EquityReading
    multiplier: Decimal
    instrument: Instrument

    @property
    def target(self) -> Fraction:
        """The exact rational size, before any rounding."""
        return (
            Fraction(self.fill.qty)
            * Fraction(self.follower.equity)
            * Fraction(self.multiplier)
            / Fraction(self.leader.equity)
        )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    step = draw(exact(max_int=25, min_exp=-12, max_exp=1))
    min_qty = draw(st.one_of(st.just(Decimal(0)), exact(max_int=1000, min_exp=-10, max_exp=1)))
    min_notional = draw(st.one_of(st.just(Decimal(0)), exact(10**6, -4, 3)))
    return Case(
        fill=make_fill(
            draw(exact(max_int=10**12, min_exp=-12, max_exp=3)),
            draw(exact(max_int=10**30, min_exp=-20, max_exp=5)),
        ),
        leader=equity(draw(exact(max_int=10**20, min_exp=-10, max_exp=6)), 1),
        follower=equity(draw(exact(max_int=10**20, min_exp=-10, max_exp=6)), 2),
        multiplier=draw(exact(max_int=10**4, min_exp=-4, max_exp=1)),
        instrument=Instrument("BTCUSDT", step, min_qty, min_notional),
    )


def run(case: Case) -> Sizing:
    return size_proportional(
        case.fill, case.leader, case.follower, case.multiplier, case.instrument
    )


@given(case=cases())
def test_qty_is_a_non_negative_whole_number_of_steps(case: Case) -> None:
    # Act
    sizing = run(case)

    # Assert
    assert sizing.qty >= 0
    assert (Fraction(sizing.qty) / Fraction(case.instrument.qty_step)).denominator == 1


@given(case=cases())
def test_qty_never_exceeds_the_exact_target(case: Case) -> None:
    # Act
    sizing = run(case)

    # Assert
    assert Fraction(sizing.qty) <= case.target


@given(case=cases())
def test_an_order_sized_is_within_one_step_of_the_target(case: Case) -> None:
    # Act
    sizing = run(case)

    # Assert
    if not sizing.skipped:
        assert case.target - Fraction(sizing.qty) < Fraction(case.instrument.qty_step)
        assert sizing.qty >= case.instrument.min_qty
        assert Fraction(sizing.qty) * Fraction(case.fill.price) >= Fraction(
            case.instrument.min_notional
        )


@given(case=cases())
def test_skipped_means_qty_zero(case: Case) -> None:
    # Act
    sizing = run(case)

    # Assert
    assert (sizing.skip_reason is not None) == sizing.skipped
    if sizing.skipped:
        assert sizing.qty == 0


@given(case=cases())
def test_matches_the_exact_rational_oracle(case: Case) -> None:
    # Arrange: floor to the step and check the minimums in exact rational arithmetic
    step = Fraction(case.instrument.qty_step)
    floored = (case.target // step) * step
    if floored <= 0:
        expected_reason: SkipReason | None = SkipReason.ROUNDS_TO_ZERO
    elif floored < Fraction(case.instrument.min_qty):
        expected_reason = SkipReason.BELOW_MIN_QTY
    elif floored * Fraction(case.fill.price) < Fraction(case.instrument.min_notional):
        expected_reason = SkipReason.BELOW_MIN_NOTIONAL
    else:
        expected_reason = None

    # Act
    sizing = run(case)

    # Assert
    assert sizing.skip_reason is expected_reason
    assert Fraction(sizing.qty) == (0 if expected_reason else floored)


@given(case=cases(), factor=exact(max_int=10**6, min_exp=-6, max_exp=6))
def test_scaling_both_equities_by_the_same_factor_changes_nothing(
    case: Case, factor: Decimal
) -> None:
    # Arrange
    with localcontext() as ctx:
        ctx.prec = 100  # the products above must be exact
        leader = equity(case.leader.equity * factor, 1)
        follower = equity(case.follower.equity * factor, 2)

    # Act
    base = run(case)
    scaled_sizing = size_proportional(case.fill, leader, follower, case.multiplier, case.instrument)

    # Assert
    assert scaled_sizing.qty == base.qty
    assert scaled_sizing.skip_reason is base.skip_reason
