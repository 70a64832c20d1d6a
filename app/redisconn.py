"""The service's Redis clients: one Redis, or a Redis Cluster.

Everything keyed by a follower works on either (keys share the follower's hash slot, see
app.dispatch.keys). Pub/sub is the exception: on a cluster, a classic PUBLISH reaches every
node, so one plain connection to the configured node serves subscribers and publishers alike.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import ResponseError

AnyRedis: TypeAlias = Redis | RedisCluster

_OPTIONS: dict[str, Any] = {
    "decode_responses": False,
    "socket_timeout": 10,
    "socket_connect_timeout": 5,
}


def connect(url: str, cluster: bool, max_connections: int | None = None) -> AnyRedis:
    """The keyed-command client: cluster-aware when ``cluster``. ``max_connections``: the
    pool's bound (redis-py's default is 100)."""
    options = dict(_OPTIONS)
    if max_connections is not None:
        options["max_connections"] = max_connections
    if cluster:
        return RedisCluster.from_url(url, **options)
    return Redis.from_url(url, health_check_interval=15, **options)


def connect_pubsub(url: str) -> Redis:
    """A plain client for pub/sub (on a cluster: the configured node)."""
    return Redis.from_url(url, health_check_interval=15, **_OPTIONS)


def by_slot(keys: list[str]) -> list[list[str]]:
    """``keys`` grouped so that each group lives in one cluster slot, in first-seen order."""
    groups: dict[int, list[str]] = {}
    for key in keys:
        groups.setdefault(key_slot(key.encode()), []).append(key)
    return list(groups.values())


# -- hand-encoded commands ---------------------------------------------------------------------
# For the hot and the wide commands (an enqueue of thousands of orders, a read naming every
# follower's stream): redis-py encodes every argument of every call in Python, which for
# tens of thousands of arguments held the event loop for tens of milliseconds.


def bulk(value: bytes) -> bytes:
    """One RESP bulk string."""
    return b"$%d\r\n%s\r\n" % (len(value), value)


def command(*args: bytes) -> bytes:
    """One command in RESP, the protocol's own framing."""
    return b"*%d\r\n" % len(args) + b"".join(bulk(arg) for arg in args)


@contextlib.asynccontextmanager
async def raw_connection(redis: Redis) -> AsyncIterator[Any]:
    """A pooled connection to write encoded commands to and read their replies from.

    Cancelled or broken mid-way, replies may still be in flight on it: it is closed rather
    than returned to the pool as it is. An error reply leaves it in step.
    """
    pool = redis.connection_pool
    conn: Any = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        yield conn
    except BaseException as exc:
        if not isinstance(exc, ResponseError):
            await conn.disconnect()
        raise
    finally:
        await pool.release(conn)


async def read_replies(conn: Any, count: int) -> list[Any]:
    """Read ``count`` replies; an error reply is raised once all are read (the connection
    stays in step)."""
    replies: list[Any] = []
    error: ResponseError | None = None
    for _ in range(count):
        try:
            replies.append(await conn.read_response())
        except ResponseError as exc:
            error = error or exc
    if error is not None:
        raise error
    return replies


class Gathered:
    """Commands of many callers, sent together: every command asked while no round trip is
    under way, or while one is, goes out in the next one (a pipeline, on a cluster split per
    node), each caller awaiting its own reply. For the per-order commands of a fan-out, which
    arrive from a thousand tasks in the same turn of the event loop: one round trip instead
    of a thousand, and each command still sent after it was asked."""

    def __init__(self, redis: AnyRedis) -> None:
        self._redis = redis
        self._asked: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def execute(self, *args: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._asked.append((args, future))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send())
        return await future

    async def _send(self) -> None:
        asked: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        try:
            while self._asked:
                asked, self._asked = self._asked, []
                try:
                    async with self._redis.pipeline(transaction=False) as pipe:
                        for args, _ in asked:
                            pipe.execute_command(*args)
                        replies = await pipe.execute(raise_on_error=False)
                except Exception as exc:
                    _settle(asked, [exc] * len(asked))
                    continue
                _settle(asked, replies)
            asked = []
        finally:
            # Cancelled (the instance stops): nobody is left waiting for a reply.
            _settle(asked + self._asked, None)
            self._asked = []


def _settle(
    asked: list[tuple[tuple[Any, ...], asyncio.Future[Any]]], replies: list[Any] | None
) -> None:
    """Answer each caller not answered yet with its reply (an exception is raised to it), or
    cancel it (``replies`` None)."""
    for n, (_, future) in enumerate(asked):
        if future.done():
            continue
        if replies is None:
            future.cancel()
        elif isinstance(replies[n], Exception):
            future.set_exception(replies[n])
        else:
            future.set_result(replies[n])
