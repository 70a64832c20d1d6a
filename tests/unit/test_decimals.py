"""Unit tests of app.domain.decimals: round_down, fmt, is_bounded (pure, no I/O)."""

from __future__ import annotations

import re
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.decimals import fmt, is_bounded, round_down

# --- strategies: exact decimals built from integers scaled by powers of ten (never floats) ---


def scaled(n: int, e: int) -> Decimal:
    """``n * 10**e`` exactly (``Decimal.scaleb`` would round to the context precision)."""
    return Decimal(f"{n}e{e}")


def exact_decimals(
    max_int: int = 10**30, min_exp: int = -30, max_exp: int = 10, signed: bool = False
) -> st.SearchStrategy[Decimal]:
    """Decimals ``n * 10**e``, exact by construction."""
    low = -max_int if signed else 0
    return st.builds(
        scaled,
        st.integers(min_value=low, max_value=max_int),
        st.integers(min_value=min_exp, max_value=max_exp),
    )


def positive_steps() -> st.SearchStrategy[Decimal]:
    """Lot steps: 1e-k, and non-decimal steps such as 0.005, 25 or 0.0125."""
    return st.builds(
        scaled,
        st.integers(min_value=1, max_value=1000),
        st.integers(min_value=-18, max_value=3),
    )


# --- round_down: examples ---


@pytest.mark.parametrize(
    ("value", "step", "expected"),
    [
        pytest.param("0.2", "0.001", "0.2", id="exact-multiple-stays"),
        pytest.param("0.1999", "0.001", "0.199", id="just-under-boundary"),
        pytest.param("0.19999999999999999999", "0.001", "0.199", id="far-digits-under-boundary"),
        pytest.param("0.0009", "0.001", "0", id="below-one-step"),
        pytest.param("1.234567891", "0.00000001", "1.23456789", id="default-step-1e-8"),
        pytest.param("1.23456789", "0.00000001", "1.23456789", id="default-step-exact"),
        pytest.param("7.9", "1", "7", id="integer-step"),
        pytest.param("7", "5", "5", id="step-5"),
        pytest.param("0.0249", "0.005", "0.020", id="step-0.005"),
        pytest.param("0.0375", "0.0125", "0.0375", id="step-0.0125-exact"),
        pytest.param("-1.99", "1", "-1", id="negative-toward-zero"),
        pytest.param("-0.0009", "0.001", "0", id="negative-below-one-step"),
        pytest.param(
            "123456789012345678901234567890.99",
            "1",
            "123456789012345678901234567890",
            id="30-integer-digits-exact",
        ),
        pytest.param(
            "0.333333333333333333333333333333333333333",
            "0.000000000000000000000000000000001",
            "0.333333333333333333333333333333333",
            id="step-1e-33",
        ),
        pytest.param("1E+20", "0.00000001", "100000000000000000000", id="huge-value-tiny-step"),
    ],
)
def test_round_down_examples(value: str, step: str, expected: str) -> None:
    # Arrange
    v, s = Decimal(value), Decimal(step)

    # Act
    result = round_down(v, s)

    # Assert
    assert result == Decimal(expected)


@pytest.mark.parametrize("step", ["0", "-0.001", "-1"], ids=["zero", "negative-small", "negative"])
def test_round_down_rejects_non_positive_step(step: str) -> None:
    # Arrange
    value = Decimal("1.5")

    # Act / Assert
    with pytest.raises(ValueError, match="step"):
        round_down(value, Decimal(step))


def test_round_down_ignores_a_narrow_ambient_context() -> None:
    # Arrange: 40 significant digits, far beyond a 6-digit ambient context
    value = Decimal("1234567890123456789012345678901234.567891")
    step = Decimal("0.00001")

    # Act
    with localcontext() as ctx:
        ctx.prec = 6
        result = round_down(value, step)

    # Assert
    assert result == Decimal("1234567890123456789012345678901234.56789")


# --- round_down: properties ---


@given(value=exact_decimals(signed=True), step=positive_steps())
def test_round_down_is_a_whole_number_of_steps(value: Decimal, step: Decimal) -> None:
    # Act
    result = round_down(value, step)

    # Assert
    assert (Fraction(result) / Fraction(step)).denominator == 1


