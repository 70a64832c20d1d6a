"""Idempotent enqueue: a Lua script checks each order id, XADDs and publishes atomically.

A fill fanned out to thousands of followers is a few script calls of up to CHUNK orders each,
written to one connection chunk by chunk, each chunk encoded while Redis runs the one before,
and the replies read at the end (one round trip); building a client pipeline command by
command, and reading a reply per order, cost far more.

An order id is remembered in its follower's dedupe set of the current period (one period is
``dedupe_ttl_s``); the script refuses an id found in this period's set or the last one's, so
a resend within ``dedupe_ttl_s`` of the first send adds nothing. A member of a set rather than
a key per order: an expiring key per order was half of Redis's time per order.

On one Redis, a script call may touch many followers' keys. On a Redis Cluster it may touch
one slot only: ``cluster=True`` groups the orders by the slot of their follower's hash tag
(``{follower_id}``: a follower's stream, dedupe sets and feed channel share it), one script
call per slot, pipelined per node by the cluster client.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import NoScriptError

from app.dispatch.keys import dedupe_set, feed_channel, order_stream
from app.executors.protocol.messages import feed_message
from app.redisconn import bulk, raw_connection, read_replies

# For each order i: KEYS[3i-2] its stream, KEYS[3i-1] and KEYS[3i] its follower's dedupe sets
# of this period and the last; ARGV[1] the sets' TTL, then per order its id, payload and feed
# channel. An order id seen before is skipped: nothing is added twice, however often a batch is
# resent. The feed gets the bare payload (the feed hub wraps it for its sockets: building a
# message per order here would be Lua string work on every order). Returns how many were added.
_ENQUEUE_LUA = """
local added = 0
for i = 1, #KEYS / 3 do
  local k = 3 * i
  local id = ARGV[k - 1]
  if redis.call('SISMEMBER', KEYS[k], id) == 0 and redis.call('SADD', KEYS[k - 1], id) == 1 then
    if redis.call('SCARD', KEYS[k - 1]) == 1 then
      redis.call('EXPIRE', KEYS[k - 1], ARGV[1])
    end
    redis.call('XADD', KEYS[k - 2], '*', 'order', ARGV[k])
    redis.call('PUBLISH', ARGV[k + 1], ARGV[k])
    added = added + 1
  end
