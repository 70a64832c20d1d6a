"""Commands of many tasks gathered into one round trip (fence checks, acks, reports), on real
Redis: each caller gets its own answer, and a check is answered by a read made after it was
asked (DELETE's promise: nothing is placed once the fence is up)."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import uuid4

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from app.dispatch.keys import exec_fence
from app.redisconn import Gathered
from app.venues.fences import FenceChecks


def counted(redis: Redis, name: str) -> list[int]:
    """Count the calls of ``redis.<name>`` (one list item per call: its argument count)."""
    calls: list[int] = []
    original = getattr(redis, name)

    async def wrapper(keys: list[str]) -> Any:
        calls.append(len(keys))
        return await original(keys)

    setattr(redis, name, wrapper)
    return calls


async def test_checks_asked_together_go_in_one_round_trip(redis: Redis) -> None:
    followers = [str(uuid4()) for _ in range(50)]
    for follower in followers[::3]:
        await redis.set(exec_fence(follower), "1")
    calls = counted(redis, "mget")
    checks = FenceChecks(redis)

    answers = await asyncio.gather(*(checks.fenced(f) for f in followers))

    assert answers == [n % 3 == 0 for n in range(len(followers))]
    assert calls == [50]


async def test_a_check_asked_during_a_round_trip_waits_for_the_next(redis: Redis) -> None:
    """A check asked after the fence went up is never answered by a read made before."""
    follower = str(uuid4())
    checks = FenceChecks(redis)
    original = redis.mget
    in_flight, release = asyncio.Event(), asyncio.Event()
    reads = 0

    async def slow_mget(keys: list[str]) -> Any:
        nonlocal reads
        reads += 1
        values = await original(keys)  # read before the fence goes up...
        if reads == 1:
            in_flight.set()
            await release.wait()  # ...answered after
        return values

    redis.mget = slow_mget  # type: ignore[method-assign,assignment]
    before = asyncio.create_task(checks.fenced(follower))
    await in_flight.wait()
    await redis.set(exec_fence(follower), "1")  # DELETE fences the account
    after = asyncio.create_task(checks.fenced(follower))
    await asyncio.sleep(0)
    release.set()

    assert await before is False
    assert await after is True
    assert reads == 2


async def test_a_failed_round_trip_fails_its_checks(redis: Redis) -> None:
    checks = FenceChecks(redis)

    async def broken(keys: list[str]) -> Any:
        raise ConnectionError("redis gone")

    redis.mget = broken  # type: ignore[method-assign,assignment]
    with pytest.raises(ConnectionError):
        await checks.fenced(str(uuid4()))


async def test_gathered_commands_each_get_their_reply(redis: Redis) -> None:
    gathered = Gathered(redis)
    await redis.set("a-string", "x")
    pipelines: list[object] = []
    original = redis.pipeline

    def pipeline(**kw: Any) -> Any:
        pipelines.append(kw)
        return original(**kw)

    redis.pipeline = pipeline  # type: ignore[method-assign,assignment]

    replies = await asyncio.gather(
        *(gathered.execute("XADD", f"stream-{n}", "*", "f", str(n)) for n in range(20)),
        gathered.execute("XADD", "a-string", "*", "f", "v"),  # the wrong type: an error
        return_exceptions=True,
    )

    assert all(isinstance(r, str) and "-" in r for r in replies[:20])
    assert isinstance(replies[20], ResponseError)
    assert [await redis.xlen(f"stream-{n}") for n in range(20)] == [1] * 20
    assert len(pipelines) == 1
