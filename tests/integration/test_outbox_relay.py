"""The outbox: orders committed while Redis is unreachable are delivered later, exactly once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from app.db.repositories.orders import OrderRepository
from app.db.repositories.trading import InstrumentRepository
from app.dispatch.enqueue import Enqueuer, OutboxItem
from app.dispatch.keys import order_stream, sent_marker
from app.dispatch.relay import outbox_item
from app.domain.ids import order_id
from app.domain.lifecycle import shown_status
from app.domain.model import Fill, Side
from app.runtime import Runtime
from tests.conftest import TEST_REDIS_URL, make_settings
from tests.integration.runtimes import fill, seed
from tests.support import read_stream, start_live_server

DEAD_REDIS = "redis://127.0.0.1:1/15"  # nothing listens on port 1


@pytest.fixture
async def cut_off(clean: None) -> AsyncIterator[Runtime]:
    """A runtime whose Redis is unreachable: every enqueue fails."""
    runtime = Runtime(make_settings(redis_url=DEAD_REDIS))
    await runtime.open()
    yield runtime
    await runtime.stop()


async def statuses(db: Any) -> list[str]:
    """Each order's status as shown: a row stays pending, its fill carries the dispatch mark."""
    rows = await db.fetch(
        "SELECT o.status, f.dispatched_at IS NOT NULL AS sent"
        "  FROM follower_order o JOIN leader_fill f ON f.id = o.fill_pk ORDER BY o.id"
    )
    return [shown_status(r["status"], r["sent"]) for r in rows]


async def test_orders_wait_in_outbox_while_redis_is_down_then_arrive_once(
    cut_off: Runtime, live: Runtime, redis: Any, db: Any
) -> None:
    # Arrange: fills accepted while Redis cannot be reached.
    leader_id, followers = await seed(cut_off, followers=3)
    await live.equity.reload()

    # Act
    results = [await cut_off.pipeline.handle_fill(fill(leader_id, f"f-{n}")) for n in range(2)]

    # Assert: accepted and durable, but not dispatched.
    assert [r.status for r in results] == ["accepted", "accepted"]
    assert await statuses(db) == ["pending"] * 6
    assert [await read_stream(redis, str(f)) for f in followers] == [[], [], []]

    # Act: Redis is back; the relay runs, twice, as it would on two ticks or two instances.
    sent = await live.relay.relay_once(min_age_s=0)
    again = await live.relay.relay_once(min_age_s=0)

    # Assert: both fills (six orders) sent by the first round, nothing left for the second.
    assert (sent, again) == (2, 0)
    assert await statuses(db) == ["dispatched"] * 6
    for follower_id in followers:
        orders = await read_stream(redis, str(follower_id))
        assert sorted(o["leader_fill_id"] for o in orders) == ["f-0", "f-1"]
        assert {o["qty"] for o in orders} == {"0.2"}


async def test_enqueue_retry_of_the_same_order_adds_no_second_entry(
    live: Runtime, redis: Any
) -> None:
    # Arrange: an order sent once, as after a crash between XADD and marking it dispatched.
    leader_id, (follower_id,) = await seed(live, followers=1)
    await live.equity.reload()
    result = await live.pipeline.handle_fill(fill(leader_id, "f-1"))
    (order,) = result.orders

    # Act
    confirmed = [await live.enqueuer.enqueue([order]) for _ in range(3)]

    # Assert: every retry is confirmed (so it can be marked dispatched), none adds an entry.
    assert confirmed == [[order.order_id]] * 3
    assert [o["order_id"] for o in await read_stream(redis, str(follower_id))] == [order.order_id]


