"""Executor reports, over REST and the report stream, move orders and positions; the feed hears."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from websockets.asyncio.client import ClientConnection, connect

from app.consumer_group import core
from app.dispatch import report_reader as reports
from app.dispatch.keys import report_dead_letter_stream, report_stream
from app.dispatch.report_reader import GROUP
from app.executors.protocol.consumer import ReportWriter
from app.runtime import Runtime
from app.settings import Settings
from tests.conftest import TEST_REDIS_URL, make_settings
from tests.integration.desk import (
    Desk,
    Follower,
    get_order,
    pending_count,
    push_fill,
    seed_desk,
    wait_for_order,
    xadd,
    xrange,
    xread_new,
)
from tests.support import Api, LiveServer, eventually, start_live_server


@pytest.fixture
async def raw_redis(clean: None) -> AsyncIterator[Redis]:
    """A bytes client, as the service and the executor helpers use."""
    client = Redis.from_url(TEST_REDIS_URL)
    yield client
    await client.aclose()


# The reader's database and report service, which tracking streams never touches.
NO_SESSIONS: Any = None
NO_SERVICE: Any = None


def reports_path(follower: Follower, order_id: str) -> str:
    return f"/v1/followers/{follower.id}/orders/{order_id}/reports"


async def send_report(
    api: Api, follower: Follower, order_id: str, body: dict[str, Any], expect: int = 200
) -> Any:
    return await api.call(
        "POST", reports_path(follower, order_id), expect, token=follower.api_key, json=body
    )


def statuses(order: Any) -> list[str]:
    return [e["status"] for e in order["events"]]


# --- REST ------------------------------------------------------------------------------------


async def test_rest_reports_move_the_order_through_its_lifecycle(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    desk = await seed_desk(api)
    follower = desk.followers[0]
    order_id = await push_fill(server, desk, "f-1", "buy", "2", "50000")  # order qty 0.2

    # Act
    accepted = await send_report(api, follower, order_id, {"status": "accepted"})
    partial = await send_report(
        api,
        follower,
        order_id,
        {"status": "partially_filled", "filled_qty": "0.1", "avg_price": "50010.5"},
    )
    partial_positions = await api.call(
        "GET", f"/v1/followers/{follower.id}/positions", 200, token=follower.api_key
    )
    filled = await send_report(
        api, follower, order_id, {"status": "filled", "filled_qty": "0.2", "avg_price": "50020"}
    )

    # Assert: each reply is the order as it now stands.
    assert accepted["status"] == "accepted"
    assert (partial["status"], partial["filled_qty"]) == ("partially_filled", "0.1")
    assert [p["actual"] for p in partial_positions] == ["0.1"]
    assert (filled["status"], filled["filled_qty"]) == ("filled", "0.2")
    order = await get_order(api, follower, order_id)
    assert order["status"] == "filled"
    assert order["filled_qty"] == "0.2"
    assert order["avg_price"] == "50020"
    assert [(e["status"], e["filled_qty"], e["avg_price"]) for e in order["events"]] == [
        ("accepted", "0", None),
        ("partially_filled", "0.1", "50010.5"),
        ("filled", "0.2", "50020"),
    ]
    positions = await api.call(
        "GET", f"/v1/followers/{follower.id}/positions", 200, token=follower.api_key
    )
    assert [(p["symbol"], p["actual"]) for p in positions] == [("BTCUSDT", "0.2")]


async def test_sell_fills_reduce_the_position_below_zero(server: LiveServer) -> None:
    # Arrange: a buy of 0.2 filled; then the leader reverses (sell 3: long 2 -> short 1),
    # which the follower does as a reduce-only close of 0.2 and an opening sell of 0.1.
    api = Api(server.http)
    desk = await seed_desk(api)
    follower = desk.followers[0]
    buy = await push_fill(server, desk, "f-1", "buy", "2", "50000")
    await push_fill(server, desk, "f-2", "sell", "3", "51000")
    orders = await api.settled_orders(follower.id, token=follower.api_key)
    legs = sorted(
        (o for o in orders if o["leader_fill_id"] == "f-2"), key=lambda o: not o["reduce_only"]
    )
    assert [(o["side"], o["qty"], o["reduce_only"]) for o in legs] == [
        ("sell", "0.2", True),
        ("sell", "0.1", False),
    ]
    await send_report(
        api, follower, buy, {"status": "filled", "filled_qty": "0.2", "avg_price": "50000"}
    )

    # Act
    for leg in legs:
        await send_report(
            api,
            follower,
            leg["order_id"],
            {"status": "filled", "filled_qty": leg["qty"], "avg_price": "51000"},
        )

    # Assert
    positions = await api.call(
        "GET", f"/v1/followers/{follower.id}/positions", 200, token=follower.api_key
    )
    assert [(p["symbol"], p["actual"]) for p in positions] == [("BTCUSDT", "-0.1")]


async def test_resending_a_report_changes_nothing(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    desk = await seed_desk(api)
    follower = desk.followers[0]
    order_id = await push_fill(server, desk, "f-1")
    body = {"status": "partially_filled", "filled_qty": "0.1", "avg_price": "50000"}
    first = await send_report(api, follower, order_id, body)

    # Act
    again = await send_report(api, follower, order_id, body)
    stale = await send_report(api, follower, order_id, {"status": "accepted"})

    # Assert
    assert statuses(first) == ["partially_filled"]
    assert statuses(again) == statuses(stale) == ["partially_filled"]
    assert stale["filled_qty"] == "0.1"
    positions = await api.call(
        "GET", f"/v1/followers/{follower.id}/positions", 200, token=follower.api_key
    )
    assert [p["actual"] for p in positions] == ["0.1"]


async def test_report_filling_more_than_ordered_is_422_naming_filled_qty(
    server: LiveServer,
) -> None:
    # Arrange
    api = Api(server.http)
    desk = await seed_desk(api)
    follower = desk.followers[0]
    order_id = await push_fill(server, desk, "f-1")  # qty 0.2

    # Act
    body = await send_report(
        api,
        follower,
        order_id,
        {"status": "partially_filled", "filled_qty": "0.3", "avg_price": "50000"},
        expect=422,
    )

    # Assert
    assert "filled_qty" in json.dumps(body)
    order = await get_order(api, follower, order_id)
    assert (order["status"], order["filled_qty"], order["events"]) == ("dispatched", "0", [])


async def test_another_followers_key_and_unknown_orders_are_404(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    desk = await seed_desk(api, followers=2)
    owner, other = desk.followers
    order_id = await push_fill(server, desk, "f-1")

    # Act
    foreign = await api.call(
        "POST",
        reports_path(owner, order_id),
        404,
        token=other.api_key,
        json={"status": "accepted"},
    )
    # The other follower, on its own path, naming the owner's order id.
    crossed = await send_report(api, other, order_id, {"status": "accepted"}, expect=404)
    unknown = await send_report(api, owner, "no-such-order", {"status": "accepted"}, expect=404)

    # Assert
    assert foreign["detail"] == "follower not found"
    assert crossed["detail"] == unknown["detail"] == "order not found"
    order = await get_order(api, owner, order_id)
    assert order["status"] == "dispatched"


# --- report stream ---------------------------------------------------------------------------


async def seeded(followers: int = 1) -> Desk:
    """Accounts made through one server, which is then stopped.

    The next server's report reader finds every follower's report stream at start-up. A follower
    made while it runs is only picked up by its 5 s refresh (ReportReader.refresh_s), so its
    first reports would take up to ~6 s to apply.
    """
    async with start_live_server(make_settings()) as first:
        return await seed_desk(Api(first.http), followers)


async def pending_reports(redis: Redis, follower: Follower) -> int:
    return await pending_count(redis, report_stream(follower.id), GROUP)


def reader_errors() -> float:
    return REGISTRY.get_sample_value("copytrade_loop_errors_total", {"loop": "report_reader"}) or 0


async def test_stream_reports_fill_the_order(clean: None, raw_redis: Redis) -> None:
    # Arrange
    desk = await seeded()
    follower = desk.followers[0]
    writer = ReportWriter(raw_redis)
    errors = reader_errors()
    # Claims only after a minute: the reports must come through the reader's own reads.
    async with start_live_server(make_settings(report_claim_idle_ms=60_000)) as server:
        api = Api(server.http)
        order_id = await push_fill(server, desk, "f-1")

        # Act
        await writer.report(follower.id, order_id, "accepted")
        await writer.report(
            follower.id, order_id, "filled", filled_qty=Decimal("0.2"), avg_price=Decimal("50001")
        )

        # Assert
        order = await wait_for_order(api, follower, order_id, lambda o: o["status"] == "filled")
        assert (order["filled_qty"], order["avg_price"]) == ("0.2", "50001")
        assert statuses(order) == ["accepted", "filled"]
        await eventually(lambda: _drained(raw_redis, follower), what="reports acknowledged")
        assert reader_errors() == errors


def blocking_reads_only() -> Settings:
    """Reads that block for 9 s, no reclaim for a minute and no look for followers made
    elsewhere for an hour: a report can only come through a read naming its stream, made
    for it by the instance that tracked the follower."""
    return make_settings(report_block_ms=9000, report_claim_idle_ms=60_000, report_refresh_s=3600.0)


@pytest.fixture
def two_per_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two streams per blocking read of the report reader."""
    monkeypatch.setattr(reports, "READ_SHARD", 2)


