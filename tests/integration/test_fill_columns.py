"""The fill repository's columns travel as joined text that Postgres splits: every value must come
back exactly as it went, None as NULL, and a value that would break the split is refused."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from app.db.repositories.fills import join_column, split_column
from tests.conftest import Rolled

TRICKY = [
    'quote " and \\ backslash',
    "{braces},commas,NULL",
    "NULL",
    "ünïcödé ✓ 中文",
    json.dumps({"reason": "a\u001fb\u001ec", "nested": {"x": "y"}}),  # escaped, not raw
    " leading and trailing ",
    "x" * 5000,
]


async def round_trip(db: Any, sql_type: str, values: list[Any], text: bool) -> Any:
    return await db.fetchval(f"SELECT {split_column('$1', sql_type)}", join_column(values, text))


async def test_text_values_come_back_exactly(tx: Rolled) -> None:
    # Act
    back = await round_trip(tx.db, "text", TRICKY, text=True)

    # Assert
    assert back == TRICKY


async def test_none_is_null_and_numbers_keep_their_digits(tx: Rolled) -> None:
    # Arrange
    amounts = [Decimal("0.00000001"), Decimal("1E-8"), None, Decimal("-123456789.123456789")]
    flags = [True, False, None]

    # Act
    numbers = await round_trip(tx.db, "numeric", amounts, text=False)
    bools = await round_trip(tx.db, "bool", flags, text=False)
    empty = await round_trip(tx.db, "text", [], text=True)

    # Assert
    assert numbers == amounts
    assert [str(n) for n in numbers if n is not None] == ["1E-8", "1E-8", "-123456789.123456789"]
    assert bools == flags
    assert empty == []


@pytest.mark.parametrize(
    "values",
    [["a", "b\x1fc"], [""], ["a\x1f"]],
    ids=["separator-inside", "one-empty-string", "trailing-separator"],
)
def test_a_value_that_would_break_the_split_is_refused(values: list[str]) -> None:
    # Act / Assert
    with pytest.raises(ValueError, match="separator"):
        join_column(values, text=True)