async def test_the_relay_rebuilds_the_first_sends_message_byte_for_byte(
    live: Runtime, redis: Any, db: Any
) -> None:
    # Arrange: a fill sent by its request, its "dispatched" mark then lost.
    leader_id, followers = await seed(live, followers=3)
    await live.equity.reload()
    result = await live.pipeline.handle_fill(fill(leader_id, "f-1"))
    await live.marker.flush()
    await db.execute("UPDATE leader_fill SET dispatched_at = NULL")

    # Act: what the relay would send, from the order rows alone.
    async with live.unit_of_work() as uow:
        _, rows = await OrderRepository(uow.session).undispatched(0, 20)
    rebuilt = {item.order_id: item for item in map(outbox_item, rows)}

    # Assert: the same bytes as in the streams, the same fill name (the same sent markers).
    sent = {}
    for follower_id in followers:
        for _, fields in await redis.xrange(order_stream(follower_id)):
            sent[json.loads(fields["order"])["order_id"]] = fields["order"]
    assert sent == {oid: item.payload for oid, item in rebuilt.items()}
    assert {o.order_id: o.fill_key for o in result.orders} == {
        oid: item.fill_key for oid, item in rebuilt.items()
    }
    assert all(json.loads(payload)["v"] == 2 for payload in sent.values())


async def test_a_resend_adds_nothing_while_its_sent_marker_lives(redis: Any) -> None:
    # Arrange
    client = Redis.from_url(TEST_REDIS_URL)
    enqueuer = Enqueuer(client, dedupe_ttl_s=3600)
    follower_id = uuid4()
    item = OutboxItem("ct-1", follower_id, json.dumps({"order_id": "ct-1"}), "fill-1")

    # Act: sent, resent; then resent once the marker is gone (as dedupe_ttl_s after).
    entries = []
    for _ in range(2):
        await enqueuer.enqueue([item])
        entries.append(len(await read_stream(redis, str(follower_id))))
    ttl = await redis.ttl(sent_marker("fill-1", "-"))
    await redis.delete(sent_marker("fill-1", "-"))
    await enqueuer.enqueue([item])
    entries.append(len(await read_stream(redis, str(follower_id))))

    # Assert
    assert entries == [1, 1, 2]
    assert 3590 < ttl <= 3600
    await client.aclose()


async def test_a_resend_of_a_fill_adds_only_the_buckets_that_never_arrived(redis: Any) -> None:
    # Arrange: a fill of 400 orders sent, then one bucket's entries and marker removed, as if
    # its script call had never run (a crash or a timeout between two calls).
    client = Redis.from_url(TEST_REDIS_URL)
    enqueuer = Enqueuer(client, dedupe_ttl_s=3600)
    followers = [uuid4() for _ in range(40)]
    items = [
        OutboxItem(order_id("L", "f-1", str(n)), followers[n % 40], f'{{"n":{n}}}', "fill-1")
        for n in range(400)
    ]
    await enqueuer.enqueue(items)
    lost = items[0].order_id[2]
    await redis.delete(sent_marker("fill-1", lost))
    for follower_id in followers:
        for entry_id, fields in await redis.xrange(order_stream(follower_id)):
            n = json.loads(fields["order"])["n"]
            if items[n].order_id[2] == lost:
                await redis.xdel(order_stream(follower_id), entry_id)

    # Act: the relay's resend, and a second one.
    confirmed = [await enqueuer.enqueue(items) for _ in range(2)]

    # Assert: every order once.
    counts: dict[int, int] = {}
    for follower_id in followers:
        for _, fields in await redis.xrange(order_stream(follower_id)):
            n = json.loads(fields["order"])["n"]
            counts[n] = counts.get(n, 0) + 1
    assert counts == dict.fromkeys(range(400), 1)
    assert [sorted(c) for c in confirmed] == [sorted(i.order_id for i in items)] * 2
    await client.aclose()


