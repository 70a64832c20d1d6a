"""Executor reports that arrive while Postgres is cut off, or while their rows are locked past
the lock timeout, are applied once it is back, and none is dead-lettered: the database being
away or busy says nothing against a report."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlparse

import pytest
from redis.asyncio import Redis

from app.dispatch.keys import report_dead_letter_stream, report_stream
from app.dispatch.report_reader import GROUP
from app.metrics import REPORT_RETRIES
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL, make_settings
from tests.integration.desk import pending_count, push_fills, seed_desk
from tests.support import Api, LiveServer, eventually, fill_frame, read_stream, start_live_server
from tests.venues.harness import FreezingProxy

FILLS = 5


@pytest.fixture
async def proxied(clean: None) -> AsyncIterator[tuple[LiveServer, FreezingProxy]]:
    """A service that reaches Postgres through a proxy the test can freeze."""
    target = urlparse(TEST_DATABASE_URL)
    proxy = FreezingProxy(target.port or 5432)
    await proxy.start()
    url = TEST_DATABASE_URL.replace(f":{target.port or 5432}/", f":{proxy.port}/", 1)
    settings = make_settings(
        database_url=url,
        db_statement_timeout_ms=500,
        db_lock_timeout_ms=200,
        db_command_timeout_s=1.0,
        report_attempts=3,
        report_block_ms=100,
    )
    try:
        async with start_live_server(settings) as live:
            yield live, proxy
            proxy.thaw()
    finally:
        await proxy.close()


async def test_reports_sent_while_postgres_is_cut_off_are_applied_once_it_is_back(
    proxied: tuple[LiveServer, FreezingProxy], db: Any
) -> None:
    # Arrange: orders committed and dispatched while the database was reachable.
    server, proxy = proxied
    desk = await seed_desk(Api(server.http))
    await push_fills(
        server,
        desk,
        *(fill_frame(f"f-{n}", "BTCUSDT", "buy", "2", "50000") for n in range(FILLS)),
    )
    follower = desk.followers[0]
    redis = Redis.from_url(TEST_REDIS_URL, decode_responses=True)
    orders = await read_stream(redis, follower.id)
    assert len(orders) == FILLS

    async def report(order: dict[str, Any]) -> None:
        body = {
            "order_id": order["order_id"],
            "status": "filled",
            "filled_qty": order["qty"],
            "avg_price": "50000",
        }
        await redis.xadd(report_stream(follower.id), {"report": json.dumps(body)})

    async def retried_since(before: float) -> None:
        async def retried() -> bool:
            return bool(REPORT_RETRIES._value.get() > before)

        await eventually(retried, "the reader to retry a report batch", 60)

    try:
        # Act: Postgres stops answering while the executor reports the first orders filled...
        proxy.freeze()
        for order in orders[:2]:
            await report(order)
        await retried_since(REPORT_RETRIES._value.get())
        proxy.thaw()
        # ... then answers, but the other orders' rows stay locked past the lock timeout.
        async with db.transaction():
            await db.execute(
                "SELECT id FROM follower_order WHERE id = ANY($1::text[]) FOR UPDATE",
                [o["order_id"] for o in orders[2:]],
            )
            before = REPORT_RETRIES._value.get()
            for order in orders[2:]:
                await report(order)
            await retried_since(before)

        async def all_filled() -> bool:
            count = await db.fetchval(
                "SELECT count(*) FROM follower_order WHERE follower_id = $1 AND status = 'filled'",
                follower.id,
            )
            return bool(count == FILLS)

        await eventually(all_filled, "every report to be applied", 60)

        async def all_acknowledged() -> bool:
            return await pending_count(redis, report_stream(follower.id), GROUP) == 0

        await eventually(all_acknowledged, "every report to be acknowledged", 30)

        # Assert: every report applied (above), none dead-lettered, the position tracked.
        dead = await redis.xrange(report_dead_letter_stream(follower.id))
        position = await db.fetchval(
            "SELECT p.qty FROM subscription_position p JOIN subscription s"
            " ON s.id = p.subscription_id WHERE s.follower_id = $1",
            follower.id,
        )
    finally:
        await redis.aclose()
    assert dead == []
    assert position == sum(
        (Decimal(o["qty"]) for o in orders),
        Decimal(0),
    )