@given(value=exact_decimals(signed=True), step=positive_steps())
def test_round_down_goes_toward_zero_by_less_than_one_step(value: Decimal, step: Decimal) -> None:
    # Act
    result = round_down(value, step)

    # Assert
    exact, got = Fraction(value), Fraction(result)
    assert abs(got) <= abs(exact)
    assert abs(exact) - abs(got) < Fraction(step)
    assert got == 0 or (got > 0) == (exact > 0)


# --- fmt: examples ---


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(Decimal("0.2"), "0.2", id="plain"),
        pytest.param(Decimal("0.200"), "0.2", id="trailing-zeros"),
        pytest.param(Decimal("20"), "20", id="integer"),
        pytest.param(Decimal("2E+1"), "20", id="positive-exponent"),
        pytest.param(Decimal("1E+2"), "100", id="normalizes-to-exponent"),
        pytest.param(Decimal("100.000"), "100", id="integer-with-zero-fraction"),
        pytest.param(Decimal("1E-10"), "0.0000000001", id="tiny"),
        pytest.param(Decimal("1.00000000"), "1", id="eight-zero-decimals"),
        pytest.param(Decimal("0"), "0", id="zero"),
        pytest.param(Decimal("0E-8"), "0", id="zero-with-exponent"),
        pytest.param(Decimal("-0"), "0", id="negative-zero"),
        pytest.param(Decimal("-1.50"), "-1.5", id="negative"),
        pytest.param(
            Decimal("123456789012345678901234567890.123456789"),
            "123456789012345678901234567890.123456789",
            id="39-digits",
        ),
        pytest.param(
            Decimal("0." + "3" * 80),
            "0." + "3" * 80,
            id="80-digit-quotient",
        ),
        pytest.param(
            Decimal("1.00000000000000000000000000000001"),
            "1.00000000000000000000000000000001",
            id="33-digits-not-rounded",
        ),
    ],
)
def test_fmt_examples(value: Decimal, expected: str) -> None:
    # Act
    text = fmt(value)

    # Assert
    assert text == expected


def test_fmt_ignores_a_narrow_ambient_context() -> None:
    # Arrange
    value = Decimal("9.87654321")

    # Act
    with localcontext() as ctx:
        ctx.prec = 3
        text = fmt(value)

    # Assert
    assert text == "9.87654321"


def test_fmt_is_plain_in_a_lower_case_exponent_context() -> None:
    # Arrange: str() of a Decimal writes its exponent with the context's capitals setting.
    values = [Decimal("1E+2"), Decimal("1E-10"), Decimal("-2.5E+3")]

    # Act
    with localcontext() as ctx:
        ctx.capitals = 0
        texts = [fmt(v) for v in values]

    # Assert
    assert texts == ["100", "0.0000000001", "-2500"]


# --- fmt: properties ---

_TRAILING_FRACTION_ZERO = re.compile(r"\.\d*0$|\.$")


@given(value=exact_decimals(max_int=10**60, min_exp=-60, max_exp=40, signed=True))
def test_fmt_round_trips_exactly(value: Decimal) -> None:
    # Act
    text = fmt(value)

    # Assert
    assert Decimal(text) == value


@given(value=exact_decimals(max_int=10**60, min_exp=-60, max_exp=40, signed=True))
def test_fmt_is_plain_without_exponent_or_trailing_zeros(value: Decimal) -> None:
    # Act
    text = fmt(value)

    # Assert
    assert "E" not in text
    assert "e" not in text
    assert not _TRAILING_FRACTION_ZERO.search(text)
    assert re.fullmatch(r"-?\d+(\.\d+)?", text)


@pytest.mark.parametrize(
    ("raw", "bounded"),
    [
        ("1", True),
        ("0.000000000000000000000000000001", True),
        ("1" * 30, True),
        ("1" * 31, False),
        ("1e31", False),
        ("1e-31", False),
        ("NaN", False),
        ("Infinity", False),
    ],
)
def test_is_bounded(raw: str, bounded: bool) -> None:
    # Act / Assert
    assert is_bounded(Decimal(raw)) is bounded