async def test_relay_after_crash_sends_the_unsent_and_does_not_double_the_sent(
    live: Runtime, cut_off: Runtime, redis: Any, db: Any
) -> None:
    # Arrange: f-1 reached the stream but its "dispatched" mark was lost (crash after XADD);
    # f-2 was committed but never sent (crash, or Redis down, right after the commit).
    leader_id, (follower_id,) = await seed(live, followers=1)
    await live.equity.reload()
    await cut_off.equity.reload()
    await live.pipeline.handle_fill(fill(leader_id, "f-1"))
    await live.marker.flush()
    await db.execute("UPDATE leader_fill SET dispatched_at = NULL")
    await cut_off.pipeline.handle_fill(fill(leader_id, "f-2"))
    assert await statuses(db) == ["pending", "pending"]

    # Act
    await live.relay.relay_once(min_age_s=0)

    # Assert
    assert await statuses(db) == ["dispatched", "dispatched"]
    stream = await read_stream(redis, str(follower_id))
    assert [o["leader_fill_id"] for o in stream] == ["f-1", "f-2"]


async def test_readyz_reports_redis_down_and_the_service_stays_up(clean: None) -> None:
    # Arrange / Act
    async with start_live_server(make_settings(redis_url=DEAD_REDIS)) as live:
        ready = await live.http.get("/readyz")
        health = await live.http.get("/healthz")

    # Assert
    assert health.status_code == 200
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "not_ready"
    assert body["postgres"] == "ok"
    assert body["redis"] != "ok"


async def test_concurrent_first_fills_of_a_leader_share_one_book(live: Runtime, db: Any) -> None:
    # Arrange: a leader no fill has touched yet, so its book is not loaded; each fill's
    # share (0.005 x 0.1) is half a lot step, so only fills applied in order add up to lots.
    leader_id, (follower_id,) = await seed(live, followers=1)
    async with live.unit_of_work() as uow:
        await InstrumentRepository(uow.session).upsert(
            "BTCUSDT", Decimal("0.001"), Decimal(0), Decimal(0)
        )
        await uow.commit()
    await live.equity.reload()
    now = datetime.now(UTC)

    # Act: many fills at once, as several push connections of one leader would send them.
    results = await asyncio.gather(
        *(
            live.pipeline.handle_fill(
                Fill(
                    leader_id, f"c-{n}", "BTCUSDT", Side.BUY, Decimal("0.005"), Decimal(1), now, now
                )
            )
            for n in range(20)
        )
    )

    # Assert: applied one at a time on one book; no position update lost.
    assert [r.status for r in results] == ["accepted"] * 20
    leader = await db.fetchval("SELECT qty FROM leader_position WHERE leader_id = $1", leader_id)
    tracked = await db.fetchval(
        "SELECT qty FROM subscription_position p JOIN subscription s ON s.id = p.subscription_id"
        " WHERE s.follower_id = $1",
        follower_id,
    )
    assert (leader, tracked) == (Decimal("0.1"), Decimal("0.01"))


async def test_a_hanging_redis_does_not_hold_up_the_ack(clean: None, db: Any) -> None:
    # Arrange: a "Redis" that accepts connections and never answers (a partition, not a
    # refusal), and a runtime that would otherwise wait for its 10 s socket timeout.
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # hold the connection, say nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    runtime = Runtime(
        make_settings(redis_url=f"redis://127.0.0.1:{port}/0", dispatch_timeout_s=0.2)
    )
    await runtime.open()
    try:
        leader_id, _ = await seed(runtime, followers=2)
        await runtime.equity.reload()

        # Act: generous guard; without the bound the fill would wait out the socket timeout.
        result = await asyncio.wait_for(
            runtime.pipeline.handle_fill(fill(leader_id, "f-1")), timeout=5
        )

        # Assert: accepted and durable; the orders wait in the outbox for the relay.
        assert result.status == "accepted"
        assert await statuses(db) == ["pending", "pending"]
    finally:
        assert isinstance(runtime.redis, Redis)
        await runtime.redis.aclose(close_connection_pool=True)
        await runtime.pg.close()
        await runtime.db_engine.dispose()
        server.close()
