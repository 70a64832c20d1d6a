"""Cancellation fuzz: random timeouts and cancellations around Redis and Postgres calls never
mix one caller's reply into another's, and leak no connection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy import text

from app.db.session import make_engine, make_sessionmaker
from app.dispatch.enqueue import Enqueuer, OutboxItem
from app.domain.ids import order_id
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL

TIMEOUTS = (0.0, 0.00001, 0.0001, 0.0005, 0.002, None)


async def test_redis_replies_never_cross_under_cancellation(redis: Any) -> None:
    # Arrange: each key holds its own name, so a reply for another key is obvious.
    keys = [f"fuzz:{n}" for n in range(64)]
    await redis.mset({k: k for k in keys})
    pool = BlockingConnectionPool.from_url(
        TEST_REDIS_URL, max_connections=8, timeout=5, decode_responses=True, client_name="fuzz"
    )
    client = Redis(connection_pool=pool)
    rng = random.Random(11)
    wrong: list[tuple[str, Any]] = []

    async def call(key: str, limit: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            value = await asyncio.wait_for(client.get(key), limit)
            if value != key:
                wrong.append((key, value))

    # Act: thousands of calls, some cut by timeouts, some cancelled from outside.
    for _ in range(10):
        tasks = [
            asyncio.create_task(call(rng.choice(keys), rng.choice(TIMEOUTS))) for _ in range(300)
        ]
        await asyncio.sleep(0)
        for task in rng.sample(tasks, 60):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    after = [await client.get(k) for k in keys]
    clients = await redis.client_list()

    # Assert
    assert wrong == []
    assert after == keys
    assert 0 < len([c for c in clients if c["name"] == "fuzz"]) <= 8
    await client.aclose()
    await pool.aclose()


async def test_postgres_replies_never_cross_and_pool_drains(clean: None) -> None:
    # Arrange
    engine = make_engine(TEST_DATABASE_URL, pool_size=4)
    sessions = make_sessionmaker(engine)
    rng = random.Random(13)
    wrong: list[tuple[int, Any]] = []

    async def call(n: int, limit: float | None) -> None:
        async def query() -> None:
            async with sessions() as session:
                got = (await session.execute(text("SELECT CAST(:n AS int)"), {"n": n})).scalar()
                if got != n:
                    wrong.append((n, got))

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(query(), limit)

    # Act
    for round_ in range(6):
        tasks = [
            asyncio.create_task(call(round_ * 1000 + i, rng.choice(TIMEOUTS))) for i in range(150)
        ]
        await asyncio.sleep(0)
        for task in rng.sample(tasks, 30):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    async with sessions() as session:
        final = (await session.execute(text("SELECT 42"))).scalar()
        backends = (
            await session.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = 'copytrade' AND datname = current_database()"
                )
            )
        ).scalar_one()

    # Assert
    assert wrong == []
    assert final == 42
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert backends <= 4 + 4  # pool_size + max_overflow
    await engine.dispose()


async def test_cancelled_batch_enqueues_never_double_an_order(redis: Any) -> None:
    # Arrange: 20 fills of 10 orders for 20 followers, and an enqueuer on its own small pool.
    client = Redis.from_url(TEST_REDIS_URL, max_connections=4)
    enqueuer = Enqueuer(client, dedupe_ttl_s=3600)
    followers = [uuid.uuid4() for _ in range(20)]
    fills = [
        [
            OutboxItem(
                oid := order_id("L", f"f-{f}", str(n)),
                followers[n % 20],
                json.dumps({"order_id": oid}),
                f"f-{f}",
            )
            for n in range(10)
        ]
        for f in range(20)
    ]
    items = [item for orders in fills for item in orders]
    rng = random.Random(5)

    # Act: sends of whole fills (the first send's and the relay's) cut short at random
    # points, as a crash or a timeout would.
    for _ in range(60):
        batch = [item for orders in rng.sample(fills, 5) for item in orders]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(enqueuer.enqueue(batch), rng.choice(TIMEOUTS))
    confirmed = await enqueuer.enqueue(items)

    # Assert: every order once, and the pooled connections still answer in step.
    counts: dict[str, int] = {}
    for follower_id in followers:
        for _, fields in await redis.xrange(f"copytrade:orders:{{{follower_id}}}"):
            order = json.loads(fields["order"])["order_id"]
            counts[order] = counts.get(order, 0) + 1
    assert sorted(confirmed) == sorted(i.order_id for i in items)
    assert counts == {i.order_id: 1 for i in items}
    assert await client.ping()
    await client.aclose()
