"""The execute role's fence without a Redis round trip per order: a first delivery read moments
ago leaves unchecked; any other asks Redis; a disconnection fences the stream and removes its
group in one step, and reports what an executor held only after the fence window.

On real Redis, with a venue client that records what it was given (no wire)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from app.dispatch.keys import exec_fence, order_stream, report_stream
from app.executors.protocol.consumer import Delivery, Order, ReportWriter
from app.pipeline import Pipeline
from app.venues import accounts
from app.venues.accounts import disconnect
from app.venues.execution import (
    AccountEvent,
    AccountSnapshot,
    OrderRequest,
    OrderState,
    VenueOrder,
    check_send_by,
)
from app.venues.executor import (
    FENCE_WINDOW_S,
    GROUP,
    AccountExecutor,
    Disconnected,
    ExecutorParams,
)
from app.venues.leases import Hold
from tests.conftest import TEST_REDIS_URL
from tests.support import eventually


class CountingRedis(Redis):
    """Counts the fence reads (MGET, as the executor's gathered checks make them)."""

    fence_reads = 0

    async def mget(self, keys: Any, *args: Any) -> Any:
        self.fence_reads += 1
        return await super().mget(keys, *args)


class Venue:
    """Places whatever reaches the last moment before sending; ``hold`` keeps an order
    inside ``place`` (a socket opening, a limiter) until it is set."""

    venue = "fake"

    def __init__(self) -> None:
        self.placed: list[str] = []
        self.hold: asyncio.Event | None = None
        self.entered = asyncio.Event()

    def client_order_id(self, order_id: str) -> str:
        return order_id

    async def place(self, request: OrderRequest) -> VenueOrder:
        self.entered.set()
        if self.hold is not None:
            await self.hold.wait()
        check_send_by()
        self.placed.append(request.client_id)
        return VenueOrder(request.client_id, OrderState.FILLED, request.qty, Decimal("100"))

    async def query(self, symbol: str, client_id: str) -> VenueOrder | None:
        return None

    async def account(self) -> AccountSnapshot:
        raise NotImplementedError

    def events(self) -> AsyncIterator[AccountEvent]:
        raise NotImplementedError

    async def close(self) -> None:
        return None


class _Reads:
    def __init__(self, redis: Redis) -> None:
        self.reports = ReportWriter(redis)


@pytest.fixture
async def counting_redis(redis: Redis) -> AsyncIterator[CountingRedis]:
    client = CountingRedis.from_url(TEST_REDIS_URL)
    assert isinstance(client, CountingRedis)
    yield client
    await client.aclose()


def executor(
    redis: Redis, venue: Venue, follower_id: UUID, hold: Hold | None = None
) -> AccountExecutor:
    params = ExecutorParams(
        equity_interval_s=60, claim_idle_ms=60_000, retry_initial_s=0.1, retry_max_s=1
    )
    return AccountExecutor(
        follower_id,
        venue,
        redis,
        None,  # type: ignore[arg-type]  # handle() writes nothing to Postgres
        Pipeline.__new__(Pipeline),
        params,
        "me",
        _Reads(redis),  # type: ignore[arg-type]
        hold=hold,
    )


def order(order_id: str) -> Order:
    now = datetime.now(UTC)
    return {
        "order_id": order_id,
        "symbol": "BTCUSDT",
        "side": "buy",
        "qty": "1",
        "reduce_only": False,
        "limit_price": None,
        "created_at": now.isoformat(),
        "valid_until": (now + timedelta(minutes=1)).isoformat(),
        "sizing": {"leader_price": "100"},
    }


async def test_a_first_delivery_read_moments_ago_leaves_without_asking_redis(
    counting_redis: CountingRedis,
) -> None:
    # Arrange
    venue = Venue()
    runner = executor(counting_redis, venue, uuid4())

    # Act
    await runner.handle(order("o-1"), Delivery("1-0", 1, time.monotonic()))

    # Assert
    assert venue.placed == ["o-1"]
    assert counting_redis.fence_reads == 0


@pytest.mark.parametrize(
    "delivery",
    [
        Delivery("1-0", 1, 0.0),  # read_at unknown
        Delivery("1-0", 1, time.monotonic() - FENCE_WINDOW_S - 1),  # read too long ago
    ],
    ids=["unknown-read", "old-read"],
)
async def test_an_order_that_may_not_leave_unchecked_asks_the_fence_and_stays_unsent(
    counting_redis: CountingRedis, delivery: Delivery
) -> None:
    # Arrange: the account is being disconnected
    follower_id = uuid4()
    venue = Venue()
    runner = executor(counting_redis, venue, follower_id)
    await counting_redis.set(exec_fence(follower_id), "1")

    # Act / Assert
    with pytest.raises(Disconnected):
        await runner.handle(order("o-1"), delivery)
    assert venue.placed == []
    assert counting_redis.fence_reads == 1


async def test_an_order_whose_window_passes_inside_place_asks_the_fence_before_it_leaves(
    counting_redis: CountingRedis,
) -> None:
    # Arrange: an order read just inside the window, held inside place() until it passes;
    # meanwhile the account is fenced
    follower_id = uuid4()
    venue = Venue()
    venue.hold = asyncio.Event()
    runner = executor(counting_redis, venue, follower_id)
    read_at = time.monotonic() - FENCE_WINDOW_S + 0.05
    handling = asyncio.create_task(runner.handle(order("o-1"), Delivery("1-0", 1, read_at)))
    await venue.entered.wait()
    await counting_redis.set(exec_fence(follower_id), "1")
    await eventually(lambda: time.monotonic() > read_at + FENCE_WINDOW_S, "the window passed")

    # Act
    venue.hold.set()

    # Assert
    with pytest.raises(Disconnected):
        await handling
    assert venue.placed == []
    assert counting_redis.fence_reads == 1


async def test_an_order_that_asked_the_fence_and_then_waited_past_the_window_asks_again(
    counting_redis: CountingRedis,
) -> None:
    # Arrange: a redelivered order asks the fence (none yet), then waits inside place()
    # until the window has passed since; meanwhile the account is fenced
    follower_id = uuid4()
    venue = Venue()
    venue.hold = asyncio.Event()
    runner = executor(counting_redis, venue, follower_id)
    handling = asyncio.create_task(runner.handle(order("o-1"), Delivery("1-0", 2, 0.0)))
    await venue.entered.wait()
    asked = time.monotonic()
    await counting_redis.set(exec_fence(follower_id), "1")
    await eventually(lambda: time.monotonic() > asked + FENCE_WINDOW_S, "the window passed")

    # Act
    venue.hold.set()

    # Assert
    with pytest.raises(Disconnected):
        await handling
    assert venue.placed == []
    assert counting_redis.fence_reads == 2


async def _reports(redis: Redis, follower_id: UUID) -> list[dict[str, Any]]:
    entries: Any = await redis.xrange(report_stream(follower_id))
    return [json.loads(fields["report"]) for _, fields in entries]


async def test_disconnecting_fences_and_removes_the_group_at_once_and_expires_every_order(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: three orders; an executor holds the first (read, not acknowledged)
    monkeypatch.setattr(accounts, "DISCONNECT_WAIT_S", 0.05)
    follower_id = uuid4()
    stream = order_stream(follower_id)
    await redis.xgroup_create(stream, GROUP, id="$", mkstream=True)
    for n in range(3):
        await redis.xadd(stream, {"order": json.dumps(order(f"o-{n}")).encode()})
    held: Any = await redis.xreadgroup(GROUP, "exec", {stream: ">"}, count=1)
    assert len(held[0][1]) == 1

    # Act
    expired = await disconnect(redis, follower_id)

    # Assert: every order reported expired; the group is gone, so nothing more is delivered
    assert expired == 3
    reports = await _reports(redis, follower_id)
    assert sorted(r["order_id"] for r in reports) == ["o-0", "o-1", "o-2"]
    assert {r["status"] for r in reports} == {"expired"}
    assert reports[-1]["order_id"] == "o-0"  # the one in hand last, after the window
    assert await redis.exists(exec_fence(follower_id))
    with pytest.raises(ResponseError, match="NOGROUP"):
        await redis.xreadgroup(GROUP, "exec", {stream: ">"}, count=1)


async def test_disconnecting_an_account_without_a_stream_expires_nothing(redis: Redis) -> None:
    # Act
    expired = await disconnect(redis, uuid4())

    # Assert
    assert expired == 0