async def test_a_follower_made_while_the_reader_blocks_is_read_at_once(raw_redis: Redis) -> None:
    # Arrange: the reader blocks for a minute at a time, and claims nothing for a minute:
    # the report can only come through a read that names the new follower's stream.
    writer = ReportWriter(raw_redis)
    async with start_live_server(blocking_reads_only()) as server:
        api = Api(server.http)
        reader = server.runtime.report_reader
        await eventually(lambda: reader._counted == 0, "the reader's first look (no followers)")
        desk = await seed_desk(api, 1)  # the follower is made, and tracked, on this instance
        follower = desk.followers[0]
        order_id = await push_fill(server, desk, "f-1")

        # Act
        await writer.report(follower.id, order_id, "accepted")

        # Assert: no refresh or reclaim comes in time, so only a read made for the new
        # follower can bring the report.
        order = await wait_for_order(api, follower, order_id, lambda o: o["status"] == "accepted")
        assert statuses(order) == ["accepted"]


async def _order_of(api: Api, follower: Follower, fill_id: str) -> str:
    orders = await api.settled_orders(follower.id, token=follower.api_key)
    (order_id,) = [o["order_id"] for o in orders if o["leader_fill_id"] == fill_id]
    assert isinstance(order_id, str)
    return order_id


async def test_reports_come_through_every_shard_of_streams(
    clean: None, two_per_shard: None, raw_redis: Redis
) -> None:
    # Arrange: five followers take three reads, the last naming one stream.
    desk = await seeded(followers=5)
    writer = ReportWriter(raw_redis)
    async with start_live_server(blocking_reads_only()) as server:
        api = Api(server.http)
        await push_fill(server, desk, "f-1")
        orders = [(f, await _order_of(api, f, "f-1")) for f in desk.followers]

        # Act
        for follower, order_id in orders:
            await writer.report(follower.id, order_id, "accepted")

        # Assert: every follower's report applied.
        for follower, order_id in orders:
            await wait_for_order(api, follower, order_id, lambda o: o["status"] == "accepted")
        shards = server.runtime.report_reader._shards
        assert [len(shard.keys) for shard in shards] == [2, 2, 1]


