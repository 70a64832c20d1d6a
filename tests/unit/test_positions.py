"""Unit tests of app.domain.positions: signed positions and what a fill does to them."""

from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.decimals import sizing_context
from app.domain.model import Side
from app.domain.positions import (
    FillEffect,
    apply_fill,
    direction,
    effect_of,
    opposite,
    reduced_share,
    side_of,
    sign,
    signed_qty,
)

D = Decimal


# --- examples ---


@pytest.mark.parametrize(
    ("position", "side", "qty", "after", "effect"),
    [
        pytest.param("0", Side.BUY, "1", "1", FillEffect.OPEN, id="open-long"),
        pytest.param("0", Side.SELL, "0.5", "-0.5", FillEffect.OPEN, id="open-short"),
        pytest.param("1", Side.BUY, "0.5", "1.5", FillEffect.ADD, id="add-long"),
        pytest.param("-1", Side.SELL, "2", "-3", FillEffect.ADD, id="add-short"),
        pytest.param("1", Side.SELL, "0.25", "0.75", FillEffect.REDUCE, id="reduce-long"),
        pytest.param("-2", Side.BUY, "1", "-1", FillEffect.REDUCE, id="reduce-short"),
        pytest.param("1", Side.SELL, "1", "0", FillEffect.CLOSE, id="close-long"),
        pytest.param("-0.3", Side.BUY, "0.3", "0.0", FillEffect.CLOSE, id="close-short"),
        pytest.param("1", Side.SELL, "2", "-1", FillEffect.REVERSE, id="reverse-long-to-short"),
        pytest.param("-1", Side.BUY, "1.5", "0.5", FillEffect.REVERSE, id="reverse-short-to-long"),
        pytest.param(
            "0.00000001", Side.SELL, "0.00000002", "-0.00000001", FillEffect.REVERSE, id="dust"
        ),
    ],
)
def test_apply_and_classify(
    position: str, side: Side, qty: str, after: str, effect: FillEffect
) -> None:
    # Act
    new_position = apply_fill(D(position), side, D(qty))
    kind = effect_of(D(position), new_position)

    # Assert
    assert new_position == D(after)
    assert kind is effect


def test_apply_fill_is_exact_beyond_28_digits() -> None:
    # Arrange: 30 significant digits, which the default context would round
    position = D("123456789012345678.123456789012")

    # Act
    with localcontext() as ctx:
        ctx.prec = 5
        after = apply_fill(position, Side.BUY, D("0.000000000001"))

    # Assert
    assert after == D("123456789012345678.123456789013")


@pytest.mark.parametrize("qty", ["0", "-1"])
def test_a_fill_qty_must_be_positive(qty: str) -> None:
    # Act / Assert
    with pytest.raises(ValueError, match="qty"):
        apply_fill(D(1), Side.BUY, D(qty))
    with pytest.raises(ValueError, match="qty"):
        apply_fill(D(1), Side.SELL, D(qty))


def test_signs_sides_and_directions() -> None:
    # Assert
    assert [sign(D(v)) for v in ("-0.1", "0", "-0", "2")] == [-1, 0, 0, 1]
    assert (direction(Side.BUY), direction(Side.SELL)) == (1, -1)
    assert (side_of(D("0.1")), side_of(D("-3"))) == (Side.BUY, Side.SELL)
    assert (signed_qty(Side.BUY, D(2)), signed_qty(Side.SELL, D(2))) == (D(2), D(-2))
    assert opposite(D(1), D(-1))
    assert not opposite(D(1), D(2))
    assert not opposite(D(0), D(-1))
    with pytest.raises(ValueError, match="delta"):
        side_of(D(0))


@pytest.mark.parametrize(
    ("held", "before", "after", "expected"),
    [
        pytest.param("0.3", "3", "2", "0.1", id="a-third-of-0.3-is-exact"),
        pytest.param("0.25", "2", "1", "0.125", id="half"),
        pytest.param("0.25", "-2", "-1", "0.125", id="half-short"),
        pytest.param("0", "2", "1", "0", id="nothing-held"),
        pytest.param("1", "3", "2", "0." + "3" * 80, id="a-third-rounded-toward-zero"),
    ],
)
def test_reduced_share_multiplies_first(held: str, before: str, after: str, expected: str) -> None:
    # Act: inside the sizing context, as the planner calls it.
    with localcontext(sizing_context()):
        result = reduced_share(D(held), D(before), D(after))

    # Assert
    assert result == D(expected)


# --- properties ---


def scaled(n: int, e: int) -> Decimal:
    """``n * 10**e`` exactly."""
    return Decimal(f"{n}e{e}")


def quantities(signed: bool = False) -> st.SearchStrategy[Decimal]:
    """Exact decimals from integers scaled by powers of ten (never floats)."""
    low = -(10**12) if signed else 1
    return st.builds(scaled, st.integers(min_value=low, max_value=10**12), st.integers(-12, 3))


@given(position=quantities(signed=True), side=st.sampled_from(Side), qty=quantities())
def test_a_fill_and_its_mirror_cancel_out(position: Decimal, side: Side, qty: Decimal) -> None:
    # Arrange
    mirror = Side.SELL if side is Side.BUY else Side.BUY

    # Act
    back = apply_fill(apply_fill(position, side, qty), mirror, qty)

    # Assert
    assert back == position


@given(position=quantities(signed=True), side=st.sampled_from(Side), qty=quantities())
def test_effect_of_matches_the_positions_before_and_after(
    position: Decimal, side: Side, qty: Decimal
) -> None:
    # Act
    after = apply_fill(position, side, qty)
    effect = effect_of(position, after)

    # Assert: an exact rational oracle of the five cases
    before_q, after_q = Fraction(position), Fraction(after)
    assert after_q == before_q + (Fraction(qty) if side is Side.BUY else -Fraction(qty))
    if before_q == 0:
        assert effect is FillEffect.OPEN
    elif after_q == 0:
        assert effect is FillEffect.CLOSE
    elif (before_q > 0) != (after_q > 0):
        assert effect is FillEffect.REVERSE
    elif abs(after_q) > abs(before_q):
        assert effect is FillEffect.ADD
    else:
        assert effect is FillEffect.REDUCE


@given(held=quantities(), before=quantities(signed=True), data=st.data())
def test_reduced_share_is_the_exact_share_rounded_toward_zero(
    held: Decimal, before: Decimal, data: st.DataObject
) -> None:
    # Arrange: a fill against the position that leaves some of it (a REDUCE)
    if before == 0:
        before = Decimal(1)
    against = Side.SELL if before > 0 else Side.BUY
    qty = data.draw(st.integers(1, 99).map(lambda k: abs(before) * k / 100))
    after = apply_fill(before, against, qty)
    assert effect_of(before, after) is FillEffect.REDUCE

    # Act
    with localcontext(sizing_context()):
        share = reduced_share(held, before, after)

    # Assert
    assert 0 <= share <= held
    exact = Fraction(held) * (abs(Fraction(before)) - abs(Fraction(after))) / abs(Fraction(before))
    # One quotient at 80 digits, rounded toward zero.
    assert Fraction(share) <= exact
    assert exact - Fraction(share) < Fraction(1, 10**60) * max(Fraction(1), exact)
