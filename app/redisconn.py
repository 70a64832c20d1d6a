"""The service's Redis clients: one Redis, or a Redis Cluster.

Everything keyed by a follower works on either (keys share the follower's hash slot, see
app.dispatch.keys). Pub/sub is the exception: on a cluster, a classic PUBLISH reaches every
node, so one plain connection to the configured node serves subscribers and publishers alike.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

AnyRedis: TypeAlias = Redis | RedisCluster

_OPTIONS: dict[str, Any] = {
    "decode_responses": False,
    "socket_timeout": 10,
    "socket_connect_timeout": 5,
}


def connect(url: str, cluster: bool) -> AnyRedis:
    """The keyed-command client: cluster-aware when ``cluster``."""
    if cluster:
        return RedisCluster.from_url(url, **_OPTIONS)
    return Redis.from_url(url, health_check_interval=15, **_OPTIONS)


def connect_pubsub(url: str) -> Redis:
    """A plain client for pub/sub (on a cluster: the configured node)."""
    return Redis.from_url(url, health_check_interval=15, **_OPTIONS)


def by_slot(keys: list[str]) -> list[list[str]]:
    """``keys`` grouped so that each group lives in one cluster slot, in first-seen order."""
    groups: dict[int, list[str]] = {}
    for key in keys:
        groups.setdefault(key_slot(key.encode()), []).append(key)
    return list(groups.values())
