"""A fill wider than the engine's chunk is planned and written in chunks, in one transaction.

The engine's chunk is set to 2 here so that five followers take three chunks: the same
orders, positions and dispatch as the single statement, and all or nothing on failure.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from app.db.repositories import fills
from app.domain.model import Side
from app.pipeline import FillNotRecorded
from app.runtime import Runtime
from app.sizing.engine import SizingEngine
from tests.integration.runtimes import fill, seed
from tests.support import read_stream

FOLLOWERS = 5


@pytest.fixture
def live(live: Runtime) -> Runtime:
    """The shared runtime, with a chunk of 2: five followers take three chunks."""
    live.sizing.chunk = 2
    return live


async def order_rows(db: Any) -> list[tuple[str, str, Decimal, str]]:
    rows = await db.fetch(
        "SELECT f.fill_id, o.side, o.qty, o.status FROM follower_order o"
        "  JOIN leader_fill f ON f.id = o.fill_pk ORDER BY f.id, o.follower_id"
    )
    return [(r["fill_id"], r["side"], r["qty"], r["status"]) for r in rows]


async def test_chunks_record_every_order_position_and_dispatch(
    live: Runtime, redis: Any, db: Any
) -> None:
    # Arrange
    leader_id, followers = await seed(live, FOLLOWERS)
    await live.equity.reload()

    # Act: open 2, then reduce by 1 (each follower holds a tenth).
    opened = await live.pipeline.handle_fill(fill(leader_id, "f-1", Side.BUY, "2"))
    reduced = await live.pipeline.handle_fill(fill(leader_id, "f-2", Side.SELL, "1"))
    await live.marker.flush()

    # Assert
    assert (opened.status, reduced.status) == ("accepted", "accepted")
    assert (
        await order_rows(db)
        == [("f-1", "buy", Decimal("0.2"), "pending")] * FOLLOWERS
        + [("f-2", "sell", Decimal("0.1"), "pending")] * FOLLOWERS
    )
    positions = await db.fetch("SELECT qty FROM subscription_position")
    assert sorted(r["qty"] for r in positions) == [Decimal("0.1")] * FOLLOWERS
    assert await db.fetchval("SELECT qty FROM leader_position") == Decimal(1)
    assert await db.fetchval("SELECT count(*) FROM leader_fill WHERE dispatched_at IS NULL") == 0
    for follower_id in followers:
        stream = await read_stream(redis, str(follower_id))
        assert [(o["leader_fill_id"], o["qty"]) for o in stream] == [("f-1", "0.2"), ("f-2", "0.1")]


async def test_the_orders_are_encoded_while_the_last_chunk_commits_and_sent_after_it(
    live: Runtime, redis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: the last chunk's write waits until the orders are encoded (encoded after the
    # write, the fill would never commit).
    leader_id, followers = await seed(live, FOLLOWERS)
    await live.equity.reload()
    real_prepare, real_record = live.sizing.prepare, fills.record_orders
    assert real_prepare is not None
    seen: list[int] = []  # how many orders each encoding had
    encoded = asyncio.Event()

    def prepare(orders: list[Any]) -> object:
        seen.append(len(orders))
        encoded.set()
        return real_prepare(orders)

    async def last_waits(*args: Any) -> None:
        if len(args[3].id) == 1:  # the last chunk: five followers in chunks of 2, 2, 1
            await encoded.wait()
        await real_record(*args)

    live.sizing.prepare = prepare
    monkeypatch.setattr(fills, "record_orders", last_waits)

    # Act
    try:
        result = await live.pipeline.handle_fill(fill(leader_id, "f-1"))
    finally:
        live.sizing.prepare = real_prepare

    # Assert: encoded once, for every order, before the fill was committed; all sent.
    assert result.status == "accepted"
    assert seen == [FOLLOWERS]
    for follower_id in followers:
        assert [o["leader_fill_id"] for o in await read_stream(redis, str(follower_id))] == ["f-1"]


async def test_a_duplicate_writes_nothing(live: Runtime, db: Any) -> None:
    # Arrange
    leader_id, _ = await seed(live, FOLLOWERS)
    await live.equity.reload()
    await live.pipeline.handle_fill(fill(leader_id, "f-1"))

    # Act
    again = await live.pipeline.handle_fill(fill(leader_id, "f-1"))

    # Assert
    assert again.status == "duplicate"
    assert len(await order_rows(db)) == FOLLOWERS
    assert await db.fetchval("SELECT qty FROM leader_position") == Decimal(2)


async def test_a_chunk_that_fails_leaves_nothing_of_the_fill(
    live: Runtime, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: the second chunk's write fails after the first one went through.
    leader_id, _ = await seed(live, FOLLOWERS)
    await live.equity.reload()
    real = fills.record_orders
    calls = 0

    async def second_fails(*args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionResetError("lost mid-fill")
        await real(*args)

    monkeypatch.setattr(fills, "record_orders", second_fails)

    # Act
    with pytest.raises(FillNotRecorded) as failed:
        await live.pipeline.handle_fill(fill(leader_id, "f-1"))
    assert isinstance(failed.value.__cause__, ConnectionResetError)

    # Assert: nothing of it was committed, and the same fill goes through whole afterwards.
    assert await db.fetchval("SELECT count(*) FROM leader_fill") == 0
    assert await order_rows(db) == []
    assert await db.fetchval("SELECT count(*) FROM subscription_position") == 0
    monkeypatch.setattr(fills, "record_orders", real)
    retried = await live.pipeline.handle_fill(fill(leader_id, "f-1"))
    assert retried.status == "accepted"
    assert len(await order_rows(db)) == FOLLOWERS
    positions = await db.fetch("SELECT qty FROM subscription_position")
    assert [r["qty"] for r in positions] == [Decimal("0.2")] * FOLLOWERS


async def test_a_book_another_instance_moved_is_planned_again_from_the_database(
    live: Runtime, db: Any
) -> None:
    # Arrange: this instance's book holds the leader at 2 and each follower at 0.2; another
    # instance's engine (the same database) then closes the leader.
    leader_id, _ = await seed(live, FOLLOWERS)
    await live.equity.reload()
    await live.pipeline.handle_fill(fill(leader_id, "f-1", Side.BUY, "2"))
    elsewhere = SizingEngine(live.pg, live.fill_pool, live.equity, order_ttl_s=30, chunk=2)
    await elsewhere.process(fill(leader_id, "f-2", Side.SELL, "2"))

    # Act: a sale of 1 is a new short, not a reduction of the long this book still holds.
    outcome = await live.pipeline.handle_fill(fill(leader_id, "f-3", Side.SELL, "1"))

    # Assert
    assert outcome.status == "accepted"
    rows = await db.fetch(
        "SELECT o.side, o.qty, o.reduce_only,"
        "       trim_scale(coalesce(o.leader_position_before, f.leader_position_before))::text"
        "       AS leader_before"
        "  FROM follower_order o JOIN leader_fill f ON f.id = o.fill_pk WHERE f.fill_id = 'f-3'"
    )
    assert [(r["side"], r["qty"], r["reduce_only"], r["leader_before"]) for r in rows] == [
        ("sell", Decimal("0.1"), False, "0")
    ] * FOLLOWERS
    assert await db.fetchval("SELECT qty FROM leader_position") == Decimal(-1)
    assert (
        sorted(r["qty"] for r in await db.fetch("SELECT qty FROM subscription_position"))
        == [Decimal("-0.1")] * FOLLOWERS
    )
