"""The executor side: OrderConsumer's consumer-group protocol and the paper executor, on real
Redis, with orders produced by the live service."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from redis.asyncio import Redis

from app.dispatch.keys import dead_letter_stream, order_stream, report_stream
from app.executors.paper import PaperExecutor
from app.executors.protocol.consumer import ConsumerConfig, Order, OrderConsumer
from tests.conftest import TEST_REDIS_URL, make_settings
from tests.integration.desk import (
    Desk,
    pending_count,
    push_fill,
    push_fills,
    seed_desk,
    wait_for_order,
    xadd,
    xrange,
    xread_new,
)
from tests.support import Api, LiveServer, eventually, fill_frame, start_live_server

GROUP = "exec"


@pytest.fixture
async def raw_redis(clean: None) -> AsyncIterator[Redis]:
    """A bytes client, as the executor helpers expect."""
    client = Redis.from_url(TEST_REDIS_URL)
    yield client
    await client.aclose()


class Recorder:
    """A handler that records every order it is given."""

    def __init__(self) -> None:
        self.orders: list[Order] = []

    async def __call__(self, order: Order) -> None:
        self.orders.append(order)

    @property
    def ids(self) -> list[str]:
        return [o["order_id"] for o in self.orders]


async def idle_for(redis: Redis, follower_id: str, ms: int) -> None:
    """Wait until every entry pending in the follower's group has been idle for ``ms``: the
    age at which the consumer claims it again."""

    async def idle() -> bool:
        entries: Any = await redis.xpending_range(
            order_stream(follower_id), GROUP, min="-", max="+", count=100
        )
        return bool(entries) and all(e["time_since_delivered"] >= ms for e in entries)

    await eventually(idle, f"the pending entries idle for {ms} ms")


def consumer(
    redis: Redis, follower_id: str, handler: Any, name: str = "b", **config: Any
) -> OrderConsumer:
    settings: dict[str, Any] = {"block_ms": 10, **config}
    return OrderConsumer(redis, follower_id, ConsumerConfig(GROUP, name, **settings), handler)


async def stream_order_ids(redis: Redis, follower_id: str) -> list[str]:
    entries = await xrange(redis, order_stream(follower_id))
    return [json.loads(fields[b"order"])["order_id"] for _, fields in entries]


async def pending(redis: Redis, follower_id: str) -> int:
    return await pending_count(redis, order_stream(follower_id), GROUP)


async def burst(server: LiveServer, desk: Desk, count: int, prefix: str = "f") -> None:
    frames = [fill_frame(f"{prefix}-{n}", "BTCUSDT", "buy", "2", "50000") for n in range(count)]
    await push_fills(server, desk, *frames)


async def test_each_order_is_handled_once_and_acknowledged(
    server: LiveServer, raw_redis: Redis
) -> None:
    # Arrange
    desk = await seed_desk(Api(server.http))
    follower_id = desk.followers[0].id
    await burst(server, desk, 5)
    expected = await stream_order_ids(raw_redis, follower_id)
    handler = Recorder()
    reader = consumer(raw_redis, follower_id, handler)
    await reader.ensure_group()

    # Act
    first = await reader.poll_once()
    second = await reader.poll_once()

    # Assert
    assert len(expected) == 5
    assert (first, second) == (5, 0)
    assert handler.ids == expected
    assert await pending(raw_redis, follower_id) == 0


async def test_crashed_consumers_entries_are_reclaimed_and_handled_once(
    server: LiveServer, raw_redis: Redis
) -> None:
    # Arrange: consumer "a" reads every entry and dies before acknowledging any.
    desk = await seed_desk(Api(server.http))
    follower_id = desk.followers[0].id
    await burst(server, desk, 4)
    expected = await stream_order_ids(raw_redis, follower_id)
    handler = Recorder()
    survivor = consumer(raw_redis, follower_id, handler, claim_idle_ms=50)
    await survivor.ensure_group()
    taken = await xread_new(raw_redis, GROUP, "a", order_stream(follower_id), count=10)
    assert len(taken) == 4
    assert await survivor.poll_once() == 0  # not idle long enough yet: left alone
    await idle_for(raw_redis, follower_id, 50)

    # Act
    reclaimed = await survivor.poll_once()
    later = [await survivor.poll_once() for _ in range(3)]

    # Assert
    assert reclaimed == 4
    assert later == [0, 0, 0]
    assert sorted(handler.ids) == sorted(expected)
    assert await pending(raw_redis, follower_id) == 0


async def test_a_failing_handler_is_retried_after_the_claim_timeout(
    server: LiveServer, raw_redis: Redis
) -> None:
    # Arrange: the handler fails on its first attempt at each order (a transient error).
    desk = await seed_desk(Api(server.http))
    follower_id = desk.followers[0].id
    await burst(server, desk, 2)
    expected = await stream_order_ids(raw_redis, follower_id)
    attempts: list[str] = []
    handled: list[str] = []

    async def flaky(order: Order) -> None:
        attempts.append(order["order_id"])
        if attempts.count(order["order_id"]) == 1:
            raise RuntimeError("venue timeout")
        handled.append(order["order_id"])

    reader = consumer(raw_redis, follower_id, flaky, claim_idle_ms=50)
    await reader.ensure_group()

    # Act
    first = await reader.poll_once()
    await idle_for(raw_redis, follower_id, 50)
    retried = await reader.poll_once()

    # Assert
    assert (first, retried) == (0, 2)
    assert sorted(handled) == sorted(expected)
    assert sorted(attempts) == sorted(expected * 2)
    assert await pending(raw_redis, follower_id) == 0
    assert await raw_redis.xlen(dead_letter_stream(follower_id)) == 0


async def test_poison_entry_is_dead_lettered_and_good_ones_around_it_are_handled(
    server: LiveServer, raw_redis: Redis
) -> None:
    # Arrange: good, poison, good.
    desk = await seed_desk(Api(server.http))
    follower_id = desk.followers[0].id
    stream = order_stream(follower_id)
    await burst(server, desk, 1, prefix="before")
    poison_id = await xadd(raw_redis, stream, {"order": b"{not json"})
    await burst(server, desk, 1, prefix="after")
    good = [
        json.loads(fields[b"order"])["order_id"]
        for entry_id, fields in await xrange(raw_redis, stream)
        if entry_id != poison_id
    ]
    handler = Recorder()
    reader = consumer(raw_redis, follower_id, handler, claim_idle_ms=50, max_deliveries=2)
    await reader.ensure_group()

    # Act: poll until the poison is gone from the pending list, each time it is due again.
    polls = 0
    while True:
        await reader.poll_once()
        polls += 1
        if reader.dead or polls > 5:
            break
        await idle_for(raw_redis, follower_id, 50)

    # Assert
    assert reader.dead == 1
    assert polls == 3  # delivered max_deliveries (2) times, then dead-lettered on the third
    assert handler.ids == good
    assert len(good) == 2
    dead = await xrange(raw_redis, dead_letter_stream(follower_id))
    assert [fields for _, fields in dead] == [{b"order": b"{not json"}]
    assert await pending(raw_redis, follower_id) == 0


async def test_expired_order_is_not_executed_but_reported_expired(
    server: LiveServer, raw_redis: Redis
) -> None:
    # Arrange: a fill that happened a minute ago; its orders were valid for 30 s after it.
    desk = await seed_desk(Api(server.http))
    follower_id = desk.followers[0].id
    stale_ms = int((time.time() - 60) * 1000)
    stale = await push_fill(server, desk, "f-old", ts=stale_ms)
    fresh = await push_fill(server, desk, "f-new")
    handler = Recorder()
    reader = consumer(raw_redis, follower_id, handler)
    await reader.ensure_group()

    # Act
    handled = await reader.poll_once()

    # Assert: both acknowledged; only the fresh one executed; the stale one reported expired.
    assert handled == 2
    assert handler.ids == [fresh]
    assert await pending(raw_redis, follower_id) == 0
    reports = await xrange(raw_redis, report_stream(follower_id))
    assert [json.loads(fields[b"report"]) for _, fields in reports] == [
        {"order_id": stale, "status": "expired", "filled_qty": "0"}
    ]


async def test_order_written_before_valid_until_existed_expires_after_the_default(
    server: LiveServer, raw_redis: Redis
) -> None:
    # Arrange: a crafted legacy payload (no valid_until), created two minutes ago.
    desk = await seed_desk(Api(server.http))
    follower_id = desk.followers[0].id
    order_id = await push_fill(server, desk, "f-1")
    (entry,) = await xrange(raw_redis, order_stream(follower_id))
    legacy = json.loads(entry[1][b"order"])
    del legacy["valid_until"]
    legacy["order_id"] = "legacy-order"
    legacy["created_at"] = "2020-01-01T00:00:00+00:00"
    await xadd(raw_redis, order_stream(follower_id), {"order": json.dumps(legacy)})
    handler = Recorder()
    reader = consumer(raw_redis, follower_id, handler)
    await reader.ensure_group()

    # Act
    handled = await reader.poll_once()

    # Assert
    assert handled == 2
    assert handler.ids == [order_id]
    reports = await xrange(raw_redis, report_stream(follower_id))
    assert [json.loads(fields[b"report"])["order_id"] for _, fields in reports] == ["legacy-order"]


async def test_paper_executor_fills_orders_at_the_leader_price_plus_slippage(
    clean: None, raw_redis: Redis
) -> None:
    # Arrange: the accounts exist before the service starts, so its report reader reads this
    # follower's report stream from the start.
    async with start_live_server(make_settings()) as first:
        desk = await seed_desk(Api(first.http))
    follower = desk.followers[0]
    executor = PaperExecutor(raw_redis, [UUID(follower.id)], Decimal("0.001"))
    stop = asyncio.Event()
    async with start_live_server(make_settings()) as server:
        api = Api(server.http)
        buy = await push_fill(server, desk, "f-1", "buy", "2", "50000.5")  # qty 0.2
        sell = await push_fill(server, desk, "f-2", "sell", "1", "50000.5")  # qty 0.1
        task = asyncio.create_task(executor.run(stop))
        try:
            # Act
            bought = await wait_for_order(api, follower, buy, lambda o: o["status"] == "filled")
            sold = await wait_for_order(api, follower, sell, lambda o: o["status"] == "filled")
        finally:
            stop.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        positions = await api.call(
            "GET", f"/v1/followers/{follower.id}/positions", 200, token=follower.api_key
        )

    # Assert: 50000.5 x 1.001 = 50050.5005 and x 0.999 = 49950.4995, at the price's 0.1 tick.
    assert (bought["filled_qty"], bought["avg_price"]) == ("0.2", "50050.5")
    assert (sold["filled_qty"], sold["avg_price"]) == ("0.1", "49950.5")
    assert [e["status"] for e in bought["events"]] == ["accepted", "filled"]
    assert [(p["symbol"], p["actual"]) for p in positions] == [("BTCUSDT", "0.1")]
    assert await pending_count(raw_redis, order_stream(follower.id), "paper") == 0
