"""A narrow book is sized by the planner alone; a book covering enough subscriptions by the
vector path. Either way the orders are the same (the planner is the kernel's reference)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from app.domain.model import Side
from app.runtime import Runtime
from app.sizing.vector_books import MIN_ROWS
from tests.integration.runtimes import fill, seed

FOLLOWERS = 3


async def order_rows(db: Any, fill_id: str) -> list[tuple[str, Decimal, str]]:
    rows = await db.fetch(
        "SELECT o.side, o.qty, o.status FROM follower_order o"
        "  JOIN leader_fill f ON f.id = o.fill_pk WHERE f.fill_id = $1",
        fill_id,
    )
    return [(r["side"], r["qty"], r["status"]) for r in rows]


async def test_a_narrow_book_is_sized_by_the_planner_and_a_wide_one_by_the_vector_path(
    live: Runtime, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: three target-mode followers, fewer than the vector path's minimum.
    assert FOLLOWERS < MIN_ROWS
    leader_id, _ = await seed(live, FOLLOWERS)
    await live.equity.reload()

    # Act
    narrow = await live.pipeline.handle_fill(fill(leader_id, "f-1", Side.BUY, "2"))

    # Assert: planned without building the book's columns.
    assert narrow.status == "accepted"
    book = live.sizing._books[leader_id]
    assert book.columns == {}
    assert await order_rows(db, "f-1") == [("buy", Decimal("0.2"), "pending")] * FOLLOWERS

    # Act: the same book, with a minimum it now meets.
    monkeypatch.setattr(live.sizing, "vector_min_rows", FOLLOWERS)
    wide = await live.pipeline.handle_fill(fill(leader_id, "f-2", Side.BUY, "2"))

    # Assert: the same orders, sized from the columns.
    assert wide.status == "accepted"
    assert list(book.columns) == ["BTCUSDT"]
    assert await order_rows(db, "f-2") == [("buy", Decimal("0.2"), "pending")] * FOLLOWERS
