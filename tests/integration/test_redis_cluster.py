"""The order path on a real Redis Cluster: three redis-server nodes started here, on loopback.

Each script call must touch one slot: orders are grouped by their follower's hash tag, and
the cluster refuses (CROSSSLOT) any call that would not be.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from app.dispatch.enqueue import Enqueuer, OutboxItem, slot_buckets
from app.dispatch.keys import (
    exec_fence,
    feed_channel,
    order_stream,
    report_stream,
    slot_sent_marker,
)
from app.dispatch.report_reader import GROUP, ReportReader
from app.dispatch.trim import trim_stream
from app.redisconn import Gathered, by_slot
from app.venues.fences import FenceChecks
from tests.cluster import needs_redis_binaries, redis_cluster

pytestmark = needs_redis_binaries


# The report reader's database and report service, which tracking streams never touches.
NO_SESSIONS: Any = None
NO_SERVICE: Any = None


@pytest.fixture(scope="module")
def cluster_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    with redis_cluster(tmp_path_factory.mktemp("redis-cluster")) as ports:
        yield ports


@pytest.fixture
async def cluster(cluster_nodes: list[int]) -> AsyncIterator[RedisCluster]:
    client = RedisCluster(host="127.0.0.1", port=cluster_nodes[0], decode_responses=False)
    await client.initialize()
    yield client
    await client.flushall()
    await client.aclose()


def _items(followers: list[uuid.UUID], per_follower: int) -> list[OutboxItem]:
    items = []
    for n in range(per_follower):
        for follower in followers:
            order_id = f"o-{follower}-{n}"
            payload = json.dumps({"order_id": order_id, "follower_id": str(follower)})
            items.append(OutboxItem(order_id, follower, payload, f"fill-{n}"))
    return items


def test_every_batch_lives_in_one_slot_and_every_order_in_one_batch() -> None:
    # Arrange
    followers = [uuid.uuid4() for _ in range(300)]
    items = [
        *_items(followers, 2),
        OutboxItem("skipped-1", followers[0], "{}", "fill-0", "rounds_to_zero", skipped=True),
    ]

    # Act
    batches = slot_buckets(items)

    # Assert
    sent = [item.order_id for batch in batches.values() for item in batch]
    assert sorted(sent) == sorted(i.order_id for i in items if not i.skipped)
    for (fill_key, slot), batch in batches.items():
        slots = {
            key_slot(key.encode())
            for item in batch
            for key in (order_stream(item.follower_id), feed_channel(item.follower_id))
        }
        assert slots == {slot} == {key_slot(slot_sent_marker(fill_key, slot).encode())}
        assert {item.fill_key for item in batch} == {fill_key}


async def test_enqueue_on_a_cluster_adds_each_order_once(cluster: RedisCluster) -> None:
    # Arrange: 300 followers spread over the three nodes' slots, two orders each.
    followers = [uuid.uuid4() for _ in range(300)]
    items = _items(followers, 2)
    enqueuer = Enqueuer(cluster, dedupe_ttl_s=3600)

    # Act: the second and third sends are retries (the outbox relay does that), of one fill
    # and of both.
    confirmed = await enqueuer.enqueue(items)
    again = await asyncio.gather(enqueuer.enqueue(items[:300]), enqueuer.enqueue(items))

    # Assert
    assert sorted(confirmed) == sorted(i.order_id for i in items)
    assert sorted(again[1]) == sorted(confirmed)
    for follower in followers:
        entries = await cluster.xrange(order_stream(follower)) or []
        ids = [json.loads((fields or {})[b"order"])["order_id"] for _, fields in entries]
        assert ids == [f"o-{follower}-0", f"o-{follower}-1"]


async def test_enqueue_reloads_the_script_a_node_forgot(cluster: RedisCluster) -> None:
    # Arrange
    follower = uuid.uuid4()
    enqueuer = Enqueuer(cluster, dedupe_ttl_s=3600)
    await enqueuer.enqueue(_items([follower], 1))
    await cluster.script_flush()

    # Act
    confirmed = await enqueuer.enqueue(_items([uuid.uuid4()], 1) + _items([follower], 2))

    # Assert
    assert len(confirmed) == 3
    assert len(await cluster.xrange(order_stream(follower)) or []) == 2


async def test_trimming_and_report_reads_work_on_a_cluster(cluster: RedisCluster) -> None:
    # Arrange: two followers' report streams (on different slots), one entry each, and an
    # order stream with old entries already read by its consumer group.
    followers = [uuid.uuid4() for _ in range(2)]
    stream = order_stream(followers[0])
    await cluster.xgroup_create(stream, "executors", id="0", mkstream=True)
    for n in range(3):
        await cluster.xadd(stream, {"order": b"{}"}, id=f"{1_000_000 + n}-0")
    await cluster.xreadgroup("executors", "c1", {stream: ">"}, count=10)
    await cluster.xack(stream, "executors", *[f"{1_000_000 + n}-0" for n in range(3)])

    # Act
    removed = await trim_stream(cluster, stream, retention_s=60)
    groups = by_slot([report_stream(f) for f in followers])

    # Assert
    # Everything before the group's last-delivered entry (that one is the trim point).
    assert removed == 2
    assert len(groups) == 2
    assert all(len({key_slot(k.encode()) for k in group}) == 1 for group in groups)


async def test_report_groups_are_created_on_every_node_once(cluster: RedisCluster) -> None:
    # Arrange: followers whose report streams hash to different slots, one group made before.
    followers = [uuid.uuid4() for _ in range(8)]
    assert len(by_slot([report_stream(f) for f in followers])) > 1
    await cluster.xgroup_create(report_stream(followers[0]), GROUP, id="0", mkstream=True)
    reader = ReportReader(NO_SESSIONS, cluster, NO_SERVICE, 100, 60_000, 5.0)

    # Act
    await reader.track_many(followers)
    await reader.track_many(followers)

    # Assert
    for follower_id in followers:
        groups = await cluster.xinfo_groups(report_stream(follower_id))
        assert [g["name"] for g in groups] == [GROUP.encode()]


async def test_gathered_fence_checks_and_commands_span_slots(cluster: RedisCluster) -> None:
    """The execute role's gathered commands name many followers' keys, in many slots."""
    followers = [str(uuid.uuid4()) for _ in range(40)]
    assert len({key_slot(exec_fence(f).encode()) for f in followers}) > 1
    for follower in followers[::4]:
        await cluster.set(exec_fence(follower), "1")
    checks, gathered = FenceChecks(cluster), Gathered(cluster)

    fenced = await asyncio.gather(*(checks.fenced(f) for f in followers))
    ids = await asyncio.gather(
        *(gathered.execute("XADD", report_stream(f), "*", "report", "{}") for f in followers)
    )

    assert fenced == [n % 4 == 0 for n in range(len(followers))]
    assert len(ids) == len(followers)
    assert [await cluster.xlen(report_stream(f)) for f in followers] == [1] * len(followers)