async def test_a_follower_added_to_a_shard_under_read_is_read_at_once(
    clean: None, two_per_shard: None, raw_redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: one follower, in a shard with room for two, its read under way; the reads
    # that are ended early are recorded.
    desk = await seeded(followers=1)
    writer = ReportWriter(raw_redis)
    async with start_live_server(blocking_reads_only()) as server:
        api = Api(server.http)
        reader_redis = server.runtime.report_reader._reads.core.redis
        unblock = reader_redis.client_unblock
        ended: list[int] = []

        async def recorded_unblock(client_id: int, error: bool = False) -> Any:
            ended.append(client_id)
            return await unblock(client_id, error)

        monkeypatch.setattr(reader_redis, "client_unblock", recorded_unblock)
        shards = server.runtime.report_reader._shards
        await eventually(lambda: shards and shards[0].blocked, "the shard's read under way")
        made = await api.follower("follower-late")
        await api.follower_equity(made["id"], "10000")
        await api.subscribe(made["id"], desk.leader_id)
        late = Follower(made["id"], made["api_key"])
        await push_fill(server, desk, "f-1")
        order_id = await _order_of(api, late, "f-1")

        # Act
        await writer.report(late.id, order_id, "accepted")

        # Assert: the read was ended, not left to time out, and made again naming the new
        # stream.
        await wait_for_order(api, late, order_id, lambda o: o["status"] == "accepted")
        assert ended, "the read under way was left to time out"
        shards = server.runtime.report_reader._shards
        assert [len(shard.keys) for shard in shards] == [2]


async def _drained(redis: Redis, follower: Follower) -> bool:
    return await pending_reports(redis, follower) == 0


async def test_bad_stream_reports_are_dead_lettered_and_acknowledged(
    clean: None, raw_redis: Redis
) -> None:
    # Arrange
    desk = await seeded(followers=2)
    follower, other = desk.followers
    async with start_live_server(make_settings()) as server:
        api = Api(server.http)
        order_id = await push_fill(server, desk, "f-1")
        bad = [
            b"{not json",
            json.dumps({"order_id": order_id, "status": "exploded"}).encode(),
            json.dumps({"order_id": order_id, "status": "filled", "filled_qty": "1"}).encode(),
            json.dumps({"order_id": "no-such-order", "status": "accepted"}).encode(),
        ]
        stream = report_stream(follower.id)

        # Act: the bad ones, then a good one behind them; and the owner's order id reported
        # on the other follower's stream.
        for raw in bad:
            await xadd(raw_redis, stream, {"report": raw})
        await xadd(raw_redis, stream, {"no_report_field": b"x"})
        await ReportWriter(raw_redis).report(follower.id, order_id, "accepted")
        await ReportWriter(raw_redis).report(other.id, order_id, "rejected", reason="not mine")

        # Assert: the good one is applied, the bad ones dead-lettered, and all acknowledged.
        order = await wait_for_order(api, follower, order_id, lambda o: o["status"] == "accepted")
        assert statuses(order) == ["accepted"]

        async def all_dead() -> bool:
            mine = await raw_redis.xlen(report_dead_letter_stream(follower.id))
            theirs = await raw_redis.xlen(report_dead_letter_stream(other.id))
            return bool(mine == len(bad) + 1 and theirs == 1)

        await eventually(all_dead, what="dead letters")
        await eventually(lambda: _drained(raw_redis, follower), what="XPENDING 0")
        await eventually(lambda: _drained(raw_redis, other), what="XPENDING 0 (other)")
        dead = await xrange(raw_redis, report_dead_letter_stream(follower.id))
        assert [fields[b"report"] for _, fields in dead] == [*bad, b""]
        order = await get_order(api, follower, order_id)
        assert order["status"] == "accepted"


# --- feed ------------------------------------------------------------------------------------


async def next_message(ws: ClientConnection, kind: str) -> dict[str, Any]:
    """The next feed message of type ``kind`` (others are skipped)."""
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout=5))
        if message["type"] == kind:
            return message


