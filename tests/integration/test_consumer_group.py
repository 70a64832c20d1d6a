"""The one consumer-group core and the executors' shared reads, on real Redis: reclaim with
delivery counts, dead-letter after N deliveries, ack only after handling; many followers'
streams read together, each follower's orders in order, a slow follower holding up no other."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from app.consumer_group.core import GroupConfig, GroupCore
from app.dispatch.keys import dead_letter_stream, exec_fence, order_stream
from app.executors.protocol.consumer import Delivery, Fenced, Order, OrderReads
from tests.conftest import TEST_REDIS_URL
from tests.support import eventually

GROUP = "exec"


@pytest.fixture
async def redis(clean: None) -> AsyncIterator[Redis]:
    client = Redis.from_url(TEST_REDIS_URL)
    yield client
    await client.aclose()


def order(order_id: str) -> dict[str, bytes]:
    """A stream entry holding an order that is valid for a minute."""
    now = datetime.now(UTC)
    body = {
        "order_id": order_id,
        "created_at": now.isoformat(),
        "valid_until": (now + timedelta(minutes=1)).isoformat(),
    }
    return {"order": json.dumps(body).encode()}


async def add_orders(redis: Redis, follower: str, *order_ids: str) -> None:
    for order_id in order_ids:
        await redis.xadd(order_stream(follower), order(order_id))  # type: ignore[arg-type]


async def pending(redis: Redis, stream: str) -> int:
    info: Any = await redis.xpending(stream, GROUP)
    return int(info["pending"])


def core(redis: Redis, consumer: str, dead_letter: str = "dead", **config: Any) -> GroupCore:
    return GroupCore(redis, GroupConfig(GROUP, consumer, **config), lambda _s: dead_letter)


async def idle_for(redis: Redis, stream: str, ms: int) -> None:
    async def idle() -> bool:
        entries: Any = await redis.xpending_range(stream, GROUP, min="-", max="+", count=100)
        return bool(entries) and all(e["time_since_delivered"] >= ms for e in entries)

    await eventually(idle, f"the pending entries idle for {ms} ms")


async def test_entries_a_dead_consumer_held_are_reclaimed_with_their_delivery_count(
    redis: Redis,
) -> None:
    # Arrange: consumer "a" reads two entries and dies before acknowledging them.
    stream = "copytrade:test:{s1}"
    a, b = core(redis, "a", claim_idle_ms=50), core(redis, "b", claim_idle_ms=50)
    await a.create_groups([stream])
    first = await redis.xadd(stream, {"n": "1"})
    second = await redis.xadd(stream, {"n": "2"})
    assert len(await a.read([stream])) == 2
    early = await b.claim([stream])  # not idle long enough yet: left alone
    await idle_for(redis, stream, 50)

    # Act
    claimed = await b.claim([stream])
    again = await b.claim([stream])  # b holds them now, only just delivered

    # Assert
    assert early == []
    assert [(e.entry_id, e.fields, e.deliveries) for e in claimed] == [
        (first, {b"n": b"1"}, 2),
        (second, {b"n": b"2"}, 2),
    ]
    assert again == []
    assert await pending(redis, stream) == 2  # claimed is not handled: still unacknowledged


async def test_an_entry_delivered_too_often_is_dead_lettered_not_delivered(redis: Redis) -> None:
    # Arrange: at most two deliveries; the entry is read once and claimed once, never acked.
    follower = str(uuid4())
    stream = order_stream(follower)
    reader = core(redis, "a", dead_letter_stream(follower), claim_idle_ms=10, max_deliveries=2)
    await reader.create_groups([stream])
    await redis.xadd(stream, {"order": b"poison"})
    await reader.read([stream])
    await idle_for(redis, stream, 10)
    (second,) = await reader.claim([stream])
    await idle_for(redis, stream, 10)

    # Act
    third = await reader.claim([stream])

    # Assert
    assert second.deliveries == 2
    assert third == []
    assert reader.dead == 1
    dead: Any = await redis.xrange(dead_letter_stream(follower))
    assert [fields for _, fields in dead] == [{b"order": b"poison"}]
    assert await pending(redis, stream) == 0


async def test_a_fenced_stream_gets_no_group(redis: Redis) -> None:
    # Arrange
    open_follower, fenced_follower = str(uuid4()), str(uuid4())
    await redis.set(exec_fence(fenced_follower), "1")
    reader = core(redis, "a")
    streams = [order_stream(open_follower), order_stream(fenced_follower)]

    # Act
    fenced = await reader.create_groups(streams, lambda s: exec_fence(s.split("{")[1][:-1]))

    # Assert
    assert fenced == [order_stream(fenced_follower)]
    groups: Any = await redis.xinfo_groups(order_stream(open_follower))
    assert [g["name"] for g in groups] == [GROUP.encode()]
    assert not await redis.exists(order_stream(fenced_follower))


class Followers:
    """Handlers for many followers, recording what each was given, in order."""

    def __init__(self) -> None:
        self.seen: dict[str, list[str]] = {}
        self.gates: dict[str, asyncio.Event] = {}
        self.entered: dict[str, asyncio.Event] = {}

    def handler(self, follower: str) -> Any:
        self.seen[follower] = []
        self.entered[follower] = asyncio.Event()

        async def handle(order: Order, _delivery: Delivery) -> None:
            self.entered[follower].set()
            gate = self.gates.get(follower)
            if gate is not None:
                await gate.wait()
            self.seen[follower].append(order["order_id"])

        return handle


@contextlib.asynccontextmanager
async def consuming(
    reads: OrderReads, followers: list[str], handlers: Followers
) -> AsyncIterator[list[asyncio.Task[None]]]:
    reads.start()
    tasks = [
        asyncio.create_task(reads.consume(follower, handlers.handler(follower)))
        for follower in followers
    ]
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await reads.stop()


def reads_of(redis: Redis, shard_size: int, **config: Any) -> OrderReads:
    settings: dict[str, Any] = {"block_ms": 5000, "claim_idle_ms": 60_000, **config}
    return OrderReads(
        redis, GroupConfig(GROUP, "me", **settings), fence=exec_fence, shard_size=shard_size
    )


async def test_many_followers_streams_are_read_together_each_in_its_order(redis: Redis) -> None:
    # Arrange: 25 followers on shared reads of 7 streams each (4 reads), 4 orders each.
    followers = [str(uuid4()) for _ in range(25)]
    reads = reads_of(redis, shard_size=7, batch=2)
    handlers = Followers()
    expected = {f: [f"{f[:8]}-{n}" for n in range(4)] for f in followers}
    async with consuming(reads, followers, handlers):
        await eventually(lambda: len(reads.reads.streams) == 25, "every stream read")

        # Act: the orders interleaved across followers.
        for n in range(4):
            for follower in followers:
                await add_orders(redis, follower, expected[follower][n])

        # Assert
        await eventually(lambda: handlers.seen == expected, "every order handled")
        assert [len(shard.keys) for shard in reads.reads.shards] == [7, 7, 7, 4]
    for follower in followers:
        await eventually(partial(_none_pending, redis, follower), "acknowledged")


async def _none_pending(redis: Redis, follower: str) -> bool:
    return await pending(redis, order_stream(follower)) == 0


async def test_a_slow_follower_holds_up_no_other_and_is_acked_only_once_handled(
    redis: Redis,
) -> None:
    # Arrange: the slow follower's handler waits on a gate.
    slow, quick = str(uuid4()), str(uuid4())
    reads = reads_of(redis, shard_size=1000)
    handlers = Followers()
    handlers.gates[slow] = asyncio.Event()
    async with consuming(reads, [slow, quick], handlers):
        await eventually(lambda: len(reads.reads.streams) == 2, "both streams read")
        await add_orders(redis, slow, "slow-1", "slow-2")
        await handlers.entered[slow].wait()

        # Act
        await add_orders(redis, quick, "quick-1", "quick-2")

        # Assert: the quick follower's orders are handled and acknowledged meanwhile; the
        # slow one's order in hand (and the one behind it) stay unacknowledged until handled.
        await eventually(lambda: handlers.seen[quick] == ["quick-1", "quick-2"], "quick done")
        await eventually(lambda: _none_pending(redis, quick), "quick acknowledged")
        assert handlers.seen[slow] == []
        assert await pending(redis, order_stream(slow)) == 2
        handlers.gates[slow].set()
        await eventually(lambda: handlers.seen[slow] == ["slow-1", "slow-2"], "slow done")
        await eventually(lambda: _none_pending(redis, slow), "slow acknowledged")


async def test_a_fenced_follower_is_dropped_from_the_reads_and_the_others_go_on(
    redis: Redis,
) -> None:
    # Arrange: two followers read together; one is disconnected (fenced, group removed).
    gone, staying = str(uuid4()), str(uuid4())
    reads = reads_of(redis, shard_size=1000)
    handlers = Followers()
    async with consuming(reads, [gone, staying], handlers) as tasks:
        await eventually(lambda: len(reads.reads.streams) == 2, "both streams read")
        await redis.set(exec_fence(gone), "1")

        # Act
        await redis.xgroup_destroy(order_stream(gone), GROUP)
        await add_orders(redis, staying, "after-1")

        # Assert: the other follower's order still comes through; the gone one's stream is
        # no longer read, and its group is not made again.
        await eventually(lambda: handlers.seen[staying] == ["after-1"], "the other goes on")
        await eventually(lambda: order_stream(gone) not in reads.reads, "the stream dropped")
        assert await redis.xinfo_groups(order_stream(gone)) == []
        tasks[0].cancel()
    with pytest.raises(Fenced):
        await reads.consume(gone, handlers.handler(gone))


async def test_an_entry_read_by_the_shared_reads_carries_when_its_read_was_sent(
    redis: Redis,
) -> None:
    # Arrange: a follower's stream read by a blocking shared read
    follower = str(uuid4())
    reads = reads_of(redis, shard_size=1000)
    deliveries: list[Delivery] = []

    async def handle(_order: Order, delivery: Delivery) -> None:
        deliveries.append(delivery)

    reads.start()
    task = asyncio.create_task(reads.consume(follower, handle))
    try:
        await eventually(lambda: order_stream(follower) in reads.reads, "the stream read")
        await eventually(lambda: reads.reads.shards[0].blocked is not None, "the read blocked")
        added_after = time.monotonic()

        # Act
        await add_orders(redis, follower, "o-1")

        # Assert: the read that delivered it was sent before the entry existed (the fence of
        # the execute role counts its window from there)
        await eventually(lambda: len(deliveries) == 1, "the order handled")
        assert 0 < deliveries[0].read_at <= added_after
        assert deliveries[0].count == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await reads.stop()
