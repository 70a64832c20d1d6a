"""The service's Redis clients: one Redis, or a Redis Cluster.

Everything keyed by a follower works on either (keys share the follower's hash slot, see
app.dispatch.keys). Pub/sub is the exception: on a cluster, a classic PUBLISH reaches every
node, so one plain connection to the configured node serves subscribers and publishers alike.
"""

from __future__ import annotations

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