end
return added
"""
# Orders per script call: big enough that a fan-out is a handful of replies, small enough that
# one call does not hold Redis for long (each order is a handful of commands inside the script).
CHUNK = 500
# Followers whose encoded key names are kept (about 300 bytes each).
_KEY_CACHE_LIMIT = 100_000


class Sendable(Protocol):
    """What the enqueue reads of an order: the sizing engine's own orders are sent as they
    are, without a copy per order."""

    @property
    def order_id(self) -> str: ...
    @property
    def follower_id(self) -> UUID: ...
    @property
    def payload(self) -> str: ...
    @property
    def skip_reason(self) -> str | None: ...
    @property
    def skipped(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """An order read back from the outbox (the relay's)."""

    order_id: str
    follower_id: UUID
    payload: str
    skip_reason: str | None = None
    skipped: bool = False


def slot_batches(items: Sequence[Sendable]) -> list[list[Sendable]]:
    """Orders to send grouped so that each group's keys live in one cluster slot, at most
    CHUNK per group, in first-seen order."""
    by_slot: dict[int, list[Sendable]] = {}
    for item in items:
        if not item.skipped:
            by_slot.setdefault(key_slot(order_stream(item.follower_id).encode()), []).append(item)
    return [group[i : i + CHUNK] for group in by_slot.values() for i in range(0, len(group), CHUNK)]


@dataclass(frozen=True, slots=True)
class _FollowerKeys:
    """A follower's key names for one dedupe period, as RESP bulk strings and as text."""

    stream: bytes
    current: bytes
    previous: bytes
    channel: bytes
    names: tuple[str, str, str, str]


class Enqueuer:
    def __init__(
        self,
        redis: Redis | RedisCluster,
        dedupe_ttl_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.cluster = isinstance(redis, RedisCluster)
        self._period_s = dedupe_ttl_s
        # A set lives two periods from its first member: an id added at the very end of its
        # period is still found, as the previous period's, a whole period later.
        self.ttl = str(2 * dedupe_ttl_s).encode()
        self._clock = clock
        self._period = -1
        self._keys: dict[UUID, _FollowerKeys] = {}
        # Redis names a script by its SHA-1: EVALSHA saves sending the body every time.
        self._sha = hashlib.sha1(_ENQUEUE_LUA.encode()).hexdigest().encode()

    def _follower_keys(self, follower_id: UUID) -> _FollowerKeys:
        keys = self._keys.get(follower_id)
        if keys is None:
            if len(self._keys) >= _KEY_CACHE_LIMIT:
                self._keys.clear()
            follower = str(follower_id)
            names = (
                order_stream(follower),
                dedupe_set(follower, self._period),
                dedupe_set(follower, self._period - 1),
                feed_channel(follower),
            )
            stream, current, previous, channel = (bulk(name.encode()) for name in names)
            keys = self._keys[follower_id] = _FollowerKeys(
                stream, current, previous, channel, names
            )
        return keys

    def _enter_period(self) -> None:
        """Take the dedupe period of now; the cached key names hold for one period."""
        period = int(self._clock() // self._period_s)
        if period != self._period:
            self._period = period
            self._keys.clear()

    async def enqueue(self, items: Sequence[Sendable]) -> list[str]:
        """Send ``items`` in one round trip; return the ids now known to be in their streams.

        Skipped orders only go to the feed. An order id seen before is confirmed without a
        second stream entry, so callers may retry freely, and so does this method when Redis
        has lost its script cache (a restart).
        """
        if not items:
            return []
        self._enter_period()
        if isinstance(self.redis, RedisCluster):
            return await self._enqueue_cluster(self.redis, items)
        try:
            return await self._send(items)
        except NoScriptError:
            await self.redis.script_load(_ENQUEUE_LUA)
            return await self._send(items)

    async def _enqueue_cluster(self, cluster: RedisCluster, items: Sequence[Sendable]) -> list[str]:
        """One script call per slot group, pipelined (the client sends one batch per node)."""
        batches = slot_batches(items)
        for attempt in (1, 2):
            pipe = cluster.pipeline(transaction=False)
            for batch in batches:
                keys: list[str] = []
                args: list[bytes] = []
                for item in batch:
                    stream, current, previous, channel = self._follower_keys(item.follower_id).names
                    keys += [stream, current, previous]
                    args += [item.order_id.encode(), item.payload.encode(), channel.encode()]
                pipe.execute_command("EVALSHA", self._sha, len(keys), *keys, self.ttl, *args)
            for item in items:
                if item.skipped:
                    message = feed_message(item.payload, "skipped", item.skip_reason)
                    pipe.publish(feed_channel(item.follower_id).encode(), message.encode())
            try:
                await pipe.execute()
                break
            except NoScriptError:
                if attempt == 2:
                    raise
                # A node restarted or failed over: load the script on every primary.
                await cluster.script_load(_ENQUEUE_LUA)
        return [item.order_id for batch in batches for item in batch]

    def _encode(self, items: Sequence[Sendable]) -> tuple[bytes, list[str], int]:
        """RESP for some orders: one PUBLISH per skipped order, one EVALSHA for the orders to
        send (at most CHUNK of them). Returns the buffer, the ids sent and how many replies."""
        parts: list[bytes] = []
        keys: list[bytes] = []
        args: list[bytes] = []
        sendable: list[str] = []
        for item in items:
            follower = self._follower_keys(item.follower_id)
            if item.skipped:
                message = feed_message(item.payload, "skipped", item.skip_reason)
                parts.append(
                    b"*3\r\n$7\r\nPUBLISH\r\n%s%s" % (follower.channel, bulk(message.encode()))
                )
                continue
            keys += (follower.stream, follower.current, follower.previous)
            args += (bulk(item.order_id.encode()), bulk(item.payload.encode()), follower.channel)
            sendable.append(item.order_id)
        if sendable:
            parts.append(
                b"*%d\r\n$7\r\nEVALSHA\r\n%s%s%s%s%s"
                % (
                    4 + len(keys) + len(args),
                    bulk(self._sha),
                    bulk(b"%d" % len(keys)),
                    b"".join(keys),
                    bulk(self.ttl),
                    b"".join(args),
                )
            )
        return b"".join(parts), sendable, len(parts)

    async def _send(self, items: Sequence[Sendable]) -> list[str]:
        """Write the orders a chunk at a time, encoding the next while Redis runs the last,
        then read every reply, on one pooled connection."""
        assert isinstance(self.redis, Redis)
        sendable: list[str] = []
        replies = 0
        async with raw_connection(self.redis) as conn:
            for first in range(0, len(items), CHUNK):
                buffer, sent, count = self._encode(items[first : first + CHUNK])
                await conn.send_packed_command(buffer, check_health=first == 0)
                sendable += sent
                replies += count
            await read_replies(conn, replies)
        return sendable
