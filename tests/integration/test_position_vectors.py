"""Subscription positions stored as one vector row per (leader, symbol) plus per-subscription
corrections (migration 0023): what the ``subscription_position`` view and a book load read,
and no move lost to another transaction's."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.db.repositories import fills, subscription_positions
from app.db.session import make_sessionmaker
from tests.conftest import TEST_DATABASE_URL, pg_dsn
from tests.support import eventually

D = Decimal


async def seed(db: Any, subscriptions: int, status: str = "active") -> tuple[UUID, list[UUID]]:
    leader = uuid.uuid4()
    await db.execute("INSERT INTO leader (id, name, feed_kind) VALUES ($1, 'L', 'push')", leader)
    subs = []
    for n in range(subscriptions):
        follower, sub = uuid.uuid4(), uuid.uuid4()
        await db.execute("INSERT INTO follower (id, name) VALUES ($1, $2)", follower, f"F{n}")
        await db.execute(
            "INSERT INTO subscription (id, follower_id, leader_id, multiplier, status, sizing)"
            " VALUES ($1, $2, $3, 1, $4, '{}')",
            sub, follower, leader, status,
        )  # fmt: skip
        subs.append(sub)
    return leader, subs


async def view(db: Any) -> dict[tuple[UUID, str], Decimal]:
    rows = await db.fetch("SELECT subscription_id, symbol, qty FROM subscription_position")
    return {(r["subscription_id"], r["symbol"]): r["qty"] for r in rows}


async def book(db: Any, leader: UUID) -> dict[tuple[UUID, str], Decimal]:
    """What a book load reads: a position is the sum of its rows."""
    held: dict[tuple[UUID, str], Decimal] = {}
    for row in (await fills.load_book(db, leader)).subscription_positions:
        key = (row["subscription_id"], row["symbol"])
        held[key] = held.get(key, Decimal(0)) + row["qty"]
    return held


async def correct(subscription_id: UUID, symbol: str, delta: Decimal) -> None:
    """A correction in a transaction of its own, as executor reports and drift make them."""
    engine = create_async_engine(TEST_DATABASE_URL, poolclass=NullPool)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            await subscription_positions.correct(session, subscription_id, symbol, delta)
    finally:
        await engine.dispose()


async def test_moves_add_in_place_and_append_new_subscriptions(db: Any) -> None:
    # Arrange
    leader, (a, b, c) = await seed(db, 3)

    # Act
    await subscription_positions.move(db, leader, [a, b], ["BTC", "BTC"], [D("1.5"), D(2)])
    await subscription_positions.move(
        db, leader, [b, c, a], ["BTC", "BTC", "ETH"], [D(-1), D(5), D(3)]
    )

    # Assert
    expected = {(a, "BTC"): D("1.5"), (b, "BTC"): D(1), (c, "BTC"): D(5), (a, "ETH"): D(3)}
    assert await view(db) == expected
    assert await book(db, leader) == expected
    ids = await db.fetchval(
        "SELECT subscription_ids FROM subscription_position_vector WHERE symbol = 'BTC'"
    )
    assert ids == [a, b, c]


async def test_corrections_add_to_the_vector_in_every_reader(db: Any) -> None:
    # Arrange
    leader, (a, b) = await seed(db, 2)
    await subscription_positions.move(db, leader, [a, b], ["BTC", "BTC"], [D(2), D(4)])

    # Act: an executor's report for a, a drift correction for b in a symbol it never moved.
    await correct(a, "BTC", D("-0.5"))
    await correct(b, "ETH", D(1))

    # Assert
    expected = {(a, "BTC"): D("1.5"), (b, "BTC"): D(4), (b, "ETH"): D(1)}
    assert await view(db) == expected
    assert await book(db, leader) == expected
    one = await db.fetch(
        "SELECT symbol, qty FROM subscription_position WHERE subscription_id = $1 ORDER BY 1", b
    )
    assert [(r["symbol"], r["qty"]) for r in one] == [("BTC", D(4)), ("ETH", D(1))]


async def waiting_on_a_lock(db: Any, pid: int) -> bool:
    event = await db.fetchval("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid)
    return bool(event == "Lock")


@pytest.mark.parametrize("appended", [False, True], ids=["in-place", "appended"])
async def test_a_concurrent_move_of_the_same_vector_is_not_lost(db: Any, appended: bool) -> None:
    # Arrange: a fill's transaction moved the vector and has not committed yet.
    leader, (a, b) = await seed(db, 2)
    await subscription_positions.move(db, leader, [a], ["BTC"], [D(1)])
    first, second = await asyncpg.connect(pg_dsn()), await asyncpg.connect(pg_dsn())
    try:
        pid = await second.fetchval("SELECT pg_backend_pid()")
        moving = first.transaction()
        await moving.start()
        await subscription_positions.move(first, leader, [a], ["BTC"], [D(10)])

        # Act: another transaction moves the same row (a subscription in it, or a new one),
        # and waits; then the first commits.
        other = [b] if appended else [a]
        waiting = asyncio.ensure_future(
            subscription_positions.move(second, leader, other, ["BTC"], [D(100)])
        )
        await eventually(lambda: waiting_on_a_lock(db, pid), "the second move waiting")
        await moving.commit()
        await waiting
    finally:
        await first.close()
        await second.close()

    # Assert: both moves count.
    expected = {(a, "BTC"): D(11), (b, "BTC"): D(100)} if appended else {(a, "BTC"): D(111)}
    assert await view(db) == expected


async def test_a_correction_while_a_fill_holds_the_vector_is_not_lost(db: Any) -> None:
    # Arrange: a fill's transaction holds the vector row.
    leader, (a,) = await seed(db, 1)
    await subscription_positions.move(db, leader, [a], ["BTC"], [D(1)])
    conn = await asyncpg.connect(pg_dsn())
    try:
        async with conn.transaction():
            await subscription_positions.move(conn, leader, [a], ["BTC"], [D(2)])

            # Act: an executor's report corrects the same subscription meanwhile.
            await correct(a, "BTC", D("-0.25"))
    finally:
        await conn.close()

    # Assert
    assert await view(db) == {(a, "BTC"): D("2.75")}
