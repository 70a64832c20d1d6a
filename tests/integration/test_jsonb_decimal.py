"""jsonb read on the hot path keeps numbers exact: Decimal, never float."""

from __future__ import annotations

from decimal import Decimal

from app.runtime import Runtime


async def test_jsonb_numbers_with_a_fraction_arrive_as_decimals(live: Runtime) -> None:
    # Arrange: a number a float cannot hold exactly.
    async with live.pg.acquire() as conn:
        # Act
        value = await conn.fetchval("""SELECT '{"notional": 0.30000000000000004}'::jsonb""")

    # Assert
    assert value == {"notional": Decimal("0.30000000000000004")}
    assert isinstance(value["notional"], Decimal)
