"""Stream trimming by age against real Redis: never past what a consumer group still needs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from uuid import UUID

import asyncpg
import pytest
from redis.asyncio import Redis

from app.db.repositories.accounts import FollowerRepository
from app.db.session import make_engine, make_sessionmaker
from app.dispatch.trim import safe_trim_point, trim_stream, trim_streams
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL
from tests.integration.desk import xadd, xrange, xread_new

STREAM = "copytrade:orders:{00000000-0000-4000-8000-0000000000aa}"
RETENTION_S = 3600.0


@pytest.fixture
async def raw_redis(fresh_redis: None) -> AsyncIterator[Redis]:
    client = Redis.from_url(TEST_REDIS_URL)
    yield client
    await client.aclose()


async def add_entries(redis: Redis, old: int, recent: int) -> list[str]:
    """``old`` entries two hours old (beyond retention), then ``recent`` entries from now."""
    two_hours_ago = int((time.time() - 7200) * 1000)
    ids = [f"{two_hours_ago + n}-0" for n in range(old)]
    for entry_id in ids:
        await xadd(redis, STREAM, {"order": b"{}"}, entry_id)
    for _ in range(recent):
        ids.append(await xadd(redis, STREAM, {"order": b"{}"}))
    return ids


async def remaining(redis: Redis) -> list[str]:
    return [entry_id for entry_id, _ in await xrange(redis, STREAM)]


async def read(redis: Redis, group: str, count: int) -> list[str]:
    return [entry_id for entry_id, _ in await xread_new(redis, group, "c1", STREAM, count)]


def as_tuple(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)


async def test_stream_without_a_consumer_group_is_never_trimmed(raw_redis: Redis) -> None:
    # Arrange
    ids = await add_entries(raw_redis, old=5, recent=1)

    # Act
    point = await safe_trim_point(raw_redis, STREAM)
    removed = await trim_stream(raw_redis, STREAM, RETENTION_S)

    # Assert
    assert point is None
    assert removed == 0
    assert await remaining(raw_redis) == ids


async def test_missing_stream_is_a_no_op(raw_redis: Redis) -> None:
    # Act / Assert
    assert await trim_stream(raw_redis, STREAM, RETENTION_S) == 0


async def test_acknowledged_old_entries_go_and_recent_ones_stay(raw_redis: Redis) -> None:
    # Arrange: every entry read and acknowledged.
    ids = await add_entries(raw_redis, old=4, recent=2)
    await raw_redis.xgroup_create(STREAM, "g", id="0")
    read_ids = await read(raw_redis, "g", count=10)
    await raw_redis.xack(STREAM, "g", *read_ids)

    # Act
    removed = await trim_stream(raw_redis, STREAM, RETENTION_S)

    # Assert
    assert removed == 4
    assert await remaining(raw_redis) == ids[4:]


async def test_oldest_pending_entry_bounds_the_trim(raw_redis: Redis) -> None:
    # Arrange: all read; 0, 2 and 4 acknowledged; 1 and 3 pending (a consumer died holding them).
    ids = await add_entries(raw_redis, old=5, recent=1)
    await raw_redis.xgroup_create(STREAM, "g", id="0")
    await read(raw_redis, "g", count=10)
    await raw_redis.xack(STREAM, "g", ids[0], ids[2], ids[4], ids[5])

    # Act
    point = await safe_trim_point(raw_redis, STREAM)
    removed = await trim_stream(raw_redis, STREAM, RETENTION_S)

    # Assert
    assert point == as_tuple(ids[1])
    assert removed == 1
    assert await remaining(raw_redis) == ids[1:]


async def test_entries_after_the_last_delivered_id_are_kept(raw_redis: Redis) -> None:
    # Arrange: the group has read and acknowledged only the first two old entries.
    ids = await add_entries(raw_redis, old=5, recent=1)
    await raw_redis.xgroup_create(STREAM, "g", id="0")
    read_ids = await read(raw_redis, "g", count=2)
    await raw_redis.xack(STREAM, "g", *read_ids)

    # Act
    point = await safe_trim_point(raw_redis, STREAM)
    removed = await trim_stream(raw_redis, STREAM, RETENTION_S)

    # Assert: nothing after entry 1 (never delivered) goes, however old.
    assert point == as_tuple(ids[1])
    assert removed == 1
    assert await remaining(raw_redis) == ids[1:]


async def test_group_that_has_read_nothing_keeps_everything(raw_redis: Redis) -> None:
    # Arrange
    ids = await add_entries(raw_redis, old=3, recent=0)
    await raw_redis.xgroup_create(STREAM, "g", id="0")

    # Act
    removed = await trim_stream(raw_redis, STREAM, RETENTION_S)

    # Assert
    assert removed == 0
    assert await remaining(raw_redis) == ids


async def test_the_slower_of_two_groups_bounds_the_trim(raw_redis: Redis) -> None:
    # Arrange: "fast" has acknowledged everything; "slow" has one old entry pending.
    ids = await add_entries(raw_redis, old=5, recent=1)
    for group in ("fast", "slow"):
        await raw_redis.xgroup_create(STREAM, group, id="0")
    await raw_redis.xack(STREAM, "fast", *await read(raw_redis, "fast", count=10))
    slow_read = await read(raw_redis, "slow", count=10)
    await raw_redis.xack(STREAM, "slow", *[i for i in slow_read if i != ids[3]])

    # Act
    point = await safe_trim_point(raw_redis, STREAM)
    removed = await trim_stream(raw_redis, STREAM, RETENTION_S)

    # Assert
    assert point == as_tuple(ids[3])
    assert removed == 3
    assert await remaining(raw_redis) == ids[3:]


async def test_a_lagging_group_bounds_the_trim_at_its_last_delivered_id(
    raw_redis: Redis,
) -> None:
    # Arrange: "fast" has acknowledged everything; "lagging" has read and acknowledged two.
    ids = await add_entries(raw_redis, old=5, recent=1)
    for group in ("fast", "lagging"):
        await raw_redis.xgroup_create(STREAM, group, id="0")
    await raw_redis.xack(STREAM, "fast", *await read(raw_redis, "fast", count=10))
    await raw_redis.xack(STREAM, "lagging", *await read(raw_redis, "lagging", count=2))

    # Act
    point = await safe_trim_point(raw_redis, STREAM)
    removed = await trim_stream(raw_redis, STREAM, RETENTION_S)

    # Assert
    assert point == as_tuple(ids[1])
    assert removed == 1
    assert await remaining(raw_redis) == ids[1:]


async def test_a_batch_trims_each_stream_by_its_own_groups(raw_redis: Redis) -> None:
    # Arrange: four streams of old entries in one batch: one without a group, one fully
    # acknowledged, one with entry 2 pending, and one that does not exist.
    two_hours_ago = int((time.time() - 7200) * 1000)
    streams = [f"copytrade:orders:{{batch-{n}}}" for n in range(4)]
    ids = [f"{two_hours_ago + n}-0" for n in range(4)]
    for stream in streams[:3]:
        for entry_id in ids:
            await xadd(raw_redis, stream, {"order": b"{}"}, entry_id)
    for stream in streams[1:3]:
        await raw_redis.xgroup_create(stream, "g", id="0")
        read_ids = [i for i, _ in await xread_new(raw_redis, "g", "c1", stream, 10)]
        await raw_redis.xack(
            stream, "g", *[i for i in read_ids if stream == streams[1] or i != ids[2]]
        )

    # Act
    removed = await trim_streams(raw_redis, streams, RETENTION_S)

    # Assert: kept whole; kept from the last delivered entry on (as a single trim does); kept
    # from the pending entry on; the missing one skipped.
    left = [[i for i, _ in await xrange(raw_redis, stream)] for stream in streams]
    assert left == [ids, ids[3:], ids[2:], []]
    assert removed == 3 + 2


async def test_instances_trimming_at_once_each_claim_their_own_followers(
    db: asyncpg.Connection,
) -> None:
    # Arrange: 450 followers, two instances' sessions claiming batches at the same time.
    await db.execute(
        "INSERT INTO follower (id, name) SELECT gen_random_uuid(), 'f' || n "
        "FROM generate_series(1, 450) AS n"
    )
    engine = make_engine(TEST_DATABASE_URL, 4)
    sessions = make_sessionmaker(engine)

    async def claim_all() -> list[UUID]:
        claimed: list[UUID] = []
        while True:
            async with sessions() as session:
                batch = await FollowerRepository(session).claim_trim_batch(50, 3600)
                await asyncio.sleep(0.01)  # hold the row locks while the other one claims
                await session.commit()
            if not batch:
                return claimed
            claimed += batch

    # Act
    try:
        first, second = await asyncio.gather(claim_all(), claim_all())
        again = await claim_all()
    finally:
        await engine.dispose()

    # Assert: every follower claimed exactly once this round, none due again yet.
    assert len(first) + len(second) == 450
    assert len(set(first) | set(second)) == 450
    assert first
    assert second
    assert again == []