async def test_feed_shows_each_status_change(server: LiveServer) -> None:
    # Arrange: the follower's feed is open, and has shown the order (so it is subscribed).
    api = Api(server.http)
    desk = await seed_desk(api)
    follower = desk.followers[0]
    url = f"{server.ws_url}/v1/followers/{follower.id}/orders/ws?token={follower.api_key}"
    async with connect(url) as ws:
        order_id = await push_fill(server, desk, "f-1")
        created = await next_message(ws, "order")
        assert created["order"]["order_id"] == order_id

        # Act: a repeated report in the middle must not show up.
        partial = {"status": "partially_filled", "filled_qty": "0.05", "avg_price": "50000"}
        for body in (
            {"status": "accepted"},
            partial,
            partial,
            {"status": "filled", "filled_qty": "0.2", "avg_price": "50002.5"},
        ):
            await send_report(api, follower, order_id, body)
        received = [await next_message(ws, "order_status") for _ in range(3)]

    # Assert
    assert [(m["order_id"], m["status"], m["filled_qty"]) for m in received] == [
        (order_id, "accepted", "0"),
        (order_id, "partially_filled", "0.05"),
        (order_id, "filled", "0.2"),
    ]
    assert [m["avg_price"] for m in received] == [None, "50000", "50002.5"]


