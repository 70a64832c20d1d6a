"""Idle leaders' books leave memory; the next fill reads them again and sizes as before."""

from __future__ import annotations

import time
from typing import Any

from app.runtime import Runtime
from tests.integration.runtimes import fill, seed


async def test_an_idle_book_is_dropped_and_read_again_by_the_next_fill(
    live: Runtime, db: Any
) -> None:
    # Arrange: a leader's book in memory, made by its first fill.
    leader, _ = await seed(live, followers=2)
    await live.equity.reload()
    first = await live.pipeline.handle_fill(fill(leader, "f-1"))
    book = live.sizing._books[leader]
    later = time.monotonic() + live.sizing.book_idle_s + 1

    # Act: idle long enough, but in use (a fill holds its lock); then no longer in use.
    async with book.lock:
        while_in_use = live.sizing.evict_idle(later)
    evicted = live.sizing.evict_idle(later)
    cached_after = live.sizing.books_cached
    second = await live.pipeline.handle_fill(fill(leader, "f-2"))

    # Assert: dropped only once unused; read again, it knew the positions the first fill made.
    assert (while_in_use, evicted, cached_after) == (0, 1, 0)
    assert [o.status for o in first.orders + second.orders] == ["pending"] * 4
    positions = await db.fetch(
        "SELECT p.qty FROM subscription_position p JOIN subscription s"
        " ON s.id = p.subscription_id WHERE s.leader_id = $1",
        leader,
    )
    assert sorted(str(r["qty"]) for r in positions) == ["0.4", "0.4"]