# --- hostile and crashed cases ---------------------------------------------------------------


async def test_rest_report_with_a_nul_in_reason_is_422(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    desk = await seed_desk(api)
    follower = desk.followers[0]
    order_id = await push_fill(server, desk, "f-1")

    # Act
    body = await send_report(
        api, follower, order_id, {"status": "rejected", "reason": "a\u0000b"}, expect=422
    )

    # Assert
    assert "reason" in json.dumps(body)


async def test_a_report_the_database_refuses_does_not_block_other_reports(
    clean: None, raw_redis: Redis
) -> None:
    # Arrange
    desk = await seeded(followers=2)
    follower, other = desk.followers
    async with start_live_server(make_settings()) as server:
        api = Api(server.http)
        order_id = await push_fill(server, desk, "f-1")
        orders = await api.call("GET", f"/v1/followers/{other.id}/orders", 200, token=other.api_key)
        (other_order,) = [o["order_id"] for o in orders]
        poison = json.dumps({"order_id": order_id, "status": "rejected", "reason": "a\u0000b"})
        await xadd(raw_redis, report_stream(follower.id), {"report": poison})
        dead_letters = report_dead_letter_stream(follower.id)
        await eventually(lambda: raw_redis.xlen(dead_letters), "the reader to take the poison")

        # Act: another follower's executor reports.
        await ReportWriter(raw_redis).report(other.id, other_order, "accepted")

        # Assert
        await wait_for_order(api, other, other_order, lambda o: o["status"] == "accepted")
        assert await raw_redis.xlen(dead_letters) == 1


@pytest.mark.parametrize("claim_slice", [1000, 1], ids=["one-pipeline", "a-pipeline-each"])
async def test_reports_held_by_a_crashed_instance_are_applied_after_a_restart(
    clean: None, raw_redis: Redis, claim_slice: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: an instance read the report, then died before its commit and XACK. With a
    # slice of 1 the reclaim takes one pipeline per follower's stream (three followers).
    monkeypatch.setattr(core, "SLICE", claim_slice)
    desk = await seeded(followers=3)
    follower = desk.followers[0]
    async with start_live_server(make_settings()) as server:
        order_id = await push_fill(server, desk, "f-1")
    await ReportWriter(raw_redis).report(follower.id, order_id, "accepted")
    taken = await xread_new(raw_redis, GROUP, "crashed-instance", report_stream(follower.id), 10)
    assert len(taken) == 1

    # Act
    async with start_live_server(make_settings()) as server:
        api = Api(server.http)

        # Assert
        await wait_for_order(api, follower, order_id, lambda o: o["status"] == "accepted")


async def test_tracking_many_followers_creates_each_group_once(raw_redis: Redis) -> None:
    # Arrange: one follower's group exists already (made by another instance), the rest not;
    # more followers than one round trip takes.
    followers = [uuid4() for _ in range(reports.TRACK_SLICE + 5)]
    await raw_redis.xgroup_create(report_stream(followers[0]), GROUP, id="0", mkstream=True)
    reader = reports.ReportReader(NO_SESSIONS, raw_redis, NO_SERVICE, 100, 60_000, 5.0)

    # Act
    await reader.track_many(followers)
    await reader.track_many(followers[:3])  # tracked already: nothing is sent again

    # Assert
    for follower_id in (followers[0], followers[1], followers[-1]):
        groups = await raw_redis.xinfo_groups(report_stream(follower_id))
        assert [g["name"] for g in groups] == [GROUP.encode()]
    assert await raw_redis.exists(*(report_stream(f) for f in followers)) == len(followers)


async def test_tracking_a_key_that_is_not_a_stream_fails_loudly(raw_redis: Redis) -> None:
    # Arrange: something else holds a follower's report key.
    follower_id = uuid4()
    await raw_redis.set(report_stream(follower_id), b"not a stream")
    reader = reports.ReportReader(NO_SESSIONS, raw_redis, NO_SERVICE, 100, 60_000, 5.0)

    # Act / Assert: not mistaken for "the group exists already".
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await reader.track_many([uuid4(), follower_id])


async def _add_follower(db: Any) -> UUID:
    """A follower made elsewhere (another instance, plain SQL)."""
    follower_id = uuid4()
    await db.execute(
        "INSERT INTO follower (id, name, api_key_hash) VALUES ($1, $2, $3)",
        follower_id,
        f"elsewhere-{follower_id}",
        uuid4().hex * 2,
    )
    return follower_id


async def _has_group(redis: Redis, follower_id: UUID) -> bool:
    if not await redis.exists(report_stream(follower_id)):
        return False
    return [g["name"] for g in await redis.xinfo_groups(report_stream(follower_id))] == [
        GROUP.encode()
    ]


async def test_a_refresh_finds_followers_made_elsewhere(
    live: Runtime, db: Any, raw_redis: Redis
) -> None:
    # Arrange: every follower there is now, tracked; then one more made elsewhere.
    reader = live.report_reader
    first = await _add_follower(db)
    await reader.refresh(full=True)
    made = await _add_follower(db)

    # Act
    await reader.refresh()

    # Assert
    assert [await _has_group(raw_redis, f) for f in (first, made)] == [True, True]


async def test_a_sweep_finds_a_follower_that_left_the_count_unchanged(
    live: Runtime, db: Any, raw_redis: Redis
) -> None:
    # Arrange: one follower deleted by hand and another made: as many as when last read.
    reader = live.report_reader
    gone = await _add_follower(db)
    await reader.refresh(full=True)
    await db.execute("DELETE FROM follower WHERE id = $1", gone)
    made = await _add_follower(db)

    # Act
    await reader.refresh()
    after_refresh = await _has_group(raw_redis, made)
    await reader.refresh(full=True)

    # Assert: a plain refresh trusts the count; the periodic sweep reads every id.
    assert not after_refresh
    assert await _has_group(raw_redis, made)


async def test_a_full_refresh_reads_every_page(
    live: Runtime, db: Any, raw_redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: more followers than one page holds.
    monkeypatch.setattr(reports, "REFRESH_PAGE", 2)
    followers = [await _add_follower(db) for _ in range(5)]

    # Act
    await live.report_reader.refresh(full=True)

    # Assert
    assert [await _has_group(raw_redis, f) for f in followers] == [True] * 5
